"""Triage (繁简分流) decisions, rules.md §2: every line, the reasons list, revisions, teams, the policy file."""
from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from services.triage import rules
from services.triage.policy import PolicyError, load_policy, parse_policy
from services.triage.rules import Asset, CaseState, Filing, Inquiry, TeamBook
from services.triage.store import case_doc, case_state
from shared.config import PROJECT_ROOT
from shared.contract.envelope import COURT_TZ

RULES = PROJECT_ROOT / "rules" / "triage.yaml"
POLICY = load_policy(RULES)
T0 = datetime(2025, 9, 26, 9, 30, tzinfo=COURT_TZ)  # a Friday before the National Day holiday
CASE = "（2025）豫0481执1号"


def multi_team_policy():
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    document["teams"] = {"simple": ["quick-1", "quick-2"], "complex": ["fine-1", "fine-2", "fine-3"],
                         "preservation": ["preservation"]}
    document["policy_version"] = "test-multi"
    return parse_policy(document)


def filing(case_type="执", target="100000.00", respondents=1, at=T0) -> Filing:
    return Filing(case_type, Decimal(target), respondents, at)


def deposit(ref, value, controllable=True) -> Asset:
    return Asset(ref, "deposit", Decimal(value), controllable)


def asset(ref, kind, value, controllable=True) -> Asset:
    return Asset(ref, kind, Decimal(value), controllable)


def network(*assets: Asset, at=T0 + timedelta(days=2)) -> Inquiry:
    return Inquiry("network", at, tuple(assets))


def traditional(*assets: Asset, at=T0 + timedelta(days=10)) -> Inquiry:
    return Inquiry("traditional", at, tuple(assets))


def run(events, policy=POLICY, case_no=CASE, book=None):
    """Apply ("filed", Filing) / ("inquiry", Inquiry) / ("closed", at) / ("tick", now) in order."""
    state, book = CaseState(case_no), book or TeamBook()
    decisions = []
    for kind, fact in events:
        if kind == "tick":
            book = rules.on_tick(book, fact)
            continue
        if kind == "filed":
            outcome = rules.on_filed(policy, state, fact, book)
        elif kind == "inquiry":
            outcome = rules.on_inquiry(policy, state, fact, book)
        else:
            outcome = rules.on_closed(state, fact, book)
        assert outcome.rejected is None, outcome.rejected
        state, book = outcome.state, outcome.book
        decisions += outcome.decisions
    return state, book, decisions


def decide(f: Filing, *inquiries: Inquiry):
    _, _, decisions = run([("filed", f)] + [("inquiry", i) for i in inquiries])
    return decisions


# ---------------------------------------------------------------- every line of the table

