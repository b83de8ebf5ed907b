"""entrust's rules (rules.md §4) and lifecycles: the rules file, every transition of the tables,
every deadline rule through the handler on an in-memory database stand-in, refusals with reasons,
dates across weekends and holidays, and batch-boundary independence."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.entrust import rules
from services.entrust.handlers import EntrustHandler
from services.entrust.policy import PolicyError, load_policy, parse_policy
from services.entrust.store import EntrustStore
from shared.calendar import default_calendar
from shared.contract.envelope import Event, make_event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from tests.unit.fakedb import FakeDB

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "entrust.yaml"
POLICY = load_policy(RULES_FILE)
CAL = default_calendar()
CASE = "（2025）豫0481执1号"
_ids = itertools.count(1)


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def ev(type_: str, subject: str, data: dict, when: datetime, id_: str | None = None) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests",
                      id=id_ or f"{type_}-{next(_ids)}")


def sent(eid: str, when: datetime, due_on: str | None = None, case_no: str = CASE) -> Event:
    data = {"entrust_id": eid, "case_no": case_no, "counterpart_court": "广州市天河区人民法院",
            "matter": "查询被执行人房产", "at": when.isoformat()}
    if due_on:
        data["due_on"] = due_on
    return ev("entrust.sent", eid, data, when)


def received(eid: str, when: datetime, case_no: str = "（2025）粤0106执88号") -> Event:
    return ev("entrust.received", eid, {"entrust_id": eid, "case_no": case_no, "counterpart_court": "广州市天河区人民法院",
                                        "matter": "送达执行通知书", "at": when.isoformat()}, when)


def step(kind: str, eid: str, when: datetime, note: str | None = None, subject: str | None = None) -> Event:
    data = {"entrust_id": eid, "at": when.isoformat()}
    if note:
        data["note"] = note
    return ev(f"entrust.{kind}", subject or eid, data, when)


def issued(item: str, when: datetime, due_on: str, level: str = "high", team: str = "fine",
           case_no: str | None = CASE) -> Event:
    data = {"item_id": item, "level": level, "to_team": team, "issued_at": when.isoformat(), "due_on": due_on}
    if case_no:
        data["case_no"] = case_no
    return ev("supervision.issued", item, data, when)


def replied(item: str, when: datetime, by: str = "h-017") -> Event:
    return ev("supervision.replied", item, {"item_id": item, "replied_at": when.isoformat(), "by": by}, when)


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", {"now": when.isoformat()}, when, id_=f"tick-{when.isoformat()}")


def ticks(start: datetime, end: datetime, step_hours: int = 6) -> list[Event]:
    out, now = [], start
    while now <= end:
        out.append(tick(now))
        now += timedelta(hours=step_hours)
    return out


class Entrust:
    """entrust's handler over a fake database, committing each batch as the runtime would."""

    def __init__(self, policy=POLICY):
        self.db = FakeDB()
        self.book = DeadlineBook(self.db, "entrust")
        self.store = EntrustStore(self.db, self.book)
        self.handler = EntrustHandler(policy, CAL, self.book, self.store)
        self.alerts: list[Event] = []
        self.rejected: dict[str, str] = {}

    async def run(self, *events: Event) -> list[Event]:
        effects = Effects()
        await self.handler.handle(list(events), effects)
        self.db.commit(effects)
        new = [e for _topic, e in effects.emitted]
        self.alerts += new
        self.rejected.update(effects.rejected)
        return new

    async def each(self, *events: Event) -> None:
        for event in events:
            await self.run(event)

    def deadline(self, rule: str, subject: str) -> dict:
        return self.db["deadlines"].docs[f"{rule}:{subject}"]

    def state(self, entity: str, the_id: str) -> dict:
        return self.db["entrusts" if entity == "entrust" else "supervision"].docs[the_id]

    def ids(self) -> list[str]:
        return [a.id for a in self.alerts]


# -- the rules file -----------------------------------------------------------------------------


