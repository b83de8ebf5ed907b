"""The FastAPI app every service serves: its routers plus health, readiness, metrics, security and errors."""
from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.asynchronous.database import AsyncDatabase

from shared.http.errors import ApiError, on_api_error, on_unexpected, on_validation_error
from shared.runtime.health import Health
from shared.security import SecuritySettings, install_security

OPEN_PATHS = ("/healthz", "/readyz", "/metrics")


def create_app(
    *, service: str, health: Health, routers: Sequence[APIRouter] = (), description: str = "",
    audit_db: AsyncDatabase | None = None, security: SecuritySettings | None = None,
) -> FastAPI:
    app = FastAPI(title=f"ECC {service}", description=description, version="1")

    @app.get("/healthz", tags=["health"], summary="Alive (the process runs)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], summary="Ready (connected and caught up enough to serve)")
    async def readyz() -> JSONResponse:
        body = {"ready": health.ready, "service": service, "checks": health.report()}
        return JSONResponse(body, status_code=200 if health.ready else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
    install_security(app, service, security or SecuritySettings.from_env(), audit_db)
    return app