@pytest.mark.parametrize("name, f, inquiry, track, reasons", [
    ("1 执保", filing("执保"), None, "preservation", ("preservation_case",)),
    ("1 执保 with many respondents and a large amount", filing("执保", "6000000.00", 3), None,
     "preservation", ("preservation_case", "many_respondents", "large_amount")),
    ("2 deposits cover the target", filing(), network(deposit("D1", "60000.00"), deposit("D2", "40000.00")),
     "simple", ("full_deposit",)),
    ("2 beats 3: deposits cover it and a car was found", filing(),
     network(deposit("D1", "150000.00"), asset("V1", "vehicle", "30000.00")),
     "simple", ("full_deposit", "needs_disposal")),
    ("3 a flat to sell", filing(), network(asset("R1", "real_estate", "800000.00")), "complex", ("needs_disposal",)),
    ("3 with partial deposits and a large amount", filing(target="5000000.00"),
     network(asset("E1", "equity", "100.00"), deposit("D1", "10.00")),
     "complex", ("needs_disposal", "large_amount", "partial_property")),
    ("4 three respondents", filing(respondents=3), network(), "complex", ("many_respondents", "no_property")),
    ("4 large amount", filing(target="5000000.00"), network(), "complex", ("large_amount", "no_property")),
    ("4 both", filing(target="7000000.00", respondents=4), network(deposit("D1", "1.00")),
     "complex", ("many_respondents", "large_amount", "partial_property")),
    ("4 just below both thresholds", filing(target="4999999.99", respondents=2), network(),
     "simple", ("no_property",)),
    ("5 执恢 with nothing found", filing("执恢"), network(), "complex", ("resumed_case", "no_property")),
    ("5 执恢 whose deposits cover it is line 2", filing("执恢"), network(deposit("D1", "100000.00")),
     "simple", ("full_deposit", "resumed_case")),
    ("6 empty list", filing(), network(), "simple", ("no_property",)),
    ("6 all values 0", filing(), network(deposit("D1", "0.00"), asset("V1", "vehicle", "0.00")),
     "simple", ("no_property",)),
    ("7 some deposits, less than the target", filing(), network(deposit("D1", "99999.99")),
     "complex", ("partial_property",)),
    ("7 otherwise: only property that cannot be controlled", filing(),
     network(asset("R1", "real_estate", "500000.00", controllable=False)), "complex", ("partial_property",)),
    ("7 a deposit that cannot be controlled does not count towards line 2", filing(),
     network(deposit("D1", "500000.00", controllable=False)), "complex", ("partial_property",)),
])
def test_each_line_of_the_table(name, f, inquiry, track, reasons):
    decisions = decide(f, *([inquiry] if inquiry else []))
    assert len(decisions) == 1, name
    assert decisions[0].track == track
    assert decisions[0].reasons == reasons
    assert decisions[0].revision == 1


def test_default_teams_per_track_and_the_policy_version():
    teams = {d.track: d.team for f, i in [(filing("执保"), None), (filing(), network()),
                                          (filing(), network(deposit("D", "1.00")))]
             for d in decide(f, *([i] if i else []))}
    assert teams == {"preservation": "preservation", "simple": "quick", "complex": "fine"}
    assert decide(filing(), network())[0].policy_version == "fs-2025.1"


def test_conditions_are_independent_of_the_line_that_matched():
    holds = rules.conditions(POLICY, filing(target="100.00", respondents=5),
                             [deposit("D1", "100.00"), asset("V1", "vehicle", "1.00")], inquired=True)
    assert holds == {"preservation_case": False, "full_deposit": True, "needs_disposal": True,
                     "many_respondents": True, "large_amount": False, "resumed_case": False,
                     "no_property": False, "partial_property": False}


# ---------------------------------------------------------------- when to decide

def test_preservation_is_decided_at_filing_and_never_revised():
    state, _, decisions = run([
        ("filed", filing("执保")),
        ("inquiry", network(asset("R1", "real_estate", "900000.00"))),
        ("inquiry", traditional(deposit("D1", "900000.00"))),
    ])
    assert [(d.revision, d.track, d.decided_at) for d in decisions] == [(1, "preservation", T0)]
    assert len(state.assets) == 2


def test_nothing_is_decided_before_the_first_network_result():
    state, _, decisions = run([("filed", filing()), ("inquiry", traditional(deposit("D1", "100000.00")))])
    assert decisions == [] and state.current is None
    # The traditional result's deposits count when the network result arrives.
    _, _, decisions = run([("filed", filing()), ("inquiry", traditional(deposit("D1", "100000.00"))),
                           ("inquiry", network())])
    assert [(d.track, d.reasons, d.decided_at) for d in decisions] == [
        ("simple", ("full_deposit",), T0 + timedelta(days=2))]


# ---------------------------------------------------------------- revisions

