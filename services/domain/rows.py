"""Flat dataclasses as JSON rows: the values of their fields, in order, without names.

The compact stored formats (ledger/4 and on) write each fact as a row, which orjson writes
and reads in one call; names would be most of the bytes. A field's type hint says how its
JSON value is read back (by pydantic, see `row_type`): Decimal from its exact string
("10.50" stays 10.50), datetime and date from ISO 8601 (the offset is kept: the date of
00:30+01:00 is not that of 23:30Z), a StrEnum from its value.
"""

from __future__ import annotations

import ast
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import fields
from decimal import Decimal
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

_GETTERS: dict[type[Any], Callable[[Any], tuple[Any, ...]]] = {}


def row(fact: Any) -> tuple[Any, ...]:
    """The fact's field values in order (written by `dumps`)."""
    getter = _GETTERS.get(type(fact))
    if getter is None:
        names = [f.name for f in fields(fact)]
        assert len(names) > 1, "attrgetter of one name returns a value, not a tuple"
        getter = _GETTERS[type(fact)] = attrgetter(*names)
    return getter(fact)


def rows(facts: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [row(f) for f in facts]


def row_type(cls: type[Any]) -> Any:
    """The type of `cls`'s rows for a pydantic TypeAdapter, which reads a whole document of
    rows in one call (its values by their hints, in Rust) and makes each row a `cls`."""
    hints = field_types(cls)
    values = tuple_of(*(hints[f.name] for f in fields(cls)))
    return Annotated[values, AfterValidator(lambda v: cls(*v))]


def field_types(cls: type[Any]) -> dict[str, Any]:
    """The type of each of the dataclass `cls`'s fields, as its source writes it.

    Not `typing.get_type_hints(cls)` alone: a class compiled by mypyc keeps only the simple
    annotations (`str | None` becomes `type`), so a compiled class's annotations are read
    from its .py source and evaluated in its module, as get_type_hints would do."""
    module = sys.modules[cls.__module__]
    if (getattr(module, "__file__", None) or "").endswith(".py"):
        return typing.get_type_hints(cls)
    namespace = vars(module)
    written = _annotations_in_source(cls.__module__, cls.__qualname__)
    return {name: eval(text, namespace) for name, text in written.items()}


@cache
def _annotations_in_source(module_name: str, class_name: str) -> dict[str, str]:
    # Next to the extension, in its package (a compiled module's __file__ is not reliable).
    package, _, short_name = module_name.rpartition(".")
    source = Path(sys.modules[package].__path__[0]) / f"{short_name}.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                statement.target.id: ast.unparse(statement.annotation)
                for statement in node.body
                if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
            }
    raise LookupError(f"class {class_name} not found in {source}")


def tuple_of(*types_: Any) -> Any:
    """`tuple[a, b, …]` of types known only at run time."""
    return tuple.__class_getitem__(types_)


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exact: Decimal(str(d)) has d's digits and exponent
    raise TypeError(f"{type(value).__name__} is not stored in a row")


def dumps(document: Any) -> bytes:
    """orjson, with Decimals as exact strings; datetimes and dates in ISO 8601."""
    return orjson.dumps(document, default=_default)
