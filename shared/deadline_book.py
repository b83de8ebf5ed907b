"""Durable deadlines (期限簿) in MongoDB and the alerts they raise: rules.md §0, contract §8-9.

Shared by every service that supervises deadlines (nodewatch, funds, entrust,
sentiment, termination). One document per (rule, subject) in the service's
`deadlines` collection, one per raised alert in `alerts`, and the service's
clock watermark in `clock`. Usage and an example: docs/deadlines.md.

How a batch uses it (all writes go into the runtime's Effects):

    batch = await book.load(case_nos=[...], keys=[...], event_ids=[e.id for e in events])
    for event in events:                                  # in consumed order
        if event.type == "clock.tick":
            batch.clock.observe(event.data.now)
        ...batch.open(effects, Deadline(...)) / batch.resolve(effects, rule, subject, at=..., reason=...)
    batch.clock.apply()                                   # ticks become "now"
    await batch.fire_due(effects)                         # raise what fell due, then write

Semantics (why the stream is the same however the input is batched):
- A deadline has alarms: due_soon at warn_at (now >= warn_at) and overdue
  after due_at (now > due_at, to the second), each raised once. An alarm is
  raised at the first applied tick W at or after its threshold (and not
  before the deadline was opened or re-armed): `raised_at` is that W, taken
  from the ticks applied since the engine last had nothing left to raise, so
  neither batch boundaries nor the page size change it.
- The awaited fact is judged on event time: a fact timed at T resolves the
  deadline for every tick W >= T. If T lies ahead of the watermark, alarms
  whose threshold falls before T still fire at ticks W < T and are resolved
  at once with resolved_at = T (as if the events had been read in time
  order). A fact that arrives after a tick already raised the alert for it
  resolves the alert and records the lateness (a "late fact").
- Alerts are raised once per breach. Ids are deterministic (shared.alerts);
  the documents hold what was raised, and the runtime's inbox drops
  redelivered events, so a replay or a restart raises nothing twice.
- A re-armed deadline (seizure renewed, case term extended) settles the open
  cycle and starts cycle n+1; its alerts keep their alert ids and get event
  ids with `:<n+1>`.
- One consumer per service database writes these documents (the runtime's
  single group member). By default they are held in memory (DocumentCache),
  rebuilt from MongoDB at start; a batch's changes reach the cache only after
  its transaction committed (see DocumentCache). `v` counts a document's writes.
"""
from __future__ import annotations

import bisect
import time as wall_time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from prometheus_client import Counter, Gauge
from pymongo import ASCENDING, DESCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.alerts import DEFAULT_SEVERITY, alert_id, alert_raised, alert_resolved, court_iso
from shared.calendar import CourtCalendar
from shared.clock import Watermark
from shared.contract.envelope import COURT_TZ
from shared.deadlines import court_date
from shared.logging import get_logger
from shared.runtime.alignment import InputGate
from shared.runtime.mongo import find_in
from shared.metrics import WATERMARK
from shared.runtime.effects import Effects
from shared.topics import ALERTS

log = get_logger()

DEADLINES = "deadlines"
ALERTS_COLLECTION = "alerts"
CLOCK = "clock"
CLOCK_ID = "watermark"
DEFAULT_FIRE_LIMIT = 5000
CALENDAR_RULE = "calendar.coverage"

DeadlineStatus = Literal["open", "warned", "overdue", "resolved", "cancelled"]
FINISHED: frozenset[str] = frozenset({"resolved", "cancelled"})
_KIND_ORDER = {"raised": 0, "due_soon": 1, "overdue": 2}
_REASON_MAX = 500

ALERTS_RAISED = Counter("ecc_alerts_raised_total", "Alerts raised, by rule and severity",
                        ["service", "rule", "severity"])
ALERTS_RESOLVED = Counter("ecc_alerts_resolved_total", "Alerts resolved, by rule", ["service", "rule"])
LATE_FACTS = Counter("ecc_late_facts_total",
                     "Awaited facts timed before an alert they resolve, read after the alert was raised",
                     ["service", "rule"])
DEADLINES_OPEN = Gauge("ecc_deadlines_open", "Deadlines not yet resolved or cancelled", ["service"])
EVALUATION_LAG = Gauge(
    "ecc_deadline_evaluation_lag_seconds",
    "Event-time seconds between the watermark and the oldest threshold not yet evaluated (0 = caught up)",
    ["service"],
)


def key_of(rule: str, subject: str) -> str:
    """The deadline document's _id: `<rule>:<subject>`."""
    return f"{rule}:{subject}"


