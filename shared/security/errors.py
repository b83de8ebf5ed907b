"""The security answers (401, 403, 413, 429) and their one JSON shape:
{"error": <code>, "message": <English>, "message_zh": <Chinese>}.
"""
from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import Send


class SecurityError(Exception):
    status_code = 500
    error = "security_error"
    message = "security error"
    message_zh = "安全错误"

    def __init__(self, message: str | None = None, message_zh: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        if message:
            self.message = message
        if message_zh:
            self.message_zh = message_zh
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message, "message_zh": self.message_zh}


class Unauthenticated(SecurityError):
    status_code = 401
    error = "unauthorized"
    message = "a valid bearer token is required"
    message_zh = "需要有效的访问令牌"

    def __init__(self, invalid: bool = False):
        # RFC 6750 §3: say whether the token was missing or bad, never why in detail.
        challenge = 'Bearer realm="ecc", error="invalid_token"' if invalid else 'Bearer realm="ecc"'
        super().__init__(headers={"WWW-Authenticate": challenge})


class Forbidden(SecurityError):
    status_code = 403
    error = "forbidden"
    message = "your role does not permit this"
    message_zh = "您的角色无权执行此操作"


class PayloadTooLarge(SecurityError):
    status_code = 413
    error = "payload_too_large"

    def __init__(self, limit: int):
        super().__init__(f"request body exceeds {limit} bytes", f"请求体超过 {limit} 字节上限")


class RateLimited(SecurityError):
    status_code = 429
    error = "rate_limited"

    def __init__(self, retry_after: int):
        super().__init__(
            f"too many write requests; retry after {retry_after} s",
            f"写入请求过于频繁，请 {retry_after} 秒后重试",
            headers={"Retry-After": str(retry_after)},
        )


async def security_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, SecurityError):  # registered for SecurityError only
        raise exc
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def send_error(send: Send, exc: SecurityError) -> None:
    """Answer from a pure-ASGI middleware (outside FastAPI's exception handlers)."""
    body = json.dumps(exc.body(), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
