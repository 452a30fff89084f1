"""ISO 20022 camt.052 / camt.053 / camt.054 (versions 1-8) with defusedxml.

No maintained Python parser covers all three messages across versions, so this reads the
few elements an entry needs, ignoring namespaces (they differ per version only):
Ntry/Amt, CdtDbtInd, Sts, BookgDt, ValDt, AcctSvcrRef and, from NtryDtls/TxDtls, EndToEndId,
the counterparty, Ustrd and Strd/CdtrRefInf/Ref. One entry is one bank line: an entry with
several TxDtls (a batch booking) keeps the entry's amount and joins their remittance texts.
Entries that are not booked (Sts PDNG or INFO) are skipped and reported.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from services.importers.batch import Skipped
from services.importers.errors import ImportFailed
from services.importers.events import BankEntry
from services.importers.money import fit_currency, parse_decimal
from services.importers.statement_check import Balance, DeclaredStatement, ParsedStatement

_MESSAGES = {
    "BkToCstmrStmt": "Stmt",  # camt.053
    "BkToCstmrAcctRpt": "Rpt",  # camt.052
    "BkToCstmrDbtCdtNtfctn": "Ntfctn",  # camt.054
}
_NOT_PROVIDED = {"NOTPROVIDED", "NONREF", ""}


def _local(tag: str) -> str:
    # Version 1 suffixes the message element with its version (BkToCstmrAcctRptV01).
    return re.sub(r"V0\d$", "", tag.rsplit("}", 1)[-1])


def _child(node: Element | None, *path: str) -> Element | None:
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _children(node: Element | None, name: str) -> list[Element]:
    return [] if node is None else [c for c in node if _local(c.tag) == name]


def _text(node: Element | None, *path: str) -> str | None:
    found = _child(node, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _document(path: str, raw: bytes) -> Element:
    try:
        root = fromstring(raw)
    except ParseError as exc:
        line, _col = exc.position
        raise ImportFailed(path, f"line {line}", f"not well-formed XML: {exc}") from None
    except DefusedXmlException as exc:
        raise ImportFailed(path, "", f"refused XML construct: {exc}") from None
    except LookupError as exc:  # the XML declaration names an encoding Python does not know
        raise ImportFailed(
            path, "line 1", f"the XML declaration names an unknown encoding ({exc})"
        ) from None
    return root


def _records(path: str, root: Element) -> tuple[str, str, list[Element]]:
    if _local(root.tag) != "Document":
        raise ImportFailed(path, f"element {_local(root.tag)}", "root element is not Document")
    message = next((c for c in root if _local(c.tag) in _MESSAGES), None)
    if message is None:
        found = ", ".join(_local(c.tag) for c in root) or "nothing"
        raise ImportFailed(
            path, "element Document", f"no camt.052/053/054 message inside (found {found})"
        )
    name = _local(message.tag)
    record_name = _MESSAGES[name]
    records = _children(message, record_name)
    if not records:
        raise ImportFailed(
            path, f"element {name}", f"no {record_name}: the message must hold at least one"
        )
    return name, record_name, records


def parse_camt(
    path: str, raw: bytes, account: str | None = None
) -> tuple[list[BankEntry], list[Skipped]]:
    return _parse(path, _document(path, raw), account)


def import_camt(
    path: str, raw: bytes, account: str | None = None
) -> tuple[list[BankEntry], list[Skipped], list[ParsedStatement]]:
    """The entries, the entries left out, and each record as a statement for the balance
    check, from one parse of the file."""
    root = _document(path, raw)
    entries, skipped = _parse(path, root, account)
    return entries, skipped, parsed_statements(path, root, entries, skipped)


def _parse(path: str, root: Element, account: str | None) -> tuple[list[BankEntry], list[Skipped]]:
    name, record_name, records = _records(path, root)
    entries: list[BankEntry] = []
    skipped: list[Skipped] = []
    for r, record in enumerate(records, 1):
        record_where = f"{name}/{record_name}[{r}]"
        account_id = account or _account_id(record)
        if not account_id:
            raise ImportFailed(
                path, f"element {record_where}/Acct", "no account Id; pass --account"
            )
        created = _date(path, f"element {record_where}/CreDtTm", _text(record, "CreDtTm"))
        for n, ntry in enumerate(_children(record, "Ntry"), 1):
            where = f"element {record_where}/Ntry[{n}]"
            status = _text(ntry, "Sts", "Cd") or _text(ntry, "Sts") or "BOOK"
            if status != "BOOK":
                skipped.append(Skipped(where, f"status {status}: not booked"))
                continue
            entries.append(_entry(path, where, ntry, account_id, created))
    return entries, skipped


def _account_id(record: Element) -> str | None:
    ident = _child(record, "Acct", "Id")
    # Version 1 names a non-IBAN account PrtryAcct; later versions Othr.
    return _text(ident, "IBAN") or _text(ident, "Othr", "Id") or _text(ident, "PrtryAcct", "Id")


_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _date(path: str, where: str, text: str | None) -> date | None:
    # DtTm is the bank's local time as written; its calendar day is the booking day.
    if not text:
        return None
    found = _DATE.match(text)
    if not found:
        return None
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError as exc:  # 2023-02-30, month 13, year 0
        raise ImportFailed(
            path, where, f"{text!r} is not a date ({exc}); ask the bank for a corrected file"
        ) from None


def _date_of(path: str, where: str, node: Element | None) -> date | None:
    return _date(path, f"{where}/Dt", _text(node, "Dt")) or _date(
        path, f"{where}/DtTm", _text(node, "DtTm")
    )


def _entry(
    path: str, where: str, ntry: Element, account_id: str, created: date | None
) -> BankEntry:
    amt = _child(ntry, "Amt")
    if amt is None or not (amt.text or "").strip():
        raise ImportFailed(path, f"{where}/Amt", "entry without amount")
    currency = amt.get("Ccy")
    if not currency:
        raise ImportFailed(path, f"{where}/Amt", "amount without Ccy attribute")
    indicator = _text(ntry, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise ImportFailed(path, f"{where}/CdtDbtInd", f"must be CRDT or DBIT, got {indicator!r}")
    try:
        amount = fit_currency(parse_decimal(amt.text or ""), currency)
    except ValueError as exc:
        raise ImportFailed(path, f"{where}/Amt", str(exc)) from None
    if amount < 0:
        raise ImportFailed(path, f"{where}/Amt", "negative amount; the sign is in CdtDbtInd")
    signed = amount if indicator == "CRDT" else -amount
    value_date = _date_of(path, f"{where}/ValDt", _child(ntry, "ValDt"))
    booking_date = (
        _date_of(path, f"{where}/BookgDt", _child(ntry, "BookgDt")) or value_date or created
    )
    if booking_date is None:
        raise ImportFailed(path, f"{where}/BookgDt", "entry without booking or value date")
    details = [tx for d in _children(ntry, "NtryDtls") for tx in _children(d, "TxDtls")]
    texts = [t for tx in details for t in remittance_texts(tx)]
    additional = _text(ntry, "AddtlNtryInf")
    ends = [e for tx in details if (e := _text(tx, "Refs", "EndToEndId")) not in _NOT_PROVIDED]
    name, counter_account = _counterparty(details, credit=indicator == "CRDT")
    return BankEntry(
        account_id=account_id,
        booking_date=booking_date,
        value_date=value_date,
        amount=Decimal(signed),
        currency=currency,
        counterparty_name=name,
        counterparty_account=counter_account,
        remittance_info=" | ".join(dict.fromkeys(texts)) or additional,
        end_to_end_id=ends[0] if len(ends) == 1 else None,
        bank_reference=_text(ntry, "AcctSvcrRef") or _text(ntry, "NtryRef"),
        where=where,
    )


def remittance_texts(tx: Element) -> list[str]:
    """Unstructured lines, then structured creditor references, of one TxDtls."""
    rmt = _child(tx, "RmtInf")
    texts = [t.text.strip() for t in _children(rmt, "Ustrd") if t.text and t.text.strip()]
    for strd in _children(rmt, "Strd"):
        ref = _text(strd, "CdtrRefInf", "Ref")
        if ref:
            texts.append(ref)
        texts.extend(
            t.text.strip() for t in _children(strd, "AddtlRmtInf") if t.text and t.text.strip()
        )
    return texts


def _counterparty(details: list[Element], credit: bool) -> tuple[str | None, str | None]:
    # On a credit the counterparty paid us (debtor); on a debit we paid them (creditor).
    role = "Dbtr" if credit else "Cdtr"
    for tx in details:
        parties = _child(tx, "RltdPties")
        if parties is None:
            continue
        party = _child(parties, role)
        name = _text(party, "Nm") or _text(party, "Pty", "Nm")
        acct = _child(parties, f"{role}Acct", "Id")
        number = _text(acct, "IBAN") or _text(acct, "Othr", "Id")
        if name or number:
            return name, number
    return None, None


# Opening: OPBD, else the previous statement's closing (PRCD), which is the same figure.
_OPENING = ("OPBD", "PRCD")
_CLOSING = ("CLBD",)


def _balances(record: Element) -> dict[str, Balance]:
    found: dict[str, Balance] = {}
    for bal in _children(record, "Bal"):
        code = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "Cd")
        amt = _child(bal, "Amt")
        if code is None or amt is None or (code in found and code not in _CLOSING):
            continue
        try:
            value = parse_decimal(amt.text or "")
        except ValueError:
            continue  # not a figure the check can use: the statement counts as without it
        if _text(bal, "CdtDbtInd") == "DBIT":
            value = -value
        found[code] = Balance(value, amt.get("Ccy") or "")
    return found


def declared_statements(path: str, root: Element) -> list[DeclaredStatement]:
    """Each Stmt/Rpt/Ntfctn as the file declares it: its <Ntry> elements counted anywhere
    beneath it and its booked balances (camt.052/054 usually carry none)."""
    name, record_name, records = _records(path, root)
    out = []
    for r, record in enumerate(records, 1):
        balances = _balances(record)
        opening_code = next((c for c in _OPENING if c in balances), None)
        ident = _text(record, "Id")
        acct = _account_id(record)
        label = f"{record_name} {ident or r}" + (f" (account {acct})" if acct else "")
        out.append(
            DeclaredStatement(
                where=f"element {name}/{record_name}[{r}]",
                name=label,
                records=sum(1 for n in record.iter() if _local(n.tag) == "Ntry"),
                opening=balances.get(opening_code) if opening_code else None,
                closing=balances.get("CLBD"),
                opening_tag=f"opening balance ({opening_code or 'OPBD'})",
                closing_tag="closing balance (CLBD)",
            )
        )
    return out


def parsed_statements(
    path: str, root: Element, entries: list[BankEntry], skipped: list[Skipped]
) -> list[ParsedStatement]:
    out = []
    for d in declared_statements(path, root):
        prefix = f"{d.where}/"
        mine = [e for e in entries if e.where.startswith(prefix)]
        left_out = [s for s in skipped if s.where.startswith(prefix)]
        total = sum((e.amount for e in mine), Decimal(0))
        currencies = frozenset(e.currency for e in mine)
        out.append(ParsedStatement(d, len(mine) + len(left_out), total, currencies))
    return out
