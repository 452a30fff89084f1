"""`o2c import` through the real broker: a file's facts are published once, however often
it is imported, and they land on the partitions the importer reads back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schemas.topics import BANK_LINES, SETTLEMENTS
from services.importers import parse_bank, parse_psp
from services.importers.publishing import ids_on_topic
from tests.conftest import Services, service_env
from tests.factories import unique

pytestmark = pytest.mark.integration

O2C = str(Path(sys.executable).with_name("o2c"))
PSP = Path(__file__).resolve().parents[1] / "data" / "psp"

STATEMENT = """:20:STMT-1
:25:{account}
:28C:7/1
:60F:C261101EUR1000,00
:61:2611011101C250,00NTRFORD-1001//B1
:86:Payment ORD-1001 Ann
:61:2611021102D40,50NTRFNONREF
:86:Card fees
{extra}:62F:C261102EUR{closing}
-
"""


def o2c(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [O2C, *args], capture_output=True, text=True, env=service_env(services), timeout=180
    )


def test_importing_a_statement_again_publishes_only_what_is_new(
    services: Services, tmp_path: Path
) -> None:
    account = unique("NL00TEST")
    first = tmp_path / "monday.sta"
    first.write_text(STATEMENT.format(account=account, extra="", closing="1209,50"))
    later = tmp_path / "tuesday.sta"
    later.write_text(
        STATEMENT.format(
            account=account, extra=":61:2611031103C99,00NTRFINV-7\n:86:INV-7\n", closing="1308,50"
        )
    )

    runs = [o2c(services, "import", "bank", str(f)) for f in (first, first, later)]

    assert [r.returncode for r in runs] == [0, 0, 0], [r.stderr for r in runs]
    assert [r.stdout.splitlines()[-1] for r in runs] == [
        "2 new, 0 already imported",
        "0 new, 2 already imported",
        "1 new, 2 already imported",
    ]
    # On the partition of the account, where the next import looks for them.
    expected = {e.id for e in parse_bank(later).events}
    assert expected <= ids_on_topic(services.kafka_bootstrap, BANK_LINES, [account])


def test_importing_a_psp_report_twice_publishes_its_payouts_once(
    services: Services, tmp_path: Path
) -> None:
    suffix = unique("x")
    report = tmp_path / "stripe.csv"
    report.write_text(
        (PSP / "stripe_payout_reconciliation_itemized.csv")
        .read_text()
        .replace("Payout01", f"Payout01{suffix}")
        .replace("Payout02", f"Payout02{suffix}")
    )

    runs = [o2c(services, "import", "psp", str(report), "--provider", "stripe") for _ in "ab"]

    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert [r.stdout.splitlines()[-1] for r in runs] == [
        "2 new, 0 already imported",
        "0 new, 2 already imported",
    ]
    payouts = parse_psp(report, "stripe").events
    keys = [e.partition_key() or "" for e in payouts]
    assert {e.id for e in payouts} <= ids_on_topic(services.kafka_bootstrap, SETTLEMENTS, keys)


def test_invalid_file_publishes_nothing_and_names_the_line(
    services: Services, tmp_path: Path
) -> None:
    account = unique("NL00BAD")
    bad = tmp_path / "bad.sta"
    bad.write_text(
        STATEMENT.format(account=account, extra=":61:2611031103C9,999NTRFX\n", closing="1219,50")
    )

    run = o2c(services, "import", "bank", str(bad))

    assert run.returncode == 2
    assert f"{bad}: line 9:" in run.stderr
    assert "nothing" not in run.stdout
    good = tmp_path / "good.sta"
    good.write_text(STATEMENT.format(account=account, extra="", closing="1209,50"))
    valid_lines = {e.id for e in parse_bank(good).events}
    assert not valid_lines & ids_on_topic(services.kafka_bootstrap, BANK_LINES, [account])
