"""Run services in-process against the embedded stack, and read/write topics, for integration tests."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.config import Settings
from shared.contract.envelope import Event
from shared.runtime.service import ServiceProcess
from shared.security import mint_token
from shared.topics import Topic


def token(role: str = "operator", sub: str = "tester", team: str | None = None) -> str:
    return mint_token(sub, [role], team=team)


def auth(role: str = "operator", team: str | None = None, sub: str = "tester") -> dict[str, str]:
    if role == "case_handler" and team is None:
        team = "quick"
    return {"Authorization": f"Bearer {token(role, sub=sub, team=team)}"}


@contextlib.asynccontextmanager
async def running(process: ServiceProcess, app: Any, extra=(), ready_timeout: float = 30.0) -> AsyncIterator[httpx.AsyncClient]:
    """Serve `process` in this event loop; yield an HTTP client once /readyz answers 200."""
    task = asyncio.create_task(process.serve(app, extra=extra, install_signals=False))
    base = f"http://127.0.0.1:{process.settings.http_port(process.name)}"
    async with httpx.AsyncClient(base_url=base, timeout=15) as client:
        try:
            deadline = asyncio.get_running_loop().time() + ready_timeout
            while True:
                if task.done():
                    task.result()
                    raise AssertionError("service stopped before it was ready")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{process.name} not ready after {ready_timeout}s")
                await asyncio.sleep(0.1)
            yield client
        finally:
            process.stop.set()
            await asyncio.wait_for(task, timeout=30)


async def read_topic(settings: Settings, topic: Topic, *, min_count: int = 0, quiet_seconds: float = 1.0,
                     timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every message on a topic from the beginning (no consumer group), as decoded JSON values with key."""
    name = settings.topic(topic.suffix)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(name) or set()
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_new = loop.time()
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                for rec in recs:
                    out.append({"key": rec.key.decode() if rec.key else None, "partition": rec.partition,
                                "offset": rec.offset, "value": json.loads(rec.value)})
                    last_new = loop.time()
            now = loop.time()
            if len(out) >= min_count and now - last_new >= quiet_seconds:
                return out
            if now > deadline:
                if len(out) >= min_count:
                    return out
                raise AssertionError(f"{name}: {len(out)} messages, wanted {min_count} within {timeout}s")
    finally:
        await consumer.stop()


async def publish(settings: Settings, topic: Topic, messages: list[Event | tuple[str | None, bytes]]) -> None:
    """Publish events (keyed by subject) or raw (key, value) pairs, and wait for acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        name = settings.topic(topic.suffix)
        futures = []
        for message in messages:
            if isinstance(message, Event):
                key, value = message.subject.encode(), message.to_bytes()
            else:
                key = message[0].encode() if message[0] is not None else None
                value = message[1]
            futures.append(await producer.send(name, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def of_type(messages: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["value"].get("type") == event_type]


Check = Callable[[], Any]
