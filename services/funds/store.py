"""funds' MongoDB state and the API's queries.

Collections (database `<prefix>funds`):
| collection | one document per | holds |
|---|---|---|
| `ledgers` | case (`_id` = case number) | parties (from case.filed), closure, teams, receipts and payouts credited to the case, approved delays, summary (received, disbursed, balance as decimal strings) |
| `receipts` | receipt id | every receipt ever read (content fingerprint, amount, state unidentified / identified / matched, the match): receipt ids are unique court-wide |
| `payouts` | payout id | every payout ever read (fingerprint): payout ids are unique court-wide |
| `totals` | `_id: "funds"` | court-wide sums kept in step with each batch (metrics) |
| `submissions` | event id written by the API | fingerprint and data of POSTed facts (idempotent retries, 409 on conflicts) |
| `deadlines`, `alerts`, `clock` | (shared/deadline_book.py) | the rules' deadlines, raised alerts, the watermark |

Writes from the consumer go through Effects (one transaction per batch); the API
writes its submissions with their outbox entries in one transaction, like intake.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.funds.policy import CLAIM, DISBURSEMENT
from services.funds.rules import TOTALS_ID, FundsRules, FundsState, new_totals
from shared.config import Settings
from shared.contract.envelope import Event
from shared.deadline_book import DeadlineBook, key_of
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in
from shared.runtime.outbox import COLLECTION as OUTBOX, Outbox
from shared.topics import FUNDS_EVENTS

LEDGERS = "ledgers"
RECEIPTS = "receipts"
PAYOUTS = "payouts"
TOTALS = "totals"
SUBMISSIONS = "submissions"






@dataclass(frozen=True)
class Submitted:
    event_id: str
    outcome: str  # created | repeat | conflict
    known: dict[str, Any] | None = None


def _versioned(collection_ops: list, doc: dict[str, Any]) -> None:
    old = doc.get("v")
    doc["v"] = (old or 0) + 1
    if old is None:
        collection_ops.append(InsertOne(doc))
    else:
        # A concurrent writer moved the version: the upsert hits an existing _id, a duplicate key,
        # and the runtime re-runs the batch on fresh state.
        collection_ops.append(ReplaceOne({"_id": doc["_id"], "v": old}, doc, upsert=True))


class FundsStore:
    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase, book: DeadlineBook, outbox: Outbox,
                 settings: Settings):
        self.client = client
        self.db = db
        self.book = book
        self.outbox = outbox
        self.topic = settings.topic(FUNDS_EVENTS.suffix)

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        await self.db[RECEIPTS].create_index([("state", ASCENDING), ("received_at", ASCENDING)], name="state_received")
        await self.db[RECEIPTS].create_index([("case_no", ASCENDING)], name="case_no")
        await self.db[PAYOUTS].create_index([("case_no", ASCENDING)], name="case_no")

    # -- the consumer's batch state ----------------------------------------------------

    async def load(self, case_nos: set[str], receipt_ids: set[str], payout_ids: set[str]) -> FundsState:
        """The ledgers, registry entries and totals a batch touches: one `$in` per collection (chunked)."""
        state = FundsState()
        for doc in await find_in(self.db[LEDGERS], "_id", sorted(case_nos)):
            state.ledgers[doc["_id"]] = doc
        for doc in await find_in(self.db[RECEIPTS], "_id", sorted(receipt_ids)):
            state.receipts[doc["_id"]] = doc
        for doc in await find_in(self.db[PAYOUTS], "_id", sorted(payout_ids)):
            state.payouts[doc["_id"]] = doc
        totals = await self.db[TOTALS].find_one({"_id": TOTALS_ID})
        state.totals = totals or new_totals()
        return state

    def write(self, effects: Effects, state: FundsState) -> None:
        """One op per changed document, versioned (ledgers, receipts, totals) or inserted (payouts)."""
        for name, changed, docs in ((LEDGERS, state.changed_ledgers, state.ledgers),
                                    (RECEIPTS, state.changed_receipts, state.receipts),
                                    (PAYOUTS, state.changed_payouts, state.payouts)):
            ops: list = []
            for key in sorted(changed):
                _versioned(ops, docs[key])
            if ops:
                effects.write(name, *ops)
        if state.totals_changed:
            ops = []
            _versioned(ops, state.totals)
            effects.write(TOTALS, *ops)

    # -- the API's reads ---------------------------------------------------------------

    async def ledger(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[LEDGERS].find_one({"_id": case_no})

    async def team_of(self, case_no: str) -> str | None:
        doc = await self.db[LEDGERS].find_one({"_id": case_no}, {"teams": 1})
        teams = (doc or {}).get("teams") or []
        return teams[-1][2] if teams else None

    async def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        return await self.db[RECEIPTS].find_one({"_id": receipt_id})

    async def payout(self, payout_id: str) -> dict[str, Any] | None:
        return await self.db[PAYOUTS].find_one({"_id": payout_id})

    async def unidentified(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
        """Unmatched unidentified deposits, oldest first, with their claim deadlines."""
        query = {"state": "unidentified"}
        total = await self.db[RECEIPTS].count_documents(query)
        cursor = self.db[RECEIPTS].find(query).sort([("received_at", ASCENDING), ("_id", ASCENDING)])
        docs = await cursor.skip(offset).limit(limit).to_list(length=limit)
        claims = await find_in(self.book.deadlines, "_id", [key_of(CLAIM, d["_id"]) for d in docs])
        return docs, total, claims

    async def totals(self) -> dict[str, Any]:
        return await self.db[TOTALS].find_one({"_id": TOTALS_ID}) or new_totals()

    async def overdue_pending(self, rules: FundsRules) -> tuple[Decimal, int]:
        """Σ of the unpaid parts of receipts whose payout is overdue (an open funds.disbursement.overdue alert)."""
        alerts = await self.book.alerts.find(
            {"state": "open", "rule": DISBURSEMENT, "kind": "overdue"}, {"case_no": 1, "details": 1},
        ).to_list(length=None)
        if not alerts:
            return Decimal("0.00"), 0
        by_case: dict[str, set[str]] = {}
        for alert in alerts:
            by_case.setdefault(alert["case_no"], set()).add((alert.get("details") or {}).get("receipt_id"))
        total, count = Decimal("0.00"), 0
        for ledger in await find_in(self.db[LEDGERS], "_id", sorted(by_case)):
            for receipt in rules.view(ledger).receipts:
                if receipt.receipt_id in by_case[ledger["_id"]] and receipt.uncovered > 0:
                    total += receipt.uncovered
                    count += 1
        return total, count

    # -- the API's writes (through the outbox) -------------------------------------------

    async def submit(self, event: Event, fingerprint: str) -> Submitted:
        """Store a POSTed fact with its outbox entry in one transaction; a retry is a repeat."""
        for _attempt in range(3):
            try:
                return await self._submit_once(event, fingerprint)
            except (DuplicateKeyError, BulkWriteError) as exc:
                if isinstance(exc, BulkWriteError) and not all(
                        e.get("code") == 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        return await self._submit_once(event, fingerprint)

    async def _submit_once(self, event: Event, fingerprint: str) -> Submitted:
        async with self.client.start_session() as session:
            async with await session.start_transaction():
                known = await self.db[SUBMISSIONS].find_one({"_id": event.id}, session=session)
                if known is not None:
                    outcome = "repeat" if known["fingerprint"] == fingerprint else "conflict"
                    return Submitted(event.id, outcome, known)
                wire = event.to_json_dict()
                await self.db[SUBMISSIONS].insert_one({
                    "_id": event.id, "type": event.type, "subject": event.subject, "fingerprint": fingerprint,
                    "data": wire["data"], "time": wire["time"], "received_at": datetime.now(UTC),
                }, session=session)
                entry = self.outbox.entry(f"{self.topic}:{event.id}", self.topic, event.subject, event.to_bytes())
                await self.db[OUTBOX].bulk_write([entry.upsert()], session=session)
        self.outbox.stored([entry])
        return Submitted(event.id, "created")

    async def submission(self, event_id: str) -> dict[str, Any] | None:
        return await self.db[SUBMISSIONS].find_one({"_id": event_id})
