"""install_security(): the one call the app factory makes.

Middleware, outermost first:
    access log -> authenticate -> write rate limit -> 401 gate -> body size -> audit -> app
so 401/413/429 answers are logged, a caller without a valid token is refused
before its body is read, and writes are rate-limited by verified subject.
The audit writer starts and stops with the app's lifespan (wrapped here).
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI

from shared.security.access import AccessPolicy, get_policy
from shared.security.access_log import AccessLogMiddleware
from shared.security.audit import AUDIT_COLLECTION, AuditMiddleware, AuditWriter, LogAuditSink
from shared.security.authn import AuthGateMiddleware, AuthnMiddleware
from shared.security.errors import SecurityError, security_error_handler
from shared.security.limits import BodyLimitMiddleware, RateLimitMiddleware, TokenBucketLimiter
from shared.security.metrics import AUTH_ENABLED
from shared.security.settings import SecuritySettings
from shared.security.tokens import TokenVerifier

log = structlog.get_logger("ecc.security")

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class SecurityRuntime:
    """What install_security set up; kept on app.state.ecc_security."""

    service: str
    settings: SecuritySettings
    policy: AccessPolicy
    open_paths: frozenset[str]
    audit: AuditWriter
    limiter: TokenBucketLimiter | None

    async def start(self) -> None:
        await self.audit.start()

    async def stop(self) -> None:
        await self.audit.stop()


def install_security(app: FastAPI, service: str, settings: SecuritySettings, mongo_db: Any | None = None,
                     *, audit_flush_interval: float = 0.5, audit_batch_size: int = 200) -> SecurityRuntime:
    """Authenticate, authorize, limit and audit every request of `app`.

    Call once, after the FastAPI app is constructed (with its own lifespan, if
    any) and before it serves. `mongo_db` is the service's AsyncDatabase; the
    trail goes to its `audit` collection (None: to the log, for unit tests).
    Nothing to start or stop: the audit writer follows the app's lifespan.
    """
    if getattr(app.state, "ecc_security", None) is not None:
        raise RuntimeError(f"install_security() was already called for {service}")
    policy = get_policy()  # a bad rules/access.yaml stops the service here
    verifier = TokenVerifier(settings) if settings.auth_enabled else None
    open_paths = PROBE_PATHS | (_docs_paths(app) if settings.open_docs else frozenset())
    if mongo_db is None:
        log.warning("audit.no_database", service=service, hint="audit entries go to the log only")
    collection = mongo_db[AUDIT_COLLECTION] if mongo_db is not None else LogAuditSink(service)
    writer = AuditWriter(collection, service, flush_interval=audit_flush_interval, batch_size=audit_batch_size)
    limiter = (TokenBucketLimiter(settings.rate_limit_writes)
               if settings.auth_enabled and settings.rate_limit_writes else None)
    runtime = SecurityRuntime(service, settings, policy, open_paths, writer, limiter)

    # add_middleware puts each new one outside the previous: innermost first.
    app.add_middleware(AuditMiddleware, writer=writer)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, service=service)
    app.add_middleware(AuthGateMiddleware, service=service)
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter, service=service)
    app.add_middleware(AuthnMiddleware, verifier=verifier, open_paths=open_paths, service=service)
    app.add_middleware(AccessLogMiddleware, service=service)
    app.add_exception_handler(SecurityError, security_error_handler)
    app.state.ecc_security = runtime
    _wrap_lifespan(app, runtime)

    AUTH_ENABLED.labels(service).set(1 if settings.auth_enabled else 0)
    if settings.auth_enabled:
        log.info("security.installed", service=service, algorithm=settings.algorithm, audience=settings.audience,
                 issuer=settings.issuer, max_body_bytes=settings.max_body_bytes,
                 rate_limit_writes=str(settings.rate_limit_writes or "off"), open_paths=sorted(open_paths))
    else:
        log.warning("security.AUTHENTICATION_OFF", service=service,
                    warning="ECC_AUTH=off: every caller has every role. For unit tests only, never deploy this.")
    return runtime


def _docs_paths(app: FastAPI) -> frozenset[str]:
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return frozenset(u for u in urls if u)


def _wrap_lifespan(app: FastAPI, runtime: SecurityRuntime) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(lifespan_app: Any):
        # The writer runs before the app's own start-up and outlives its shutdown,
        # so accesses made while draining still reach the trail.
        await runtime.start()
        try:
            async with inner(lifespan_app) as state:
                yield state
        finally:
            await runtime.stop()

    app.router.lifespan_context = lifespan
