"""The explicit "erased" marker that reading a crypto-shredded owner's personal data yields.

`ERASED` stands in for the whole personal part of an event and for any field of it:
`event.personal.email` is `ERASED` when the owner was shredded, so folding code reads the
same attribute either way and checks `is_erased(value)` where it matters. It is falsy, equal
only to itself, and exports as `{"erased": true}`.
"""

from __future__ import annotations

from typing import Any, TypeGuard, final


@final
class Erased:
    """Personal data that no longer exists (its data key was deleted)."""

    __slots__ = ("owner",)

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner

    def __getattr__(self, name: str) -> Erased:
        # Any personal field of an erased part is itself erased; dunders stay real lookups.
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __bool__(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Erased)

    def __hash__(self) -> int:
        return hash(Erased)

    def __repr__(self) -> str:
        return "<erased>"

    def to_json(self) -> dict[str, Any]:
        """What an export shows in place of the value."""
        return {"erased": True}


ERASED = Erased()


def is_erased(value: object) -> TypeGuard[Erased]:
    """True for the erased marker (of a whole personal part or of one field)."""
    return isinstance(value, Erased)
