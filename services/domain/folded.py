"""The type of a state `folding.apply_once` folds, for the type checker only.

Apart from folding.py because mypyc, which compiles folding.py, refuses a class defined
inside `if TYPE_CHECKING:`; this module is not compiled, so it may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    class Folded(DataclassInstance, Protocol):
        """A frozen dataclass state that remembers the events it has recorded."""

        @property
        def applied_event_ids(self) -> frozenset[str]: ...

else:
    Folded = object

__all__ = ["Folded"]