def test_a_result_that_changes_the_track_is_revision_two_and_one_that_does_not_is_nothing():
    _, _, decisions = run([
        ("filed", filing()),
        ("inquiry", network(at=T0 + timedelta(days=1))),                                   # simple, no property
        ("inquiry", network(deposit("D9", "0.00"), at=T0 + timedelta(days=60))),           # still nothing
        ("inquiry", traditional(asset("V1", "vehicle", "30000.00"), at=T0 + timedelta(days=70))),  # complex
        ("inquiry", traditional(asset("V2", "vehicle", "5000.00"), at=T0 + timedelta(days=80))),   # still complex
        ("inquiry", network(deposit("D1", "200000.00"), at=T0 + timedelta(days=90))),      # deposits cover: simple
    ])
    assert [(d.revision, d.track, d.reasons, d.team) for d in decisions] == [
        (1, "simple", ("no_property",), "quick"),
        (2, "complex", ("needs_disposal",), "fine"),
        (3, "simple", ("full_deposit", "needs_disposal"), "quick"),
    ]
    assert [d.decided_at for d in decisions] == [T0 + timedelta(days=d) for d in (1, 70, 90)]


def test_a_later_result_for_the_same_asset_ref_replaces_the_earlier_value():
    _, _, decisions = run([
        ("filed", filing()),
        ("inquiry", network(deposit("D1", "100000.00"))),
        ("inquiry", traditional(deposit("D1", "10.00"))),  # the account was emptied meanwhile
    ])
    assert [(d.revision, d.track, d.reasons) for d in decisions] == [
        (1, "simple", ("full_deposit",)), (2, "complex", ("partial_property",))]


def test_reasons_that_change_without_the_track_emit_nothing():
    _, _, decisions = run([("filed", filing()), ("inquiry", network(asset("R1", "real_estate", "1.00"))),
                           ("inquiry", traditional(deposit("D1", "5.00")))])
    assert len(decisions) == 1 and decisions[0].reasons == ("needs_disposal",)


# ---------------------------------------------------------------- order and closure

def test_results_before_the_filing_give_the_decisions_of_the_usual_order():
    inquiries = [network(at=T0 + timedelta(days=1)),
                 traditional(asset("V1", "vehicle", "30000.00"), at=T0 + timedelta(days=3))]
    _, _, usual = run([("filed", filing())] + [("inquiry", i) for i in inquiries])
    state, _, early = run([("inquiry", i) for i in inquiries] + [("filed", filing())])
    assert early == usual and len(usual) == 2
    assert state.early == ()


def test_a_result_timed_before_the_filing_is_decided_at_the_filing_time():
    _, _, decisions = run([("inquiry", network(at=T0 - timedelta(hours=3))), ("filed", filing())])
    assert decisions[0].decided_at == T0


def test_closure_ends_triage_and_frees_the_team():
    state, book, decisions = run([("filed", filing()), ("inquiry", network()),
                                  ("closed", T0 + timedelta(days=30)),
                                  ("inquiry", network(asset("R1", "real_estate", "1.00"), at=T0 + timedelta(days=40)))])
    assert len(decisions) == 1 and state.closed_at == T0 + timedelta(days=30)
    assert book.open == {"quick": 0}


def test_a_case_closed_before_any_network_result_is_never_decided():
    _, book, decisions = run([("filed", filing()), ("closed", T0 + timedelta(days=3)), ("inquiry", network())])
    assert decisions == [] and book.open == {}
    _, _, decisions = run([("closed", T0 + timedelta(days=3)), ("filed", filing()), ("inquiry", network())])
    assert decisions == []


def test_the_same_filing_again_is_ignored_and_a_different_one_refused():
    state, book, _ = run([("filed", filing())])
    again = rules.on_filed(POLICY, state, filing(at=T0 + timedelta(hours=1)), book)
    assert again.rejected is None and again.state == state
    other = rules.on_filed(POLICY, state, filing(target="1.00"), book)
    assert "already filed" in other.rejected


def test_a_case_state_survives_the_database_round_trip():
    state, _, _ = run([("inquiry", traditional(deposit("D1", "12.30"))), ("filed", filing()),
                       ("inquiry", network(asset("R.1", "real_estate", "5.00"))), ("closed", T0 + timedelta(days=9))])
    pending, _, _ = run([("inquiry", network(deposit("D1", "1.00")))])
    for s in (state, pending):
        assert case_state(case_doc(s)) == s


