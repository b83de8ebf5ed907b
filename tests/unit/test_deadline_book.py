"""The shared deadline engine (shared/deadline_book.py) on an in-memory database stand-in.

Pure parts: alarm arithmetic, ids, summaries, team in force, late facts, re-arming,
batch-boundary independence and paging of a backlog.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from shared.alerts import alert_id, raised_event_id, resolved_event_id
from shared.calendar import CourtCalendar, YearOverride
from shared.contract.envelope import COURT_TZ
from shared.deadline_book import Deadline, DeadlineBook, key_of
from shared.runtime.effects import Effects
from tests.unit.fakedb import FakeDB

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=COURT_TZ)
DUE = datetime(2025, 3, 13, 23, 59, 59, tzinfo=COURT_TZ)
WARN = datetime(2025, 3, 6, 23, 59, 59, tzinfo=COURT_TZ)
CASE = "（2025）豫0481执1号"


def notice(case_no: str = CASE, opened: datetime = T0, due: datetime = DUE, warn: datetime | None = WARN,
           **extra) -> Deadline:
    return Deadline(rule="node.notice", subject=case_no, case_no=case_no, opened_at=opened, due_at=due,
                    warn_at=warn, name_zh="发出执行通知书",
                    texts={"due_soon": "执行通知书即将到期未发出", "overdue": "执行通知书逾期未发出"}, **extra)


class Driver:
    """Runs steps through the book in batches, committing each batch like the runtime does."""

    def __init__(self, limit: int = 5000, calendar: CourtCalendar | None = None, cache: bool = True):
        self.db = FakeDB()
        self.cache = cache
        self.book = DeadlineBook(self.db, "testsvc", fire_limit=limit, calendar=calendar, cache=cache)
        self.emitted: list = []

    async def batch(self, steps: list[tuple]) -> Effects:
        case_nos = {s[1].case_no for s in steps if s[0] == "open" and s[1].case_no}
        case_nos |= {s[1] for s in steps if s[0] in ("resolve", "close", "team", "rearm")}
        batch = await self.book.load(case_nos=case_nos, keys={s[1].key for s in steps if s[0] == "open"})
        effects = Effects()
        for step in steps:
            kind = step[0]
            if kind == "tick":
                batch.clock.observe(step[1])
            elif kind == "open":
                batch.open(effects, step[1])
            elif kind == "resolve":
                _, case_no, rule, at, reason = step
                batch.resolve(effects, rule, case_no, at=at, reason=reason)
            elif kind == "close":
                _, case_no, at = step
                batch.resolve_case(effects, case_no, at=at, reason="案件已结案")
            elif kind == "team":
                _, case_no, team, since = step
                batch.set_team(case_no, team, since)
            elif kind == "rearm":
                _, case_no, rule, at, due, warn = step
                batch.rearm(effects, rule, case_no, at=at, due_at=due, warn_at=warn, reason="期限已延长")
        batch.clock.apply()
        await batch.fire_due(effects)
        self.db.commit(effects)
        self.emitted += [event for _topic, event in effects.emitted]
        return effects

    def wire(self) -> list[bytes]:
        return [e.to_bytes() for e in self.emitted]

    def ids(self) -> list[str]:
        return [e.id for e in self.emitted]


def hourly(start: datetime, hours: int) -> list[tuple]:
    return [("tick", start + timedelta(hours=h)) for h in range(hours)]


def test_alert_ids_follow_rules_md():
    assert alert_id("node.notice", CASE, "due_soon") == f"node.notice.due_soon:{CASE}"
    assert alert_id("node.notice", CASE, "overdue") == f"node.notice.overdue:{CASE}"
    assert alert_id("funds.unidentified", "R1", "raised") == "funds.unidentified:R1"
    assert raised_event_id("x.overdue:s") == "alert.raised:x.overdue:s"
    assert resolved_event_id("x.overdue:s", 2) == "alert.resolved:x.overdue:s:2"


async def test_warning_and_overdue_boundaries_to_the_second():
    d = Driver()
    await d.batch([("open", notice()), ("tick", WARN - timedelta(seconds=1))])
    assert d.emitted == []
    await d.batch([("tick", WARN)])
    assert d.ids() == [f"alert.raised:node.notice.due_soon:{CASE}"]
    await d.batch([("tick", DUE)])  # the whole last second is still on time
    assert len(d.emitted) == 1
    await d.batch([("tick", DUE + timedelta(seconds=1))])
    raised = d.emitted[-1]
    assert raised.id == f"alert.raised:node.notice.overdue:{CASE}"
    assert raised.subject == raised.data.alert_id == f"node.notice.overdue:{CASE}"
    assert raised.data.severity == "critical" and raised.data.rule == "node.notice"
    assert raised.data.summary == "执行通知书逾期未发出（应于2025-03-13前）"
    assert raised.data.raised_at == DUE + timedelta(seconds=1)
    assert raised.data.due_at == DUE and raised.data.case_no == CASE
    assert raised.to_json_dict()["data"]["raised_at"] == "2025-03-14T00:00:00+08:00"
    doc = d.db["deadlines"].docs[key_of("node.notice", CASE)]
    assert doc["state"] == "overdue" and doc["next_fire_at"] is None


async def test_fact_resolves_each_raised_alert_once():
    d = Driver()
    await d.batch([("open", notice()), ("tick", WARN)])
    await d.batch([("resolve", CASE, "node.notice", WARN + timedelta(hours=5), "执行通知书已送达")])
    await d.batch([("resolve", CASE, "node.notice", WARN + timedelta(hours=6), "again")])
    await d.batch(hourly(DUE, 48))
    assert d.ids() == [f"alert.raised:node.notice.due_soon:{CASE}", f"alert.resolved:node.notice.due_soon:{CASE}"]
    resolved = d.emitted[1]
    assert resolved.data.resolved_at == WARN + timedelta(hours=5)
    assert resolved.data.reason == "执行通知书已送达"
    alert_doc = d.db["alerts"].docs[f"alert.raised:node.notice.due_soon:{CASE}"]
    assert alert_doc["state"] == "resolved"


async def test_fact_ahead_of_the_watermark_is_judged_in_event_time():
    """The fact (timed after the warning) is read before the ticks: same stream as in time order."""
    in_order, early = Driver(), Driver()
    fact = WARN + timedelta(hours=3, minutes=30)
    await in_order.batch([("open", notice())])
    await in_order.batch(hourly(WARN, 3))
    await in_order.batch([("resolve", CASE, "node.notice", fact, "执行通知书已送达")])
    await in_order.batch(hourly(WARN + timedelta(hours=3), 300))
    await early.batch([("open", notice()), ("resolve", CASE, "node.notice", fact, "执行通知书已送达")])
    await early.batch(hourly(WARN, 303))
    assert in_order.wire() == early.wire()
    assert early.ids() == [f"alert.raised:node.notice.due_soon:{CASE}", f"alert.resolved:node.notice.due_soon:{CASE}"]


async def test_fact_before_the_threshold_raises_nothing():
    d = Driver()
    await d.batch([("open", notice()), ("resolve", CASE, "node.notice", WARN - timedelta(hours=1), "送达")])
    await d.batch(hourly(WARN - timedelta(hours=2), 400))
    assert d.emitted == []
    doc = d.db["deadlines"].docs[key_of("node.notice", CASE)]
    assert doc["state"] == "resolved" and doc["resolution"]["on_time"] is True


@pytest.mark.parametrize("cache", [True, False])
async def test_late_fact_resolves_and_records_lateness(cache):
    d = Driver(cache=cache)
    await d.batch([("open", notice())])
    await d.batch(hourly(DUE - timedelta(hours=1), 3))  # due_soon and overdue raised
    # The notice was served before the due, but the record arrives after the overdue alert.
    await d.batch([("resolve", CASE, "node.notice", DUE - timedelta(hours=2), "执行通知书已送达")])
    assert [e.type for e in d.emitted] == ["alert.raised", "alert.raised", "alert.resolved", "alert.resolved"]
    overdue_resolved = d.emitted[-1]
    assert overdue_resolved.data.alert_id == f"node.notice.overdue:{CASE}"
    assert "晚到登记" in overdue_resolved.data.reason
    assert overdue_resolved.data.resolved_at == d.emitted[1].data.raised_at  # never before it was raised
    doc = d.db["deadlines"].docs[key_of("node.notice", CASE)]
    assert doc["resolution"]["on_time"] is True
    assert f"node.notice.overdue:{CASE}" in doc["resolution"]["late_fact"]["alerts"]


@pytest.mark.parametrize("cache", [True, False])
async def test_stream_does_not_depend_on_batch_boundaries_or_page_size(cache):
    steps: list[tuple] = []
    for n in range(1, 40):
        case_no = f"（2025）豫0481执{n}号"
        opened = T0 + timedelta(hours=7 * n)
        steps.append(("open", notice(case_no, opened, DUE + timedelta(hours=7 * n), WARN + timedelta(hours=7 * n))))
        if n % 3 == 0:
            steps.append(("resolve", case_no, "node.notice", WARN + timedelta(hours=7 * n + 5), "送达"))
    ticks = hourly(T0, 24 * 30)
    one = Driver(cache=cache)
    await one.batch(steps + ticks)
    small = Driver(limit=4, cache=cache)
    await small.batch(steps)
    for i in range(0, len(ticks), 5):
        await small.batch(ticks[i:i + 5])
    for _ in range(30):  # let the paged backlog drain
        await small.batch([])
    assert sorted(one.wire()) == sorted(small.wire())
    assert len(one.emitted) == 39 * 2 - 13 * 2 + 13 * 2  # every case warned; 26 overdue; 13 warnings resolved


@pytest.mark.parametrize("cache", [True, False])
async def test_backlog_is_paged_and_keeps_raised_at(cache):
    d = Driver(limit=10, cache=cache)
    await d.batch([("open", notice(f"（2025）豫0481执{n}号")) for n in range(1, 26)])
    await d.batch([("tick", DUE + timedelta(days=3))])  # a holiday's worth of ticks in one
    assert len(d.emitted) == 20  # the first page: 10 deadlines, warning and overdue each
    assert d.db["clock"].docs["watermark"]["backlog"] is True
    await d.batch([("tick", DUE + timedelta(days=3, hours=1))])
    await d.batch([])
    await d.batch([])
    assert len(d.emitted) == 50
    assert {e.data.raised_at for e in d.emitted} == {DUE + timedelta(days=3)}
    assert d.db["clock"].docs["watermark"]["backlog"] is False


@pytest.mark.parametrize("cache", [True, False])
async def test_replayed_ticks_and_a_restart_raise_nothing_twice(cache):
    d = Driver(cache=cache)
    await d.batch([("open", notice())] + hourly(WARN, 2))
    first = list(d.emitted)
    # A "restart": a new book over the same database; the same ticks come again, then more.
    d.book = DeadlineBook(d.db, "testsvc", cache=cache)
    await d.batch(hourly(WARN, 2))
    await d.batch([("open", notice())])
    assert d.emitted == first
    await d.batch(hourly(DUE, 3))
    assert [e.data.alert_id for e in d.emitted] == [f"node.notice.due_soon:{CASE}", f"node.notice.overdue:{CASE}"]


async def test_rearm_starts_a_new_cycle_with_new_event_ids():
    d = Driver()
    await d.batch([("open", notice())] + hourly(DUE, 3))
    new_due = DUE + timedelta(days=20)
    await d.batch([("rearm", CASE, "node.notice", DUE + timedelta(hours=5), new_due, new_due - timedelta(days=7))])
    await d.batch(hourly(new_due - timedelta(days=7), 24 * 8))
    ids = d.ids()
    assert ids[:2] == [f"alert.raised:node.notice.due_soon:{CASE}", f"alert.raised:node.notice.overdue:{CASE}"]
    assert set(ids[2:4]) == {f"alert.resolved:node.notice.due_soon:{CASE}", f"alert.resolved:node.notice.overdue:{CASE}"}
    assert ids[4:] == [f"alert.raised:node.notice.due_soon:{CASE}:2", f"alert.raised:node.notice.overdue:{CASE}:2"]
    assert d.emitted[-1].data.details["cycle"] == 2


async def test_closure_resolves_open_alerts_but_kept_deadlines():
    d = Driver()
    other = Deadline(rule="node.seizure_renewal", subject=f"{CASE}#A1", ref="A1", case_no=CASE, opened_at=T0,
                     due_at=DUE, warn_at=WARN)
    await d.batch([("open", notice()), ("open", other), ("tick", WARN)])
    assert len(d.emitted) == 2
    batch = await d.book.load(case_nos=[CASE])
    effects = Effects()
    batch.resolve_case(effects, CASE, at=WARN + timedelta(hours=1), reason="案件已结案",
                       keep=lambda doc: doc["rule"] == "node.seizure_renewal")
    await batch.fire_due(effects)
    d.db.commit(effects)
    d.emitted += [e for _t, e in effects.emitted]
    assert [e.data.alert_id for e in d.emitted[2:]] == [f"node.notice.due_soon:{CASE}"]
    docs = d.db["deadlines"].docs
    assert docs[key_of("node.notice", CASE)]["state"] == "cancelled"
    assert docs[key_of("node.seizure_renewal", f"{CASE}#A1")]["state"] == "warned"


async def test_rule_without_deadline_raises_at_once_and_team_in_force():
    d = Driver()
    await d.batch([("open", notice()), ("team", CASE, "quick", T0 + timedelta(days=1))])
    immediate = Deadline(rule="funds.unidentified", subject="R1", opened_at=T0 + timedelta(hours=2), due_at=None,
                         texts={"raised": "收到不明款"}, severities={"raised": "warning"})
    await d.batch([("open", immediate), ("tick", WARN)])
    assert d.emitted[0].id == "alert.raised:funds.unidentified:R1"
    assert d.emitted[0].data.raised_at == T0 + timedelta(hours=2) and d.emitted[0].data.due_at is None
    assert d.emitted[0].data.summary == "收到不明款"
    assert d.emitted[1].data.team == "quick"


async def test_team_decided_after_the_raising_tick_is_not_used():
    d = Driver()
    await d.batch([("open", notice()), ("team", CASE, "fine", WARN + timedelta(hours=1)), ("tick", WARN)])
    assert d.emitted[0].data.team is None


async def test_unloaded_deadline_is_a_programming_error():
    d = Driver(cache=False)  # with the cache every deadline is at hand
    batch = await d.book.load(case_nos=["（2025）豫0481执9号"])
    with pytest.raises(LookupError):
        batch.open(Effects(), notice())


async def test_calendar_coverage_alert_once():
    calendar = CourtCalendar({2027: YearOverride(2027, "weekends_only", "none found as of 2026-11-27")})
    assert not calendar.covers(2027)
    d = Driver(calendar=calendar)
    start = datetime(2026, 10, 30, 12, 0, tzinfo=COURT_TZ)
    await d.batch([("tick", start)])
    assert d.emitted == []
    await d.batch([("tick", start + timedelta(days=d)) for d in range(1, 5)])
    await d.batch([("tick", start + timedelta(days=6))])
    assert d.ids() == ["alert.raised:calendar.coverage:2027"]
    alert = d.emitted[0]
    assert alert.data.severity == "critical" and alert.data.case_no is None
    assert (alert.data.raised_at.date() - date(2027, 1, 1)).days >= -60


async def test_a_rerun_batch_does_not_leave_its_changes_in_the_cache():
    """The runtime re-runs a batch whose transaction failed: the first attempt's changes must vanish."""
    d = Driver()
    await d.batch([("open", notice())])
    failed = await d.book.load(event_ids=["tick-1"])
    failed.clock.observe(WARN)
    failed.clock.apply()
    effects = Effects()
    await failed.fire_due(effects)
    assert len(effects.emitted) == 1  # ... but this transaction never commits
    retry = await d.book.load(event_ids=["tick-1"])
    assert retry.get("node.notice", CASE)["state"] == "open"
    retry.clock.observe(WARN)
    retry.clock.apply()
    effects = Effects()
    await retry.fire_due(effects)
    d.db.commit(effects)
    assert [e.id for _t, e in effects.emitted] == [f"alert.raised:node.notice.due_soon:{CASE}"]
    following = await d.book.load(event_ids=["tick-2"])  # a new batch: the retry committed
    assert following.get("node.notice", CASE)["state"] == "warned"


