"""Reading the expected parses that ship beside the shared test statements.

The MT940 `.yml` files are PyYAML dumps of `mt-940` objects (python/object tags). They are
read here with a SafeLoader that turns those tags into plain dicts, Decimals and dates, so
no code named in a data file is ever imported or run.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
STATEMENTS = SHARED_DATA / "bank-statements"


class _ExpectationLoader(yaml.SafeLoader):
    pass


def _object(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.MappingNode)
    state: dict[Any, Any] = {}
    yield state
    state.update(loader.construct_mapping(node, deep=True))


def _apply(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    args = loader.construct_sequence(node, deep=True) if isinstance(node, yaml.SequenceNode) else []
    if suffix == "decimal.Decimal":
        return Decimal(args[0])
    if suffix == "mt940.models.Date":
        # datetime.date pickles as 4 bytes: year (2, big-endian), month, day.
        raw = args[0]
        return date(raw[0] * 256 + raw[1], raw[2], raw[3])
    return None  # compiled regexes, timedeltas: not part of what is compared


def _name(_loader: yaml.SafeLoader, _suffix: str, _node: yaml.Node) -> None:
    return None


_ExpectationLoader.add_multi_constructor("tag:yaml.org,2002:python/object:", _object)
_ExpectationLoader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", _apply)
_ExpectationLoader.add_multi_constructor("tag:yaml.org,2002:python/name:", _name)


def load_mt940_expectation(path: Path) -> dict[str, Any]:
    """{'data': statement data, 'transactions': [transaction data, …]}."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_ExpectationLoader)
    return {
        "data": loaded.get("data") or {},
        "transactions": [t["data"] for t in loaded.get("transactions") or []],
    }