def test_shipped_rules_file_has_every_rule_of_rules_md():
    assert [r.code for r in POLICY.rules] == [
        "entrust.incoming_reply", "entrust.outgoing_feedback", "entrust.supplement", "supervision.reply"]
    for rule in POLICY.rules:
        assert rule.name_zh and rule.name_en and rule.source and rule.status in ("SPC", "LOCAL", "UNCONFIRMED")
    assert str(POLICY.by_code("entrust.incoming_reply").due) == "30 days"
    assert str(POLICY.by_code("entrust.incoming_reply").warn_before) == "15 days"
    assert POLICY.by_code("entrust.outgoing_feedback").due_on_replaces
    assert POLICY.by_code("entrust.supplement").awaits == "any"
    assert POLICY.by_code("supervision.reply").due == "due_on"
    assert str(POLICY.by_code("supervision.reply").warn_before) == "3 days"


def _document() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("code,field,value,expected", [
    ("entrust.incoming_reply", "trigger", "entrust.teleported", "field trigger"),
    ("entrust.incoming_reply", "due", "thirty days", "field due"),
    ("entrust.incoming_reply", "due", "0 days", "longer than 0"),
    ("entrust.incoming_reply", "warn_before", "3 working days", "field warn_before"),
    ("entrust.incoming_reply", "awaits", ["supervision.replied"], "another kind of item"),
    ("entrust.incoming_reply", "awaits", ["entrust.received"], "the trigger itself"),
    ("entrust.supplement", "due", "due_on", "carries no due_on"),
    ("entrust.supplement", "status", "MAYBE", "field status"),
    ("supervision.reply", "code", "entrust.reply", "named supervision"),
    ("supervision.reply", "texts", {"due_soon": "x"}, "field texts.overdue"),
])
def test_a_bad_rules_file_names_the_rule_and_the_field(code, field, value, expected):
    document = _document()
    rule = next(r for r in document["rules"] if r["code"] == code)
    rule[field] = value
    with pytest.raises(PolicyError) as err:
        parse_policy(document)
    label = value if field == "code" else code
    assert label in str(err.value) and expected in str(err.value)


def test_a_missing_rule_a_duplicate_and_unreadable_files_are_refused(tmp_path):
    document = _document()
    document["rules"] = [r for r in document["rules"] if r["code"] != "entrust.supplement"]
    with pytest.raises(PolicyError, match="missing: entrust.supplement"):
        parse_policy(document)
    document = _document()
    document["rules"].append(dict(document["rules"][0]))
    with pytest.raises(PolicyError, match="defined twice"):
        parse_policy(document)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)


def test_service_refuses_to_start_with_a_bad_rules_file(tmp_path, monkeypatch):
    import asyncio

    from services.entrust import main as entrust_main
    bad = tmp_path / "entrust.yaml"
    bad.write_text("version: 1\nrules: []\n", encoding="utf-8")
    monkeypatch.setenv("ECC_RULES", str(bad))
    with pytest.raises(SystemExit) as exit_info:
        asyncio.run(entrust_main.run())
    assert exit_info.value.code == 2


# -- the lifecycle tables ---------------------------------------------------------------------


ENTRUST_TYPES = ["entrust.sent", "entrust.received", "entrust.supplement_requested", "entrust.returned",
                 "entrust.replied", "entrust.completed"]
T0 = at("2025-03-03")


def _entrust_event(event_type: str, when: datetime) -> Event:
    if event_type == "entrust.sent":
        return sent("E-1", when)
    if event_type == "entrust.received":
        return received("E-1", when)
    return step(event_type.split(".")[1], "E-1", when)


