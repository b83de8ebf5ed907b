"""The BatchHandler of metrics.

Per batch: one query for the batch's cases, one for its alerts, one for the watermark, and,
only when the local day changes, one for the flow documents and one for the month buckets the
snapshots need. Case events (and triage decisions, 终本 reviews) are applied first, then the
ticks: a snapshot as of D counts the days ≤ D of the buckets, so events of later days read in
the same batch change nothing in it. Writes: one op per changed case and alert, one $inc per
bucket document, the watermark, the snapshots.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from services.metrics import metrics as prom
from services.metrics.policy import IndicatorPolicy
from services.metrics.rules import (
    UNASSIGNED, Deltas, Snapshot, apply_event, compute, contributions, months_needed, new_case, open_key,
    snapshot_plan,
)
from services.metrics.store import MetricsStore
from shared.calendar import CourtCalendar
from shared.clock import DEDUPED_BY_WATERMARK
from shared.clock import Watermark
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import Event, make_event
from shared.contract.types import format_money
from shared.deadline_book import ms
from shared.deadlines import court_date, end_of_day
from shared.ids import derived_id
from shared.logging import get_logger
from shared.metrics import WATERMARK
from shared.runtime.effects import Effects
from shared.topics import METRICS_SNAPSHOTS

SOURCE = "ecc/metrics"
NAME = "metrics"
CASE_TYPES = frozenset({
    "case.filed", "node.completed", "property.inquiry.result", "case.term_extended", "case.closed",
    "triage.decided", "termination.reviewed",
})
ALERT_TYPES = frozenset({"alert.raised", "alert.resolved"})
log = get_logger()


def case_of(event: Event) -> str:
    data: Any = event.data
    raw = data.case_no if event.type in ("triage.decided", "termination.reviewed") else event.subject
    return parse_case_no(raw).normalized


def alert_kind(alert_id: str, rule: str | None = None) -> tuple[str, str]:
    """(rule, kind) of an alert id: `<rule>.due_soon:…`, `<rule>.overdue:…` or `<rule>:…`."""
    prefix = alert_id.split(":", 1)[0]
    for kind in ("due_soon", "overdue"):
        if prefix.endswith(f".{kind}") and (rule is None or prefix == f"{rule}.{kind}"):
            return prefix[: -len(kind) - 1], kind
    return rule or prefix, "raised"


def snapshot_event(snapshot: Snapshot) -> Event:
    period = snapshot.period
    return make_event(
        type="metrics.snapshot", subject=f"{snapshot.scope}:{period}", source=SOURCE,
        id=derived_id("metrics.snapshot", snapshot.scope, period, snapshot.as_of.isoformat()),
        time=end_of_day(snapshot.as_of),
        data={"scope": snapshot.scope, "period": period, "as_of": snapshot.as_of.isoformat(),
              "indicators": snapshot.indicators,
              "counts": {k: {"numerator": _json(v["numerator"]), "denominator": _json(v["denominator"])}
                         for k, v in snapshot.counts.items()}},
    )


def _json(value: Any) -> Any:
    return value if isinstance(value, int) else format_money(value)


class MetricsHandler:
    idempotent = DEDUPED_BY_WATERMARK

    def __init__(self, policy: IndicatorPolicy, calendar: CourtCalendar, store: MetricsStore):
        self.policy = policy
        self.calendar = calendar
        self.store = store

    async def handle(self, events: list[Event], effects: Effects) -> None:
        subjects: dict[str, str] = {}
        for event in events:
            if event.type in CASE_TYPES:
                try:
                    subjects[event.id] = case_of(event)
                except CaseNumberError as exc:
                    effects.reject(event, f"not a case number: {exc.reason}")
        deltas = Deltas()
        changed = await self._cases(events, subjects, deltas)
        alert_docs, alert_counts = await self._alerts([e for e in events if e.type in ALERT_TYPES])
        ticks = [e.data.now for e in events if e.type == "clock.tick"]  # type: ignore[attr-defined]
        snapshots: list[Snapshot] = []
        if ticks:
            snapshots = await self._ticks(ticks, deltas, effects)
        self.store.write_cases(effects, changed)
        self.store.write_deltas(effects, deltas, alert_counts)
        self.store.write_alerts(effects, alert_docs)
        docs = []
        for snapshot in snapshots:
            event = snapshot_event(snapshot)
            effects.emit(METRICS_SNAPSHOTS, event)
            docs.append({"_id": event.id, **event.data.model_dump(mode="json")})
            prom.SNAPSHOTS.labels("month" if len(snapshot.period) == 7 else "year").inc()
        self.store.write_snapshots(effects, docs)
        self._set_indicator_gauges(docs)
        if deltas.open or any(alert_counts.values()):
            await self.refresh_gauges(deltas.open, alert_counts)

    # -- cases --------------------------------------------------------------------------

    async def _cases(self, events: list[Event], subjects: dict[str, str], deltas: Deltas) -> list[dict]:
        cases = await self.store.load_cases(set(subjects.values()))
        changed: dict[str, dict] = {}
        for event in events:
            case_no = subjects.get(event.id)
            if case_no is None:
                continue
            case = cases.get(case_no) or cases.setdefault(case_no, new_case(case_no))
            was_filed = case["filed_on"] is not None
            apply_event(case, event, self.policy)
            new = contributions(case, self.policy, self.calendar)
            deltas.case_changed(dict(case["contrib"]), new)
            case["contrib"] = sorted(new.items())  # pairs: team names may hold dots, field names may not
            key = open_key(case)
            deltas.open_changed(case["open_key"], key)
            case["open_key"] = key
            changed[case_no] = case
            prom.EVENTS.labels(event.type).inc()
            if not was_filed and case["filed_on"] is not None:
                prom.CASES_FILED.labels(case["case_type"]).inc()
        return list(changed.values())

    # -- alerts -------------------------------------------------------------------------

    async def _alerts(self, events: list[Event]) -> tuple[list[dict], dict[tuple[str, str, str], int]]:
        counts: dict[tuple[str, str, str], int] = defaultdict(int)
        if not events:
            return [], counts
        docs = await self.store.load_alerts({e.data.alert_id for e in events})  # type: ignore[attr-defined]
        changed: dict[str, dict] = {}
        for event in events:
            data: Any = event.data
            doc = docs.get(data.alert_id)
            if event.type == "alert.raised":
                if doc is not None and doc["state"] == "open":
                    continue
                rule, kind = alert_kind(data.alert_id, data.rule)
                doc = {"_id": data.alert_id, "rule": rule, "kind": kind, "team": data.team or UNASSIGNED,
                       "severity": data.severity, "state": "open", "raised_at": ms(data.raised_at)}
                counts[(rule, kind, doc["team"])] += 1
            else:
                if doc is None or doc["state"] != "open":
                    continue  # a resolution of an alert not (or no longer) open changes no count
                doc = {**doc, "state": "resolved", "resolved_at": ms(data.resolved_at)}
                counts[(doc["rule"], doc["kind"], doc["team"])] -= 1
            docs[data.alert_id] = changed[data.alert_id] = doc
            prom.EVENTS.labels(event.type).inc()
        return list(changed.values()), counts

    # -- the clock and snapshots --------------------------------------------------------------

    async def _ticks(self, ticks: list[datetime], deltas: Deltas, effects: Effects) -> list[Snapshot]:
        watermark = Watermark(await self.store.watermark())
        plan: list[tuple] = []
        moved = False
        for tick in ticks:
            before = watermark.now
            if watermark.advance(ms(tick)):
                moved = True
                plan += snapshot_plan(court_date(before) if before is not None else None, court_date(watermark.now))
        if not moved:
            return []
        self.store.write_clock(effects, watermark.now)
        WATERMARK.labels(NAME).set(watermark.now.timestamp())
        if not plan:
            return []
        buckets, flows = await self.store.load_buckets(plan, deltas.scopes)
        deltas.merge_into(buckets, flows)
        scopes = sorted({doc_id[5:] for doc_id in flows})
        snapshots = []
        for as_of, period in plan:
            for scope in scopes:
                docs = [buckets[k] for k in (f"{scope}|{m}" for m in months_needed(period, as_of)) if k in buckets]
                snapshots.append(compute(self.policy, scope, period, as_of, docs, flows.get(f"flow|{scope}")))
        return snapshots

    # -- Prometheus ---------------------------------------------------------------------------

    def _set_indicator_gauges(self, docs: list[dict[str, Any]]) -> None:
        latest: dict[tuple[str, bool], dict[str, Any]] = {}
        for doc in docs:
            latest[(doc["scope"], len(doc["period"]) == 7)] = doc
        for doc in latest.values():
            set_indicator_gauges(doc)

    async def refresh_gauges(self, open_deltas: dict[str, int] | None = None,
                             alert_deltas: dict[tuple[str, str, str], int] | None = None) -> None:
        """Case-flow and alert gauges: the stored counts plus this batch's changes (not yet committed).

        Gauges are set, never incremented, so a batch the runtime re-runs sets the same values.
        """
        opened: dict[tuple[str, str], int] = {}
        alerts: dict[tuple[str, str, str], int] = {}
        for doc in await self.store.gauge_docs():
            labels = doc.get("labels") or {}
            if doc.get("kind") == "open":
                opened[(labels["case_type"], labels["team"])] = int(doc.get("n", 0))
            elif doc.get("kind") == "alerts":
                alerts[(labels["rule"], labels["kind"], labels["team"])] = int(doc.get("n", 0))
        for key, n in (open_deltas or {}).items():
            case_type, team = key.split("|", 1)
            opened[(case_type, team)] = opened.get((case_type, team), 0) + n
        for key3, n in (alert_deltas or {}).items():
            alerts[key3] = alerts.get(key3, 0) + n
        for (case_type, team), n in opened.items():
            prom.CASES_OPEN.labels(case_type, team).set(n)
        for (rule, kind, team), n in alerts.items():
            prom.ALERTS_OPEN.labels(rule, kind, team).set(n)

    async def restore_gauges(self) -> None:
        """At start: the newest stored snapshots, targets, and the flow gauges (Prometheus is a cache)."""
        for indicator in self.policy.indicators:
            if indicator.target is not None:
                prom.INDICATOR_TARGET.labels(indicator.id).set(indicator.target)
        for doc in await self.store.latest_snapshots():
            set_indicator_gauges(doc)
        await self.refresh_gauges()


def set_indicator_gauges(doc: dict[str, Any]) -> None:
    gauge = prom.INDICATOR if len(doc["period"]) == 7 else prom.INDICATOR_YTD
    for indicator, value in (doc.get("indicators") or {}).items():
        if value is None:
            try:
                gauge.remove(indicator, doc["scope"])  # denominator 0: no value, not 0
            except KeyError:
                pass
        else:
            gauge.labels(indicator, doc["scope"]).set(value)
