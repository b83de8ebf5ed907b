"""Helpers for tests of any service: HS256 settings and ready-made auth headers.

    settings = test_settings()
    app = create_app(..., security=settings)
    client.post("/cases", json=..., headers=auth_header("window_clerk", settings=settings))
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.security.roles import Role
from shared.security.settings import SecuritySettings
from shared.security.tokens import mint_token

TEST_SECRET = b"ecc-unit-test-secret-not-for-production-000"


def test_settings(**overrides: Any) -> SecuritySettings:
    """Auth on, HS256 with TEST_SECRET, no rate limit unless overridden."""
    base = SecuritySettings(secret=TEST_SECRET, rate_limit_writes=None)
    return replace(base, **overrides)


def auth_header(*roles: Role | str, team: str | None = None, sub: str | None = None,
                settings: SecuritySettings | None = None, ttl_seconds: int = 600) -> dict[str, str]:
    settings = settings or test_settings()
    team = team if team is not None else ("team-test" if Role.CASE_HANDLER in {Role(r) for r in roles} else None)
    sub = sub or f"test-{'-'.join(Role(r).value for r in roles)}"
    token = mint_token(sub, roles, team=team, ttl_seconds=ttl_seconds, settings=settings)
    return {"Authorization": f"Bearer {token}"}


test_settings.__test__ = False  # not a pytest test despite the name
