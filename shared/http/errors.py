"""Error answers every API gives: JSON, field-level, in English and Chinese, never a stack trace."""
from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.contract.messages import field_path, message_zh
from shared.logging import get_logger
from shared.runtime.mongo import is_transient

log = get_logger()


class ApiError(Exception):
    """A refusal with an HTTP status, an error code and bilingual messages."""

    def __init__(self, status: int, error: str, message: str, message_zh: str, **details: Any):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.message_zh = message_zh
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, "message_zh": self.message_zh, **self.details}


def error_items(errors: list[dict[str, Any]], prefix: tuple[Any, ...] = ()) -> list[dict[str, str]]:
    """pydantic error dicts → field-level items in English and Chinese (see shared.contract.messages)."""
    return [
        {"field": field_path(prefix + tuple(err.get("loc", ()))), "type": err["type"],
         "message": err.get("msg", ""), "message_zh": message_zh(err)}
        for err in errors
    ]


def validation_error(errors: list[dict[str, Any]], prefix: tuple[Any, ...] = ()) -> ApiError:
    return ApiError(422, **validation_body(error_items(errors, prefix)))


def validation_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "error": "validation_failed",
        "message": "The request has invalid fields; see errors.",
        "message_zh": "请求字段校验未通过，详见 errors。",
        "errors": errors,
    }


async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # FastAPI prefixes locations with "body"/"query"/"path"; keep it so the caller knows where.
    return JSONResponse(validation_body(error_items(list(exc.errors()))), status_code=422)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        # The database is away: nothing was stored, the caller may retry.
        log.warning("database_unavailable", path=request.url.path, error=str(exc))
        return JSONResponse(
            {"error": "unavailable", "message": "The database is unavailable; nothing was stored. Retry shortly.",
             "message_zh": "数据库暂不可用，本次未保存，请稍后重试。"},
            status_code=503, headers={"Retry-After": "5"},
        )
    log.error("unhandled_error", path=request.url.path, method=request.method, error=repr(exc), exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "message": "Internal error; it has been logged.", "message_zh": "服务内部错误，已记录日志。"},
        status_code=500,
    )
