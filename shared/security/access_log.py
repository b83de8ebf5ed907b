"""One log line per request: method, path, status, duration, caller.

Never headers, never the query string (tokens and personal data travel
there); ID and phone numbers in the path are masked by the foundation's log
processor. Probe paths log at debug so they do not drown the rest.
"""
from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.security.authn import PRINCIPAL_KEY, client_host, request_path, scope_state

log = structlog.get_logger("ecc.http")

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, *, service: str):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        unhandled: str | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception as exc:
            # The outer error handler answers (500, or 503 for a database outage); name what it got.
            unhandled = type(exc).__name__
            raise
        finally:
            path = request_path(scope)
            principal = scope_state(scope).get(PRINCIPAL_KEY)
            emit = log.debug if path in QUIET_PATHS else log.info
            emit("http.request", service=self.service, method=scope.get("method"), path=path, status=status,
                 duration_ms=round((time.perf_counter() - started) * 1000, 1),
                 sub=principal.sub if principal else None, client=client_host(scope),
                 **({"unhandled": unhandled} if unhandled else {}))
