"""JWT verification and minting with pyjwt.

Only the configured algorithm is accepted (never "none", never HS256 when
RS256 is configured: that is the classic key-confusion attack). exp, sub and
aud are required; iss when configured. Failures carry a fixed reason code, so
nothing from the token itself reaches a log line.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from shared.security.roles import Role
from shared.security.settings import SecuritySettings

DEFAULT_TTL_SECONDS = 3600
MAX_CLAIMED_SUB_CHARS = 64


class TokenError(Exception):
    """A token that must be refused; `reason` is a fixed code safe to log."""

    def __init__(self, reason: str, claimed_sub: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.claimed_sub = claimed_sub  # unverified, for the log only


@dataclass(frozen=True)
class Claims:
    sub: str
    roles: frozenset[Role]
    team: str | None
    unknown_roles: tuple[str, ...] = ()


_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.DecodeError, "malformed"),
    (jwt.InvalidTokenError, "invalid"),
)


class TokenVerifier:
    def __init__(self, settings: SecuritySettings):
        self._settings = settings
        self._key = settings.verifying_key
        self._required = ["exp", "sub", "aud"] + (["iss"] if settings.issuer else [])

    def verify(self, token: str) -> Claims:
        s = self._settings
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[s.algorithm],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": self._required},
            )
        except jwt.InvalidTokenError as exc:
            reason = next(code for kind, code in _REASONS if isinstance(exc, kind))
            if isinstance(exc, jwt.MissingRequiredClaimError):
                reason = f"missing_claim:{exc.claim}"
            raise TokenError(reason, _unverified_sub(token)) from None
        return _claims(payload)


def _claims(payload: dict[str, Any]) -> Claims:
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise TokenError("bad_claim:sub")
    raw_roles = payload.get("roles", [])
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise TokenError("bad_claim:roles", sub)
    team = payload.get("team")
    if team is not None and not isinstance(team, str):
        raise TokenError("bad_claim:team", sub)
    known = {r.value for r in Role}
    # Roles of other court applications may share the issuer; they grant nothing here.
    unknown = tuple(sorted(r for r in raw_roles if r not in known))
    return Claims(sub, frozenset(Role(r) for r in raw_roles if r in known), team or None, unknown)


def _unverified_sub(token: str) -> str | None:
    """The subject a refused token claims (e.g. whose token expired), never trusted."""
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except Exception:  # noqa: BLE001 - garbage tokens simply have no claimed subject
        return None
    return sub[:MAX_CLAIMED_SUB_CHARS] if isinstance(sub, str) else None


def mint_token(
    sub: str,
    roles: Iterable[Role | str],
    team: str | None = None,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    settings: SecuritySettings | None = None,
    *,
    now: float | None = None,
) -> str:
    """A signed token for `sub` with `roles` (dev tools, tests, `make up`).

    Production tokens come from the court's identity provider (RS256); minting
    RS256 here needs ECC_JWT_PRIVATE_KEY_FILE and is meant for test keys.
    """
    settings = settings or SecuritySettings.from_env()
    role_values = sorted({Role(r).value for r in roles})
    if not sub or not sub.strip():
        raise ValueError("sub must not be empty")
    if not role_values:
        raise ValueError("a token needs at least one role")
    if Role.CASE_HANDLER.value in role_values and not team:
        raise ValueError("a case_handler token needs --team: handlers see only their own team's cases")
    if ttl_seconds < 1:
        raise ValueError("ttl_seconds must be positive")
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "sub": sub,
        "roles": role_values,
        "aud": settings.audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if team:
        payload["team"] = team
    if settings.issuer:
        payload["iss"] = settings.issuer
    return jwt.encode(payload, settings.signing_key, algorithm=settings.algorithm)
