"""One service process: database, producer, outbox relay, consumers and the HTTP API in one event loop.

Start-up never gives up: a database or broker that is not there yet is
waited for (readiness stays false and says why), so `make up` order and
production restarts need no special care.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared.config import Settings
from shared.logging import configure_logging, get_logger
from shared.metrics import ERRORS
from shared.runtime.consumer import BatchHandler, ConsumerRuntime
from shared.runtime.health import Health
from shared.runtime.mongo import connect
from shared.runtime.outbox import Outbox
from shared.runtime.producer import make_producer
from shared.topics import Topic

log = get_logger()


async def retry_forever(what: str, service: str, attempt: Callable[[], Awaitable[object]],
                        stop: asyncio.Event, first_delay: float = 0.5) -> bool:
    """Run `attempt` until it succeeds or stop is set; returns False when stopped first."""
    delay = first_delay
    while not stop.is_set():
        try:
            await attempt()
            return True
        except Exception as exc:
            ERRORS.labels(service, what).inc()
            log.warning(f"{what}_unavailable", error=str(exc) or repr(exc), retry_in=delay)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 10.0)
    return False


class ServiceProcess:
    def __init__(self, name: str, settings: Settings | None = None):
        self.name = name
        self.settings = settings or Settings.from_env()
        configure_logging(name, self.settings.log_level)
        self.health = Health(name)
        self.health.register("database")
        self.health.register("broker")
        self.client = connect(self.settings, name)
        self.db = self.client[self.settings.database(name)]
        # Built on connect: aiokafka needs a running event loop to construct a producer.
        self.producer: AIOKafkaProducer | None = None
        self.outbox = Outbox(self.db, None, name)
        self.stop = asyncio.Event()
        self.consumers: list[ConsumerRuntime] = []
        self._on_database_ready: list[Callable[[], Awaitable[object]]] = []

    def consume(self, topics: Sequence[Topic], handler: BatchHandler, **options: object) -> ConsumerRuntime:
        runtime = ConsumerRuntime(
            service=self.name, settings=self.settings, topics=topics, handler=handler,
            client=self.client, db=self.db, outbox=self.outbox, health=self.health, **options,  # type: ignore[arg-type]
        )
        self.consumers.append(runtime)
        return runtime

    def on_database_ready(self, setup: Callable[[], Awaitable[object]]) -> None:
        """Index creation and state loading, run once the database answers, before consumers start."""
        self._on_database_ready.append(setup)

    async def _connect_database(self) -> None:
        await self.client.admin.command("ping")
        await self.outbox.ensure_indexes()
        for setup in self._on_database_ready:
            await setup()
        self.health.set("database", True)

    async def _connect_broker(self) -> None:
        producer = make_producer(self.settings)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer
        self.outbox.attach(producer)
        self.health.set("broker", True)

    async def _run_consumer(self, runtime: ConsumerRuntime) -> None:
        if await retry_forever("consumer", self.name, runtime.start, self.stop):
            log.info("consumer_started", group=runtime.group_id, topics=sorted(runtime.topics))
            await runtime.run(self.stop)

    async def _background(self, extra: Sequence[Callable[[asyncio.Event], Awaitable[object]]]) -> None:
        if not await retry_forever("database", self.name, self._connect_database, self.stop):
            return
        if not await retry_forever("broker", self.name, self._connect_broker, self.stop):
            return
        log.info("service_connected", database=self.db.name, broker=self.settings.kafka_bootstrap)
        tasks = [asyncio.create_task(self.outbox.run_relay(self.stop), name="outbox-relay")]
        tasks += [asyncio.create_task(self._run_consumer(c), name=f"consumer-{c.group_id}") for c in self.consumers]
        tasks += [asyncio.create_task(job(self.stop), name=getattr(job, "__name__", "job")) for job in extra]
        try:
            await asyncio.gather(*tasks)
        except Exception:
            log.exception("service_task_crashed")
            self.stop.set()
            raise

    async def serve(self, app: FastAPI, extra: Sequence[Callable[[asyncio.Event], Awaitable[object]]] = (),
                    install_signals: bool = True) -> None:
        """Serve HTTP and run everything else until SIGTERM/SIGINT (or `stop`), then shut down in order."""
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop.set)
        config = uvicorn.Config(
            app, host=self.settings.http_host, port=self.settings.http_port(self.name),
            log_config=None, access_log=False, lifespan="on",
        )
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        http = asyncio.create_task(server.serve(), name="http")
        background = asyncio.create_task(self._background(extra), name="background")
        log.info("service_starting", port=config.port)
        stopper = asyncio.create_task(self.stop.wait())
        await asyncio.wait({stopper, http, background}, return_when=asyncio.FIRST_COMPLETED)
        self.stop.set()
        log.info("service_stopping")
        try:
            await asyncio.wait_for(background, timeout=15)
        except (TimeoutError, Exception) as exc:
            if not isinstance(exc, TimeoutError):
                log.error("background_failed", error=repr(exc))
            background.cancel()
        for runtime in self.consumers:
            await runtime.stop()
        try:
            await asyncio.wait_for(self.outbox.flush(), timeout=5)
        except Exception as exc:
            log.warning("outbox_not_flushed_on_stop", error=str(exc), pending=self.outbox.pending_count)
        if self.producer is not None:
            await self.producer.stop()
        server.should_exit = True
        await http
        await self.client.close()
        log.info("service_stopped")