def _entrust_in(state: str | None) -> dict | None:
    """A stored entrust in `state`, reached through the table (the shortest path)."""
    if state is None:
        return None
    path = {"pending": [], "supplement_requested": ["supplement_requested"], "replied": ["replied"],
            "returned": ["returned"], "completed": ["completed"]}[state]
    doc = rules.decide(POLICY, CAL, None, sent("E-1", T0)).state
    for n, kind in enumerate(path, start=1):
        doc = rules.decide(POLICY, CAL, doc, step(kind, "E-1", T0 + timedelta(hours=n))).state
    return doc


@pytest.mark.parametrize("state,event_type", list(itertools.product(
    [None, *rules.ENTRUST_STATES], ENTRUST_TYPES)))
def test_every_entrust_transition_follows_the_table(state, event_type):
    doc = _entrust_in(state)
    outcome = rules.decide(POLICY, CAL, doc, _entrust_event(event_type, T0 + timedelta(days=1)))
    expected = rules.ENTRUST_TRANSITIONS.get((state, event_type))
    if expected is None:
        assert outcome.refusal is not None, (state, event_type)
        assert outcome.state is doc  # never applied
        code = outcome.refusal.code
        if state is None:
            assert code == "unknown_id"
        elif event_type in ("entrust.sent", "entrust.received"):
            assert code == "already_opened"
        elif state == "returned":
            assert code == ("second_return" if event_type == "entrust.returned" else "after_return")
        elif state == "completed":
            assert code == "after_completion"
    else:
        assert outcome.refusal is None, outcome.refusal
        assert outcome.state["state"] == expected
        assert outcome.state["history"][-1]["type"] == event_type


@pytest.mark.parametrize("state,event_type", list(itertools.product(
    [None, "issued", "replied"], ["supervision.issued", "supervision.replied"])))
def test_every_supervision_transition_follows_the_table(state, event_type):
    doc = None
    if state is not None:
        doc = rules.decide(POLICY, CAL, None, issued("S-1", T0, "2025-03-20")).state
        if state == "replied":
            doc = rules.decide(POLICY, CAL, doc, replied("S-1", T0 + timedelta(hours=1))).state
    event = issued("S-1", T0, "2025-03-20") if event_type == "supervision.issued" else replied("S-1", T0 + timedelta(days=1))
    outcome = rules.decide(POLICY, CAL, doc, event)
    expected = rules.SUPERVISION_TRANSITIONS.get((state, event_type))
    if expected is None:
        assert outcome.refusal is not None
        assert outcome.refusal.code == {None: "unknown_id", "issued": "already_opened",
                                        "replied": "second_reply" if event_type == "supervision.replied"
                                        else "already_opened"}[state]
    else:
        assert outcome.refusal is None and outcome.state["state"] == expected


def test_reply_path_goes_up_level_by_level():
    assert rules.reply_path("supreme") == ["own", "intermediate", "high", "supreme"]
    assert rules.reply_path("intermediate") == ["own", "intermediate"]
    assert rules.reply_path("own") == ["own"]


# -- the deadline rules, through the handler -----------------------------------------------------


async def test_incoming_reply_warns_at_15_days_then_overdue_at_30_then_resolves():
    svc = Entrust()
    await svc.run(received("E-2", at("2025-03-03")))
    doc = svc.deadline("entrust.incoming_reply", "E-2")
    assert doc["due_at"] == at("2025-04-02", "23:59:59")          # 30 days, a Wednesday
    assert doc["warn_at"] == at("2025-03-18", "23:59:59")         # 15 days before: the start limit
    await svc.run(tick(at("2025-03-18", "23:59:58")))
    assert svc.ids() == []
    await svc.run(tick(at("2025-03-18", "23:59:59")))
    assert svc.ids() == ["alert.raised:entrust.incoming_reply.due_soon:E-2"]
    await svc.run(tick(at("2025-04-02", "23:59:59")))             # the last second is still on time
    assert len(svc.alerts) == 1
    await svc.run(tick(at("2025-04-03", "00:00:00")))
    raised = svc.alerts[-1]
    assert raised.id == "alert.raised:entrust.incoming_reply.overdue:E-2"
    assert raised.data.severity == "critical" and raised.data.summary == "受托事项E-2逾期未回复（应于2025-04-02前）"
    assert raised.data.case_no == "（2025）粤0106执88号" and raised.data.details["direction"] == "incoming"
    await svc.run(step("replied", "E-2", at("2025-04-03", "09:00:00")))
    assert svc.ids()[-2:] == ["alert.resolved:entrust.incoming_reply.due_soon:E-2",
                              "alert.resolved:entrust.incoming_reply.overdue:E-2"]
    assert svc.state("entrust", "E-2")["state"] == "replied"
    assert svc.state("entrust", "E-2")["closed_at"] is None        # a reply does not close the matter
    await svc.run(step("completed", "E-2", at("2025-04-05", "09:00:00")))
    assert svc.state("entrust", "E-2")["closed_at"] == at("2025-04-05", "09:00:00")


