"""sentiment's rules (rules.md §6): the rules file, grading by keywords and patterns, linkage to
cases, the alerts raised at registration, the response rule per level on event time, every
transition of the lifecycle, refusals with reasons, and transfer to the team triage assigned."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.sentiment import rules
from services.sentiment.handlers import SentimentHandler
from services.sentiment.policy import PolicyError, load_policy, parse_policy
from services.sentiment.store import SentimentStore
from shared.calendar import default_calendar
from shared.contract.envelope import Event, make_event
from shared.deadline_book import DeadlineBook
from shared.runtime.effects import Effects
from tests.unit.fakedb import FakeDB

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "sentiment.yaml"
POLICY = load_policy(RULES_FILE)
CAL = default_calendar()
CASE = "（2025）豫0481执7号"
_ids = itertools.count(1)


def at(day: str, clock: str = "10:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+08:00")


def ev(type_: str, subject: str, data: dict, when: datetime, id_: str | None = None) -> Event:
    return make_event(type=type_, subject=subject, time=when, data=data, source="tests",
                      id=id_ or f"{type_}-{next(_ids)}")


def registered(item: str, captured: datetime, title: str = "网友发帖", text: str = "反映情况",
               case_no: str | None = None, registered_at: datetime | None = None) -> Event:
    data = {"item_id": item, "captured_at": captured.isoformat(), "channel": "微博", "title": title, "text": text}
    if case_no:
        data["case_no"] = case_no
    return ev("sentiment.registered", item, data, registered_at or captured + timedelta(minutes=30))


def step(kind: str, item: str, when: datetime, by: str = "局长赵六", to_team: str | None = None,
         subject: str | None = None) -> Event:
    data = {"item_id": item, "at": when.isoformat(), "by": by}
    if to_team:
        data["to_team"] = to_team
    return ev(f"sentiment.{kind}", subject or item, data, when)


def decided(case_no: str, team: str, when: datetime, revision: int = 1) -> Event:
    return ev("triage.decided", case_no, {"case_no": case_no, "track": "complex", "reasons": ["needs_disposal"],
                                          "team": team, "decided_at": when.isoformat(), "revision": revision,
                                          "policy_version": "v1"}, when)


def tick(when: datetime) -> Event:
    return ev("clock.tick", "clock", {"now": when.isoformat()}, when, id_=f"tick-{when.isoformat()}")


class Sentiment:
    def __init__(self, policy=POLICY):
        self.db = FakeDB()
        self.book = DeadlineBook(self.db, "sentiment")
        self.handler = SentimentHandler(policy, CAL, self.book, SentimentStore(self.db, self.book))
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

    def item(self, item: str) -> dict:
        return self.db["items"].docs[item]

    def deadline(self, rule: str, subject: str) -> dict:
        return self.db["deadlines"].docs[f"{rule}:{subject}"]

    def ids(self) -> list[str]:
        return [a.id for a in self.alerts]


# -- the rules file ------------------------------------------------------------------------------


def test_shipped_rules_file_has_every_rule_and_level_of_rules_md():
    assert [lv.level for lv in POLICY.levels] == ["major", "serious", "general"]
    assert POLICY.level("major").keywords == ["自杀", "跳楼", "死亡", "群体", "围堵", "暴力", "上访", "媒体曝光"]
    assert POLICY.level("serious").keywords == ["投诉", "举报", "不作为", "拖延", "腐败", "违规"]
    assert POLICY.codes == ["sentiment.major", "sentiment.serious", "sentiment.response"]
    assert {lv: str(p) for lv, p in POLICY.response.due.items()} == {
        "major": "5 hours", "serious": "24 hours", "general": "48 hours"}
    assert POLICY.response.warn_before is None and POLICY.response.awaits == "sentiment.approved"
    assert POLICY.alert_for("major").severity == "critical" and POLICY.alert_for("serious").severity == "warning"
    assert POLICY.alert_for("general") is None
    for rule in (*POLICY.alerts, POLICY.response):
        assert rule.status == "UNCONFIRMED" and rule.name_zh and rule.name_en and rule.source
    assert "国办发〔2016〕61号" in POLICY.response.source


def _document() -> dict:
    return yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))


def test_a_bad_pattern_names_the_level_and_the_pattern():
    document = _document()
    document["levels"][1]["patterns"] = ["(投诉"]
    with pytest.raises(PolicyError, match=r"level serious \(#2\): field patterns: pattern #1 '\(投诉' is not a valid"):
        parse_policy(document)
    document["levels"][1]["patterns"] = ["x*"]
    with pytest.raises(PolicyError, match="matches empty text"):
        parse_policy(document)


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d["levels"].reverse(), "levels must be major, serious, general in this order"),
    (lambda d: d["levels"][2].update(keywords=["一般"]), "the last level takes every item"),
    (lambda d: d["levels"][0].update(keywords=["死亡", "死亡"]), "listed twice"),
    (lambda d: d["levels"][0].update(level="huge"), "level huge (#1)"),
    (lambda d: d["rules"].pop(2), "missing: sentiment.response"),
    (lambda d: d["rules"][2]["due"].pop("general"), "no period for level general"),
    (lambda d: d["rules"][2].update(due={"major": "5 lightyears", "serious": "24 hours", "general": "48 hours"}),
     "unknown unit"),
    (lambda d: d["rules"][0].update(severity="fatal"), "sentiment.major (#1): field severity"),
    (lambda d: d["rules"][1].update(raised_for="major"), "same level"),
    (lambda d: d.update(extra=1), "unknown top-level keys"),
])
def test_a_bad_rules_file_is_refused_with_the_place(mutate, expected):
    document = _document()
    mutate(document)
    with pytest.raises(PolicyError, match=None) as err:
        parse_policy(document)
    assert expected in str(err.value)


def test_service_refuses_to_start_with_a_bad_rules_file(tmp_path, monkeypatch):
    import asyncio

    from services.sentiment import main as sentiment_main
    bad = tmp_path / "sentiment.yaml"
    bad.write_text("version: 1\nlevels: []\nrules: []\n", encoding="utf-8")
    monkeypatch.setenv("ECC_RULES", str(bad))
    with pytest.raises(SystemExit) as exit_info:
        asyncio.run(sentiment_main.run())
    assert exit_info.value.code == 2


# -- grading and linkage ----------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["自杀", "跳楼", "死亡", "群体", "围堵", "暴力", "上访", "媒体曝光"])
def test_every_major_keyword_grades_major(word):
    assert rules.grade(POLICY, "标题", f"有人称{word}，并投诉执行法官") == ("major", [word])


@pytest.mark.parametrize("word", ["投诉", "举报", "不作为", "拖延", "腐败", "违规"])
def test_every_serious_keyword_grades_serious(word):
    assert rules.grade(POLICY, f"网友{word}", "正文") == ("serious", [word])


def test_patterns_grade_too_and_the_rest_is_general():
    assert rules.grade(POLICY, "工人集体讨薪", "")[0] == "major"
    assert rules.grade(POLICY, "", "据人民日报记者报道，某案")[0] == "major"
    assert rules.grade(POLICY, "", "法院推诿不办")[0] == "serious"
    assert rules.grade(POLICY, "感谢信", "执行干警办案高效") == ("general", [])


def test_keywords_in_latin_letters_ignore_case():
    document = _document()
    document["levels"][1]["keywords"].append("CCTV")
    policy = parse_policy(document)
    assert rules.grade(policy, "", "cctv 报道")[0] == "serious"


def test_case_numbers_in_the_text_are_found_normalised_after_the_explicit_one():
    text = "网传(2025)豫0481执12号与（２０２５）豫0481执恢3号久拖不决，另见（2025）豫0481执12号"
    assert rules.linked_cases("标题", text, None) == ["（2025）豫0481执12号", "（2025）豫0481执恢3号"]
    assert rules.linked_cases("关于（2024）豫0481执9号", text, CASE) == [
        CASE, "（2024）豫0481执9号", "（2025）豫0481执12号", "（2025）豫0481执恢3号"]
    assert rules.linked_cases("无案号", "（2025）豫0481民初12号 是民事案件", None) == []


async def test_registration_links_the_item_to_the_first_case_and_keeps_the_others():
    svc = Sentiment()
    await svc.run(registered("Y-1", at("2025-06-02"), title="拖延执行", text="(2025)豫0481执12号 和 (2025)豫0481执13号"))
    doc = svc.item("Y-1")
    assert doc["case_no"] == "（2025）豫0481执12号"
    assert doc["case_nos"] == ["（2025）豫0481执12号", "（2025）豫0481执13号"]
    assert doc["level"] == "serious" and doc["matched"] == ["拖延"]


# -- alerts raised at registration and the response rule ----------------------------------------


@pytest.mark.parametrize("level,title,hours,alert,severity", [
    ("major", "当事人扬言跳楼", 5, "sentiment.major:Y-1", "critical"),
    ("serious", "网友投诉执行法官", 24, "sentiment.serious:Y-1", "warning"),
    ("general", "执行款何时发放", 48, None, None),
])
async def test_each_level_raises_its_alert_and_gets_its_response_time(level, title, hours, alert, severity):
    svc = Sentiment()
    captured = at("2025-05-01", "08:15:00")   # May Day: hours never roll over a holiday
    registration = registered("Y-1", captured, title=title, case_no=CASE)
    await svc.run(registration)
    if alert:
        (raised,) = svc.alerts
        assert raised.id == f"alert.raised:{alert}" and raised.data.severity == severity
        assert raised.data.raised_at == registration.time and raised.data.case_no == CASE
        assert title in raised.data.summary and raised.data.details["level"] == level
        assert "due_at" not in raised.data.model_dump(exclude_none=True)
    else:
        assert svc.alerts == []
    doc = svc.deadline("sentiment.response", "Y-1")
    assert doc["due_at"] == captured + timedelta(hours=hours) and doc["warn_at"] is None
    before = len(svc.alerts)
    await svc.run(tick(captured + timedelta(hours=hours)))           # exactly due: still on time
    assert len(svc.alerts) == before
    await svc.run(tick(captured + timedelta(hours=hours, seconds=1)))
    (overdue,) = svc.alerts[before:]
    assert overdue.id == "alert.raised:sentiment.response.overdue:Y-1" and overdue.data.severity == "critical"
    assert overdue.data.summary.startswith(f"{POLICY.level(level).name_zh}舆情Y-1逾期未审签处置")
    await svc.run(step("approved", "Y-1", captured + timedelta(hours=hours, minutes=5)))
    assert svc.ids()[-1] == "alert.resolved:sentiment.response.overdue:Y-1"
    assert "已审签" in svc.alerts[-1].data.reason


async def test_no_warning_before_the_response_due_and_approval_in_time_raises_nothing():
    svc = Sentiment()
    await svc.run(registered("Y-1", at("2025-06-02"), title="执行款何时发放"))
    hours = [tick(at("2025-06-02") + timedelta(hours=h)) for h in range(0, 47)]
    await svc.run(*hours)
    assert svc.alerts == []
    await svc.run(step("approved", "Y-1", at("2025-06-03")), tick(at("2025-06-10")))
    assert svc.alerts == []
    assert svc.deadline("sentiment.response", "Y-1")["resolution"]["on_time"] is True


async def test_resolution_resolves_the_registration_alert_once():
    svc = Sentiment()
    await svc.run(registered("Y-1", at("2025-06-02"), title="群体围堵法院"),
                  step("approved", "Y-1", at("2025-06-02", "11:00:00")),
                  step("transferred", "Y-1", at("2025-06-02", "11:30:00"), by="指挥中心", to_team="fine"))
    assert svc.ids() == ["alert.raised:sentiment.major:Y-1"]
    await svc.run(step("resolved", "Y-1", at("2025-06-03"), by="h-017"))
    assert svc.ids() == ["alert.raised:sentiment.major:Y-1", "alert.resolved:sentiment.major:Y-1"]
    assert svc.alerts[-1].data.resolved_at == at("2025-06-03")
    assert svc.item("Y-1")["state"] == "resolved"


# -- the lifecycle table ----------------------------------------------------------------------------


TYPES = ["sentiment.registered", "sentiment.approved", "sentiment.transferred", "sentiment.resolved"]
C0 = at("2025-06-02", "08:00:00")


def _item_in(state: str | None) -> dict | None:
    if state is None:
        return None
    teams = rules.CaseTeams({})
    doc = rules.decide(POLICY, CAL, None, registered("Y-1", C0, case_no=CASE), teams).state
    path = {"registered": [], "approved": ["approved"], "transferred": ["approved", "transferred"],
            "resolved": ["approved", "resolved"]}[state]
    for n, kind in enumerate(path, start=1):
        doc = rules.decide(POLICY, CAL, doc, step(kind, "Y-1", C0 + timedelta(hours=n), to_team="fine"), teams).state
    return doc


@pytest.mark.parametrize("state,event_type", list(itertools.product([None, *rules.STATES], TYPES)))
def test_every_transition_follows_the_table(state, event_type):
    doc = _item_in(state)
    when = C0 + timedelta(days=1)
    event = (registered("Y-1", C0, case_no=CASE) if event_type == "sentiment.registered"
             else step(event_type.split(".")[1], "Y-1", when, to_team="quick"))
    outcome = rules.decide(POLICY, CAL, doc, event, rules.CaseTeams({}))
    expected = rules.TRANSITIONS.get((state, event_type))
    if expected is None:
        assert outcome.refusal is not None and outcome.state is doc
        code = outcome.refusal.code
        if state is None:
            assert code == "unknown_id"
        elif event_type == "sentiment.registered":
            assert code == "already_registered"
        elif state == "resolved":
            assert code == "after_resolution"
        elif event_type == "sentiment.approved":
            assert code == "already_approved"
        elif state == "registered":
            assert code == "not_approved"
    else:
        assert outcome.refusal is None and outcome.state["state"] == expected


async def test_impossible_events_are_refused_with_their_reason():
    svc = Sentiment()
    events = [
        step("approved", "Y-404", at("2025-06-02")),                                  # unknown item
        registered("Y-1", at("2025-06-02", "08:00:00"), title="投诉"),
        step("transferred", "Y-1", at("2025-06-02", "09:00:00"), to_team="fine"),    # before approval
        step("resolved", "Y-1", at("2025-06-02", "09:10:00")),                        # before approval
        step("approved", "Y-1", at("2025-06-02", "07:00:00")),                        # before it was captured
        step("approved", "Y-1", at("2025-06-02", "10:00:00")),
        step("approved", "Y-1", at("2025-06-02", "10:30:00")),                        # a second approval
        step("transferred", "Y-1", at("2025-06-02", "11:00:00")),                     # no team known
        registered("Y-1", at("2025-06-02", "08:00:00"), title="投诉"),                # registered twice
        step("resolved", "Y-1", at("2025-06-03")),
        step("transferred", "Y-1", at("2025-06-04"), to_team="fine"),                 # after resolution
        step("approved", "Y-2", at("2025-06-04"), subject="Y-3"),                     # subject ≠ item_id
    ]
    await svc.run(*events)
    codes = {e.id: svc.rejected.get(e.id) for e in events}
    refused = [codes[e.id] for e in events if codes[e.id]]
    assert len(refused) == 9
    assert "unknown sentiment item Y-404" in refused[0] and "未登记" in refused[0]
    assert "before approval" in refused[1] and "审签" in refused[1]
    assert "before approval" in refused[2]
    assert "before item Y-1 was captured" in refused[3]
    assert refused[4].startswith("a second approval")
    assert "no to_team given" in refused[5]
    assert "registered already" in refused[6]
    assert "after resolution" in refused[7]
    assert "differs from data.item_id" in refused[8]
    assert svc.item("Y-1")["state"] == "resolved"
    assert [h["type"] for h in svc.item("Y-1")["history"]] == [
        "sentiment.registered", "sentiment.approved", "sentiment.resolved"]


# -- the case team from triage decisions ------------------------------------------------------------


async def test_transfer_goes_to_the_team_of_the_latest_triage_revision_whatever_the_order():
    svc = Sentiment()
    await svc.run(decided(CASE, "fine", at("2025-06-01", "09:00:00"), revision=2),
                  decided(CASE, "quick", at("2025-05-20"), revision=1))          # an older revision read later
    await svc.run(registered("Y-1", at("2025-06-02"), text=f"{CASE} 拖延"),
                  step("approved", "Y-1", at("2025-06-02", "11:00:00")),
                  step("transferred", "Y-1", at("2025-06-02", "12:00:00"), by="指挥中心"))
    doc = svc.item("Y-1")
    assert doc["team"] == "fine" and doc["transfers"][0]["to_team"] == "fine"
    assert svc.db["case_teams"].docs[CASE]["revision"] == 2
    await svc.run(step("transferred", "Y-1", at("2025-06-03"), by="指挥中心", to_team="preservation"))
    assert svc.item("Y-1")["team"] == "preservation"


async def test_alerts_carry_the_case_team_in_force_even_when_the_decision_comes_later():
    svc = Sentiment()
    await svc.run(registered("Y-1", at("2025-06-02", "08:00:00"), title="上访", case_no=CASE))
    assert svc.alerts[0].data.model_dump().get("team") is None
    await svc.run(decided(CASE, "fine", at("2025-05-01")))
    await svc.run(tick(at("2025-06-02", "14:00:00")))
    overdue = svc.alerts[-1]
    assert overdue.id == "alert.raised:sentiment.response.overdue:Y-1" and overdue.data.team == "fine"


async def test_a_replayed_stream_in_other_batches_raises_the_same_alerts():
    stream = [registered("Y-1", at("2025-06-02", "08:00:00"), title="跳楼", case_no=CASE),
              registered("Y-2", at("2025-06-02", "09:00:00"), title="投诉"),
              registered("Y-3", at("2025-06-02", "10:00:00"), title="咨询"),
              step("approved", "Y-2", at("2025-06-02", "20:00:00")),
              step("resolved", "Y-2", at("2025-06-03", "20:00:00"), by="h-1")]
    stream += [tick(at("2025-06-02") + timedelta(hours=h)) for h in range(0, 72, 2)]
    stream.sort(key=lambda e: e.time)
    whole, single = Sentiment(), Sentiment()
    await whole.run(*stream)
    await single.each(*stream)
    assert sorted(a.to_bytes() for a in whole.alerts) == sorted(a.to_bytes() for a in single.alerts)
    assert sorted(whole.ids()) == sorted([
        "alert.raised:sentiment.major:Y-1", "alert.raised:sentiment.serious:Y-2",
        "alert.resolved:sentiment.serious:Y-2", "alert.raised:sentiment.response.overdue:Y-1",
        "alert.raised:sentiment.response.overdue:Y-3"])
