"""Abuse limits: 413 for oversized bodies, 429 after the write limit."""
from __future__ import annotations

import asyncio

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from shared.security import Permission, Principal, Role, install_security, require
from shared.security.limits import BodyLimitMiddleware, TokenBucketLimiter
from shared.security.settings import RateLimit
from shared.security.testing import auth_header, test_settings

SETTINGS = test_settings(max_body_bytes=1000, rate_limit_writes=RateLimit(3, 60.0))


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/cases")
    async def file_case(body: dict, principal: Principal = Depends(require(Permission.CASE_WRITE))):
        return {"sub": principal.sub, "size": len(str(body))}

    @app.get("/cases/{case_no}")
    async def read_case(case_no: str, principal: Principal = Depends(require(Permission.CASE_READ))):
        return {"case_no": case_no}

    install_security(app, "limits-test", SETTINGS)
    return app


@pytest.fixture()
def client():
    with TestClient(_app()) as c:
        yield c


def test_oversized_body_gets_413_json(client):
    headers = auth_header(Role.WINDOW_CLERK, settings=SETTINGS)
    assert client.post("/cases", json={"x": "a" * 900}, headers=headers).status_code == 200
    response = client.post("/cases", json={"x": "a" * 1000}, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert "1000" in response.json()["message_zh"]


def test_streamed_body_without_length_is_counted(client):
    headers = auth_header(Role.WINDOW_CLERK, settings=SETTINGS)

    def chunks():
        yield b'{"x": "'
        for _ in range(20):
            yield b"a" * 100
        yield b'"}'

    response = client.post("/cases", content=chunks(), headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413


def test_small_streamed_body_passes(client):
    headers = auth_header(Role.WINDOW_CLERK, settings=SETTINGS)
    body = iter([b'{"x": ', b'"abc"}'])
    response = client.post("/cases", content=body, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["sub"] == "test-window_clerk"


def test_body_limit_counts_chunks_even_when_content_length_lies():
    """Raw ASGI: a declared small length followed by more bytes is refused before the app runs."""
    reached = []

    async def app(scope, receive, send):
        reached.append(True)

    middleware = BodyLimitMiddleware(app, max_bytes=10, service="raw")
    messages = [{"type": "http.request", "body": b"123456", "more_body": True},
                {"type": "http.request", "body": b"789012", "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [(b"content-length", b"5")]}
    asyncio.run(middleware(scope, receive, send))
    assert not reached
    assert sent[0]["status"] == 413


def test_writes_are_limited_per_caller_with_retry_after(client):
    alice = auth_header(Role.WINDOW_CLERK, sub="alice", settings=SETTINGS)
    bob = auth_header(Role.WINDOW_CLERK, sub="bob", settings=SETTINGS)
    assert [client.post("/cases", json={}, headers=alice).status_code for _ in range(3)] == [200, 200, 200]
    limited = client.post("/cases", json={}, headers=alice)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) == 20  # one token per 60/3 s
    # Another caller has its own bucket; reads are not limited.
    assert client.post("/cases", json={}, headers=bob).status_code == 200
    assert client.get("/cases/A1", headers=alice).status_code == 200


def test_callers_without_a_valid_token_are_limited_by_address(client):
    statuses = [client.post("/cases", json={}, headers={"Authorization": f"Bearer forged-{i}"}).status_code
                for i in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_token_bucket_refills():
    now = [0.0]
    limiter = TokenBucketLimiter(RateLimit(2, 10.0), clock=lambda: now[0])
    assert limiter.take("k") == 0 and limiter.take("k") == 0
    assert limiter.take("k") == pytest.approx(5.0)
    now[0] = 5.0
    assert limiter.take("k") == 0
    assert limiter.take("k") > 0


def test_token_bucket_forgets_idle_callers():
    now = [0.0]
    limiter = TokenBucketLimiter(RateLimit(1, 1.0), clock=lambda: now[0], max_keys=10)
    for i in range(10):
        limiter.take(f"old-{i}")
    now[0] = 100.0
    limiter.take("new")
    assert len(limiter._buckets) == 1


def test_rate_limit_parse():
    assert RateLimit.parse("120/minute") == RateLimit(120, 60.0)
    assert RateLimit.parse("5 / second").per_second == 5
    assert RateLimit.parse("off") is None