@pytest.mark.parametrize("kind", ["replied", "completed", "returned"])
async def test_each_awaited_fact_ends_the_incoming_reply_in_time(kind):
    svc = Entrust()
    await svc.run(received("E-2", at("2025-03-03")), step(kind, "E-2", at("2025-03-10")))
    await svc.run(*ticks(at("2025-03-03"), at("2025-04-10"), 24))
    assert svc.alerts == []
    assert svc.deadline("entrust.incoming_reply", "E-2")["resolution"]["on_time"] is True


async def test_outgoing_feedback_uses_due_on_when_given_without_roll_over():
    svc = Entrust()
    await svc.run(sent("E-1", at("2025-04-02"), due_on="2025-05-03"))   # a Saturday in the May Day holiday
    doc = svc.deadline("entrust.outgoing_feedback", "E-1")
    assert doc["due_at"] == at("2025-05-03", "23:59:59")
    assert doc["warn_at"] == at("2025-04-26", "23:59:59")
    await svc.run(*ticks(at("2025-04-26", "12:00:00"), at("2025-05-04", "12:00:00"), 12))
    assert svc.ids() == ["alert.raised:entrust.outgoing_feedback.due_soon:E-1",
                         "alert.raised:entrust.outgoing_feedback.overdue:E-1"]
    assert svc.alerts[-1].data.summary == "委托事项E-1逾期未获反馈，请催办（应于2025-05-03前）"


async def test_outgoing_feedback_without_due_on_is_30_days_rolled_over_the_may_day_holiday():
    svc = Entrust()
    await svc.run(sent("E-1", at("2025-04-05")))                 # +30 days = 2025-05-05, a holiday
    doc = svc.deadline("entrust.outgoing_feedback", "E-1")
    assert doc["due_at"] == at("2025-05-06", "23:59:59")
    assert doc["warn_at"] == at("2025-04-29", "23:59:59")


async def test_supplement_any_later_event_ends_it_and_a_second_request_restarts_it():
    svc = Entrust()
    await svc.run(received("E-2", at("2025-03-03")), step("supplement_requested", "E-2", at("2025-03-05"), "缺少生效法律文书"))
    doc = svc.deadline("entrust.supplement", "E-2")
    assert doc["due_at"] == at("2025-04-07", "23:59:59")          # 04-04 is Qingming: rolled to Monday 04-07
    assert doc["warn_at"] == at("2025-03-31", "23:59:59")

    def supplement() -> list[str]:
        return [i for i in svc.ids() if "supplement" in i]

    await svc.run(tick(at("2025-04-01")))
    assert supplement() == ["alert.raised:entrust.supplement.due_soon:E-2"]
    # The reply period runs on meanwhile (rules.md §4 does not suspend it).
    assert "alert.raised:entrust.incoming_reply.due_soon:E-2" in svc.ids()
    await svc.run(step("supplement_requested", "E-2", at("2025-04-02"), "仍缺送达地址确认书"))
    assert supplement()[-1] == "alert.resolved:entrust.supplement.due_soon:E-2"
    doc = svc.deadline("entrust.supplement", "E-2")
    assert doc["cycle"] == 2 and doc["due_at"] == at("2025-05-06", "23:59:59")   # 05-02 → after May Day
    await svc.run(tick(at("2025-05-07")))
    assert supplement()[-2:] == ["alert.raised:entrust.supplement.due_soon:E-2:2",
                                 "alert.raised:entrust.supplement.overdue:E-2:2"]
    assert "应予退回" in [a for a in svc.alerts if a.id.endswith("overdue:E-2:2")][0].data.summary
    before = len(svc.alerts)
    await svc.run(step("returned", "E-2", at("2025-05-07", "11:00:00")))
    assert {a.id for a in svc.alerts[before:]} == {
        "alert.resolved:entrust.supplement.due_soon:E-2:2", "alert.resolved:entrust.supplement.overdue:E-2:2",
        "alert.resolved:entrust.incoming_reply.due_soon:E-2", "alert.resolved:entrust.incoming_reply.overdue:E-2"}
    assert svc.state("entrust", "E-2")["state"] == "returned"


