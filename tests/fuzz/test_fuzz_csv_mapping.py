"""Mapped CSV statements through `o2c import bank --mapping`: the CSV and the mapping edited."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import targets
from tests.fuzz.budget import FUZZ, run
from tests.fuzz.mutations import apply, mutations

GERMAN = (
    b"Buchungstag;Valuta;Auftraggeber;Verwendungszweck;Zusatz;Betrag\n"
    b"01.11.2026;01.11.2026;Ann GmbH;INV-7;ORD-1001;1.250,00\n"
    b"02.11.2026;02.11.2026;Bo Ltd;Fees;;-3,50\n"
    b"30.02.2026;01.03.2026;Cy AG;ORD-1002;;12,00\n"
)
GERMAN_MAPPING = b"""
[csv]
delimiter = ";"
date_format = "%d.%m.%Y"
decimal_separator = ","
thousands_separator = "."
[account]
id = "DE89370400440532013000"
currency = "EUR"
[columns]
booking_date = "Buchungstag"
value_date = "Valuta"
amount = "Betrag"
counterparty_name = "Auftraggeber"
remittance_info = ["Verwendungszweck", "Zusatz"]
"""

CHINESE = "日期,收入,支出,摘要\n2026-11-01,100.00,,ORD-1\n2026-11-01,,8.80,手续费\n".encode("gbk")
CHINESE_MAPPING = """
[csv]
encoding = "gbk"
[account]
id = "ACC-1"
currency = "CNY"
[columns]
booking_date = "日期"
credit = "收入"
debit = "支出"
remittance_info = "摘要"
""".encode()

DIRECTED = (
    b"\xef\xbb\xbfExported by the bank\r\n"
    b"Date,Account,Ccy,S/H,Amount,Name,IBAN,Text,EREF,Ref\r\n"
    b'2026-11-01,ACC-9,JPY,H,"1,000",Ann,DE89370400440532013000,"ORD-1, thanks",E1,R1\r\n'
    b"2026-11-02,ACC-9,JPY,S,250,Bo,,fees,,R2\r\n"
)
DIRECTED_MAPPING = b"""
[csv]
skip_lines = 1
thousands_separator = ","
[columns]
booking_date = "Date"
account_id = "Account"
currency = "Ccy"
direction = "S/H"
amount = "Amount"
counterparty_name = "Name"
counterparty_account = "IBAN"
remittance_info = "Text"
end_to_end_id = "EREF"
bank_reference = "Ref"
credit_marks = ["H"]
"""

SEEDS = ((GERMAN, GERMAN_MAPPING), (CHINESE, CHINESE_MAPPING), (DIRECTED, DIRECTED_MAPPING))


def test_mapped_csv_statements_parse_or_are_refused_with_a_reason() -> None:
    @FUZZ
    @given(
        st.sampled_from(SEEDS),
        mutations(),
        # The mapping is edited less often: most inputs should get past it into the rows.
        st.one_of(st.just([]), st.just([]), mutations()),
        st.sampled_from([None, "ACC-OVERRIDE"]),
    )
    def check(
        seed: tuple[bytes, bytes],
        csv_edits: list[tuple[str, int, int]],
        mapping_edits: list[tuple[str, int, int]],
        account: str | None,
    ) -> None:
        csv, mapping = seed
        targets.csv_statement(apply(csv, csv_edits), apply(mapping, mapping_edits), account=account)

    run(check)
