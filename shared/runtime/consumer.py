"""The consumer runtime every service uses: one batch at a time, at-least-once, idempotent.

consume a batch → validate → drop ids already in the inbox → handle →
store effects + inbox ids + outbox entries in one transaction → publish the
outbox → commit offsets.

A message that cannot be parsed or validated, or that the handler refuses,
goes to the dead-letter topic with the reason, and the batch goes on. A
database or broker outage is waited out (readiness goes false), never
turned into loss: offsets are committed only after the effects are stored
and what they emit is published.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, KafkaError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Settings
from shared.contract.envelope import Event, EventError, parse_event
from shared.kafka import client_kwargs
from shared.logging import get_logger
from shared.metrics import (
    BATCH_SECONDS, BATCH_SIZE, CONSUMER_LAG, ERRORS, EVENTS_CONSUMED, EVENTS_DEADLETTERED,
    EVENTS_DUPLICATE, HANDLER_SECONDS, LAST_EVENT_TIMESTAMP,
)
from shared.runtime import inbox
from shared.runtime.alignment import InputGate, UpstreamProgress
from shared.runtime.deadletter import DeadLetter, decode_text
from shared.runtime.effects import Effects
from shared.runtime.health import Health
from shared.runtime.mongo import is_duplicate_key, is_transient, write_in_transaction
from shared.runtime.outbox import COLLECTION as OUTBOX_COLLECTION
from shared.runtime.outbox import Outbox, OutboxEntry
from shared.topics import DEADLETTER, Topic

log = get_logger()


class BatchHandler(Protocol):
    """A service's decisions for a batch of new (never handled) events, in consumed order.

    Optional attributes the runtime reads (both cut inbox writes, the bulk of a backlog's):
    - `handles`: the event types that can have an effect; the others on its topics are
      committed without being handed over or recorded (handling them twice does nothing).
    - `idempotent`: types it handles but that need no inbox record, because handling one
      again changes nothing (clock.tick: the watermark never moves back and is stored in
      the same transaction, so a redelivered tick is at or behind it).
    """

    async def handle(self, events: list[Event], effects: Effects) -> None: ...


def group_id_for(service: str) -> str:
    """The consumer group a service's runtime joins (others read its progress by it: UpstreamProgress)."""
    return f"ecc-{service}"


class _Duplicate(Exception):
    """Another consumer stored one of the batch's ids first; redo the batch."""


class ConsumerRuntime:
    def __init__(
        self, *, service: str, settings: Settings, topics: Sequence[Topic], handler: BatchHandler,
        client: AsyncMongoClient, db: AsyncDatabase, outbox: Outbox, health: Health,
        group_id: str | None = None, ready_max_lag: int = 1000,
        gate: InputGate | None = None, gated: Sequence[Topic] = (), upstream: UpstreamProgress | None = None,
    ):
        """gate/gated: watermark alignment (shared/runtime/alignment.py): the runtime tells `gate`
        the event time of every valid message of a `gated` topic and, before each batch is
        handled, each gated partition's lag. upstream: another group's progress on the facts
        this one reads (UpstreamProgress), checked before each batch; its output topics must be
        gated (their lag is then measured against fresh end offsets)."""
        self.service = service
        self.settings = settings
        self.topics = {settings.topic(t.suffix): t for t in topics}
        self.handler = handler
        self.client = client
        self.db = db
        self.outbox = outbox
        self.health = health
        self.group_id = group_id or group_id_for(service)
        self.ready_max_lag = ready_max_lag
        self.gate = gate
        self.gated = frozenset(settings.topic(t.suffix) for t in gated)
        if gated and gate is None:
            raise ValueError("gated topics need a gate")
        self.upstream = upstream
        if upstream is not None and not upstream.outputs <= self.gated:
            raise ValueError("an upstream's output topics must be gated")
        self.admin: AIOKafkaAdminClient | None = None
        self._upstream_coordinator: int | None = None
        # Events the handler deferred (Effects.defer): offered again first, offsets not committed past them.
        self._deferred: list[tuple[ConsumerRecord, Event]] = []
        self._again = False  # the handler asked to run again without input (Effects.come_back)
        self._read_end: dict[TopicPartition, int] = {}  # read but not committed yet (a deferred event holds it)
        self._committed_to: dict[TopicPartition, int] = {}
        self.handles: frozenset[str] | None = getattr(handler, "handles", None)
        self.idempotent: frozenset[str] = frozenset(getattr(handler, "idempotent", ()))
        self.deadletter_topic = settings.topic(DEADLETTER.suffix)
        self.consumer: AIOKafkaConsumer | None = None
        health.register("consumer")

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            **client_kwargs(self.settings),
            group_id=self.group_id,
            client_id=f"ecc-{self.service}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 << 20,
        )
        await self.consumer.start()
        if self.upstream is not None:
            self.admin = AIOKafkaAdminClient(**client_kwargs(self.settings), client_id=f"ecc-{self.service}-admin")
            await self.admin.start()

    async def stop(self) -> None:
        if self.admin is not None:
            await self.admin.close()
            self.admin = None
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def run(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None, "start() first"
        while not stop.is_set():
            try:
                batch = await self.consumer.getmany(
                    timeout_ms=self.settings.batch_timeout_ms, max_records=self.settings.batch_max_records)
            except KafkaError as exc:
                ERRORS.labels(self.service, "broker").inc()
                log.warning("consume_failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            records = [rec for recs in batch.values() for rec in recs]
            if records:
                await self.process(records)
                await self._commit(records)
            elif await self._work_without_input():
                await self.process([], idle=True)
                await self._commit([])
            await self._update_lag()

    async def _work_without_input(self) -> bool:
        """Nothing new to read, but the handler may have work: deferred events the gate may let
        through now, a page of due deadlines (Effects.come_back), or what the upstream's progress
        released (nodewatch's held ticks once triage caught up: no message of ours says so)."""
        moved = False
        if self.upstream is not None:
            seen = self.upstream.version
            await self._check_upstream([])
            moved = self.upstream.version != seen
        return moved or bool(self._deferred) or self._again

    async def process(self, records: list[ConsumerRecord], *, idle: bool = False) -> None:
        """Validate, dedupe, handle and store one batch; publish what it emitted.

        idle: no records, the handler runs with none (see _work_without_input)."""
        started = time.perf_counter()
        BATCH_SIZE.labels(self.service).observe(len(records))
        valid, dead = self._validate(records)
        if self.gate is not None:
            await self._feed_gate(valid)
        if self.upstream is not None and not idle:
            await self._check_upstream(valid)
        checked = time.perf_counter()
        await self._store_with_retry(valid, dead, idle)
        stored = time.perf_counter()
        await self._publish_with_retry()
        LAST_EVENT_TIMESTAMP.labels(self.service).set(time.time())
        elapsed = time.perf_counter() - started
        BATCH_SECONDS.labels(self.service).observe(elapsed)
        timings = {"records": len(records), "valid": len(valid), "dead": len(dead), "deferred": len(self._deferred),
                   "seconds": round(elapsed, 4), "gates_seconds": round(checked - started, 4),
                   "store_seconds": round(stored - checked, 4), "publish_seconds": round(elapsed - (stored - started), 4)}
        if elapsed > self.settings.slow_batch_seconds:  # the operator's first clue when a consumer falls behind
            log.warning("slow_batch", **timings)
        else:
            log.debug("batch_stored", **timings)

    def _validate(self, records: list[ConsumerRecord]) -> tuple[list[tuple[ConsumerRecord, Event]], list[DeadLetter]]:
        valid: list[tuple[ConsumerRecord, Event]] = []
        dead: list[DeadLetter] = []
        for rec in records:
            EVENTS_CONSUMED.labels(self.service, rec.topic).inc()
            key = decode_text(rec.key) if rec.key is not None else None
            try:
                event = parse_event(rec.value)
                topic = self.topics[rec.topic]
                if not topic.carries(event.type):
                    raise EventError(f"event type {event.type} does not travel on {rec.topic}")
                if key is not None and key != event.subject:
                    raise EventError(f"message key {key!r} differs from subject {event.subject!r} (contract §3)")
            except EventError as exc:
                dead.append(self._dead_letter(rec, key, exc.reason))
                continue
            valid.append((rec, event))
        return valid, dead

    async def _feed_gate(self, valid: list[tuple[ConsumerRecord, Event]]) -> None:
        """The last event time read per gated partition, and its lag after this batch."""
        assert self.consumer is not None and self.gate is not None
        for rec, event in valid:
            if rec.topic in self.gated:
                self.gate.note(rec.topic, rec.partition, event.time)
        assigned = [tp for tp in self.consumer.assignment() if tp.topic in self.gated]
        for tp in assigned:  # getmany already moved the position past the batch
            self.gate.set_lag(tp.topic, tp.partition, await self._lag(tp))
        self.gate.forget((tp.topic, tp.partition) for tp in assigned)

    async def _check_upstream(self, valid: list[tuple[ConsumerRecord, Event]]) -> None:
        """Note what we read of the upstream's input; ask for its commits, then for fresh end offsets of
        its output (after the commits: what it published before committing is then counted as unread)."""
        assert self.consumer is not None and self.admin is not None and self.upstream is not None
        upstream = self.upstream
        for rec, event in valid:
            if rec.topic in upstream.reads:
                upstream.note(rec.topic, rec.partition, rec.offset, event.time)
        assigned = self.consumer.assignment()
        reads = [tp for tp in assigned if tp.topic in upstream.reads]
        outputs = [tp for tp in assigned if tp.topic in upstream.outputs]
        try:
            if reads:
                if self._upstream_coordinator is None:
                    self._upstream_coordinator = await self.admin.find_coordinator(upstream.group_id)
                offsets = await self.admin.list_consumer_group_offsets(
                    upstream.group_id, self._upstream_coordinator, partitions=reads)
                upstream.set_committed({(tp.topic, tp.partition): (offsets[tp].offset if tp in offsets else None)
                                        for tp in reads})
            if outputs and self.gate is not None:
                # Tansu reports the end as the last batch's base offset + 1 (README): take the larger
                # of that and the last fetch's high watermark.
                ends = await self.consumer.end_offsets(outputs)
                for tp in outputs:
                    self.gate.set_lag(tp.topic, tp.partition, await self._lag(tp, ends.get(tp, 0)))
        except KafkaError as exc:  # no fresh news: the last known commits stand, liveness covers a long outage
            ERRORS.labels(self.service, "broker").inc()
            self._upstream_coordinator = None
            log.warning("upstream_check_failed", upstream=upstream.group_id, error=str(exc))

    def _dead_letter(self, rec: ConsumerRecord, key: str | None, reason: str) -> DeadLetter:
        EVENTS_DEADLETTERED.labels(self.service, rec.topic).inc()
        log.warning("dead_lettered", topic=rec.topic, partition=rec.partition, offset=rec.offset, reason=reason)
        return DeadLetter(rec.topic, rec.partition, rec.offset, key, decode_text(rec.value), reason, self.service)

    async def _store_with_retry(self, valid: list[tuple[ConsumerRecord, Event]], dead: list[DeadLetter],
                                idle: bool = False) -> None:
        delay = 0.2
        while True:
            try:
                return await self._store(valid, dead, idle)
            except _Duplicate:
                log.info("batch_raced_duplicate_retrying")
            except Exception as exc:
                if not is_transient(exc):
                    raise
                ERRORS.labels(self.service, "database").inc()
                self.health.set("consumer", False)
                log.warning("database_unavailable_retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _store(self, valid: list[tuple[ConsumerRecord, Event]], dead: list[DeadLetter],
                     idle: bool = False) -> None:
        if self.handles is not None:
            valid = [(rec, ev) for rec, ev in valid if ev.type in self.handles]
        offered = self._deferred + valid
        # Deferred events were new when first offered and are not recorded since: ask only for the batch.
        seen = await inbox.already_handled(self.db, (ev.id for _, ev in valid if ev.type not in self.idempotent))
        fresh: list[tuple[ConsumerRecord, Event]] = []
        fresh_ids: set[str] = set()
        for rec, event in offered:
            if event.id in seen or event.id in fresh_ids:
                EVENTS_DUPLICATE.labels(self.service, rec.topic).inc()
                continue
            fresh_ids.add(event.id)
            fresh.append((rec, event))
        letters = [self._letter_entry(d) for d in dead]
        effects = Effects()
        started = time.perf_counter()
        try:
            if fresh or idle:
                await self.handler.handle([ev for _, ev in fresh], effects)
        except Exception as exc:
            if is_transient(exc):
                raise
            ERRORS.labels(self.service, "handler").inc()
            log.error("handler_failed_isolating", error=repr(exc), batch=len(fresh))
            await self._store_one_by_one(fresh, letters)
            return
        finally:
            HANDLER_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        self._deferred = await self._store_effects(fresh, effects, letters)

    async def _store_one_by_one(self, fresh: list[tuple[ConsumerRecord, Event]], letters: list[OutboxEntry]) -> None:
        """After a handler bug: each event alone, stored before the next is decided, so only the culprit is refused."""
        if letters:
            await self._store_effects([], Effects(), letters)
        deferred: list[tuple[ConsumerRecord, Event]] = []
        for rec, event in fresh:
            effects = Effects()
            try:
                await self.handler.handle([event], effects)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error("handler_failed", event_id=event.id, error=repr(exc))
                effects = Effects()
                effects.reject(event, f"handler error: {exc!r}")
            deferred += await self._store_effects([(rec, event)], effects, [])
        self._deferred = deferred

    async def _store_effects(self, fresh: list[tuple[ConsumerRecord, Event]], effects: Effects,
                             extra_entries: list[OutboxEntry]) -> list[tuple[ConsumerRecord, Event]]:
        """Store in one transaction; returns the events the handler deferred (not recorded as handled)."""
        deferred = [(rec, ev) for rec, ev in fresh if ev.id in effects.deferred]
        fresh = [(rec, ev) for rec, ev in fresh if ev.id not in effects.deferred]
        entries = extra_entries + self._entries_for(fresh, effects)
        writes = dict(effects.writes)
        writes[inbox.COLLECTION] = [inbox.record(ev.id, rec.topic) for rec, ev in fresh if ev.type not in self.idempotent]
        writes[OUTBOX_COLLECTION] = [e.upsert() for e in entries]
        try:
            await write_in_transaction(self.client, self.db, writes)
        except Exception as exc:
            if is_duplicate_key(exc):
                raise _Duplicate() from exc
            raise
        self.outbox.stored(entries)
        self._again = effects.again
        return deferred

    def _entries_for(self, fresh: list[tuple[ConsumerRecord, Event]], effects: Effects) -> list[OutboxEntry]:
        entries = []
        for topic, event in effects.emitted:
            name = self.settings.topic(topic.suffix)
            entries.append(self.outbox.entry(f"{name}:{event.id}", name, event.subject, event.to_bytes()))
        for rec, event in fresh:
            reason = effects.rejected.get(event.id)
            if reason is not None:
                key = decode_text(rec.key) if rec.key is not None else None
                entries.append(self._letter_entry(self._dead_letter(rec, key, reason)))
        return entries

    def _letter_entry(self, letter: DeadLetter) -> OutboxEntry:
        return self.outbox.entry(letter.entry_id, self.deadletter_topic, letter.key, letter.to_json())

    async def _publish_with_retry(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.outbox.flush()
                self.health.set("consumer", True)
                return
            except Exception as exc:
                ERRORS.labels(self.service, "broker").inc()
                self.health.set("consumer", False)
                log.warning("publish_failed_retrying", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _commit(self, records: list[ConsumerRecord]) -> None:
        assert self.consumer is not None
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            self._read_end[tp] = max(self._read_end.get(tp, 0), rec.offset + 1)
        first_deferred: dict[TopicPartition, int] = {}
        for rec, _ in self._deferred:  # never past a deferred event: a restart must read it again
            tp = TopicPartition(rec.topic, rec.partition)
            first_deferred[tp] = min(first_deferred.get(tp, rec.offset), rec.offset)
        offsets: dict[TopicPartition, int] = {}
        for tp, end in list(self._read_end.items()):
            target = min(end, first_deferred.get(tp, end))
            if target > self._committed_to.get(tp, -1):
                offsets[tp] = target
            if target == end:
                del self._read_end[tp]
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self._committed_to.update(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance moved the partition: the new owner re-reads the batch and the inbox drops it.
            ERRORS.labels(self.service, "commit").inc()
            log.warning("commit_failed", error=str(exc))

    async def _update_lag(self) -> None:
        assert self.consumer is not None
        total = 0
        for tp in self.consumer.assignment():
            lag = await self._lag(tp)
            if lag is None:
                continue
            total += lag
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(lag)
        self.health.set("consumer", total <= self.ready_max_lag)

    async def _lag(self, tp: TopicPartition, end: int | None = None) -> int | None:
        """Messages after our position, by the last fetch's high watermark (Tansu under-reports
        end offsets: README) or `end` when that is later; None when neither is known yet."""
        assert self.consumer is not None
        highwater = self.consumer.highwater(tp)
        if highwater is None and end is None:
            return None
        return max(max(highwater or 0, end or 0) - await self.consumer.position(tp), 0)
