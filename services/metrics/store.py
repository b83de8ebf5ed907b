"""metrics' MongoDB state and the API's queries.

| collection | one document per | holds |
|---|---|---|
| `cases` | case | the facts the indicators need and the case's current contribution (rules.py) |
| `buckets` | scope and month, `_id` `<scope>|<YYYY-MM>` | day-level counters `d["<DD>|<counter>|<type>"]` |
| `flows` | scope, `_id` `flow|<scope>` | month totals of filed/closed, `m["<YYYY-MM>|<counter>|<type>"]` |
| `gauges` | label set, `_id` `open|<type>|<team>` or `alerts|<rule>|<kind>|<team>` | count `n` |
| `alerts` | alert id of ecc.alerts | rule, kind, team, state |
| `snapshots` | emitted snapshot (its event id) | scope, period, as_of, indicators, counts |
| `latest` | scope and period kind (`<scope>|month`, `<scope>|year`) | the newest snapshot |
| `clock` | `_id: "watermark"` | the applied watermark |
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from services.metrics.rules import Deltas, months_needed
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in

CASES = "cases"
BUCKETS = "buckets"
FLOWS = "flows"
GAUGES = "gauges"
ALERTS = "alerts"
SNAPSHOTS = "snapshots"
LATEST = "latest"
CLOCK = "clock"
CLOCK_ID = "watermark"


class MetricsStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    async def ensure_indexes(self) -> None:
        await self.db[SNAPSHOTS].create_index([("scope", ASCENDING), ("period", ASCENDING), ("as_of", DESCENDING)],
                                              name="scope_period_as_of")
        await self.db[BUCKETS].create_index([("scope", ASCENDING), ("month", ASCENDING)], name="scope_month")
        await self.db[GAUGES].create_index([("kind", ASCENDING)], name="kind")

    # -- the handler's batch ------------------------------------------------------------

    async def load_cases(self, case_nos: set[str]) -> dict[str, dict[str, Any]]:
        if not case_nos:
            return {}
        return {doc["_id"]: doc for doc in await find_in(self.db[CASES], "_id", case_nos)}

    async def load_alerts(self, alert_ids: set[str]) -> dict[str, dict[str, Any]]:
        if not alert_ids:
            return {}
        return {doc["_id"]: doc for doc in await find_in(self.db[ALERTS], "_id", alert_ids)}

    async def watermark(self) -> datetime | None:
        doc = await self.db[CLOCK].find_one({"_id": CLOCK_ID})
        return doc.get("now") if doc else None

    async def load_buckets(self, plan: list[tuple[date, str]], extra_scopes: set[str]) -> tuple[
            dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every scope's flow document, and the month documents the planned snapshots need."""
        flows = {doc["_id"]: doc async for doc in self.db[FLOWS].find({})}
        scopes = {doc_id[5:] for doc_id in flows} | extra_scopes
        months = sorted({m for as_of, period in plan for m in months_needed(period, as_of)})
        ids = [f"{scope}|{month}" for scope in sorted(scopes) for month in months]
        buckets = {}
        if ids:
            buckets = {doc["_id"]: doc for doc in await find_in(self.db[BUCKETS], "_id", ids)}
        return buckets, flows

    @staticmethod
    def write_cases(effects: Effects, cases: list[dict[str, Any]]) -> None:
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
    def write_deltas(effects: Effects, deltas: Deltas, alert_counts: dict[tuple[str, str, str], int]) -> None:
        ops = []
        for doc_id, fields in sorted(deltas.months.items()):
            changes = {f"d.{name}": n for name, n in fields.items() if n}
            if changes:
                scope, month = doc_id.rsplit("|", 1)
                ops.append(UpdateOne({"_id": doc_id}, {"$inc": changes, "$setOnInsert": {"scope": scope, "month": month}},
                                     upsert=True))
        if ops:
            effects.write(BUCKETS, *ops)
        ops = []
        for doc_id, fields in sorted(deltas.flows.items()):
            changes = {f"m.{name}": n for name, n in fields.items() if n}
            if changes:
                ops.append(UpdateOne({"_id": doc_id}, {"$inc": changes, "$setOnInsert": {"scope": doc_id[5:]}},
                                     upsert=True))
        if ops:
            effects.write(FLOWS, *ops)
        ops = []
        for key, n in sorted(deltas.open.items()):
            if n:
                case_type, team = key.split("|", 1)
                ops.append(UpdateOne({"_id": f"open|{key}"}, {"$inc": {"n": n}, "$setOnInsert": {
                    "kind": "open", "labels": {"case_type": case_type, "team": team}}}, upsert=True))
        for (rule, kind, team), n in sorted(alert_counts.items()):
            if n:
                ops.append(UpdateOne({"_id": f"alerts|{rule}|{kind}|{team}"}, {"$inc": {"n": n}, "$setOnInsert": {
                    "kind": "alerts", "labels": {"rule": rule, "kind": kind, "team": team}}}, upsert=True))
        if ops:
            effects.write(GAUGES, *ops)

    @staticmethod
    def write_alerts(effects: Effects, docs: list[dict[str, Any]]) -> None:
        if docs:
            effects.write(ALERTS, *(ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs))

    @staticmethod
    def write_clock(effects: Effects, now: datetime) -> None:
        effects.write(CLOCK, ReplaceOne({"_id": CLOCK_ID}, {"_id": CLOCK_ID, "now": now}, upsert=True))

    @staticmethod
    def write_snapshots(effects: Effects, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        effects.write(SNAPSHOTS, *(ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs))
        latest: dict[str, dict[str, Any]] = {}
        for doc in docs:  # in plan order: the last one per scope and kind is the newest
            latest[f"{doc['scope']}|{'month' if len(doc['period']) == 7 else 'year'}"] = doc
        effects.write(LATEST, *(ReplaceOne({"_id": key}, {**doc, "_id": key, "snapshot_id": doc["_id"]}, upsert=True)
                                for key, doc in sorted(latest.items())))

    # -- reads for gauges and the API -------------------------------------------------------

    async def gauge_docs(self) -> list[dict[str, Any]]:
        return await self.db[GAUGES].find({}).to_list(length=None)

    async def latest_snapshots(self) -> list[dict[str, Any]]:
        return await self.db[LATEST].find({}).to_list(length=None)

    async def snapshot(self, scope: str, period: str, as_of: date | None = None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"scope": scope, "period": period}
        if as_of is not None:
            query["as_of"] = {"$lte": as_of.isoformat()}
        docs = await self.db[SNAPSHOTS].find(query).sort([("as_of", DESCENDING)]).limit(1).to_list(length=1)
        return docs[0] if docs else None

    async def scopes(self) -> list[str]:
        return sorted([doc["_id"][5:] async for doc in self.db[FLOWS].find({}, {"_id": 1})])

    async def buckets_for(self, scopes: list[str], months: list[str]) -> tuple[dict[str, dict], dict[str, dict]]:
        ids = [f"{s}|{m}" for s in scopes for m in months]
        buckets = {d["_id"]: d for d in await find_in(self.db[BUCKETS], "_id", ids)}
        flows = {d["_id"]: d async for d in self.db[FLOWS].find({"_id": {"$in": [f"flow|{s}" for s in scopes]}})}
        return buckets, flows
