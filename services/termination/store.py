"""termination's MongoDB state: per-case facts (`cases`), the reviews (`reviews`, one document per
review with its evidence) beside the deadline book's `deadlines`, `alerts` and `clock`, and the
API's queries."""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from services.termination.policy import RECHECK
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in

CASES = "cases"
REVIEWS = "reviews"
DUE_STATES = ("warned", "overdue")


class TerminationStore:
    def __init__(self, db: AsyncDatabase, book: DeadlineBook):
        self.db = db
        self.book = book

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        await self.db[REVIEWS].create_index([("case_no", ASCENDING), ("stage", ASCENDING), ("seq", DESCENDING)],
                                            name="case_stage_seq")
        await self.db[CASES].create_index([("closed.mode", ASCENDING), ("closed.closed_on", DESCENDING)],
                                          name="closed_mode")
        await self.db[CASES].create_index([("team", ASCENDING)], name="team")

    # -- the handler's batch ------------------------------------------------------------

    async def load_cases(self, case_nos: set[str]) -> dict[str, dict[str, Any]]:
        if not case_nos:
            return {}
        return {doc["_id"]: doc for doc in await find_in(self.db[CASES], "_id", case_nos)}

    def write_cases(self, effects: Effects, cases: list[dict[str, Any]]) -> None:
        """One op per changed case; the version filter turns a concurrent writer into a batch retry."""
        ops = []
        for case in sorted(cases, key=lambda c: c["_id"]):
            old = case.get("v")
            case["v"] = (old or 0) + 1
            if old is None:
                ops.append(InsertOne(case))
            else:
                ops.append(ReplaceOne({"_id": case["_id"], "v": old}, case, upsert=True))
        if ops:
            effects.write(CASES, *ops)

    @staticmethod
    def write_reviews(effects: Effects, reviews: list[dict[str, Any]]) -> None:
        if reviews:
            effects.write(REVIEWS, *(ReplaceOne({"_id": r["_id"]}, r, upsert=True) for r in reviews))

    # -- the API --------------------------------------------------------------------------

    async def case(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[CASES].find_one({"_id": case_no}, {"nodes": 0, "inquiries": 0, "clues": 0})

    async def latest_reviews(self, case_no: str) -> dict[str, dict[str, Any] | None]:
        latest: dict[str, dict[str, Any] | None] = {"proposed": None, "closed": None}
        cursor = self.db[REVIEWS].find({"case_no": case_no}).sort([("stage", ASCENDING), ("seq", DESCENDING)])
        async for doc in cursor:
            if latest.get(doc["stage"]) is None:
                latest[doc["stage"]] = doc
        return latest

    async def review_count(self, case_no: str) -> int:
        return await self.db[REVIEWS].count_documents({"case_no": case_no})

    async def recheck_due_cases(self) -> list[str]:
        """Cases with a re-check period warned or overdue and not done (the API's recheck_due=true)."""
        cursor = self.book.deadlines.find({"rule": RECHECK, "state": {"$in": list(DUE_STATES)}}, {"case_no": 1})
        return sorted({doc["case_no"] async for doc in cursor if doc.get("case_no")})

    async def terminated(self, *, case_nos: list[str] | None, team: str | None, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
        """terminated_current cases under re-check (not resumed), newest closure first."""
        query: dict[str, Any] = {"closed.mode": "terminated_current", "resumed": None}
        if case_nos is not None:
            query["_id"] = {"$in": case_nos}
        if team is not None:
            query["team"] = team
        total = await self.db[CASES].count_documents(query)
        cursor = self.db[CASES].find(query, {"nodes": 0, "inquiries": 0, "clues": 0, "pending_reviews": 0}).sort(
            [("closed.closed_on", DESCENDING), ("_id", ASCENDING)]).skip(offset).limit(limit)
        return await cursor.to_list(length=limit), total

    async def rechecks_of(self, case_nos: list[str]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {c: [] for c in case_nos}
        if not case_nos:
            return out
        for doc in await find_in(self.book.deadlines, "case_no", case_nos):
            if doc.get("rule") != RECHECK:
                continue
            out.setdefault(doc["case_no"], []).append(doc)
        for docs in out.values():
            docs.sort(key=lambda d: int(d.get("ref") or 0))
        return out

    async def count_in_recheck(self) -> int:
        return await self.db[CASES].count_documents({"closed.mode": "terminated_current", "resumed": None})
