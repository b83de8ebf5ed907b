"""Shared fixtures: a private embedded broker and database for the integration tests.

One Tansu and one SecantusDB per test session, on free ports, never the ones
`make up` uses. Each test gets its own topic prefix and database prefix, so
tests cannot see each other's messages or state (style.md: unique topic
names per test run).
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

# Tokens in tests are HS256 with a per-session secret (the embedded profile's scheme).
os.environ.setdefault("ECC_JWT_ALG", "HS256")
os.environ.setdefault("ECC_JWT_SECRET", secrets.token_hex(32))

from shared.config import Settings  # noqa: E402


@dataclass
class EmbeddedStack:
    broker_port: int
    mongo_port: int
    workdir: Path
    broker: object
    mongo: object

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/?directConnection=true&retryWrites=false"

    def pause_broker(self) -> None:
        """Freeze the broker (SIGSTOP): clients see an unreachable broker, and no data is lost.

        A Tansu restart would lose every topic (memory storage), which is not what a production
        outage does, so outage tests freeze the process instead of killing it.
        """
        import signal
        os.kill(self.broker.pid, signal.SIGSTOP)

    def resume_broker(self) -> None:
        import signal
        os.kill(self.broker.pid, signal.SIGCONT)

    def stop_broker(self) -> None:
        from tools import stack
        stack.stop(self.broker)

    def start_broker(self) -> None:
        from tools import stack
        self.broker = stack.start_broker(self.broker_port, self.workdir / "broker.log")

    def stop_mongo(self) -> None:
        from tools import stack
        stack.stop(self.mongo)

    def start_mongo(self) -> None:
        from tools import stack
        self.mongo = stack.start_mongo(self.mongo_port, self.workdir / "mongo-data", self.workdir / "mongo.log")


@pytest.fixture(scope="session")
def embedded() -> EmbeddedStack:
    from tools import stack
    workdir = Path(tempfile.mkdtemp(prefix="ecc-test-"))
    broker_port, mongo_port = stack.free_port(), stack.free_port()
    broker = stack.start_broker(broker_port, workdir / "broker.log")
    mongo = stack.start_mongo(mongo_port, workdir / "mongo-data", workdir / "mongo.log")
    env = EmbeddedStack(broker_port, mongo_port, workdir, broker, mongo)
    yield env
    stack.stop(env.broker)
    stack.stop(env.mongo)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def settings(embedded: EmbeddedStack) -> Settings:
    """Settings for one test: private topics (created here) and private databases."""
    from tools import stack
    run = uuid.uuid4().hex[:8]
    base = Settings.from_env()
    test_settings = replace(
        base, kafka_bootstrap=embedded.bootstrap, mongo_url=embedded.mongo_url,
        topic_prefix=f"t{run}.", mongo_db_prefix=f"t{run}_", partitions=3,
        http_port_override=stack.free_port(), batch_timeout_ms=50,
    )
    await stack.acreate_topics(test_settings.kafka_bootstrap, test_settings.topic_prefix, test_settings.partitions)
    return test_settings


async def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """Poll an (async or sync) predicate until it is truthy; fail the test with `what` otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
