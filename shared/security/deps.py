"""FastAPI dependencies for routes.

    @router.post("/cases")
    async def file_case(..., principal: Principal = Depends(require(Permission.CASE_WRITE))): ...

require() needs every listed permission. Authentication already happened in
AuthnMiddleware (installed by install_security); this only decides 403.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.security.authn import FAILURE_KEY, OPEN_KEY, PRINCIPAL_KEY, log_unauthenticated
from shared.security.errors import Forbidden, Unauthenticated
from shared.security.metrics import AUTH_DENIED
from shared.security.principal import Principal
from shared.security.roles import Permission

log = structlog.get_logger("ecc.security")

# Declares the scheme in OpenAPI (Swagger's Authorize button, schemathesis auth);
# auto_error=False because the middleware already answered 401 where needed.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="JWT")


def _service(request: Request) -> str:
    runtime = getattr(request.app.state, "ecc_security", None)
    return runtime.service if runtime else "unknown"


def current_principal(request: Request) -> Principal:
    """The authenticated caller; 401 if there is none (e.g. a guarded route on an open path)."""
    state = request.scope.get("state", {})
    principal = state.get(PRINCIPAL_KEY)
    if principal is not None:
        return principal
    if FAILURE_KEY not in state and OPEN_KEY not in state:
        raise RuntimeError("shared.security.install_security() was not called on this app")
    reason, claimed_sub = state.get(FAILURE_KEY, ("missing_token", None))
    log_unauthenticated(_service(request), request.scope, reason, claimed_sub)
    raise Unauthenticated(invalid=reason != "missing_token")


def require(*permissions: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency returning the Principal if it holds all `permissions`, else 403."""
    needed = frozenset(Permission(p) for p in permissions)

    async def dependency(
        request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
    ) -> Principal:
        principal = current_principal(request)
        missing = principal.missing(needed)
        if missing:
            _deny(request, principal, "missing_permission", sorted(p.value for p in missing))
        return principal

    dependency.__name__ = "require_" + "_".join(sorted(p.value for p in needed)) if needed else "require_auth"
    return dependency


def ensure_team_access(principal: Principal, case_team: str | None,
                       permission: Permission = Permission.CASE_READ, request: Request | None = None) -> None:
    """403 unless `permission` reaches cases of `case_team` for this principal.

    Roles that are not team-scoped reach every case; a case handler reaches only
    cases of the team in their token (a case not yet assigned to a team: none).
    Pass `request` so the refusal is logged with the path.
    """
    if not principal.may_access_team(permission, case_team):
        _deny(request, principal, "other_team", [permission.value], case_team=case_team)


def _deny(request: Request | None, principal: Principal, reason: str, permissions: list[str], **extra) -> None:
    service = _service(request) if request is not None else "unknown"
    AUTH_DENIED.labels(service, "403", reason).inc()
    log.warning("auth.forbidden", service=service, status=403, reason=reason, sub=principal.sub,
                roles=sorted(r.value for r in principal.roles), team=principal.team, needed=permissions,
                method=request.method if request else None, path=request.url.path if request else None,
                **extra)
    raise Forbidden()
