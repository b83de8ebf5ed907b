"""A tiny in-memory stand-in for the async MongoDB calls the deadline book makes (unit tests only).

Stores deep copies with datetimes turned to UTC, as MongoDB does (a document read
back is not the object written, and its times come back in UTC), and applies
a batch's Effects the way the runtime's transaction would.
"""
from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from shared.runtime.effects import Effects


def _bson(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {k: _bson(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bson(v) for v in value]
    return value


def _get(doc: dict, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def matches(doc: dict, query: dict) -> bool:
    for field, cond in query.items():
        if field == "$or":
            if not any(matches(doc, q) for q in cond):
                return False
            continue
        value = _get(doc, field)
        if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if op == "$in" and value not in arg:
                    return False
                if op == "$lte" and (value is None or value > arg):
                    return False
                if op == "$gte" and (value is None or value < arg):
                    return False
        elif value != cond:
            return False
    return True


class FakeCursor:
    def __init__(self, docs: list[dict]):
        self._docs = docs

    def sort(self, spec):
        for field, direction in reversed(spec):
            self._docs.sort(key=lambda d: (_get(d, field) is None, _get(d, field)), reverse=direction < 0)
        return self

    def skip(self, n: int):
        self._docs = self._docs[n:]
        return self

    def limit(self, n: int):
        self._docs = self._docs[:n] if n else self._docs
        return self

    async def to_list(self, length=None):
        return [copy.deepcopy(d) for d in (self._docs if length is None else self._docs[:length])]

    def __aiter__(self):
        async def gen():
            for d in self._docs:
                yield copy.deepcopy(d)
        return gen()


class FakeCollection:
    def __init__(self):
        self.docs: dict[Any, dict] = {}
        self.queries = 0

    def find(self, query: dict | None = None, projection: dict | None = None) -> FakeCursor:
        self.queries += 1
        return FakeCursor([d for d in self.docs.values() if matches(d, query or {})])

    async def find_one(self, query: dict, projection: dict | None = None):
        self.queries += 1
        for d in self.docs.values():
            if matches(d, query):
                return copy.deepcopy(d)
        return None

    async def count_documents(self, query: dict) -> int:
        return sum(1 for d in self.docs.values() if matches(d, query))

    async def create_index(self, *args, **kwargs):
        return "ok"

    def apply(self, op: Any) -> None:
        if isinstance(op, InsertOne):
            doc = _bson(op._doc)
            if doc["_id"] in self.docs:
                raise DuplicateKeyError("duplicate _id")
            self.docs[doc["_id"]] = doc
        elif isinstance(op, ReplaceOne):
            found = [d for d in self.docs.values() if matches(d, op._filter)]
            doc = _bson(op._doc)
            if found:
                self.docs[found[0]["_id"]] = doc
            elif op._upsert:
                if doc["_id"] in self.docs:
                    raise DuplicateKeyError("duplicate _id on upsert")
                self.docs[doc["_id"]] = doc
        elif isinstance(op, UpdateOne):
            found = [d for d in self.docs.values() if matches(d, op._filter)]
            if found:
                for k, v in op._doc.get("$set", {}).items():
                    found[0][k] = _bson(v)
        else:
            raise TypeError(op)


class FakeDB:
    def __init__(self):
        self.collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name: str) -> FakeCollection:
        return self.collections.setdefault(name, FakeCollection())

    def commit(self, effects: Effects) -> None:
        """Apply a batch's writes (all or nothing is not simulated: tests do not fail mid-batch)."""
        for name, ops in effects.writes.items():
            for op in ops:
                self[name].apply(op)
