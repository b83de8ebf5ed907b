"""Shared by every service's rules-file loader (policy.py): reading the YAML and readable messages
for a bad rules file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


def read_rules_yaml(path: Path | str, error: type[Exception]) -> Any:
    """The parsed YAML document of a rules file; `error` (the loader's own error type) naming the
    file when it cannot be read or is not YAML, so the service refuses to start with that line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else exc.strerror or str(exc)
        raise error(f"{path}: cannot read the rules file ({reason}); "
                    "no service starts on a rules file that cannot be read") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc


def describe_validation(exc: ValidationError, whole: str | None = "(rule)", strip_value_error: bool = True) -> str:
    """"field due: ...; field name_zh: ..." naming each field; `whole` stands for the entry itself
    (a check across fields); None writes such a message as "field <message>"."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or whole
        message = err["msg"].removeprefix("Value error, ") if strip_value_error else err["msg"]
        parts.append(f"field {loc}: {message}" if loc else f"field {message}")
    return "; ".join(parts)