# ---------------------------------------------------------------- teams

def test_fewest_open_cases_wins_and_ties_go_by_team_order():
    policy = multi_team_policy()
    book = TeamBook()
    assert book.choose(["fine-1", "fine-2", "fine-3"]) == "fine-1"
    book = TeamBook(open={"fine-1": 3, "fine-2": 1, "fine-3": 1}, settled={"fine-1": 3, "fine-2": 1, "fine-3": 1},
                    watermark=T0)
    assert book.choose(policy.teams_of("complex")) == "fine-2"


def test_teams_balance_as_cases_arrive_between_ticks():
    policy = multi_team_policy()
    book = TeamBook()
    teams = []
    for n in range(6):
        at = T0 + timedelta(hours=n)
        book = rules.on_tick(book, at)
        _, book, decisions = run([("filed", filing(at=at)), ("inquiry", network(deposit("D", "1.00"), at=at))],
                                 policy=policy, case_no=f"（2025）豫0481执{n + 1}号", book=book)
        teams.append(decisions[0].team)
    assert teams == ["fine-1", "fine-2", "fine-3", "fine-1", "fine-2", "fine-3"]
    assert book.open == {"fine-1": 2, "fine-2": 2, "fine-3": 2}


def test_a_closure_frees_its_team_once_the_watermark_passes_it():
    policy = multi_team_policy()
    second_case = "（2025）豫0481执2号"
    book = rules.on_tick(TeamBook(), T0)
    _, book, first = run([("filed", filing()), ("inquiry", network(at=T0 + timedelta(minutes=5)))],
                         policy=policy, book=book)
    book = rules.on_tick(book, T0 + timedelta(hours=1))
    second_state, book, second = run([("filed", filing(at=T0 + timedelta(hours=1, minutes=1))),
                                      ("inquiry", network(at=T0 + timedelta(hours=1, minutes=2)))],
                                     policy=policy, case_no=second_case, book=book)
    assert (first[0].team, second[0].team) == ("quick-1", "quick-2")
    book = rules.on_tick(book, T0 + timedelta(hours=2))
    book = rules.on_closed(second_state, T0 + timedelta(hours=2, minutes=30), book).book
    assert book.open == {"quick-1": 1, "quick-2": 0}
    assert book.choose(policy.teams_of("simple")) == "quick-1"  # 1:1 as of the watermark: the tie goes first
    book = rules.on_tick(book, T0 + timedelta(hours=3))
    assert book.settled == {"quick-1": 1, "quick-2": 0}
    assert book.choose(policy.teams_of("simple")) == "quick-2"


def test_assignment_between_two_ticks_does_not_depend_on_the_order_cases_are_read():
    """Kafka orders one case's events, not different cases': any interleaving gives the same teams."""
    policy = multi_team_policy()
    hour = timedelta(hours=1)
    streams = {
        f"（2025）豫0481执{n}号": [("filed", filing(at=T0 + n * timedelta(minutes=7))),
                                 ("inquiry", network(deposit("D", "1.00"), at=T0 + n * timedelta(minutes=7) + hour / 8))]
        for n in range(1, 5)
    }
    closing = "（2025）豫0481执1号"
    results = set()
    for order in itertools.permutations(sorted(streams)):
        book = rules.on_tick(TeamBook(), T0)
        states = {c: CaseState(c) for c in streams}
        teams = {}
        for window in (0, 1):
            for case_no in order:  # one case's events in their order, cases in any order
                for kind, fact in (streams[case_no] if window == 0 else
                                   ([("closed", T0 + hour + timedelta(minutes=10))] if case_no == closing else [])):
                    outcome = (rules.on_filed(policy, states[case_no], fact, book) if kind == "filed" else
                               rules.on_inquiry(policy, states[case_no], fact, book) if kind == "inquiry" else
                               rules.on_closed(states[case_no], fact, book))
                    states[case_no], book = outcome.state, outcome.book
                    teams.update({d.case_no: d.team for d in outcome.decisions})
            book = rules.on_tick(book, T0 + (window + 1) * hour + timedelta(minutes=30))
        results.add((tuple(sorted(teams.items())), tuple(sorted(book.settled.items()))))
    assert len(results) == 1
    (teams, settled), = results
    assert [t for _, t in teams] == ["fine-1", "fine-1", "fine-1", "fine-1"]  # same snapshot: all to the emptiest
    assert dict(settled) == {"fine-1": 3}


