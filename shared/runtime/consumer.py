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
from shared.runtime.alignment import InputGate
from shared.runtime.deadletter import DeadLetter, decode_text
from shared.runtime.effects import Effects
from shared.runtime.health import Health
from shared.runtime.mongo import is_duplicate_key, is_transient, write_in_transaction
from shared.runtime.outbox import COLLECTION as OUTBOX_COLLECTION
from shared.runtime.outbox import Outbox, OutboxEntry
from shared.topics import DEADLETTER, Topic

log = get_logger()


class BatchHandler(Protocol):
    """A service's decisions for a batch of new (never handled) events, in consumed order."""

    async def handle(self, events: list[Event], effects: Effects) -> None: ...


class _Duplicate(Exception):
    """Another consumer stored one of the batch's ids first; redo the batch."""


class ConsumerRuntime:
    def __init__(
        self, *, service: str, settings: Settings, topics: Sequence[Topic], handler: BatchHandler,
        client: AsyncMongoClient, db: AsyncDatabase, outbox: Outbox, health: Health,
        group_id: str | None = None, ready_max_lag: int = 1000,
        gate: InputGate | None = None, gated: Sequence[Topic] = (),
    ):
        """gate/gated: watermark alignment (shared/runtime/alignment.py): the runtime tells `gate`
        the event time of every valid message of a `gated` topic and, before each batch is
        handled, each gated partition's lag."""
        self.service = service
        self.settings = settings
        self.topics = {settings.topic(t.suffix): t for t in topics}
        self.handler = handler
        self.client = client
        self.db = db
        self.outbox = outbox
        self.health = health
        self.group_id = group_id or f"ecc-{service}"
        self.ready_max_lag = ready_max_lag
        self.gate = gate
        self.gated = frozenset(settings.topic(t.suffix) for t in gated)
        if gated and gate is None:
            raise ValueError("gated topics need a gate")
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

    async def stop(self) -> None:
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
            await self._update_lag()

    async def process(self, records: list[ConsumerRecord]) -> None:
        """Validate, dedupe, handle and store one batch; publish what it emitted."""
        started = time.perf_counter()
        BATCH_SIZE.labels(self.service).observe(len(records))
        valid, dead = self._validate(records)
        if self.gate is not None:
            await self._feed_gate(valid)
        await self._store_with_retry(valid, dead)
        await self._publish_with_retry()
        LAST_EVENT_TIMESTAMP.labels(self.service).set(time.time())
        elapsed = time.perf_counter() - started
        BATCH_SECONDS.labels(self.service).observe(elapsed)
        log.debug("batch_stored", records=len(records), valid=len(valid), dead=len(dead), seconds=round(elapsed, 4))

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

    def _dead_letter(self, rec: ConsumerRecord, key: str | None, reason: str) -> DeadLetter:
        EVENTS_DEADLETTERED.labels(self.service, rec.topic).inc()
        log.warning("dead_lettered", topic=rec.topic, partition=rec.partition, offset=rec.offset, reason=reason)
        return DeadLetter(rec.topic, rec.partition, rec.offset, key, decode_text(rec.value), reason, self.service)

    async def _store_with_retry(self, valid: list[tuple[ConsumerRecord, Event]], dead: list[DeadLetter]) -> None:
        delay = 0.2
        while True:
            try:
                return await self._store(valid, dead)
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

    async def _store(self, valid: list[tuple[ConsumerRecord, Event]], dead: list[DeadLetter]) -> None:
        seen = await inbox.already_handled(self.db, (ev.id for _, ev in valid))
        fresh: list[tuple[ConsumerRecord, Event]] = []
        fresh_ids: set[str] = set()
        for rec, event in valid:
            if event.id in seen or event.id in fresh_ids:
                EVENTS_DUPLICATE.labels(self.service, rec.topic).inc()
                continue
            fresh_ids.add(event.id)
            fresh.append((rec, event))
        letters = [self._letter_entry(d) for d in dead]
        effects = Effects()
        started = time.perf_counter()
        try:
            if fresh:
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
        await self._store_effects(fresh, effects, letters)

    async def _store_one_by_one(self, fresh: list[tuple[ConsumerRecord, Event]], letters: list[OutboxEntry]) -> None:
        """After a handler bug: each event alone, stored before the next is decided, so only the culprit is refused."""
        if letters:
            await self._store_effects([], Effects(), letters)
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
            await self._store_effects([(rec, event)], effects, [])

    async def _store_effects(self, fresh: list[tuple[ConsumerRecord, Event]], effects: Effects,
                             extra_entries: list[OutboxEntry]) -> None:
        entries = extra_entries + self._entries_for(fresh, effects)
        writes = dict(effects.writes)
        writes[inbox.COLLECTION] = [inbox.record(ev.id, rec.topic) for rec, ev in fresh]
        writes[OUTBOX_COLLECTION] = [e.upsert() for e in entries]
        try:
            await write_in_transaction(self.client, self.db, writes)
        except Exception as exc:
            if is_duplicate_key(exc):
                raise _Duplicate() from exc
            raise
        self.outbox.stored(entries)

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
        offsets: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        try:
            await self.consumer.commit(offsets)
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

    async def _lag(self, tp: TopicPartition) -> int | None:
        """Messages after our position, by the last fetch's high watermark (Tansu under-reports
        end offsets: README); None before the first fetch of the partition."""
        assert self.consumer is not None
        highwater = self.consumer.highwater(tp)
        return None if highwater is None else max(highwater - await self.consumer.position(tp), 0)
