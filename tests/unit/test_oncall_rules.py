"""oncall's pure decisions: roster resolution, routing, grouping, sending, escalation, ack, close, bad files."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.oncall import rules
from services.oncall.policy import PolicyError, load_policy, parse_policy
from shared.clock import COURT_TZ
from shared.config import PROJECT_ROOT

ROSTER_RAW = yaml.safe_load((PROJECT_ROOT / "rules" / "roster.yaml").read_text(encoding="utf-8"))
ROUTING_RAW = yaml.safe_load((PROJECT_ROOT / "rules" / "oncall.yaml").read_text(encoding="utf-8"))
POLICY = parse_policy(ROSTER_RAW, ROUTING_RAW)
ROSTER = POLICY.roster
ALL_CHANNELS = frozenset({"webhook", "sms", "wecom"})
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=COURT_TZ)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=COURT_TZ)


def alert(n: int = 1, rule: str = "node.notice", severity: str = "critical", team: str | None = "quick",
          family: str | None = None) -> rules.AlertInput:
    return rules.AlertInput(
        alert_id=f"{rule}.overdue:（2026）豫0481执{n}号", rule=rule, severity=severity,
        family=family or POLICY.routing.family_of(rule), team=team, summary=f"案件 {n} 逾期未发出执行通知书",
        raised_at=NOW, source="ecc.alerts", case_no=f"（2026）豫0481执{n}号")


def ledger(policy=POLICY, channels=ALL_CHANNELS) -> rules.Ledger:
    return rules.Ledger(policy, channels, {}, {}, {})


def duty_now(moment: datetime) -> rules.Duty:
    return rules.on_duty(ROSTER, [], moment)


# -- roster ---------------------------------------------------------------------------------------------

def test_rotation_changes_at_the_handover_not_at_midnight():
    # Shifts start 08:30 (roster.yaml); 11-27 08:29 is still the shift that began 11-26 08:30.
    before = rules.on_duty(ROSTER, [], at(27, 8, 29))
    after = rules.on_duty(ROSTER, [], at(27, 8, 30))
    assert before.shift_start == at(26, 8, 30) and before.shift_end == at(27, 8, 30)
    assert after.shift_index == before.shift_index + 1
    assert before.people["officer"] != after.people["officer"]  # three officers rotate daily
    assert before.people["technician"] != after.people["technician"]
    midnight = rules.on_duty(ROSTER, [], at(27, 0, 0))
    assert midnight.people == before.people


def test_rotation_cycles_through_people_and_leaders_rotate_weekly():
    first = datetime(2026, 1, 1, 9, 0, tzinfo=COURT_TZ)  # the anchor shift (index 0)
    officers = [rules.on_duty(ROSTER, [], first + timedelta(days=d)).people["officer"] for d in range(4)]
    assert officers == ["officer.li", "officer.wang", "officer.zhao", "officer.li"]
    leaders = [rules.on_duty(ROSTER, [], first + timedelta(days=d)).people["leader"] for d in (0, 6, 7, 13, 14)]
    assert leaders == ["leader.zhou", "leader.zhou", "leader.sun", "leader.sun", "leader.zhou"]
    # Before the anchor the rotation runs backwards consistently.
    assert rules.on_duty(ROSTER, [], first - timedelta(days=1)).people["officer"] == "officer.zhao"


def test_override_covers_exactly_its_range():
    change = {"_id": "o1", "kind": "override", "role": "officer", "person": "officer.wang",
              "start": at(27, 12), "end": at(27, 18), "created_at": NOW}
    assert rules.on_duty(ROSTER, [change], at(27, 11, 59)).because["officer"] == "rotation"
    inside = rules.on_duty(ROSTER, [change], at(27, 12))
    assert inside.people["officer"] == "officer.wang" and inside.because["officer"] == "override:o1"
    assert rules.on_duty(ROSTER, [change], at(27, 18)).because["officer"] == "rotation"
    # Other roles are untouched.
    assert inside.people["technician"] == rules.on_duty(ROSTER, [], at(27, 12)).people["technician"]


def test_latest_override_wins():
    older = {"_id": "o1", "kind": "override", "role": "leader", "person": "leader.zhou",
             "start": at(27, 9), "end": at(28, 9), "created_at": NOW}
    newer = {**older, "_id": "o2", "person": "leader.sun", "created_at": NOW + timedelta(minutes=1)}
    assert rules.on_duty(ROSTER, [newer, older], at(27, 20)).people["leader"] == "leader.sun"


def test_swap_exchanges_two_shifts_and_leaves_others():
    day_a, day_b = at(27, 10), at(29, 10)
    base_a = rules.on_duty(ROSTER, [], day_a).people["officer"]
    base_b = rules.on_duty(ROSTER, [], day_b).people["officer"]
    assert base_a != base_b
    swap = {"_id": "s1", "kind": "swap", "role": "officer", "a": day_a, "b": at(29, 20), "created_at": NOW}
    assert rules.on_duty(ROSTER, [swap], at(28, 8, 0)).people["officer"] == base_b  # same shift as 27 10:00
    assert rules.on_duty(ROSTER, [swap], day_b).people["officer"] == base_a
    assert rules.on_duty(ROSTER, [swap], day_a).because["officer"] == "swap:s1"
    middle = at(28, 12)
    assert rules.on_duty(ROSTER, [swap], middle).people == rules.on_duty(ROSTER, [], middle).people


def test_two_swaps_compose_in_order():
    a, b, c = at(27, 10), at(28, 10), at(29, 10)
    base = {m: rules.on_duty(ROSTER, [], m).people["officer"] for m in (a, b, c)}
    first = {"_id": "s1", "kind": "swap", "role": "officer", "a": a, "b": b, "created_at": NOW}
    second = {"_id": "s2", "kind": "swap", "role": "officer", "a": b, "b": c, "created_at": NOW + timedelta(seconds=1)}
    result = {m: rules.on_duty(ROSTER, [first, second], m).people["officer"] for m in (a, b, c)}
    # After swap 1: a<-B, b<-A; after swap 2 (b<->c): b<-C, c<-A.
    assert result == {a: base[b], b: base[c], c: base[a]}


def test_roster_change_checks():
    ok = {"_id": "o", "kind": "override", "role": "officer", "person": "officer.li", "start": at(27, 9),
          "end": at(27, 10), "created_at": NOW}
    assert rules.check_change(ROSTER, ok) is None
    assert "not in the roster" in rules.check_change(ROSTER, {**ok, "person": "nobody"})
    assert "after start" in rules.check_change(ROSTER, {**ok, "end": at(27, 9)})
    same = {"_id": "s", "kind": "swap", "role": "officer", "a": at(27, 9), "b": at(27, 20), "created_at": NOW}
    assert "same shift" in rules.check_change(ROSTER, same)


# -- routing -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "severity", "expected"), [
    ("node.notice", "warning", ["officer"]),
    ("funds.overdrawn", "critical", ["officer", "leader"]),
    ("sentiment.major", "critical", ["officer", "leader"]),
    ("calendar.coverage", "critical", ["technician", "leader"]),
    ("calendar.coverage", "warning", ["technician"]),
    ("something.unknown", "warning", ["technician"]),  # fallback family pipeline: nobody misses it
    ("node.notice", "info", []),
])
def test_routing_by_family_and_severity(rule, severity, expected):
    family = POLICY.routing.family_of(rule)
    assert rules.route(POLICY.routing, family, severity, "quick", rule) == expected


def test_infrastructure_family_goes_to_the_technician():
    assert rules.route(POLICY.routing, "infrastructure", "warning", None, "ServiceDown") == ["technician"]
    assert rules.route(POLICY.routing, "infrastructure", "critical", None, "ServiceDown") == ["technician", "leader"]


def test_route_by_team():
    raw = copy.deepcopy(ROUTING_RAW)
    raw["routes"].append({"name": "保全团队也报技术", "match": {"teams": ["preservation"]}, "to": ["technician"]})
    policy = parse_policy(ROSTER_RAW, raw)
    assert rules.route(policy.routing, "business", "warning", "preservation", "node.preservation") == \
        ["officer", "technician"]
    assert rules.route(policy.routing, "business", "warning", "quick", "node.notice") == ["officer"]


# -- grouping ------------------------------------------------------------------------------------------------

def test_500_alerts_of_one_rule_and_team_make_one_notification():
    book = ledger()
    outcomes = [book.raise_alert(alert(n), NOW) for n in range(500)]
    assert outcomes[0] == "opened" and set(outcomes[1:]) == {"joined"}
    assert len(book.notifications) == 1
    (ntf,) = book.notifications.values()
    assert ntf["alert_count"] == 500 and ntf["open_alerts"] == 500 and len(ntf["sample"]) == rules.SAMPLE_ALERTS
    assert ntf["_id"] == "node.notice:critical:quick:1"
    assert ntf["roles"] == ["officer", "leader"]
    assert ntf["send_at"] == NOW + POLICY.routing.grouping.wait
    step = rules.dispatch(POLICY, ALL_CHANNELS, ntf, ntf["send_at"], duty_now)
    assert step.kind == "initial"
    assert {(d.role, d.person) for d in step.deliveries} == {
        ("officer", duty_now(ntf["send_at"]).people["officer"]), ("leader", duty_now(ntf["send_at"]).people["leader"])}
    assert "×500" in step.deliveries[0].title


def test_other_rule_team_or_severity_make_other_notifications():
    book = ledger()
    book.raise_alert(alert(1), NOW)
    book.raise_alert(alert(2, team="fine"), NOW)
    book.raise_alert(alert(3, severity="warning"), NOW)
    book.raise_alert(alert(4, rule="funds.overdrawn"), NOW)
    assert len(book.notifications) == 4


def test_a_raise_of_an_open_alert_changes_nothing():
    book = ledger()
    book.raise_alert(alert(1), NOW)
    assert book.raise_alert(alert(1), NOW) == "already_open"
    assert next(iter(book.notifications.values()))["alert_count"] == 1


def test_unrouted_alert_is_recorded_without_notification():
    book = ledger()
    assert book.raise_alert(alert(1, severity="info"), NOW) == "unrouted"
    assert book.notifications == {} and book.alerts[alert(1, severity="info").alert_id]["state"] == "open"


# -- sending, escalation, ack, close -------------------------------------------------------------------------

def _sent_critical() -> tuple[rules.Ledger, dict]:
    book = ledger()
    book.raise_alert(alert(1), NOW)
    ntf = next(iter(book.notifications.values()))
    assert rules.dispatch(POLICY, ALL_CHANNELS, ntf, NOW, duty_now).kind is None  # grouping wait not over
    step = rules.dispatch(POLICY, ALL_CHANNELS, ntf, ntf["send_at"], duty_now)
    return book, step.notification


def test_critical_escalates_to_the_leader_after_n_minutes_and_repeats():
    _, ntf = _sent_critical()
    esc = POLICY.routing.escalation
    sent = ntf["sent_at"]
    assert ntf["next_action_at"] == sent + esc.after
    assert rules.dispatch(POLICY, ALL_CHANNELS, ntf, sent + esc.after - timedelta(seconds=1), duty_now).kind is None
    levels = []
    moment = sent + esc.after
    while ntf["next_action_at"] is not None:
        step = rules.dispatch(POLICY, ALL_CHANNELS, ntf, moment, duty_now)
        assert step.kind == "escalation"
        assert {d.role for d in step.deliveries} == {"leader"}
        assert step.deliveries[0].step == f"escalation.{len(levels) + 1}"
        assert "升级" in step.deliveries[0].title
        levels.append(moment)
        ntf = step.notification
        moment = ntf["next_action_at"] or moment
    assert len(levels) == 1 + esc.max_repeats
    assert [b - a for a, b in zip(levels, levels[1:])] == [esc.repeat_every] * esc.max_repeats


def test_missed_repeats_collapse_into_one_step():
    _, ntf = _sent_critical()
    late = ntf["next_action_at"] + timedelta(hours=3)  # the service was down for three hours
    step = rules.dispatch(POLICY, ALL_CHANNELS, ntf, late, duty_now)
    assert step.notification["escalations"] == 1
    assert step.notification["next_action_at"] == late + POLICY.routing.escalation.repeat_every


def test_warning_is_sent_but_never_escalated():
    book = ledger()
    book.raise_alert(alert(1, severity="warning"), NOW)
    ntf = next(iter(book.notifications.values()))
    step = rules.dispatch(POLICY, ALL_CHANNELS, ntf, ntf["send_at"], duty_now)
    assert step.kind == "initial" and step.notification["next_action_at"] is None


def test_ack_stops_escalation_and_keeps_who():
    _, ntf = _sent_critical()
    result = rules.acknowledge(ntf, "officer.zhao", NOW + timedelta(minutes=2), "在处理")
    assert result.outcome == "acknowledged"
    acked = result.notification
    assert acked["acked"]["by"] == "officer.zhao" and acked["next_action_at"] is None
    assert rules.dispatch(POLICY, ALL_CHANNELS, acked, NOW + timedelta(days=1), duty_now).kind is None
    again = rules.acknowledge(acked, "leader.sun", NOW + timedelta(minutes=3), None)
    assert again.outcome == "repeat" and again.notification["acked"]["by"] == "officer.zhao"


def test_ack_before_the_grouping_wait_means_no_send():
    book = ledger()
    book.raise_alert(alert(1), NOW)
    ntf = next(iter(book.notifications.values()))
    acked = rules.acknowledge(ntf, "op", NOW, None).notification
    step = rules.dispatch(POLICY, ALL_CHANNELS, acked, acked["send_at"], duty_now)
    assert step.deliveries == [] and step.notification["next_action_at"] is None


def test_resolve_closes_when_the_last_alert_resolves_and_tells_those_notified():
    book = ledger()
    for n in range(3):
        book.raise_alert(alert(n), NOW)
    ntf_id = next(iter(book.notifications))
    sent = rules.dispatch(POLICY, ALL_CHANNELS, book.notifications[ntf_id], NOW + timedelta(minutes=1), duty_now)
    book.notifications[ntf_id] = sent.notification
    assert book.resolve_alert(alert(0).alert_id, NOW, "done", NOW) == "resolved"
    assert book.resolve_alert(alert(1).alert_id, NOW, "done", NOW) == "resolved"
    assert book.deliveries == []
    assert book.resolve_alert(alert(2).alert_id, NOW, "done", NOW) == "closed"
    closed = book.notifications[ntf_id]
    assert closed["state"] == "closed" and closed["next_action_at"] is None
    assert {d.step for d in book.deliveries} == {"resolved"}
    assert {d.person for d in book.deliveries} == {n["person"] for n in sent.notification["notified"]}
    assert rules.acknowledge(closed, "x", NOW, None).outcome == "closed"
    # The next alert of the group opens a new notification (generation 2).
    assert book.raise_alert(alert(9), NOW) == "opened"
    assert book.groups[closed["group_key"]]["live"].endswith(":2")


def test_resolve_of_an_unknown_or_resolved_alert_changes_nothing():
    book = ledger()
    assert book.resolve_alert("nope", NOW, "x", NOW) == "unknown"
    book.raise_alert(alert(1), NOW)
    book.resolve_alert(alert(1).alert_id, NOW, "x", NOW)
    assert book.resolve_alert(alert(1).alert_id, NOW, "x", NOW) == "already_resolved"


def test_a_resolved_alert_raised_again_opens_a_new_cycle():
    book = ledger()
    book.raise_alert(alert(1), NOW)
    book.resolve_alert(alert(1).alert_id, NOW, "x", NOW)
    assert book.raise_alert(alert(1), NOW + timedelta(hours=1)) == "opened"
    assert book.alerts[alert(1).alert_id]["cycles"] == 2


def test_only_configured_channels_are_used_and_nobody_reachable_is_recorded():
    book = ledger(channels=frozenset({"sms"}))
    book.raise_alert(alert(1, rule="calendar.coverage", team=None), NOW)
    ntf = next(iter(book.notifications.values()))
    step = rules.dispatch(POLICY, frozenset({"sms"}), ntf, ntf["send_at"], duty_now)
    by_role = {d.role: d for d in step.deliveries}
    assert by_role["leader"].channel == "sms"  # leaders have sms
    assert by_role["technician"].channel is None  # technicians: wecom, webhook only
    assert by_role["technician"].document(NOW)["state"] == "failed"


def test_delivery_ids_are_deterministic_per_step():
    _, first = _sent_critical()
    _, second = _sent_critical()
    assert first["notified"] == second["notified"]
    a = rules.deliveries_for(POLICY, ALL_CHANNELS, first, "initial", "officer", "officer.li", "t", "x")
    assert [d.id for d in a] == [f"{first['_id']}/initial/officer.li/wecom", f"{first['_id']}/initial/officer.li/sms"]


def test_retry_delay_doubles_and_caps():
    delivery = POLICY.routing.delivery
    delays = [rules.retry_delay(POLICY, n) for n in range(1, 12)]
    assert delays[0] == delivery.base_delay and delays[1] == 2 * delivery.base_delay
    assert max(delays) == delivery.max_delay and delays == sorted(delays)


# -- rules files -------------------------------------------------------------------------------------------------

def test_shipped_files_load():
    policy = load_policy(PROJECT_ROOT / "rules" / "roster.yaml", PROJECT_ROOT / "rules" / "oncall.yaml")
    assert policy.routing.escalation.after == timedelta(minutes=15)
    assert policy.roster.shift.length == timedelta(hours=24)


@pytest.mark.parametrize(("which", "change", "expected"), [
    ("roster", lambda r: r["rotations"]["officer"]["people"].append("ghost"), "rotations.officer"),
    ("roster", lambda r: r["rotations"].pop("leader"), "missing ['leader']"),
    ("roster", lambda r: r["people"]["officer.li"].update(channels=["fax"]), "people.officer.li.channels"),
    ("roster", lambda r: r["people"]["officer.li"].pop("phone"), "sms needs a phone"),
    ("roster", lambda r: r["shift"].update(length="a while"), "shift.length"),
    ("routing", lambda r: r["routes"][0]["match"].update(families=["busyness"]), "busyness"),
    ("routing", lambda r: r["routes"][1].update(to=["janitor"]), "routes.1.to.0"),
    ("routing", lambda r: r["escalation"].update(after="0 minutes"), "escalation.after"),
    ("routing", lambda r: r.update(fallback_family="none"), "fallback_family"),
    ("routing", lambda r: r["grouping"].update(unknown=1), "grouping.unknown"),
])
def test_bad_files_name_the_entry_and_field(which, change, expected):
    roster, routing = copy.deepcopy(ROSTER_RAW), copy.deepcopy(ROUTING_RAW)
    change(roster if which == "roster" else routing)
    with pytest.raises(PolicyError) as caught:
        parse_policy(roster, routing)
    assert expected in str(caught.value)
    assert ("roster.yaml" if which == "roster" else "oncall.yaml") in str(caught.value)


def test_unreadable_and_non_yaml_files(tmp_path: Path):
    bad = tmp_path / "oncall.yaml"
    bad.write_text("routes: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(PROJECT_ROOT / "rules" / "roster.yaml", bad)
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.yaml", bad)
