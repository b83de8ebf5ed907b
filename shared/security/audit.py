"""Append-only audit trail: who read or changed which case, when, and the answer.

Routes call `audit_case_access(request, principal, case_no, "read"|"write")`;
AuditMiddleware adds the response status once it is known and hands the entry
to AuditWriter, which stores entries in the caller's database, collection
`audit`, with one insert_many every ~0.5 s or 200 entries, and on shutdown.

Append-only is enforced by the database, not by this code: in production the
services' MongoDB user holds only the `insert` action on `<db>.audit` (a custom
role, ADR 0006); reading the trail takes a separate auditor user.
"""
from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any, Literal

import structlog
from fastapi import Request
from pymongo.errors import BulkWriteError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.security.authn import scope_state
from shared.security.metrics import AUDIT_DROPPED, AUDIT_WRITE_FAILURES, AUDIT_WRITTEN
from shared.security.principal import Principal

log = structlog.get_logger("ecc.security")

AUDIT_COLLECTION = "audit"
PENDING_KEY = "ecc_audit_pending"
DUPLICATE_KEY = 11000  # a retried entry that was stored the first time
Action = Literal["read", "write"]


class AuditWriter:
    def __init__(self, collection: Any, service: str, *, flush_interval: float = 0.5, batch_size: int = 200,
                 max_buffer: int = 10_000, stop_timeout: float = 5.0):
        self.collection, self.service = collection, service
        self.flush_interval, self.batch_size, self.max_buffer = flush_interval, batch_size, max_buffer
        self.stop_timeout = stop_timeout
        self._buffer: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._index_task: asyncio.Task | None = None
        self._stopping = False
        self._warned_idle = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def record(self, entry: dict[str, Any]) -> None:
        """Queue one entry (never blocks the request)."""
        if not self.running and not self._warned_idle:
            self._warned_idle = True
            log.warning("audit.writer_not_running", service=self.service,
                        hint="entries are buffered until the app's lifespan starts the writer")
        self._buffer.append(entry)
        if len(self._buffer) > self.max_buffer:
            self._drop(len(self._buffer) - self.max_buffer)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        self._wake = asyncio.Event()  # fresh primitives for the loop that runs the app
        self._lock = asyncio.Lock()
        # Never wait for the database here: start-up (and /healthz) must not hang while it is away.
        self._index_task = asyncio.create_task(self._ensure_index(), name=f"audit-index-{self.service}")
        self._task = asyncio.create_task(self._run(), name=f"audit-writer-{self.service}")

    async def stop(self) -> None:
        """Stop the loop and flush what is left, within stop_timeout seconds (idempotent)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        if self._index_task is not None:
            self._index_task.cancel()
            self._index_task = None
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=self.stop_timeout)  # cancels it on timeout
            self._task = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=max(0.1, deadline - loop.time()))
        if self._buffer:
            # Last resort: the trail goes to the log rather than nowhere.
            log.error("audit.unflushed_at_shutdown", service=self.service, count=len(self._buffer),
                      entries=[{k: v for k, v in e.items() if k != "_id"} for e in self._buffer])
            self._drop(len(self._buffer))

    async def flush(self) -> int:
        """Store everything buffered now, in batches of batch_size; returns entries stored."""
        stored = 0
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size:]
                try:
                    done, retry = await self._insert(batch)
                except asyncio.CancelledError:
                    self._buffer[:0] = batch  # stopped mid-write: keep them for the shutdown log
                    raise
                stored += done
                if retry:
                    self._buffer[:0] = retry
                    if len(self._buffer) > self.max_buffer:
                        self._drop(len(self._buffer) - self.max_buffer)
                    break  # the database is unwell: try again on the next tick
        return stored

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any one failure
                log.error("audit.flush_crashed", service=self.service, error=repr(exc))

    async def _insert(self, batch: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        try:
            await self.collection.insert_many(batch, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            failed = sorted(e["index"] for e in errors if e.get("code") != DUPLICATE_KEY)
            AUDIT_WRITTEN.labels(self.service).inc(len(batch) - len(errors))
            if failed:
                AUDIT_WRITE_FAILURES.labels(self.service).inc()
                log.error("audit.write_failed", service=self.service, failed=len(failed), batch=len(batch))
            return len(batch) - len(failed), [batch[i] for i in failed]
        except Exception as exc:  # noqa: BLE001 - keep the entries and retry
            AUDIT_WRITE_FAILURES.labels(self.service).inc()
            log.error("audit.write_failed", service=self.service, batch=len(batch), error=repr(exc))
            return 0, batch
        AUDIT_WRITTEN.labels(self.service).inc(len(batch))
        return len(batch), []

    def _drop(self, count: int) -> None:
        del self._buffer[:count]
        AUDIT_DROPPED.labels(self.service).inc(count)
        log.error("audit.entries_dropped", service=self.service, count=count)

    async def _ensure_index(self) -> None:
        create_index = getattr(self.collection, "create_index", None)
        if create_index is None:
            return
        try:
            await create_index([("case_no", 1), ("at", -1)], name="case_no_at")
        except Exception as exc:  # noqa: BLE001 - an insert-only user may not create indexes; deploy does
            log.info("audit.index_not_created", service=self.service, error=repr(exc))


class AuditMiddleware:
    """Gives each request a list for audit entries and fills in the status it got."""

    def __init__(self, app: ASGIApp, *, writer: AuditWriter):
        self.app, self.writer = app, writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        pending: list[dict[str, Any]] = []
        scope_state(scope)[PENDING_KEY] = pending
        status: int | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except Exception:
            status = status or 500
            raise
        finally:
            for entry in pending:
                entry["status"] = status
                self.writer.record(entry)


async def audit_case_access(request: Request, principal: Principal, case_no: str, action: Action) -> None:
    """Put this request's access to `case_no` on the trail (stored with the response status).

    Never waits on the database (the entry is buffered); async so routes read
    `await audit_case_access(...)` and a future version may await. Call it
    before ensure_team_access(), so refused attempts are recorded too.
    """
    if action not in ("read", "write"):
        raise ValueError(f"audit action must be 'read' or 'write', got {action!r}")
    pending = request.scope.get("state", {}).get(PENDING_KEY)
    if pending is None:
        raise RuntimeError("shared.security.install_security() was not called on this app")
    runtime = getattr(request.app.state, "ecc_security", None)
    pending.append({
        "at": datetime.now(UTC),
        "actor": principal.sub,
        "roles": sorted(r.value for r in principal.roles),
        "team": principal.team,
        "service": runtime.service if runtime else "unknown",
        "action": action,
        "case_no": case_no,
        "path": request.url.path,
        "method": request.method,
        "status": None,
    })


async def recent_audit(db: Any, case_no: str, limit: int = 100) -> list[dict[str, Any]]:
    """The case's latest audit entries, newest first (tests and auditors; needs find)."""
    cursor = db[AUDIT_COLLECTION].find({"case_no": case_no}, {"_id": 0}).sort([("at", -1), ("_id", -1)])
    return await cursor.limit(limit).to_list(length=limit)


class LogAuditSink:
    """Stand-in collection when a service has no database (ECC_AUTH=off unit tests):
    entries go to the log instead, and a warning says so at start-up."""

    def __init__(self, service: str):
        self.service = service

    async def insert_many(self, entries: list[dict[str, Any]], ordered: bool = False) -> None:
        for entry in entries:
            log.info("audit.entry", **{k: v for k, v in entry.items() if k != "_id"})
