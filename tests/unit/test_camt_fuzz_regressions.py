"""camt messages the fuzzer (tests/fuzz/test_fuzz_camt.py) found breaking the importer, kept
as the refusals they now get."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.importers import ImportFailed, parse_bank

MESSAGE = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<Stmt><Id>S1</Id><CreDtTm>2026-11-02T10:00:00</CreDtTm>
<Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>
<Ntry><Amt Ccy="CHF">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-02</Dt></BookgDt><ValDt><DtTm>2026-11-02T09:00:00</DtTm></ValDt></Ntry>
</Stmt></BkToCstmrStmt></Document>
"""
STMT = r"element BkToCstmrStmt/Stmt\[1\]"


def _import(tmp_path: Path, text: str) -> object:
    path = tmp_path / "c.xml"
    path.write_text(text, encoding="utf-8")
    return parse_bank(path)


# A date the pattern takes but the calendar does not raised ValueError out of `o2c import`.
@pytest.mark.parametrize(
    ("written", "edited", "where"),
    [
        ("<Dt>2026-11-02</Dt>", "<Dt>2023-02-30</Dt>", f"{STMT}/Ntry\\[1\\]/BookgDt/Dt"),
        ("<DtTm>2026-11-02T", "<DtTm>2026-13-02T", f"{STMT}/Ntry\\[1\\]/ValDt/DtTm"),
        ("<CreDtTm>2026-11-02T", "<CreDtTm>0000-11-02T", f"{STMT}/CreDtTm"),
    ],
)
def test_date_that_is_not_on_the_calendar_is_refused_naming_its_element(
    tmp_path: Path, written: str, edited: str, where: str
) -> None:
    with pytest.raises(ImportFailed, match=rf"c\.xml: {where}: '.*' is not a date"):
        _import(tmp_path, MESSAGE.replace(written, edited))


def test_xml_declaration_with_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    # LookupError escaped from the XML parser.
    with pytest.raises(ImportFailed, match=r"c\.xml: line 1: the XML declaration names an unk"):
        _import(tmp_path, MESSAGE.replace('encoding="UTF-8"', 'encoding="UTF-000"'))
