"""Authentication as two ASGI middlewares around the rate limiter.

AuthnMiddleware verifies the bearer token once and leaves the result in the
request state; the rate limiter can then key writes by the verified subject;
AuthGateMiddleware finally refuses (401) every request to a non-open path
without a valid token, so a route that forgets `require()` is still closed.
"""
from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.security.errors import Unauthenticated, send_error
from shared.security.metrics import AUTH_DENIED
from shared.security.principal import Principal, auth_off_principal
from shared.security.tokens import TokenError, TokenVerifier

log = structlog.get_logger("ecc.security")

PRINCIPAL_KEY = "ecc_principal"
FAILURE_KEY = "ecc_auth_failure"  # (reason, claimed_sub)
OPEN_KEY = "ecc_open_path"
MAX_TOKEN_CHARS = 8192


def request_path(scope: Scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def client_host(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def scope_state(scope: Scope) -> dict:
    return scope.setdefault("state", {})


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class AuthnMiddleware:
    def __init__(self, app: ASGIApp, *, verifier: TokenVerifier | None, open_paths: frozenset[str],
                 service: str):
        self.app, self.verifier, self.open_paths, self.service = app, verifier, open_paths, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope_state(scope)
            if request_path(scope) in self.open_paths:
                state[OPEN_KEY] = True
            elif self.verifier is None:  # ECC_AUTH=off
                state[PRINCIPAL_KEY] = auth_off_principal()
            else:
                self._authenticate(scope, state)
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope, state: dict) -> None:
        token = _bearer_token(scope)
        if token is None:
            state[FAILURE_KEY] = ("missing_token", None)
            return
        if not token or len(token) > MAX_TOKEN_CHARS:
            state[FAILURE_KEY] = ("malformed", None)
            return
        try:
            claims = self.verifier.verify(token)
        except TokenError as exc:
            state[FAILURE_KEY] = (exc.reason, exc.claimed_sub)
            return
        if claims.unknown_roles:
            log.debug("auth.unknown_roles_ignored", service=self.service, sub=claims.sub,
                      roles=list(claims.unknown_roles))
        state[PRINCIPAL_KEY] = Principal(claims.sub, claims.roles, claims.team)


class AuthGateMiddleware:
    def __init__(self, app: ASGIApp, *, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope_state(scope)
        if state.get(OPEN_KEY) or state.get(PRINCIPAL_KEY) is not None:
            await self.app(scope, receive, send)
            return
        reason, claimed_sub = state.get(FAILURE_KEY, ("missing_token", None))
        log_unauthenticated(self.service, scope, reason, claimed_sub)
        await send_error(send, Unauthenticated(invalid=reason != "missing_token"))


def log_unauthenticated(service: str, scope: Scope, reason: str, claimed_sub: str | None) -> None:
    AUTH_DENIED.labels(service, "401", reason.split(":")[0]).inc()
    log.warning("auth.unauthenticated", service=service, status=401, reason=reason,
                claimed_sub=claimed_sub, method=scope.get("method"), path=request_path(scope),
                client=client_host(scope))
