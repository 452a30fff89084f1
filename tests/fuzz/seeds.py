"""The real files each fuzzer starts from: the repository's test data, and the shared public
statements beside the repository when they are there (../shared/data, as in CI), plus a
small inline seed per format so a target never runs on random bytes alone."""

from __future__ import annotations

from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SHARED = REPO.parent / "shared" / "data" / "bank-statements"

MT940 = b""":20:STMT-1
:25:NL91ABNA0417164300
:28C:7/1
:60F:C261101EUR1000,00
:61:2611011101C250,00NTRFORD-1001//B1
:86:Payment ORD-1001 Ann
:61:2611021102D40,50NTRFNONREF
:86:Card fees
:90D:1EUR40,50
:90C:1EUR250,00
:62F:C261102EUR1209,50
-
"""

MT942 = b""":20:INTERIM-1
:25:NL91ABNA0417164300
:28C:7/2
:34F:EUR0,00
:13D:2611021200+0100
:61:2611021102C12,00NTRFORD-1002
:86:Payment ORD-1002
:90C:1EUR12,00
-
"""

CAMT053 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-02T10:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>CH9300762011623852957</IBAN></Id></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">100.00</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-01</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CHF">105.00</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-02</Dt></Dt></Bal>
<Ntry><Amt Ccy="CHF">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2026-11-02</Dt></BookgDt><ValDt><Dt>2026-11-02</Dt></ValDt>
<NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId></Refs>
<RltdPties><Dbtr><Nm>Ann GmbH</Nm></Dbtr><DbtrAcct><Id><IBAN>DE89370400440532013000</IBAN>
</Id></DbtrAcct></RltdPties><RmtInf><Ustrd>ORD-1001</Ustrd></RmtInf></TxDtls></NtryDtls>
</Ntry></Stmt></BkToCstmrStmt></Document>
"""

BAI2 = b"""01,BANKID,CUSTID,261102,0800,1,80,1,2/
02,CUSTID,BANKID,1,261101,,USD,2/
03,123456789,USD,010,100000,,,015,125000,,/
16,175,25000,,B1,ORD-1001,Payment ORD-1001/
49,250000,3/
98,250000,1,5/
99,250000,1,7/
"""


def _read(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in sorted(paths) if p.is_file()]


def _glob(root: Path, *patterns: str) -> list[Path]:
    return [p for pattern in patterns for p in root.glob(pattern)] if root.is_dir() else []


@cache
def mt940() -> tuple[bytes, ...]:
    files = _glob(DATA / "bank" / "mt940", "*.sta") + [
        p for p in _glob(SHARED / "mt940", "**/*.sta", "**/*.txt") if "942" not in p.name
    ]
    return (MT940, *_read(files))


@cache
def mt942() -> tuple[bytes, ...]:
    return (MT942, *_read(_glob(SHARED / "mt940", "**/*942*.sta")))


@cache
def camt() -> tuple[bytes, ...]:
    return (CAMT053, *_read(_glob(SHARED / "camt", "*.xml")))


@cache
def bai2() -> tuple[bytes, ...]:
    return (
        BAI2,
        *_read(_glob(DATA / "bank" / "bai2", "*.bai2") + _glob(SHARED / "bai2", "**/*.txt")),
    )


@cache
def psp(provider: str) -> tuple[bytes, ...]:
    prefix = {"wechat_pay": "wechat"}.get(provider, provider)
    own = _glob(DATA / "psp", f"{prefix}*") + _glob(DATA / "psp" / "other_reports", f"{prefix}*")
    # Other providers' reports, handed to the wrong reader: refused, naming the right one.
    others = [p for p in _glob(DATA / "psp", "**/*") if p not in own]
    # Its own reports thrice over, so most inputs get deep into its reader.
    return tuple(_read(own) * 3 + _read(others))
