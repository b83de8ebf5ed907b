"""Masking of personal numbers in log lines (日志脱敏).

What is masked, anywhere in a text:
- a valid 18-character resident ID (公民身份号码; check digit and birth date
  verified, `is_valid_resident_id`): first 3 and last 4 characters kept,
  `110***********002X`;
- a mainland mobile number (手机号) `1[3-9]` + 9 digits, also written
  `138 1234 5678` / `138-1234-5678` or after `+86`/`86`: first 3 and last 4
  digits kept, `138****5678` (the prefix is kept as written).

What is left alone: a number that is part of a longer digit run (an account
number, a serial), or the integer part of an amount with decimals, so case
numbers (案号) and amounts ("13812345678.00") stay readable. An 18-digit run
with a wrong check digit is not an ID and stays too.

This runs on every log line: one precompiled pattern scans the text once and
only its candidates are checked for a valid ID.
"""
from __future__ import annotations

import re
from typing import Any

from shared.contract.identity import is_valid_resident_id

_CANDIDATE = re.compile(
    r"(?<![0-9.])"  # not inside a digit run, nor the decimals of an amount
    r"(?:"
    r"(?P<rid>[0-9]{17}[0-9Xx])"
    r"|(?P<cc>\+?86[- ]?)?(?P<mobile>1[3-9][0-9](?P<sep>[- ]?)[0-9]{4}(?P=sep)[0-9]{4})"
    r")"
    r"(?![0-9])(?!\.[0-9])"  # not followed by more digits or by decimals
)
_SHORTEST_CANDIDATE = 11


def _mask(match: re.Match[str]) -> str:
    resident_id = match.group("rid")
    if resident_id is not None:
        if not is_valid_resident_id(resident_id):
            return resident_id
        return resident_id[:3] + "*" * 11 + resident_id[-4:]
    digits = match.group("mobile").replace("-", "").replace(" ", "")
    return (match.group("cc") or "") + digits[:3] + "****" + digits[-4:]


def mask_text(text: str) -> str:
    """`text` with resident IDs and mobile numbers masked; everything else unchanged."""
    if len(text) < _SHORTEST_CANDIDATE:
        return text
    return _CANDIDATE.sub(_mask, text)


def mask_value(value: Any) -> Any:
    """Mask every string inside dicts, lists and tuples (keys stay as they are)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(mask_value(item) for item in value)
    return value