async def test_supervision_reply_is_due_at_the_end_of_due_on_warns_3_days_before_and_carries_the_team():
    svc = Entrust()
    await svc.run(issued("S-1", at("2025-05-06", "09:00:00"), "2025-05-15", level="high", team="fine"))
    doc = svc.deadline("supervision.reply", "S-1")
    assert doc["due_at"] == at("2025-05-15", "23:59:59") and doc["warn_at"] == at("2025-05-12", "23:59:59")
    await svc.run(tick(at("2025-05-13")))
    (warning,) = svc.alerts
    assert warning.id == "alert.raised:supervision.reply.due_soon:S-1"
    assert warning.data.team == "fine" and warning.data.severity == "warning"
    assert warning.data.details["level"] == "high"
    await svc.run(replied("S-1", at("2025-05-14", "17:00:00")))
    assert svc.ids()[-1] == "alert.resolved:supervision.reply.due_soon:S-1"
    await svc.run(tick(at("2025-05-20")))
    assert len(svc.alerts) == 2
    assert svc.state("supervision", "S-1")["replied"]["by"] == "h-017"


async def test_supervision_without_case_number_works():
    svc = Entrust()
    await svc.run(issued("S-9", at("2025-05-06"), "2025-05-08", level="own", case_no=None), tick(at("2025-05-09")))
    assert svc.ids() == ["alert.raised:supervision.reply.due_soon:S-9", "alert.raised:supervision.reply.overdue:S-9"]
    assert "case_no" not in svc.alerts[0].data.model_dump(exclude_none=True)


# -- refusals go to the dead-letter topic with the reason --------------------------------------


