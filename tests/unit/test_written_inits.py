"""The dataclasses whose `__init__` is written out (services/domain/native.py, "__init__")
build what the generated one would: every field, by position or by name, and the
dataclass's defaults for those left out."""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import sys
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from services.domain import (
    assessment,
    candidates,
    conditions,
    credit,
    folding,
    keyed,
    ledger,
    matching,
    outputs,
    rows,
    suspense,
)

MODULES: tuple[ModuleType, ...] = (
    assessment,
    candidates,
    conditions,
    credit,
    folding,
    keyed,
    ledger,
    matching,
    outputs,
    suspense,
)


def _written_out() -> list[type[Any]]:
    return [
        cls
        for module in MODULES
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and cls.__module__ == module.__name__
        and dataclasses.is_dataclass(cls)
        and not cls.__dataclass_params__.init  # type: ignore[attr-defined]
    ]


WRITTEN_OUT = _written_out()


def test_the_classes_built_on_every_event_have_their_init_written_out() -> None:
    names = {cls.__name__ for cls in WRITTEN_OUT}
    assert {
        "Ledger", "Assessment", "Money", "OrderFacts", "Capture", "Condition",
        "CreditState", "Suspense", "OpenItem",
    } <= names  # fmt: skip


def _value(hint: Any, name: str, i: int) -> Any:
    """A value of type `hint` for the field `name` (the compiled classes check types),
    different from any default."""
    if isinstance(hint, types.UnionType):
        return _value(next(a for a in hint.__args__ if a is not type(None)), name, i)
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return _value(hint.__origin__, name, i)
    if origin is typing.Literal:
        return typing.get_args(hint)[i % len(typing.get_args(hint))]
    if origin is tuple:
        return (f"{name}-{i}",)
    if origin is keyed.Keyed:
        return keyed.Keyed([(f"{name}-{i}", f"{name}-{i}")])
    if origin is frozenset or hint is frozenset:
        return frozenset({f"{name}-{i}"})
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return list(hint)[i % len(hint)]
    if hint is bool:
        return True
    if hint is str:
        return f"{name}-{i}"
    if hint is int:
        return i + 1
    if hint is Decimal:
        return Decimal(i + 1)
    if hint is datetime:
        return datetime(2026, 11, 2, 9, i, tzinfo=UTC)
    if hint is date:
        return date(2026, 11, 1 + i)
    if dataclasses.is_dataclass(hint):
        return _instance(typing.cast(type[Any], hint))
    raise AssertionError(f"no test value for {name}: {hint}")


def _values(cls: type[Any]) -> list[Any]:
    hints = rows.field_types(cls)
    return [_value(hints[f.name], f.name, i) for i, f in enumerate(dataclasses.fields(cls))]


def _instance(cls: type[Any]) -> Any:
    return cls(*_values(cls))


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_a_written_out_init_sets_every_field_by_position_and_by_name(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    values = _values(cls)
    by_position = cls(*values)
    by_name = cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    for built in (by_position, by_name):
        assert all(getattr(built, f.name) is v for f, v in zip(fields, values, strict=True))
    assert by_position == by_name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(by_position, fields[0].name, None)


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_a_written_out_init_gives_the_dataclass_defaults_to_the_fields_left_out(
    cls: type[Any],
) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING]
    values = _values(cls)
    built = cls(*values[: len(required)])
    for f in fields[len(required) :]:
        made = f.default_factory
        assert getattr(built, f.name) == (f.default if made is dataclasses.MISSING else made())
    with pytest.raises(TypeError):
        cls(*values, values[0])


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_a_written_out_init_takes_the_fields_in_order_with_their_defaults_as_written(
    cls: type[Any],
) -> None:
    source = Path(inspect.getfile(sys.modules["services.domain"])).with_name(
        f"{cls.__module__.rpartition('.')[2]}.py"
    )
    (node,) = [
        n
        for n in ast.walk(ast.parse(source.read_text()))
        if isinstance(n, ast.ClassDef) and n.name == cls.__name__
    ]
    fields = [s for s in node.body if isinstance(s, ast.AnnAssign)]
    (init,) = [s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
    parameters = init.args.args[1:]
    assert [ast.unparse(p) for p in parameters] == [
        f"{ast.unparse(f.target)}: {ast.unparse(f.annotation)}" for f in fields
    ]
    defaults = [None] * (len(parameters) - len(init.args.defaults)) + init.args.defaults

    # A field(default_factory=…) has a default of the same value (checked above).
    def written(default: ast.expr | None, field: ast.AnnAssign) -> str | None:
        if default is None:
            return None
        made = field.value is not None and ast.unparse(field.value).startswith("field(")
        return "made by its factory" if made else ast.unparse(default)

    assert [written(d, f) for d, f in zip(defaults, fields, strict=True)] == [
        written(f.value, f) for f in fields
    ]
