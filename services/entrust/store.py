"""entrust's MongoDB state, beside the deadline book's `deadlines`, `alerts` and `clock`.

- `entrusts`: one document per entrust id (direction, case, counterpart court, state,
  history of applied events), written by the handler only.
- `supervision`: one document per supervision item (level, team, due_on, state, reply).
- `submissions`: what the POST endpoints accepted, keyed by event id, stored in one
  transaction with its outbox entry (a 2xx answer means it will reach ecc.entrust.events).
  The API judges a new submission on the state the handler stored plus the
  submissions it has not applied yet, so two quick POSTs in a row are judged in order.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.config import Settings
from shared.contract.envelope import Event, parse_event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in
from shared.runtime.outbox import COLLECTION as OUTBOX, Outbox
from shared.topics import ENTRUST_EVENTS

ENTRUSTS = "entrusts"
SUPERVISION = "supervision"
SUBMISSIONS = "submissions"
COLLECTION_OF = {"entrust": ENTRUSTS, "supervision": SUPERVISION}




@dataclass(frozen=True)
class Submitted:
    outcome: str  # created | repeat | conflict | refused
    event_id: str
    refusal: Any = None  # rules.Refusal when refused
    state: str | None = None  # the id's state once this event is applied (as judged now)


class EntrustStore:
    def __init__(self, db: AsyncDatabase, book: DeadlineBook, client: AsyncMongoClient | None = None,
                 outbox: Outbox | None = None, settings: Settings | None = None):
        self.db = db
        self.book = book
        self.client = client
        self.outbox = outbox
        self.topic = settings.topic(ENTRUST_EVENTS.suffix) if settings is not None else None

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        await self.db[ENTRUSTS].create_index([("direction", ASCENDING), ("state", ASCENDING)])
        await self.db[ENTRUSTS].create_index([("case_no", ASCENDING)])
        await self.db[SUPERVISION].create_index([("case_no", ASCENDING)])
        await self.db[SUPERVISION].create_index([("to_team", ASCENDING), ("state", ASCENDING)])
        await self.db[SUBMISSIONS].create_index([("subject", ASCENDING), ("seq", ASCENDING)])

    # -- the handler's reads and writes ------------------------------------------------

    async def load(self, entity: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc for doc in await find_in(self.db[COLLECTION_OF[entity]], "_id", ids)}

    @staticmethod
    def write(effects: Effects, entity: str, states: list[dict[str, Any]]) -> None:
        """One op per changed document; the version filter turns a concurrent writer into a batch retry."""
        ops = []
        for state in sorted(states, key=lambda s: s["_id"]):
            old = state.get("v")
            state["v"] = (old or 0) + 1
            if old is None:
                ops.append(InsertOne(state))
            else:
                ops.append(ReplaceOne({"_id": state["_id"], "v": old}, state, upsert=True))
        if ops:
            effects.write(COLLECTION_OF[entity], *ops)

    # -- the API's submissions ----------------------------------------------------------

    async def submit(self, entity: str, event: Event, fingerprint: str, judge) -> Submitted:
        """Store `event` with its outbox entry unless it repeats, conflicts or `judge` refuses it.

        judge(state, pending_events, event) -> (Refusal | None, state name after it), with the
        stored state of the id and the submissions not applied to it yet (oldest first).
        """
        assert self.client is not None and self.outbox is not None and self.topic is not None
        for _attempt in range(5):
            try:
                return await self._submit_once(entity, event, fingerprint, judge)
            except (DuplicateKeyError, BulkWriteError) as exc:
                if isinstance(exc, BulkWriteError) and not all(
                        e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        return await self._submit_once(entity, event, fingerprint, judge)

    async def _submit_once(self, entity: str, event: Event, fingerprint: str, judge) -> Submitted:
        assert self.client is not None and self.outbox is not None and self.topic is not None
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                known = await self.db[SUBMISSIONS].find_one({"_id": event.id}, session=session)
                if known is not None:
                    outcome = "repeat" if known["fingerprint"] == fingerprint else "conflict"
                    return Submitted(outcome, event.id)
                state = await self.db[COLLECTION_OF[entity]].find_one({"_id": event.subject}, session=session)
                applied = {h["id"] for h in (state or {}).get("history", [])}
                pending = [parse_event(doc["event"]) async for doc in self.db[SUBMISSIONS].find(
                    {"subject": event.subject, "entity": entity}, session=session).sort("seq", ASCENDING)
                    if doc["_id"] not in applied]
                refusal, after = judge(state, pending, event)
                if refusal is not None:
                    return Submitted("refused", event.id, refusal)
                wire = event.to_bytes().decode()
                entry = self.outbox.entry(f"{self.topic}:{event.id}", self.topic, event.subject, wire)
                await self.db[SUBMISSIONS].insert_one({
                    "_id": event.id, "entity": entity, "subject": event.subject, "type": event.type,
                    "fingerprint": fingerprint, "event": wire, "seq": entry.seq, "received_at": datetime.now(UTC),
                }, session=session)
                await self.db[OUTBOX].bulk_write([entry.upsert()], session=session)
        self.outbox.stored([entry])
        return Submitted("created", event.id, state=after)

    # -- the API's reads ---------------------------------------------------------------------

    async def pending(self, entity: str, the_id: str) -> tuple[dict[str, Any] | None, list[Event]]:
        """The stored state of an id and the submissions not applied to it yet (oldest first)."""
        state = await self.db[COLLECTION_OF[entity]].find_one({"_id": the_id})
        applied = {h["id"] for h in (state or {}).get("history", [])}
        cursor = self.db[SUBMISSIONS].find({"subject": the_id, "entity": entity}).sort("seq", ASCENDING)
        return state, [parse_event(doc["event"]) async for doc in cursor if doc["_id"] not in applied]

    async def entrust(self, entrust_id: str) -> dict[str, Any] | None:
        return await self.db[ENTRUSTS].find_one({"_id": entrust_id})

    async def item(self, item_id: str) -> dict[str, Any] | None:
        return await self.db[SUPERVISION].find_one({"_id": item_id})

    async def entrusts(self, *, direction: str | None, state: str | None, case_no: str | None,
                       limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        for name, value in (("direction", direction), ("state", state), ("case_no", case_no)):
            if value is not None:
                query[name] = value
        total = await self.db[ENTRUSTS].count_documents(query)
        cursor = self.db[ENTRUSTS].find(query).sort([("opened_at", DESCENDING), ("_id", ASCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(length=limit), total

    async def items(self, *, state: str | None, level: str | None, team: str | None, case_no: str | None,
                    limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {}
        for name, value in (("state", state), ("level", level), ("to_team", team), ("case_no", case_no)):
            if value is not None:
                query[name] = value
        total = await self.db[SUPERVISION].count_documents(query)
        cursor = self.db[SUPERVISION].find(query).sort([("issued_at", DESCENDING), ("_id", ASCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(length=limit), total

    async def items_of_case(self, case_no: str) -> list[dict[str, Any]]:
        return await self.db[SUPERVISION].find({"case_no": case_no}).to_list(length=None)

    async def deadlines_of(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d for d in await find_in(self.book.deadlines, "_id", keys)}
