"""Byte mutations of real sample files, as hypothesis strategies and as plain functions.

Random bytes rarely get past a parser's first line; a real statement with one field made odd
gets deep into it. Each mutation is data (a tuple), so hypothesis shrinks a failure to the
one or two edits that matter, and the atheris runner (tests/fuzz/atheris_main.py) applies the
same edits from its own random stream.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import strategies as st

# Values that have broken parsers before: huge and odd numbers, impossible dates, control
# characters, other scripts' digits, markup and quoting.
TOKENS: tuple[bytes, ...] = (
    b"",
    b"0",
    b"-0",
    b"00",
    b"-",
    b"+",
    b",",
    b".",
    b",,",
    b"1,2,3",
    b"1.2.3",
    b"1e5",
    b"1E+999999999",
    b"1E-999999999",
    b"NaN",
    b"sNaN",
    b"Infinity",
    b"-inf",
    b"9" * 40,
    b"99999999999999999999",
    b"0.0000001",
    b"12345678901234567890.123456789",
    b"0,001",
    b"1 000,00",
    b"\xc2\xa01\xc2\xa0000",
    b"\xef\xbc\x91\xef\xbc\x92",  # fullwidth digits
    b"\xd9\xa3",  # Arabic-Indic digit three
    b"2023-02-30",
    b"2023-13-01",
    b"0000-00-00",
    b"9999-12-31",
    b"230230",
    b"991332",
    b"000000",
    b"2023-02-28T25:61:61",
    b"2026-11-01T00:00:00+25:00",
    b"30.02.2023",
    b"2023/02/30",
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b"\t",
    b'"',
    b'""',
    b"'",
    b";",
    b"|",
    b"\\",
    b"\\x",
    b"\\u12",
    b"\\N{",
    b"<",
    b"</",
    b"&amp;",
    b"&#0;",
    b"&bogus;",
    b"<![CDATA[",
    b"{",
    b"}",
    b"[]",
    b"null",
    b"true",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xff",
    b"\x80",
    b"\xe4\xb8\xad\xe6\x96\x87",  # 中文 in UTF-8
    b"\xd6\xd0\xce\xc4",  # 中文 in GBK
    b"C",
    b"D",
    b"RC",
    b"RD",
    b"EUR",
    b"XXX",
    b"eur",
    b"JPY",
    b"BHD",
    b":61:",
    b":86:",
    b":20:",
    b":60F:",
    b":62F:",
    b"-}",
    b"{1:F01",
    b"01,",
    b"02,",
    b"03,",
    b"16,",
    b"49,",
    b"88,",
    b"98,",
    b"99,",
    b"/",
    b",/",
)

ENCODINGS = ("gbk", "utf-16", "cp1252", "latin-1", "big5", "shift_jis")

_NUMBER = re.compile(rb"\d+(?:[.,]\d+)*")
_FIELD_SEPARATORS = (b",", b";", b"\t", b"|", b":", b"/", b" ", b"<", b">")

Mutation = tuple[str, int, int]


def apply(seed: bytes, mutations: Sequence[Mutation]) -> bytes:
    data = seed
    for mutation in mutations:
        data = mutate(data, mutation)
    return data


def mutate(data: bytes, mutation: Mutation) -> bytes:
    """One edit; `a` and `b` are any integers, taken modulo what they index."""
    kind, a, b = mutation
    size = len(data)
    if kind == "flip" and size:
        at = a % size
        return data[:at] + bytes([b % 256]) + data[at + 1 :]
    if kind == "truncate":
        return data[: a % (size + 1)]
    if kind == "insert":
        at = a % (size + 1)
        return data[:at] + TOKENS[b % len(TOKENS)] + data[at:]
    if kind == "delete" and size:
        at = a % size
        return data[:at] + data[at + 1 + b % 16 :]
    if kind == "number":
        # Replace the a-th number of the file with a token: amounts, dates and counts.
        found = list(_NUMBER.finditer(data))
        if found:
            hit = found[a % len(found)]
            return data[: hit.start()] + TOKENS[b % len(TOKENS)] + data[hit.end() :]
        return data
    lines = data.splitlines(keepends=True)
    if kind == "dup_line" and lines:
        at = a % len(lines)
        return b"".join([*lines[: at + 1], lines[at] * (1 + b % 3), *lines[at + 1 :]])
    if kind == "del_line" and lines:
        at = a % len(lines)
        return b"".join(lines[:at] + lines[at + 1 + b % 3 :])
    if kind == "swap_lines" and len(lines) > 1:
        i, j = a % len(lines), b % len(lines)
        lines[i], lines[j] = lines[j], lines[i]
        return b"".join(lines)
    if kind == "swap_fields" and lines:
        # Two fields of one line change places: a date where an amount belongs.
        at = a % len(lines)
        separator = _FIELD_SEPARATORS[b % len(_FIELD_SEPARATORS)]
        ending = lines[at][len(lines[at].rstrip(b"\r\n")) :]
        fields = lines[at].rstrip(b"\r\n").split(separator)
        if len(fields) > 1:
            i, j = (b // 16) % len(fields), (b // 256 + 1) % len(fields)
            fields[i], fields[j] = fields[j], fields[i]
            lines[at] = separator.join(fields) + ending
        return b"".join(lines)
    if kind == "encoding":
        return _reencoded(data, a)
    return data


def _reencoded(data: bytes, choice: int) -> bytes:
    """The same text as another exporter would write it."""
    option = choice % (len(ENCODINGS) + 4)
    if option == 0:
        return b"\xef\xbb\xbf" + data
    if option == 1:
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if option == 2:
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    if option == 3:
        return data.replace(b"\r\n", b"\n")
    text = data.decode("utf-8", "replace")
    return text.encode(ENCODINGS[option - 4], "replace")


KINDS = (
    "flip",
    "truncate",
    "insert",
    "delete",
    "number",
    "number",
    "dup_line",
    "del_line",
    "swap_lines",
    "swap_fields",
    "encoding",
)


def mutations() -> st.SearchStrategy[list[Mutation]]:
    one = st.tuples(st.sampled_from(KINDS), st.integers(0, 2**20), st.integers(0, 2**16))
    return st.lists(one, min_size=0, max_size=6)


def mutated(seeds: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Sample files with a few edits, now and then plain random bytes or text."""
    assert seeds, "a fuzz target needs at least one seed file"
    edited = st.builds(apply, st.sampled_from(list(seeds)), mutations())
    return st.one_of(
        edited,
        edited,
        edited,
        edited,
        st.binary(max_size=2048),
        st.text(max_size=512).map(lambda t: t.encode("utf-8")),
    )