def ms(moment: datetime) -> datetime:
    """Truncate to milliseconds, the precision MongoDB keeps: the same instant before and after a restart."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"times in the deadline book must be timezone-aware, got {moment!r}")
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _opt_ms(moment: datetime | None) -> datetime | None:
    return None if moment is None else ms(moment)


@dataclass(frozen=True)
class Deadline:
    """What a service opens: a rule's deadline for one subject (or, with due_at None, an immediate alert).

    texts: one-line Chinese summaries per alert kind ("due_soon", "overdue", or
    "raised" for a rule without deadline), e.g. {"overdue": "执行通知书逾期未发出"};
    for deadline alerts "（应于YYYY-MM-DD前）" is appended unless the text has a
    `{due_date}` placeholder (placeholders: due_date, subject, case_no, ref).
    severities: overrides of DEFAULT_SEVERITY per kind.
    teams: (since, team) pairs known so far; the alert carries the team in force at raised_at.
    details: static summary inputs copied into every alert's `details`.
    """

    rule: str
    subject: str
    opened_at: datetime
    due_at: datetime | None
    warn_at: datetime | None = None
    case_no: str | None = None
    ref: str | None = None
    name_zh: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    severities: dict[str, str] = field(default_factory=dict)
    teams: Sequence[tuple[datetime, str] | tuple[datetime, int, str]] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return key_of(self.rule, self.subject)


@dataclass
class FireReport:
    raised: int = 0
    resolved: int = 0
    dropped: int = 0
    backlog: bool = False


def _alarm_from(alarm: dict[str, Any]) -> datetime:
    """The first instant a tick may raise this alarm: its threshold, not before its cycle began."""
    return max(alarm["at"], alarm["since"])


def _team_at(teams: list[list[Any]], moment: datetime) -> str | None:
    """The team of the latest decision in force at `moment` (entries: [since, revision, team])."""
    team = None
    for since, _revision, name in teams:
        if since <= moment:
            team = name
        else:
            break
    return team


def _summary(doc: dict[str, Any], kind: str, due: datetime | None) -> str:
    text = (doc.get("texts") or {}).get(kind) or _default_text(doc, kind)
    due_date = court_date(due).isoformat() if due is not None else ""
    values = {"due_date": due_date, "subject": doc["subject"], "case_no": doc.get("case_no") or "",
              "ref": doc.get("ref") or ""}
    has_due = "{due_date}" in text
    if "{" in text:
        try:
            text = text.format(**values)
        except (KeyError, IndexError, ValueError):
            pass
    if kind != "raised" and due_date and not has_due:
        text = f"{text}（应于{due_date}前）"
    return " ".join(text.split())[:_REASON_MAX]


def _default_text(doc: dict[str, Any], kind: str) -> str:
    name = doc.get("name_zh") or doc["rule"]
    return {"due_soon": f"{name}即将到期", "overdue": f"{name}已逾期", "raised": name}[kind]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:_REASON_MAX] or "resolved"


def _local_text(moment: datetime) -> str:
    return moment.astimezone(COURT_TZ).strftime("%Y-%m-%d %H:%M")


_ALARM_DEFAULTS: dict[str, Any] = {
    "until": None, "until_reason": None, "alert_id": None, "raised_at": None, "resolved_at": None,
    "reason": None, "late": False, "due_at": None, "warn_at": None,
}
_DOC_DEFAULTS: dict[str, Any] = {
    "case_no": None, "ref": None, "name_zh": "", "texts": {}, "severities": {}, "details": {}, "teams": [],
    "due_at": None, "warn_at": None, "next_fire_at": None, "fact_at": None, "resolution": None, "v": 0,
}


def expand(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored (compact) deadline document with every field present, as the engine works on it."""
    out = {**{k: (v.copy() if isinstance(v, (dict, list)) else v) for k, v in _DOC_DEFAULTS.items()}, **doc}
    out["alarms"] = [{**_ALARM_DEFAULTS, **a} for a in doc.get("alarms") or []]
    out["teams"] = [list(t) for t in out["teams"]]
    return out


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """What is stored: every document field, but alarm fields that are null are left out
    (SecantusDB writes small documents faster). Readers of stored alarms use .get() or `expand`."""
    return {**doc, "alarms": [{k: v for k, v in a.items() if v is not None} for a in doc["alarms"]]}