async def test_impossible_events_are_refused_with_their_reason_and_never_applied():
    svc = Entrust()
    cases = [
        step("replied", "E-404", at("2025-03-04")),                                   # unknown entrust id
        sent("E-1", at("2025-03-03")),
        step("returned", "E-1", at("2025-03-04")),
        step("returned", "E-1", at("2025-03-05")),                                    # a second return
        received("E-3", at("2025-03-03")),
        step("completed", "E-3", at("2025-03-04")),
        step("replied", "E-3", at("2025-03-06")),                                     # after completion
        sent("E-3", at("2025-03-07")),                                                # opened twice
        replied("S-404", at("2025-03-04")),                                           # unknown item
        issued("S-1", at("2025-03-03"), "2025-03-20"),
        replied("S-1", at("2025-03-04")),
        replied("S-1", at("2025-03-05")),                                             # a second reply
        received("E-5", at("2025-03-10")),
        step("replied", "E-5", at("2025-03-09")),                                     # before the opening
        step("replied", "E-5", at("2025-03-11"), subject="E-6"),                      # subject ≠ entrust_id
        issued("S-2", at("2025-03-10"), "2025-03-09"),                                # due before issued
    ]
    await svc.run(*cases)
    reasons = {event.id: svc.rejected.get(event.id) for event in cases}
    refused = [e for e in cases if reasons[e.id]]
    assert [e.type for e in refused] == ["entrust.replied", "entrust.returned", "entrust.replied", "entrust.sent",
                                         "supervision.replied", "supervision.replied", "entrust.replied",
                                         "entrust.replied", "supervision.issued"]
    texts = [reasons[e.id] for e in refused]
    assert "unknown entrust E-404" in texts[0] and "不存在" in texts[0]
    assert texts[1].startswith("a second return") and "不能重复退回" in texts[1]
    assert "after completion" in texts[2] and "已于" in texts[2]
    assert "exists already" in texts[3]
    assert "unknown supervision item S-404" in texts[4]
    assert texts[5].startswith("a second reply")
    assert "before entrust E-5 was opened" in texts[6]
    assert "differs from data.entrust_id" in texts[7]
    assert "due_on 2025-03-09 is before the supervision.issued date 2025-03-10" in texts[8]
    assert svc.state("entrust", "E-1")["state"] == "returned" and len(svc.state("entrust", "E-1")["history"]) == 2
    assert svc.state("entrust", "E-3")["direction"] == "incoming"
    assert "E-404" not in svc.db["entrusts"].docs


# -- determinism ----------------------------------------------------------------------------------


def _stream() -> list[Event]:
    """Facts and hourly ticks in event-time order, as a replay of the topics gives them."""
    events = [received("E-2", at("2025-03-03")), sent("E-1", at("2025-03-04"), due_on="2025-03-20"),
              issued("S-1", at("2025-03-05"), "2025-03-12", team="quick"),
              step("supplement_requested", "E-2", at("2025-03-06")),
              replied("S-1", at("2025-03-14")),                      # two days after its due
              step("replied", "E-1", at("2025-03-21", "08:00:00"))]
    events += ticks(at("2025-03-03", "12:00:00"), at("2025-04-15"), 12)
    return sorted(events, key=lambda e: e.time)


async def test_the_alert_stream_is_the_same_whatever_the_batch_boundaries():
    whole, one_by_one, chunked = Entrust(), Entrust(), Entrust()
    stream = _stream()
    await whole.run(*stream)
    await one_by_one.each(*stream)
    for start in range(0, len(stream), 7):
        await chunked.run(*stream[start:start + 7])
    wire = [a.to_bytes() for a in whole.alerts]
    assert sorted(wire) == sorted(a.to_bytes() for a in one_by_one.alerts) == sorted(
        a.to_bytes() for a in chunked.alerts)
    for run in (whole, one_by_one, chunked):   # per alert: raised before resolved
        for alert in {a.data.alert_id for a in run.alerts}:
            kinds = [a.type for a in run.alerts if a.data.alert_id == alert]
            assert kinds in (["alert.raised"], ["alert.raised", "alert.resolved"]), (alert, kinds)
    assert "alert.resolved:supervision.reply.overdue:S-1" in whole.ids()
    assert "alert.raised:entrust.outgoing_feedback.overdue:E-1" in whole.ids()   # replied 8 h late


async def test_a_reply_read_after_the_alert_it_answers_is_a_late_fact():
    svc = Entrust()
    await svc.run(issued("S-1", at("2025-03-05"), "2025-03-12"))
    await svc.run(tick(at("2025-03-16")))
    await svc.run(replied("S-1", at("2025-03-12", "18:00:00")))   # in time, but registered after the alert
    resolved = [a for a in svc.alerts if a.type == "alert.resolved"]
    # The tick raised both (warning and overdue); the reply, timed before the due, resolves both as late.
    assert {a.data.alert_id for a in resolved} == {"supervision.reply.due_soon:S-1", "supervision.reply.overdue:S-1"}
    assert all("晚到登记" in a.data.reason for a in resolved)
    assert svc.deadline("supervision.reply", "S-1")["resolution"]["on_time"] is True
