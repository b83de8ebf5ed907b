"""nodewatch's MongoDB state: per-case facts (`cases`) beside the deadline book's
`deadlines`, `alerts` and `clock` (shared/deadline_book.py), and the API's queries."""
from __future__ import annotations

from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects

CASES = "cases"


class NodeStore:
    def __init__(self, db: AsyncDatabase, book: DeadlineBook):
        self.db = db
        self.book = book

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()

    async def load_cases(self, case_nos: set[str]) -> dict[str, dict[str, Any]]:
        if not case_nos:
            return {}
        cursor = self.db[CASES].find({"_id": {"$in": sorted(case_nos)}})
        return {doc["_id"]: doc async for doc in cursor}

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

    async def case(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[CASES].find_one({"_id": case_no}, {"pending": 0})

    async def team_of(self, case_no: str) -> str | None:
        doc = await self.db[CASES].find_one({"_id": case_no}, {"teams": 1})
        teams = (doc or {}).get("teams") or []
        return teams[-1][2] if teams else None