async def test_alarm_of_an_old_cycle_keeps_its_own_due_and_details():
    """A deadline re-armed before the watermark reached its old warning: the old alert says what it was."""
    d = Driver()
    new_due = DUE + timedelta(days=30)
    await d.batch([("open", notice()),
                   ("rearm", CASE, "node.notice", WARN + timedelta(hours=5), new_due, new_due - timedelta(days=7))])
    await d.batch(hourly(WARN, 6))
    old = [e for e in d.emitted if e.type == "alert.raised"]
    assert [e.id for e in old] == [f"alert.raised:node.notice.due_soon:{CASE}"]
    assert old[0].data.due_at == DUE and old[0].data.summary.endswith("（应于2025-03-13前）")
    assert d.emitted[1].id == f"alert.resolved:node.notice.due_soon:{CASE}"
    assert d.emitted[1].data.resolved_at == WARN + timedelta(hours=5)


async def test_without_event_ids_a_failed_batch_is_reread_from_the_database():
    """Callers that do not pass event ids: the cache cannot tell a re-run, so it re-reads what changed."""
    d = Driver()
    await d.batch([("open", notice())])
    failed = await d.book.load()
    failed.clock.observe(WARN)
    failed.clock.apply()
    await failed.fire_due(Effects())  # never committed
    retry = await d.book.load()
    assert retry.get("node.notice", CASE)["state"] == "open"
    assert retry.clock.now is None
    retry.clock.observe(WARN)
    retry.clock.apply()
    effects = Effects()
    await retry.fire_due(effects)
    d.db.commit(effects)
    after = await d.book.load()
    assert after.get("node.notice", CASE)["state"] == "warned" and after.clock.now == WARN
