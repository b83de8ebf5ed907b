"""oncall's MongoDB state (database `<prefix>oncall`), the system of record of every decision.

- `alerts`: one document per alert id (from ecc.alerts or Alertmanager): open/resolved, its
  notification.
- `groups`: one per group key (rule:severity:team): the live notification and a generation
  counter, so a group's notification ids are deterministic (`<group key>:<generation>`).
- `notifications`: the grouped notification: state open/acknowledged/closed, counts, who was
  notified, `next_action_at` (the durable timer the dispatcher polls: send or escalate).
- `deliveries`: one per (notification, step, person, channel), deterministic id, with its attempts;
  written in the same transaction as the step that made it (an outbox for people).
- `roster_changes`: overrides (顶班) and swaps (换班) made through the API.

Every changed document carries a version `v`; a write expects the version it read, so two writers
(the consumer, the webhook, the dispatcher, an ack) never overwrite each other: the loser retries.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.oncall.policy import OncallPolicy
from services.oncall.rules import Ledger, group_key
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in, is_duplicate_key, write_in_transaction

ALERTS = "alerts"
GROUPS = "groups"
NOTIFICATIONS = "notifications"
DELIVERIES = "deliveries"
ROSTER_CHANGES = "roster_changes"

T = TypeVar("T")


class Conflict(Exception):
    """Another writer changed a document first (version or id taken); redo with fresh state."""


def versioned(docs: list[dict[str, Any]]) -> list[Any]:
    """InsertOne for a new document, else ReplaceOne expecting the version read (a race: duplicate key)."""
    ops: list[Any] = []
    for doc in docs:
        old = doc.get("v")
        doc = {**doc, "v": (old or 0) + 1}
        ops.append(InsertOne(doc) if old is None else ReplaceOne({"_id": doc["_id"], "v": old}, doc, upsert=True))
    return ops


class OncallStore:
    def __init__(self, db: AsyncDatabase, client: AsyncMongoClient):
        self.db = db
        self.client = client

    async def ensure_indexes(self) -> None:
        await self.db[NOTIFICATIONS].create_index([("next_action_at", ASCENDING)])
        await self.db[NOTIFICATIONS].create_index([("state", ASCENDING), ("created_at", DESCENDING)])
        await self.db[NOTIFICATIONS].create_index([("created_at", DESCENDING)])
        await self.db[DELIVERIES].create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.db[DELIVERIES].create_index([("notification_id", ASCENDING)])
        await self.db[ALERTS].create_index([("notification_id", ASCENDING)])

    # -- ingest (consumer and webhook) ----------------------------------------------------------

    async def load_ledger(self, policy: OncallPolicy, channels: frozenset[str], alert_ids: set[str],
                          group_keys: set[str]) -> Ledger:
        """The alerts, their groups and live notifications: one query per collection."""
        alerts = {d["_id"]: d for d in await find_in(self.db[ALERTS], "_id", alert_ids)}
        keys = set(group_keys) | {group_key(a["rule"], a["severity"], a.get("team")) for a in alerts.values()}
        groups = {d["_id"]: d for d in await find_in(self.db[GROUPS], "_id", keys)}
        ntf_ids = {g["live"] for g in groups.values() if g.get("live")}
        ntf_ids |= {a["notification_id"] for a in alerts.values() if a.get("notification_id")}
        notifications = {d["_id"]: d for d in await find_in(self.db[NOTIFICATIONS], "_id", ntf_ids)}
        return Ledger(policy, channels, alerts, groups, notifications)

    @staticmethod
    def ledger_writes(ledger: Ledger, now: datetime) -> dict[str, list[Any]]:
        writes = {name: versioned(ledger.docs(name)) for name in (ALERTS, GROUPS, NOTIFICATIONS)}
        writes[DELIVERIES] = [InsertOne(spec.document(now)) for spec in ledger.deliveries]
        return writes

    def write_effects(self, effects: Effects, ledger: Ledger, now: datetime) -> None:
        for collection, ops in self.ledger_writes(ledger, now).items():
            if ops:
                effects.write(collection, *ops)

    async def in_transaction(self, writes: dict[str, list[Any]]) -> None:
        try:
            await write_in_transaction(self.client, self.db, writes)
        except Exception as exc:
            if is_duplicate_key(exc):
                raise Conflict() from exc
            raise

    async def retrying(self, attempt: Callable[[], Awaitable[T]], tries: int = 8) -> T:
        """Run a read-decide-write `attempt` again while another writer wins the race."""
        for _ in range(tries - 1):
            try:
                return await attempt()
            except Conflict:
                continue
        return await attempt()

    # -- dispatcher ---------------------------------------------------------------------------------

    async def due_notifications(self, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
        cursor = self.db[NOTIFICATIONS].find({"next_action_at": {"$ne": None, "$lte": now}})
        return await cursor.sort("next_action_at", ASCENDING).limit(limit).to_list(None)

    async def save_step(self, notification: dict[str, Any], deliveries: list[dict[str, Any]]) -> None:
        """The step's notification (expected version) and its deliveries, together or not at all."""
        await self.in_transaction({NOTIFICATIONS: versioned([notification]),
                                   DELIVERIES: [InsertOne(d) for d in deliveries]})

    async def due_deliveries(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.db[DELIVERIES].find({"state": "pending", "next_attempt_at": {"$lte": now}})
        return await cursor.sort("next_attempt_at", ASCENDING).limit(limit).to_list(None)

    async def claim(self, delivery: dict[str, Any], until: datetime) -> bool:
        """Lease a pending delivery (its next attempt moves to `until`); False when another took it."""
        result = await self.db[DELIVERIES].update_one(
            {"_id": delivery["_id"], "state": "pending", "attempt_count": delivery["attempt_count"],
             "next_attempt_at": delivery["next_attempt_at"]},
            {"$set": {"next_attempt_at": until}})
        return result.modified_count == 1

    async def record_attempt(self, delivery_id: str, attempt: dict[str, Any], state: str,
                             next_attempt_at: datetime | None, error: str | None) -> None:
        update: dict[str, Any] = {"$set": {"state": state, "next_attempt_at": next_attempt_at, "error": error},
                                  "$push": {"attempts": attempt}, "$inc": {"attempt_count": 1}}
        if state == "sent":
            update["$set"]["sent_at"] = attempt["at"]
        await self.db[DELIVERIES].update_one({"_id": delivery_id}, update)

    # -- roster changes ------------------------------------------------------------------------------

    async def roster_changes(self) -> list[dict[str, Any]]:
        return await self.db[ROSTER_CHANGES].find({}).sort("created_at", ASCENDING).to_list(None)

    async def add_roster_change(self, doc: dict[str, Any]) -> bool:
        """False when the id is taken (the API answers a repeat or a conflict)."""
        try:
            await self.db[ROSTER_CHANGES].insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def roster_change(self, change_id: str) -> dict[str, Any] | None:
        return await self.db[ROSTER_CHANGES].find_one({"_id": change_id})

    async def delete_roster_change(self, change_id: str) -> bool:
        return (await self.db[ROSTER_CHANGES].delete_one({"_id": change_id})).deleted_count == 1

    # -- API reads and ack ---------------------------------------------------------------------------

    async def notification(self, ntf_id: str) -> dict[str, Any] | None:
        return await self.db[NOTIFICATIONS].find_one({"_id": ntf_id})

    async def save_notification(self, ntf: dict[str, Any]) -> None:
        await self.in_transaction({NOTIFICATIONS: versioned([ntf])})

    async def notifications(self, states: list[str] | None, limit: int, offset: int,
                            newest_first: bool = True) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {} if states is None else {"state": {"$in": states}}
        total = await self.db[NOTIFICATIONS].count_documents(query)
        cursor = self.db[NOTIFICATIONS].find(query).sort(
            [("created_at", DESCENDING if newest_first else ASCENDING), ("_id", ASCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(None), total

    async def deliveries_of(self, ntf_id: str) -> list[dict[str, Any]]:
        return await self.db[DELIVERIES].find({"notification_id": ntf_id}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]).to_list(None)

    async def counts(self) -> dict[str, int]:
        """Live notifications and deliveries by state, for the gauges."""
        return {
            "open": await self.db[NOTIFICATIONS].count_documents({"state": "open"}),
            "acknowledged": await self.db[NOTIFICATIONS].count_documents({"state": "acknowledged"}),
            "deliveries_pending": await self.db[DELIVERIES].count_documents({"state": "pending"}),
        }
