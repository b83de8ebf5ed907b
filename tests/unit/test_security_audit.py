"""The audit trail: entries per case access with actor and status, written in batches."""
from __future__ import annotations

import asyncio

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pymongo.errors import BulkWriteError
from structlog.testing import capture_logs

from shared.security import (
    Permission, Principal, Role, audit_case_access, ensure_team_access, install_security, recent_audit, require,
)
from shared.security.audit import AuditWriter
from shared.security.testing import auth_header, test_settings

SETTINGS = test_settings()


class FakeCursor:
    def __init__(self, docs, hide_id):
        self.docs, self.hide_id = docs, hide_id

    def sort(self, keys):
        for key, direction in reversed(keys):
            self.docs.sort(key=lambda d: d.get(key), reverse=direction < 0)
        return self

    def limit(self, n):
        self.docs = self.docs[:n]
        return self

    async def to_list(self, length=None):
        return [{k: v for k, v in d.items() if not (k == "_id" and self.hide_id)} for d in self.docs]


class FakeCollection:
    """insert_many and find, enough for the writer and recent_audit."""

    def __init__(self, fail_times: int = 0):
        self.docs: list[dict] = []
        self.calls: list[int] = []
        self.fail_times = fail_times
        self.indexes: list = []

    async def insert_many(self, docs, ordered=True):
        self.calls.append(len(docs))
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("database away")
        for doc in docs:
            doc.setdefault("_id", len(self.docs))  # increasing, like ObjectIds
            self.docs.append(dict(doc))

    async def create_index(self, keys, name=None):
        self.indexes.append(keys)

    def find(self, query, projection=None):
        found = [d for d in self.docs if all(d.get(k) == v for k, v in query.items())]
        return FakeCursor(found, hide_id=(projection or {}).get("_id") == 0)


class FakeDb:
    def __init__(self):
        self.collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name):
        return self.collections.setdefault(name, FakeCollection())


def _entry(i: int) -> dict:
    return {"case_no": f"C{i}", "actor": "a", "action": "read"}


async def test_writer_batches_by_size():
    collection = FakeCollection()
    writer = AuditWriter(collection, "t", flush_interval=60, batch_size=200)
    await writer.start()
    for i in range(450):
        writer.record(_entry(i))
    for _ in range(50):
        await asyncio.sleep(0.01)
        if len(collection.docs) >= 400:
            break
    assert collection.calls[:2] == [200, 200]  # woken by size, long before the 60 s tick
    await writer.stop()
    assert collection.calls == [200, 200, 50]
    assert len(collection.docs) == 450 and writer.pending == 0


async def test_writer_flushes_on_the_timer_in_one_insert():
    collection = FakeCollection()
    writer = AuditWriter(collection, "t", flush_interval=0.05, batch_size=200)
    await writer.start()
    for i in range(5):
        writer.record(_entry(i))
    await asyncio.sleep(0.2)
    assert collection.calls == [5]
    await writer.stop()
    assert collection.calls == [5]


async def test_writer_retries_after_a_failure():
    collection = FakeCollection(fail_times=2)
    writer = AuditWriter(collection, "t", flush_interval=0.02, batch_size=200)
    await writer.start()
    writer.record(_entry(1))
    writer.record(_entry(2))
    await asyncio.sleep(0.2)
    await writer.stop()
    assert collection.calls[:3] == [2, 2, 2]
    assert [d["case_no"] for d in collection.docs] == ["C1", "C2"]


async def test_retry_skips_entries_already_stored():
    class PartlyStored(FakeCollection):
        async def insert_many(self, docs, ordered=True):
            self.calls.append(len(docs))
            if len(self.calls) == 1:
                raise BulkWriteError({"writeErrors": [{"index": 1, "code": 11000}, {"index": 2, "code": 91}]})
            self.docs.extend(docs)

    collection = PartlyStored()
    writer = AuditWriter(collection, "t", flush_interval=60)
    for i in range(3):
        writer.record(_entry(i))
    assert await writer.flush() == 2  # index 0 stored, index 1 was a duplicate of a stored entry
    assert writer.pending == 1
    assert await writer.flush() == 1
    assert collection.calls == [3, 1] and collection.docs[-1]["case_no"] == "C2"


