"""Errors that name what is wrong in a document: the field path, then the message."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class DocumentError(ValueError):
    """A document (or the configuration it needs) is refused; ``field`` names what."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def field_path(loc: Sequence[int | str], prefix: str = "", root: str = "(root)") -> str:
    """``metadata.lines.2.amount`` from pydantic's location tuple, under ``prefix``."""
    where = ".".join(str(p) for p in loc) or root
    return f"{prefix}.{where}" if prefix else where


def field_errors(exc: ValidationError, prefix: str = "", root: str = "(root)"
                 ) -> list[tuple[str, str]]:
    """Every error of ``exc`` as (field path, message), in pydantic's order."""
    return [(field_path(err["loc"], prefix, root),
             str(err["msg"]).removeprefix("Value error, ")) for err in exc.errors()]


def first_error(exc: ValidationError, prefix: str = "", root: str = "(root)"
                ) -> tuple[str, str]:
    """The first error of ``exc`` as (field path, message)."""
    return field_errors(exc, prefix, root)[0]