class DocumentCache:
    """A write-behind cache of the documents one consumer owns; MongoDB stays the record.

    Built from MongoDB at start (`warm`). A batch works on copies; what it
    changed is staged with its event ids and promoted at the next `begin` —
    unless the next call shares event ids with the staged batch: then the
    runtime is re-running that batch because its transaction did not commit,
    and the staged changes are dropped. One consumer per service database
    (the runtime's single group member) is assumed.
    """

    def __init__(self, index_field: str | None = None, transform: Callable[[dict], dict] | None = None):
        self.docs: dict[Any, dict[str, Any]] = {}
        self.index_field = index_field
        self.transform = transform
        self.index: dict[Any, set[Any]] = {}
        self._staged: dict[Any, dict[str, Any]] = {}
        self._staged_ids: frozenset[str] | None = frozenset()
        self.stale: set[Any] = set()
        self.warm_done = False

    async def warm(self, collection: Any, query: dict[str, Any] | None = None) -> int:
        self.docs.clear()
        self.index.clear()
        self._staged, self._staged_ids, self.stale = {}, frozenset(), set()
        async for doc in collection.find(query or {}):
            self._put(self.transform(doc) if self.transform else doc)
        self.warm_done = True
        return len(self.docs)

    def begin(self, event_ids: Iterable[str] | None) -> None:
        """Start a batch: promote the previous batch's changes, or drop them if this is its re-run.

        Without event ids (a caller that does not pass them) nobody can tell, so the
        previous batch's documents are dropped and re-read from MongoDB (`refresh`).
        """
        if event_ids is None or self._staged_ids is None:
            for key in self._staged:
                self._remove(key)
                self.stale.add(key)
        elif self._staged and not (frozenset(event_ids) & self._staged_ids):
            for doc in self._staged.values():
                self._put(doc)
        self._staged, self._staged_ids = {}, frozenset()

    async def refresh(self, collection: Any) -> None:
        """Re-read documents whose last change may not have been committed."""
        stale, self.stale = self.stale, set()
        for doc in await find_in(collection, "_id", stale):
            self._put(self.transform(doc) if self.transform else doc)

    def stage(self, docs: dict[Any, dict[str, Any]], event_ids: Iterable[str] | None) -> None:
        self._staged = dict(docs)
        self._staged_ids = None if event_ids is None else frozenset(event_ids)

    def get(self, key: Any) -> dict[str, Any] | None:
        return self.docs.get(key)

    def keys_by(self, value: Any) -> set[Any]:
        return self.index.get(value, set())

    def _put(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = doc
        if self.index_field and doc.get(self.index_field) is not None:
            self.index.setdefault(doc[self.index_field], set()).add(doc["_id"])

    def _remove(self, key: Any) -> None:
        doc = self.docs.pop(key, None)
        if doc is not None and self.index_field and doc.get(self.index_field) is not None:
            self.index.get(doc[self.index_field], set()).discard(key)


def _copy_deadline(doc: dict[str, Any]) -> dict[str, Any]:
    """A private copy for one batch: alarms and teams are changed in place, the rest is replaced whole."""
    return {**doc, "alarms": [dict(a) for a in doc["alarms"]], "teams": [list(t) for t in doc.get("teams") or []]}


class BatchClock:
    """The service's event-time watermark (contract §8) for one batch, stored in `clock`.

    observe(tick) records a tick; apply(bound) makes the observed ticks before
    `bound` (all when None) the new "now". A service whose runtime feeds a
    watermark gate (shared/runtime/alignment.py) calls apply_gated(gate), which
    applies only what the gate lets through; the others call apply(). `history` holds the ticks applied since the engine last
    had nothing left to raise: raised_at is always one of them.
    """

    def __init__(self, doc: dict[str, Any] | None):
        doc = doc or {}
        self._watermark = Watermark(doc.get("now"))
        self.history: list[datetime] = list(doc.get("history") or ([doc["now"]] if doc.get("now") else []))
        self.held: list[datetime] = list(doc.get("held") or [])
        self.clock_now: datetime | None = doc.get("clock_now") or doc.get("now")
        self.backlog: bool = bool(doc.get("backlog", False))
        self.new_ticks: list[datetime] = []
        self._dirty = False

    @property
    def now(self) -> datetime | None:
        return self._watermark.now

    def observe(self, tick_now: datetime) -> None:
        tick_now = ms(tick_now)
        if self.clock_now is None or tick_now > self.clock_now:
            self.clock_now = tick_now
            self._dirty = True
        if self.now is not None and tick_now <= self.now:
            return  # the watermark never moves back; a replayed tick changes nothing
        index = bisect.bisect_left(self.held, tick_now)
        if index == len(self.held) or self.held[index] != tick_now:
            self.held.insert(index, tick_now)
            self._dirty = True

    def apply(self, bound: datetime | None = None) -> list[datetime]:
        """Apply held ticks strictly before `bound` (all when None); returns those applied."""
        cut = len(self.held) if bound is None else bisect.bisect_left(self.held, bound)
        applied, self.held = self.held[:cut], self.held[cut:]
        for tick in applied:
            if self._watermark.advance(tick):
                self.history.append(tick)
                self.new_ticks.append(tick)
        if applied:
            self._dirty = True
        return applied

    def apply_gated(self, gate: InputGate | None, before: datetime | None = None) -> list[datetime]:
        """Apply the held ticks the watermark gate lets through (shared/runtime/alignment.py: none
        while a gated partition has unread facts of unknown time), and only those before `before`."""
        hold_all, bound = gate.bound() if gate is not None else (False, None)
        if hold_all:
            return []
        if before is not None and (bound is None or before < bound):
            bound = before
        return self.apply(bound)

    def first_tick_at_or_after(self, moment: datetime) -> datetime | None:
        index = bisect.bisect_left(self.history, moment)
        return self.history[index] if index < len(self.history) else None

    def drained(self) -> None:
        """Nothing at or before now is left to raise: forget older ticks."""
        if self.now is not None and self.history != [self.now]:
            self.history = [self.now]
            self._dirty = True

    def set_backlog(self, backlog: bool) -> None:
        if backlog != self.backlog:
            self.backlog = backlog
            self._dirty = True

    def doc(self) -> dict[str, Any]:
        return {"_id": CLOCK_ID, "now": self.now, "history": list(self.history), "held": list(self.held),
                "clock_now": self.clock_now, "backlog": self.backlog}

    def write(self, effects: Effects, collection: str) -> dict[str, Any] | None:
        if not self._dirty:
            return None
        doc = self.doc()
        effects.write(collection, ReplaceOne({"_id": CLOCK_ID}, doc, upsert=True))
        self._dirty = False
        return doc


class DeadlineBook:
    """A service's deadlines, alerts and clock in its own database.

    With `cache=True` (the default) the deadlines and the clock are held in
    memory (DocumentCache), rebuilt from MongoDB by `ensure_indexes()`/`warm()`
    at start: a batch then reads nothing from the database. SecantusDB answers a
    `$in` over thousands of documents in seconds, so re-reading them per batch
    would cap a service at a few hundred events/s. cache=False reads per batch.
    """

    def __init__(self, db: AsyncDatabase, service: str, *, source: str | None = None,
                 deadlines: str = DEADLINES, alerts: str = ALERTS_COLLECTION, clock: str = CLOCK,
                 fire_limit: int = DEFAULT_FIRE_LIMIT, calendar: CourtCalendar | None = None, cache: bool = True):
        self.db = db
        self.service = service
        self.source = source or f"ecc/{service}"
        self.deadlines_name, self.alerts_name, self.clock_name = deadlines, alerts, clock
        self.fire_limit = fire_limit
        self.calendar = calendar  # when set, fire_due raises calendar.coverage:<year> (rules.md §0)
        self.cache = DocumentCache("case_no", expand) if cache else None
        self._clock_cache = DocumentCache() if cache else None
        self._open_count_at = 0.0

    @property
    def deadlines(self):
        return self.db[self.deadlines_name]

    @property
    def alerts(self):
        return self.db[self.alerts_name]

    async def ensure_indexes(self) -> None:
        """Indexes, then (cache mode) the cache from MongoDB: call before consuming (on_database_ready)."""
        # Few indexes: each one costs every write (SecantusDB). The cache needs none beyond _id.
        if self.cache is None:
            await self.deadlines.create_index([("next_fire_at", ASCENDING), ("_id", ASCENDING)], name="next_fire")
        await self.deadlines.create_index([("case_no", ASCENDING)], name="case_no")
        await self.alerts.create_index([("state", ASCENDING), ("raised_at", DESCENDING), ("_id", ASCENDING)],
                                       name="state_raised")
        await self.alerts.create_index([("case_no", ASCENDING)], name="case_no")
        await self.warm()

    async def warm(self) -> None:
        if self.cache is None or self._clock_cache is None:
            return
        started = wall_time.monotonic()
        count = await self.cache.warm(self.deadlines)
        await self._clock_cache.warm(self.db[self.clock_name], {"_id": CLOCK_ID})
        log.info("deadline_cache_warm", service=self.service, deadlines=count,
                 seconds=round(wall_time.monotonic() - started, 2))

    async def load(self, *, case_nos: Iterable[str] = (), keys: Iterable[str] = (),
                   event_ids: Iterable[str] | None = None) -> "DeadlineBatch":
        """The batch's state: every deadline of `case_nos` plus the documents `keys`.

        Pass the batch's event ids (cache mode: they tell a new batch from a re-run one; without
        them the previous batch's documents are re-read from MongoDB, which is correct but slower).
        Without the cache: one query for the deadlines (in chunks: see the class docstring), one for the clock.
        """
        case_nos, keys = sorted(set(case_nos)), sorted(set(keys))
        if self.cache is not None and self._clock_cache is not None:
            if not self.cache.warm_done:
                await self.warm()
            self.cache.begin(event_ids)
            self._clock_cache.begin(event_ids)
            if self.cache.stale or self._clock_cache.stale:
                await self.cache.refresh(self.deadlines)
                await self._clock_cache.refresh(self.db[self.clock_name])
            return DeadlineBatch(self, [], self._clock_cache.get(CLOCK_ID), case_nos=case_nos, keys=keys,
                                 cache=self.cache, event_ids=event_ids)
        docs = await find_in(self.deadlines, "case_no", case_nos)
        seen = {d["_id"] for d in docs}
        docs += await find_in(self.deadlines, "_id", [k for k in keys if k not in seen])
        docs = [expand(d) for d in docs]
        clock_doc = await self.db[self.clock_name].find_one({"_id": CLOCK_ID})
        return DeadlineBatch(self, docs, clock_doc, case_nos=case_nos, keys=keys, event_ids=event_ids)

    def _stage(self, docs: dict[str, dict[str, Any]], clock_doc: dict[str, Any] | None,
               event_ids: Iterable[str] | None) -> None:
        if self.cache is not None and self._clock_cache is not None:
            self.cache.stage(docs, event_ids)
            self._clock_cache.stage({CLOCK_ID: clock_doc} if clock_doc else {}, event_ids)

    async def due_page(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        cursor = self.deadlines.find({"next_fire_at": {"$lte": now}}).sort(
            [("next_fire_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [expand(d) for d in await cursor.to_list(length=limit)]

    async def refresh_open_gauge(self, min_interval: float = 5.0) -> None:
        """Metrics only: count open deadlines at most every `min_interval` wall seconds."""
        if wall_time.monotonic() - self._open_count_at < min_interval:
            return
        self._open_count_at = wall_time.monotonic()
        if self.cache is not None:
            count = sum(1 for d in self.cache.docs.values() if d["state"] not in FINISHED)
        else:
            count = await self.deadlines.count_documents({"state": {"$in": ["open", "warned", "overdue"]}})
        DEADLINES_OPEN.labels(self.service).set(count)

    # -- reads for the API (from MongoDB, the record) -----------------------------

    async def watermark(self) -> datetime | None:
        doc = await self.db[self.clock_name].find_one({"_id": CLOCK_ID}, {"now": 1})
        return doc.get("now") if doc else None

    async def case_deadlines(self, case_no: str) -> list[dict[str, Any]]:
        cursor = self.deadlines.find({"case_no": case_no}).sort([("rule", ASCENDING), ("subject", ASCENDING)])
        return [expand(d) for d in await cursor.to_list(length=None)]

    async def find_alerts(self, *, state: str | None = None, rule: str | None = None, team: str | None = None,
                          case_no: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
        query: dict[str, Any] = {}
        for name, value in (("state", state), ("rule", rule), ("team", team), ("case_no", case_no)):
            if value is not None:
                query[name] = value
        total = await self.alerts.count_documents(query)
        cursor = self.alerts.find(query).sort([("raised_at", DESCENDING), ("_id", ASCENDING)]).skip(offset).limit(limit)
        return await cursor.to_list(length=limit), total

    async def overdue_summary(self) -> list[dict[str, Any]]:
        """Open alerts per rule, team and kind (for the boards)."""
        pipeline = [
            {"$match": {"state": "open"}},
            {"$group": {"_id": {"rule": "$rule", "team": "$team", "kind": "$kind"}, "count": {"$sum": 1}}},
        ]
        rows = await (await self.alerts.aggregate(pipeline)).to_list(length=None)
        return [{**row["_id"], "count": row["count"]} for row in rows]


class DeadlineBatch:
    """The deadlines one batch touches, changed in memory and written once into Effects.

    Not reusable across batches: the runtime may re-run a batch's handler (a
    race, an isolated handler error), so load a fresh one per handle() call.
    Documents are shared with the cache until first changed (copy-on-write).
    """

    def __init__(self, book: DeadlineBook, docs: list[dict[str, Any]], clock_doc: dict[str, Any] | None,
                 *, case_nos: Sequence[str] = (), keys: Sequence[str] = (), cache: DocumentCache | None = None,
                 event_ids: Iterable[str] | None = None):
        self.book = book
        self.clock = BatchClock(clock_doc)
        self._cache = cache
        self._docs: dict[str, dict[str, Any]] = {d["_id"]: d for d in docs}
        self._owned: set[str] = set(self._docs) if cache is None else set()
        self._by_case: dict[str, set[str]] = {}
        for doc in docs:
            if doc.get("case_no"):
                self._by_case.setdefault(doc["case_no"], set()).add(doc["_id"])
        self._loaded_cases = set(case_nos)
        self._loaded_keys = set(keys)
        self._dirty: set[str] = set()
        self._alert_docs: dict[str, dict[str, Any]] = {}
        self.event_ids = frozenset(event_ids or ())
        self.report = FireReport()

    # -- reading ----------------------------------------------------------------

    def _lookup(self, key: str) -> dict[str, Any] | None:
        doc = self._docs.get(key)
        if doc is None and self._cache is not None:
            doc = self._cache.get(key)
        return doc

    def get(self, rule: str, subject: str) -> dict[str, Any] | None:
        """The deadline document (treat as read-only), or None."""
        return self._lookup(key_of(rule, subject))

    def _case_keys(self, case_no: str) -> set[str]:
        keys = set(self._by_case.get(case_no, ()))
        if self._cache is not None:
            keys |= self._cache.keys_by(case_no)
        return keys

    def of_case(self, case_no: str) -> list[dict[str, Any]]:
        return [d for d in (self._lookup(k) for k in sorted(self._case_keys(case_no))) if d is not None]

    def _may_touch(self, key: str, case_no: str | None) -> None:
        if self._cache is not None or key in self._docs or key in self._loaded_keys \
                or (case_no and case_no in self._loaded_cases):
            return
        raise LookupError(f"deadline {key} was not loaded for this batch: pass its case_no or key to load()")

    def _mut(self, key: str) -> dict[str, Any]:
        """The batch's own copy of a document, made on first change."""
        if key in self._owned:
            return self._docs[key]
        source = self._lookup(key)
        assert source is not None, key
        doc = _copy_deadline(source)
        self._docs[key] = doc
        self._owned.add(key)
        if doc.get("case_no"):
            self._by_case.setdefault(doc["case_no"], set()).add(key)
        return doc

    # -- changes ----------------------------------------------------------------

    def open(self, effects: Effects, deadline: Deadline) -> bool:
        """Open a deadline (or raise a rule without one at once). False when it exists already."""
        key = deadline.key
        self._may_touch(key, deadline.case_no)
        if self._lookup(key) is not None:
            return False
        if deadline.due_at is None and deadline.warn_at is not None:
            raise ValueError(f"{key}: a warning needs a due time")
        opened_at = ms(deadline.opened_at)
        doc: dict[str, Any] = {
            "_id": key, "v": 0, "rule": deadline.rule, "subject": deadline.subject,
            "case_no": deadline.case_no, "ref": deadline.ref, "name_zh": deadline.name_zh,
            "texts": dict(deadline.texts), "severities": {**DEFAULT_SEVERITY, **deadline.severities},
            "details": dict(deadline.details),
            "teams": sorted(([ms(t[0]), 0 if len(t) == 2 else t[1], t[-1]] for t in deadline.teams),
                            key=lambda t: (t[0], t[1])),
            "opened_at": opened_at, "started_at": opened_at,
            "due_at": _opt_ms(deadline.due_at), "warn_at": _opt_ms(deadline.warn_at),
            "cycle": 1, "alarms": [], "state": "open", "next_fire_at": None,
            "fact_at": None, "resolution": None,
        }
        self._docs[key] = doc
        self._owned.add(key)
        if deadline.case_no:
            self._by_case.setdefault(deadline.case_no, set()).add(key)
        self._dirty.add(key)
        if deadline.due_at is None:
            alarm = self._new_alarm(doc, "raised", opened_at, opened_at)
            doc["alarms"].append(alarm)
            self._raise(effects, doc, alarm, opened_at)
            self._refresh(doc)
        else:
            self._arm(doc, opened_at)
        return True

    def resolve(self, effects: Effects, rule: str, subject: str, *, at: datetime, reason: str,
                cancelled: bool = False) -> bool:
        """The awaited fact (timed `at`) arrived, or the deadline no longer applies (cancelled).

        Resolves each alert the deadline raised, once. False when unknown or finished already.
        """
        key = key_of(rule, subject)
        found = self._lookup(key)
        if found is None or found["state"] in FINISHED:
            return False
        doc = self._mut(key)
        fact_at = ms(at)
        self._settle(effects, doc, fact_at, reason)
        doc["state"] = "cancelled" if cancelled else "resolved"
        doc["fact_at"] = fact_at
        resolution: dict[str, Any] = {"at": fact_at, "reason": _one_line(reason), "cancelled": cancelled}
        if doc["due_at"] is not None:
            resolution["on_time"] = fact_at <= doc["due_at"]
        late = [a["alert_id"] for a in doc["alarms"] if a.get("late") and a["cycle"] == doc["cycle"]]
        if late:
            resolution["late_fact"] = {"alerts": late, "raised_before_fact_was_read": True}
        doc["resolution"] = resolution
        self._refresh(doc)
        return True

    def resolve_case(self, effects: Effects, case_no: str, *, at: datetime, reason: str,
                     keep: Callable[[dict[str, Any]], bool] | None = None, cancelled: bool = True) -> int:
        """Finish every unfinished deadline of the case (closure), but those `keep` says to keep."""
        self._may_touch("", case_no)
        done = 0
        for doc in self.of_case(case_no):
            if doc["state"] in FINISHED or (keep is not None and keep(doc)):
                continue
            done += self.resolve(effects, doc["rule"], doc["subject"], at=at, reason=reason, cancelled=cancelled)
        return done

    def rearm(self, effects: Effects, rule: str, subject: str, *, at: datetime, due_at: datetime,
              warn_at: datetime | None, reason: str, reopen: bool = False,
              details: dict[str, Any] | None = None) -> bool:
        """A new cycle from `at`: the period restarts (seizure renewed) or is replaced (term extended).

        The open cycle is settled as if its fact arrived at `at` (its raised alerts
        resolved with `reason`). A finished deadline is re-armed only with reopen=True.
        """
        key = key_of(rule, subject)
        found = self._lookup(key)
        if found is None or (found["state"] in FINISHED and not reopen):
            return False
        doc = self._mut(key)
        start = ms(at)
        if doc["state"] not in FINISHED:
            self._settle(effects, doc, start, reason)
        for alarm in doc["alarms"]:
            if alarm["state"] == "armed" and "details" not in alarm:
                alarm["details"] = dict(doc.get("details") or {})  # an old cycle's alert keeps its details
        doc["cycle"] += 1
        doc["started_at"] = start
        doc["due_at"], doc["warn_at"] = ms(due_at), _opt_ms(warn_at)
        doc["state"], doc["fact_at"], doc["resolution"] = "open", None, None
        if details:
            doc["details"] = {**doc["details"], **details}
        self._arm(doc, start)
        return True

    def set_team(self, case_no: str, team: str, since: datetime, revision: int = 0) -> None:
        """A team assignment in force from `since` (event time) for every deadline of the case."""
        self._may_touch("", case_no)
        entry = [ms(since), revision, team]
        for found in self.of_case(case_no):
            if any(t[0] == entry[0] and t[1] == entry[1] for t in found.get("teams") or []):
                continue
            doc = self._mut(found["_id"])
            doc["teams"].append(entry)
            doc["teams"].sort(key=lambda t: (t[0], t[1]))
            self._dirty.add(doc["_id"])

    # -- firing -------------------------------------------------------------------

    async def fire_due(self, effects: Effects, *, limit: int | None = None) -> FireReport:
        """Raise what fell due by the watermark, in due order, then write the batch (flush).

        At most `limit` stored deadlines are evaluated per call; the runtime comes
        back for the next page at once (Effects.come_back), without waiting for a
        message; deadlines of this batch are always evaluated. Call it last in handle().
        """
        limit = limit or self.book.fire_limit
        now = self.clock.now
        if now is not None:
            if self.clock.new_ticks or self.clock.backlog:
                stored = await self._stored_due(now, limit + 1)
                backlog = len(stored) > limit
                stored = stored[:limit]
                for doc in stored:
                    if doc["_id"] not in self._docs:
                        self._docs[doc["_id"]] = doc
                        if self._cache is None:
                            self._owned.add(doc["_id"])
                        if doc.get("case_no"):
                            self._by_case.setdefault(doc["case_no"], set()).add(doc["_id"])
                self.clock.set_backlog(backlog)
                self.report.backlog = backlog
                if backlog:
                    effects.come_back()  # the next page is due now, not at the next message
                lag = (now - stored[-1]["next_fire_at"]).total_seconds() if backlog and stored else 0.0
                EVALUATION_LAG.labels(self.book.service).set(max(lag, 0.0))
            due = sorted((d for d in self._docs.values() if d.get("next_fire_at") is not None
                          and d["next_fire_at"] <= now), key=lambda d: (d["next_fire_at"], d["_id"]))
            for doc in due:
                self._fire(effects, self._mut(doc["_id"]))
            if not self.clock.backlog:
                self.clock.drained()
            if self.book.calendar is not None and self.clock.new_ticks:
                await self._check_calendar(effects)
        self.flush(effects)
        return self.report

    async def _stored_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        if self._cache is None:
            return await self.book.due_page(now, limit)
        due = [d for d in self._cache.docs.values() if d.get("next_fire_at") is not None and d["next_fire_at"] <= now]
        due.sort(key=lambda d: (d["next_fire_at"], d["_id"]))
        return due[:limit]

    def flush(self, effects: Effects) -> None:
        """Write every changed deadline (one replace each), the alert documents and the clock into Effects."""
        ops, changed = [], {}
        for key in sorted(self._dirty):
            doc = self._docs[key]
            doc["v"] = doc.get("v", 0) + 1
            ops.append(ReplaceOne({"_id": key}, compact(doc), upsert=True))
            changed[key] = doc
        self._dirty.clear()
        if ops:
            effects.write(self.book.deadlines_name, *ops)
        if self._alert_docs:
            effects.write(self.book.alerts_name,
                          *(ReplaceOne({"_id": k}, d, upsert=True) for k, d in sorted(self._alert_docs.items())))
            self._alert_docs = {}
        clock_doc = self.clock.write(effects, self.book.clock_name)
        self.book._stage(changed, clock_doc, self.event_ids)
        if self.clock.now is not None:
            WATERMARK.labels(self.book.service).set(self.clock.now.timestamp())

    # -- internals ----------------------------------------------------------------

    @staticmethod
    def _new_alarm(doc: dict[str, Any], kind: str, at: datetime, since: datetime) -> dict[str, Any]:
        # What the alert will say is fixed when its cycle is armed (a later cycle must not change it).
        return {"kind": kind, "at": at, "since": since, "cycle": doc["cycle"], "state": "armed", "until": None,
                "until_reason": None, "alert_id": None, "raised_at": None, "resolved_at": None,
                "reason": None, "late": False, "due_at": doc["due_at"], "warn_at": doc["warn_at"]}

    def _arm(self, doc: dict[str, Any], since: datetime) -> None:
        if doc["warn_at"] is not None and doc["warn_at"] <= doc["due_at"]:
            doc["alarms"].append(self._new_alarm(doc, "due_soon", doc["warn_at"], since))
        # Overdue means now > due, judged to the whole second: the first instant is due + 1 s.
        overdue_from = doc["due_at"].replace(microsecond=0) + timedelta(seconds=1)
        doc["alarms"].append(self._new_alarm(doc, "overdue", overdue_from, since))
        self._refresh(doc)

    def _settle(self, effects: Effects, doc: dict[str, Any], fact_at: datetime, reason: str) -> None:
        """The open cycle's fact is timed `fact_at`: resolve raised alerts, bound or drop armed ones."""
        for alarm in doc["alarms"]:
            if alarm["cycle"] != doc["cycle"]:
                continue
            if alarm["state"] == "raised":
                # A late fact: timed no later than the tick that raised the alert, read after it.
                alarm["late"] = fact_at <= alarm["raised_at"]
                self._resolve_alarm(effects, doc, alarm, fact_at, reason)
            elif alarm["state"] == "armed" and alarm["until"] is None:
                if fact_at <= _alarm_from(alarm):
                    alarm["state"] = "dropped"
                else:
                    # A tick before the fact's time may still find this breached (read in time order).
                    alarm["until"], alarm["until_reason"] = fact_at, _one_line(reason)
        self._refresh(doc)

    def _fire(self, effects: Effects, doc: dict[str, Any]) -> None:
        alarms = sorted((a for a in doc["alarms"] if a["state"] == "armed"),
                        key=lambda a: (_alarm_from(a), _KIND_ORDER[a["kind"]]))
        for alarm in alarms:
            tick = self.clock.first_tick_at_or_after(_alarm_from(alarm))
            if tick is None:
                continue
            if alarm["until"] is not None and alarm["until"] <= tick:
                alarm["state"] = "dropped"  # the fact had happened by that tick
                self.report.dropped += 1
                continue
            self._raise(effects, doc, alarm, tick)
            if alarm["until"] is not None:
                self._resolve_alarm(effects, doc, alarm, alarm["until"], alarm["until_reason"] or "resolved")
        self._refresh(doc)

    def _raise(self, effects: Effects, doc: dict[str, Any], alarm: dict[str, Any], raised_at: datetime) -> None:
        kind, cycle = alarm["kind"], alarm["cycle"]
        the_id = alert_id(doc["rule"], doc["subject"], kind)
        severity = doc["severities"].get(kind) or DEFAULT_SEVERITY[kind]
        team = _team_at(doc.get("teams") or [], raised_at)
        due = alarm.get("due_at") if kind != "raised" else None
        summary = _summary(doc, kind, due)
        details = self._details(doc, alarm)
        event = alert_raised(
            source=self.book.source, alert=the_id, rule=doc["rule"], severity=severity, raised_at=raised_at,
            summary=summary, case_no=doc.get("case_no"), team=team, due_at=due, details=details, cycle=cycle,
        )
        effects.emit(ALERTS, event)
        alarm.update(state="raised", alert_id=the_id, raised_at=raised_at)
        self._dirty.add(doc["_id"])
        self._alert_docs[event.id] = {
            "_id": event.id, "alert_id": the_id, "cycle": cycle, "kind": kind, "rule": doc["rule"],
            "severity": severity, "case_no": doc.get("case_no"), "subject": doc["subject"], "team": team,
            "due_at": due, "raised_at": raised_at, "summary": summary, "details": details,
            "state": "open", "resolved_at": None, "reason": None, "late_fact": False,
        }
        self.report.raised += 1
        ALERTS_RAISED.labels(self.book.service, doc["rule"], severity).inc()

    def _resolve_alarm(self, effects: Effects, doc: dict[str, Any], alarm: dict[str, Any],
                       fact_at: datetime, reason: str) -> None:
        resolved_at = max(fact_at, alarm["raised_at"])
        text = _one_line(reason)
        if alarm.get("late"):
            LATE_FACTS.labels(self.book.service, doc["rule"]).inc()
            text = _one_line(f"{text}（事实发生于{_local_text(fact_at)}，早于告警，晚到登记）")
        event = alert_resolved(source=self.book.source, alert=alarm["alert_id"], resolved_at=resolved_at,
                               reason=text, cycle=alarm["cycle"])
        effects.emit(ALERTS, event)
        alarm.update(state="resolved", resolved_at=resolved_at, reason=text)
        self._dirty.add(doc["_id"])
        raised_id = event.id.replace("alert.resolved:", "alert.raised:", 1)
        alert_doc = self._alert_docs.get(raised_id) or self._alert_doc(doc, alarm, raised_id)
        alert_doc.update(state="resolved", resolved_at=resolved_at, reason=text, late_fact=bool(alarm.get("late")))
        self._alert_docs[raised_id] = alert_doc
        self.report.resolved += 1
        ALERTS_RESOLVED.labels(self.book.service, doc["rule"]).inc()

    def _alert_doc(self, doc: dict[str, Any], alarm: dict[str, Any], raised_id: str) -> dict[str, Any]:
        """The `alerts` document of an alert raised in an earlier batch (rebuilt: a whole replace is
        cheaper on SecantusDB than an update)."""
        kind = alarm["kind"]
        due = alarm.get("due_at") if kind != "raised" else None
        return {
            "_id": raised_id, "alert_id": alarm["alert_id"], "cycle": alarm["cycle"], "kind": kind,
            "rule": doc["rule"], "severity": doc["severities"].get(kind) or DEFAULT_SEVERITY[kind],
            "case_no": doc.get("case_no"), "subject": doc["subject"],
            "team": _team_at(doc.get("teams") or [], alarm["raised_at"]), "due_at": due,
            "raised_at": alarm["raised_at"], "summary": _summary(doc, kind, due),
            "details": self._details(doc, alarm), "state": "open", "resolved_at": None, "reason": None,
            "late_fact": False,
        }

    def _details(self, doc: dict[str, Any], alarm: dict[str, Any]) -> dict[str, Any]:
        details = dict(alarm.get("details") if alarm.get("details") is not None else doc.get("details") or {})
        details.update({"kind": alarm["kind"], "subject": doc["subject"], "opened_at": court_iso(doc["opened_at"])})
        if doc.get("name_zh"):
            details["rule_name"] = doc["name_zh"]
        if doc.get("ref"):
            details["ref"] = doc["ref"]
        warn = alarm.get("warn_at", doc.get("warn_at"))
        if warn is not None and alarm["kind"] != "raised":
            details["warn_at"] = court_iso(warn)
        if alarm["cycle"] > 1:
            details["cycle"] = alarm["cycle"]
        return details

    def _refresh(self, doc: dict[str, Any]) -> None:
        armed = [_alarm_from(a) for a in doc["alarms"] if a["state"] == "armed"]
        doc["next_fire_at"] = min(armed) if armed else None
        if doc["state"] not in FINISHED:
            kinds = {a["kind"] for a in doc["alarms"] if a["cycle"] == doc["cycle"] and a["state"] == "raised"}
            doc["state"] = "overdue" if "overdue" in kinds else "warned" if "due_soon" in kinds else "open"
        self._dirty.add(doc["_id"])

    async def _check_calendar(self, effects: Effects) -> None:
        """calendar.coverage:<year> (critical) once the watermark is within 60 days of an uncovered year."""
        calendar = self.book.calendar
        assert calendar is not None
        first_tick: dict[int, datetime] = {}
        for tick in self.clock.new_ticks:
            for year in calendar.uncovered_years_near(court_date(tick)):
                first_tick.setdefault(year, tick)
        if not first_tick:
            return
        keys = [key_of(CALENDAR_RULE, str(y)) for y in first_tick]
        if self._cache is not None:
            known = {k for k in keys if self._cache.get(k) is not None}
        else:
            known = {d["_id"] for d in await self.book.deadlines.find({"_id": {"$in": keys}}, {"_id": 1}).to_list(None)}
        for year, tick in sorted(first_tick.items()):
            key = key_of(CALENDAR_RULE, str(year))
            if key in known or key in self._docs:
                continue
            self._loaded_keys.add(key)
            self.open(effects, Deadline(
                rule=CALENDAR_RULE, subject=str(year), opened_at=tick, due_at=None, name_zh="工作日历覆盖",
                texts={"raised": f"工作日历未覆盖{year}年节假日安排，期限按仅周末休息计算，请录入国务院通知"},
                severities={"raised": "critical"},
                details={"year": year, "source": calendar.source_of(year)},
            ))
