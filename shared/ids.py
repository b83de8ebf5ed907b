"""Deterministic ids for derived events (contract §1): a replay produces the same ids."""
from __future__ import annotations


def derived_id(kind: str, *parts: object) -> str:
    """e.g. derived_id("triage", case_no, policy_version) -> "triage:<case_no>:<policy_version>"."""
    if not kind or any(p is None or str(p) == "" for p in parts):
        raise ValueError(f"derived id {kind!r} needs every part, got {parts!r}")
    return ":".join([kind, *(str(p) for p in parts)])
