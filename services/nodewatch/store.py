"""nodewatch's MongoDB state: per-case facts (`cases`) beside the deadline book's
`deadlines`, `alerts` and `clock` (shared/deadline_book.py), and the API's queries.

Case documents are cached like the deadlines (shared.deadline_book.DocumentCache):
rebuilt from MongoDB at start, a batch works on copies, its changes reach the
cache only once its transaction committed.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.deadline_book import DeadlineBook, DocumentCache
from shared.logging import get_logger
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in

CASES = "cases"
log = get_logger()


def copy_case(doc: dict[str, Any]) -> dict[str, Any]:
    """A batch's own copy: the lists rules.py appends to are copied, the rest is replaced whole."""
    return {**doc, "facts": list(doc.get("facts") or []), "pending": list(doc.get("pending") or []),
            "teams": [list(t) for t in doc.get("teams") or []], "extensions": list(doc.get("extensions") or [])}


class NodeStore:
    def __init__(self, db: AsyncDatabase, book: DeadlineBook, cache: bool = True):
        self.db = db
        self.book = book
        self.cache = DocumentCache() if cache else None

    async def ensure_indexes(self) -> None:
        await self.book.ensure_indexes()
        if self.cache is not None:
            count = await self.cache.warm(self.db[CASES])
            log.info("case_cache_warm", cases=count)

    async def load_cases(self, case_nos: set[str], event_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        if self.cache is not None:
            if not self.cache.warm_done:
                await self.cache.warm(self.db[CASES])
            self.cache.begin(event_ids)
            if self.cache.stale:
                await self.cache.refresh(self.db[CASES])
            return {c: copy_case(doc) for c in case_nos if (doc := self.cache.get(c)) is not None}
        return {doc["_id"]: doc for doc in await find_in(self.db[CASES], "_id", case_nos)}

    def write_cases(self, effects: Effects, cases: list[dict[str, Any]], event_ids: Iterable[str] | None = None) -> None:
        """One replace per changed case (a single consumer writes them)."""
        ops = []
        for case in sorted(cases, key=lambda c: c["_id"]):
            case["v"] = case.get("v", 0) + 1
            ops.append(ReplaceOne({"_id": case["_id"]}, case, upsert=True))
        if ops:
            effects.write(CASES, *ops)
        if self.cache is not None:
            self.cache.stage({c["_id"]: c for c in cases}, event_ids)

    async def case(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[CASES].find_one({"_id": case_no}, {"pending": 0})
