"""MongoDB access: one async client per process, transactions for a batch's effects."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from shared.config import Settings


def connect(settings: Settings, app_name: str) -> AsyncMongoClient:
    # A short server-selection timeout turns "database down" into a fast, retryable error.
    return AsyncMongoClient(settings.mongo_url, appname=f"ecc-{app_name}", serverSelectionTimeoutMS=5000, tz_aware=True)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying forever (the database is away), not bugs or bad data."""
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure):
        return exc.has_error_label("TransientTransactionError") or exc.has_error_label("RetryableWriteError")
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")


async def write_in_transaction(
    client: AsyncMongoClient, db: AsyncDatabase, writes: Mapping[str, Sequence[Any]],
) -> None:
    """Apply every collection's write ops in one multi-document transaction.

    One bulk_write per collection inside the transaction: the batch's effects,
    its inbox ids and its outbox entries commit together or not at all.
    """
    if not any(writes.values()):
        return
    async with client.start_session() as session:
        async with await session.start_transaction():
            await _apply(db, writes, session)


async def _apply(db: AsyncDatabase, writes: Mapping[str, Sequence[Any]], session: AsyncClientSession) -> None:
    for collection, ops in writes.items():
        if ops:
            await db[collection].bulk_write(list(ops), ordered=True, session=session)
