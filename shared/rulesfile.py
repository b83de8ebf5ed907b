"""Shared by every service's rules-file loader (policy.py): readable messages for a bad rules file."""
from __future__ import annotations

from pydantic import ValidationError


def describe_validation(exc: ValidationError, whole: str | None = "(rule)", strip_value_error: bool = True) -> str:
    """"field due: ...; field name_zh: ..." naming each field; `whole` stands for the entry itself
    (a check across fields); None writes such a message as "field <message>"."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or whole
        message = err["msg"].removeprefix("Value error, ") if strip_value_error else err["msg"]
        parts.append(f"field {loc}: {message}" if loc else f"field {message}")
    return "; ".join(parts)
