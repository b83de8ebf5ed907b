"""The inbox: event ids a service has handled, with a unique index (the _id).

A batch's ids are inserted in the same transaction as its effects. A
redelivered event is found here and dropped before the handler sees it.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

COLLECTION = "inbox"


async def already_handled(db: AsyncDatabase, event_ids: Iterable[str]) -> set[str]:
    ids = list(set(event_ids))
    if not ids:
        return set()
    cursor = db[COLLECTION].find({"_id": {"$in": ids}}, {"_id": 1})
    return {doc["_id"] async for doc in cursor}


def record(event_id: str, topic: str) -> InsertOne:
    # InsertOne, not upsert: a concurrent duplicate must fail the transaction, not apply twice.
    return InsertOne({"_id": event_id, "topic": topic, "handled_at": datetime.now(UTC)})
