"""Abuse limits: request body size (413) and per-caller write rate (429).

Why an in-process token bucket rather than slowapi: slowapi needs a decorator
and a `request` parameter on every route plus the `limits` package, and its
key function would have to verify the token again; here the key is the
subject AuthnMiddleware already verified (else the client IP), one middleware
covers every write method, and nothing is added to the image. The limit is per
process: with N replicas a caller gets at most N times the rate, which is fine
for an abuse guard (it is not a quota).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.security.authn import PRINCIPAL_KEY, client_host, request_path, scope_state
from shared.security.errors import PayloadTooLarge, RateLimited, send_error
from shared.security.metrics import BODY_TOO_LARGE, RATE_LIMITED
from shared.security.settings import RateLimit

log = structlog.get_logger("ecc.security")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes`: by Content-Length up front, else by counting
    the streamed chunks. The body (at most max_bytes) is buffered and replayed, so
    the route never starts on a request that will turn out too large."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, service: str):
        self.app, self.max_bytes, self.service = app, max_bytes, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, chunked = _declared_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(scope, send, "content_length")
            return
        if not chunked and not length:  # no body
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nothing to answer
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._refuse(scope, send, "streamed")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, send: Send, how: str) -> None:
        BODY_TOO_LARGE.labels(self.service).inc()
        principal = scope_state(scope).get(PRINCIPAL_KEY)
        log.warning("request.body_too_large", service=self.service, status=413, limit=self.max_bytes, how=how,
                    sub=principal.sub if principal else None, method=scope.get("method"),
                    path=request_path(scope), client=client_host(scope))
        await send_error(send, PayloadTooLarge(self.max_bytes))


def _declared_length(scope: Scope) -> tuple[int | None, bool]:
    length, chunked = None, False
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
                chunked = True  # unreadable length: count what actually arrives
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards only http.disconnect can come

    return replay


class TokenBucketLimiter:
    """One bucket per key holding up to `requests` tokens, refilled at requests/period."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.capacity = float(limit.requests)
        self.rate = limit.per_second
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated_at)

    def take(self, key: str) -> float:
        """0.0 if a request may pass now, else the seconds until it could."""
        now = self.clock()
        tokens, updated = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                self._evict(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        # A bucket that has refilled completely is indistinguishable from a new one.
        full_after = self.capacity / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        if len(self._buckets) > self.max_keys:  # still too many active callers: forget the oldest half
            keep = sorted(self._buckets.items(), key=lambda kv: kv[1][1])[len(self._buckets) // 2:]
            self._buckets = dict(keep)


class RateLimitMiddleware:
    """429 with Retry-After when a caller exceeds the write rate; reads are not limited."""

    def __init__(self, app: ASGIApp, *, limiter: TokenBucketLimiter, service: str):
        self.app, self.limiter, self.service = app, limiter, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        principal = scope_state(scope).get(PRINCIPAL_KEY)
        # An unverified token's subject is attacker-chosen, so those callers are keyed by address.
        key = f"sub:{principal.sub}" if principal else f"ip:{client_host(scope)}"
        wait = self.limiter.take(key)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        RATE_LIMITED.labels(self.service).inc()
        log.warning("request.rate_limited", service=self.service, status=429, key=key, retry_after=retry_after,
                    method=scope.get("method"), path=request_path(scope))
        await send_error(send, RateLimited(retry_after))