async def test_stop_is_bounded_when_the_database_hangs():
    class Hanging(FakeCollection):
        async def insert_many(self, docs, ordered=True):
            self.calls.append(len(docs))
            await asyncio.sleep(3600)

        async def create_index(self, keys, name=None):
            await asyncio.sleep(3600)  # start() must not wait for this

    writer = AuditWriter(Hanging(), "t", flush_interval=0.01, stop_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.start()
    assert loop.time() - started < 0.1
    writer.record(_entry(1))
    await asyncio.sleep(0.05)
    with capture_logs() as logs:
        await writer.stop()
    assert loop.time() - started < 1.0
    unflushed = [e for e in logs if e["event"] == "audit.unflushed_at_shutdown"]
    assert unflushed and unflushed[0]["entries"] == [_entry(1)]  # on the log rather than lost


async def test_full_buffer_drops_oldest():
    writer = AuditWriter(FakeCollection(), "t", max_buffer=3)
    for i in range(5):
        writer.record(_entry(i))
    assert [e["case_no"] for e in writer._buffer] == ["C2", "C3", "C4"]


def _audited_app(db) -> FastAPI:
    app = FastAPI()
    teams = {"A1": "quick", "B2": "hard"}

    @app.get("/cases/{case_no}")
    async def read_case(case_no: str, request: Request,
                        principal: Principal = Depends(require(Permission.CASE_READ))):
        await audit_case_access(request, principal, case_no, "read")
        ensure_team_access(principal, teams.get(case_no), request=request)
        return {"case_no": case_no}

    @app.post("/cases/{case_no}/events", status_code=202)
    async def add_event(case_no: str, request: Request,
                        principal: Principal = Depends(require(Permission.CASE_EVENTS_WRITE))):
        await audit_case_access(request, principal, case_no, "write")
        ensure_team_access(principal, teams.get(case_no), Permission.CASE_EVENTS_WRITE, request=request)
        return {"accepted": True}

    install_security(app, "intake", SETTINGS, db, audit_flush_interval=0.05)
    return app


def test_reads_and_writes_of_a_case_are_on_the_trail_with_the_actor():
    db = FakeDb()
    with TestClient(_audited_app(db)) as client:
        clerk = auth_header(Role.WINDOW_CLERK, sub="clerk-li", settings=SETTINGS)
        handler = auth_header(Role.CASE_HANDLER, sub="handler-wang", team="quick", settings=SETTINGS)
        assert client.get("/cases/A1", headers=clerk).status_code == 200
        assert client.post("/cases/A1/events", headers=handler).status_code == 202
        assert client.get("/cases/B2", headers=handler).status_code == 403  # other team: refused, but recorded
        assert client.get("/cases/A1").status_code == 401  # never reaches the route: nothing to record
    # Leaving the client ran the lifespan shutdown: everything is flushed.
    trail = asyncio.run(recent_audit(db, "A1"))
    assert [(e["actor"], e["action"], e["method"], e["status"]) for e in trail] == [
        ("handler-wang", "write", "POST", 202), ("clerk-li", "read", "GET", 200)]
    assert trail[0]["roles"] == ["case_handler"] and trail[0]["team"] == "quick"
    assert trail[0]["service"] == "intake" and trail[0]["path"] == "/cases/A1/events"
    assert trail[0]["at"].tzinfo is not None
    refused = asyncio.run(recent_audit(db, "B2"))
    assert [(e["actor"], e["status"]) for e in refused] == [("handler-wang", 403)]
    assert db["audit"].indexes  # the writer asked for its index


def test_audit_action_is_checked():
    app = FastAPI()

    @app.get("/x")
    async def x(request: Request, principal: Principal = Depends(require(Permission.CASE_READ))):
        await audit_case_access(request, principal, "A1", "delete")

    install_security(app, "t", SETTINGS, FakeDb())
    with TestClient(app) as client, pytest.raises(ValueError, match="read.*write"):
        client.get("/x", headers=auth_header(Role.OPERATOR, settings=SETTINGS))
