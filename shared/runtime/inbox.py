"""The inbox: event ids a service has handled, with a unique index (the _id).

A batch's ids are inserted in the same transaction as its effects. A
redelivered event is found here and dropped before the handler sees it.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pymongo import InsertOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.runtime.mongo import find_in

COLLECTION = "inbox"


async def already_handled(db: AsyncDatabase, event_ids: Iterable[str]) -> set[str]:
    # In chunks (find_in): one `$in` of a whole 2,000-event batch takes SecantusDB seconds (README).
    return {doc["_id"] for doc in await find_in(db[COLLECTION], "_id", event_ids, {"_id": 1})}


def record(event_id: str, topic: str) -> InsertOne:
    # InsertOne, not upsert: a concurrent duplicate must fail the transaction, not apply twice.
    return InsertOne({"_id": event_id, "topic": topic, "handled_at": datetime.now(UTC)})