def test_before_the_first_tick_the_live_counts_balance():
    policy = multi_team_policy()
    book = TeamBook()
    teams = []
    for n in range(3):
        _, book, decisions = run([("filed", filing()), ("inquiry", network())], policy=policy,
                                 case_no=f"（2025）豫0481执{n + 1}号", book=book)
        teams.append(decisions[0].team)
    assert teams == ["quick-1", "quick-2", "quick-1"]


def test_a_revision_moves_the_case_to_a_team_of_the_new_track():
    policy = multi_team_policy()
    _, book, decisions = run([("filed", filing()), ("inquiry", network()),
                              ("inquiry", traditional(asset("V1", "vehicle", "9.00")))], policy=policy)
    assert [(d.track, d.team) for d in decisions] == [("simple", "quick-1"), ("complex", "fine-1")]
    assert book.open == {"quick-1": 0, "fine-1": 1}


def test_the_watermark_never_moves_back():
    book = rules.on_tick(TeamBook(), T0 + timedelta(hours=2))
    assert rules.on_tick(book, T0) is book


# ---------------------------------------------------------------- the policy file

def _document():
    return yaml.safe_load(RULES.read_text(encoding="utf-8"))


def _bad(mutate) -> str:
    document = _document()
    mutate(document)
    with pytest.raises(PolicyError) as err:
        parse_policy(document, "triage.yaml")
    return str(err.value)


def test_the_shipped_policy_loads_with_every_line_sourced():
    assert [line.code for line in POLICY.lines] == [
        "preservation_case", "full_deposit", "needs_disposal", "many_respondents", "large_amount",
        "resumed_case", "no_property", "partial_property"]
    assert all(line.name_zh and line.source and line.status == "LOCAL" for line in POLICY.lines)
    assert POLICY.thresholds.large_amount == Decimal("5000000.00")
    assert POLICY.thresholds.many_respondents == 3


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["lines"][2].update(track="hard"), "lines[2].track"),
    (lambda d: d["lines"][0].update(code="urgent"), "lines[0].code"),
    (lambda d: d["lines"][1].pop("source"), "lines[1].source"),
    (lambda d: d["lines"][3].update(line=5), "lines[3].line"),
    (lambda d: d["lines"].insert(0, d["lines"].pop(2)), "lines[1].line"),
    (lambda d: d["lines"].pop(6), "no_property"),
    (lambda d: d["lines"][4].update(track="simple"), "lines[3].track"),
    (lambda d: d["thresholds"].update(large_amount=5000000), "thresholds.large_amount"),
    (lambda d: d["thresholds"].update(large_amount="-1.00"), "thresholds.large_amount"),
    (lambda d: d["thresholds"].update(many_respondents=0), "thresholds.many_respondents"),
    (lambda d: d["teams"].update(complex=[]), "teams.complex"),
    (lambda d: d["teams"].update(simple=["quick", "fine"]), "teams.complex[0]"),
    (lambda d: d["teams"].update(urgent=["x"]), "teams.urgent"),
    (lambda d: d.update(policy_version="has space"), "policy_version"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_a_bad_policy_names_the_field(mutate, field):
    message = _bad(mutate)
    assert message.startswith("triage.yaml: ")
    assert field in message, message


def test_a_missing_or_broken_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
    broken = tmp_path / "triage.yaml"
    broken.write_text("lines: [\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(broken)
    broken.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="expected a mapping"):
        load_policy(broken)
