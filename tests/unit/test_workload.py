"""The demo/replay workload generator (tools.workload): deterministic, valid, time-ordered."""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from stdnum.cn import ric, uscc

from shared.contract.casenumber import parse_case_no
from shared.contract.envelope import parse_event
from shared.contract.identity import is_valid_resident_id, is_valid_uscc
from shared.topics import topic_for_event_type
from tools.workload import (
    generate_year,
    mod11_2_check,
    org_code_check,
    region_of_court,
    resident_id,
    social_credit_code,
)

SEED, CASES = 2025, 400


@pytest.fixture(scope="module")
def events():
    return generate_year(SEED, CASES, tick_every=timedelta(hours=6))


@pytest.fixture(scope="module")
def dicts(events):
    return [json.loads(e.to_bytes()) for e in events]


def _bytes(events) -> bytes:
    return b"\n".join(e.to_bytes() for e in events)


def test_same_seed_gives_identical_bytes(events):
    again = generate_year(SEED, CASES, tick_every=timedelta(hours=6))
    assert _bytes(again) == _bytes(events)


def test_another_seed_gives_another_year(events):
    other = generate_year(SEED + 1, CASES, tick_every=timedelta(hours=6))
    assert _bytes(other) != _bytes(events)


def test_every_event_parses_back_to_itself(events):
    for event in events:
        raw = event.to_bytes()
        parsed = parse_event(raw)
        assert parsed.to_bytes() == raw


def test_events_are_time_ordered_and_inside_the_year(events):
    times = [e.time for e in events]
    assert times == sorted(times)
    assert all(datetime(2025, 1, 1).date() <= t.date() <= date(2025, 12, 31) for t in times)


def test_ids_are_unique(events):
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids))
    # intake's POST /cases/{case_no}/events accepts ASCII ids only
    assert all(e.id.isascii() and " " not in e.id for e in events)


def test_every_party_and_payee_id_is_valid(dicts):
    seen = 0
    for e in dicts:
        if e["type"] == "case.filed":
            for party in e["data"]["applicants"] + e["data"]["respondents"]:
                seen += 1
                number = party["id_no"]
                if party["kind"] == "person":
                    assert is_valid_resident_id(number), number
                    assert ric.calc_check_digit(number) == number[-1]
                    assert number[:6] == "410481" or number[:2] == "41"
                else:
                    assert is_valid_uscc(number), number
                    assert uscc.is_valid(number), number
        if e["type"] == "funds.disbursed":
            number = e["data"]["payee_id_no"]
            assert is_valid_resident_id(number) or is_valid_uscc(number), number
    assert seen > CASES * 2


def test_identity_helpers_match_the_standards():
    # GB 11643 example from the standard: 11010519491231002X
    assert mod11_2_check("11010519491231002") == "X"
    assert resident_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert region_of_court("豫0481") == "410481"
    # GB 11714 / GB 32100: a published code, 91110000600037341L (organisation code 60003734-1)
    assert org_code_check("60003734") == "1"
    assert social_credit_code("110000", "60003734") == "91110000600037341L"


def test_case_numbers_types_and_links(dicts):
    filings = {e["subject"]: e["data"] for e in dicts if e["type"] == "case.filed"}
    assert len(filings) == CASES
    types = Counter(d["case_type"] for d in filings.values())
    assert types["执"] > types["执保"] > 0 and types["执恢"] > 0
    for case_no, data in filings.items():
        parsed = parse_case_no(case_no)
        assert parsed.normalized == case_no and case_no.startswith("（2025）豫0481")
        assert parsed.case_type == data["case_type"]
        if data["case_type"] == "执恢":
            assert parse_case_no(data["previous_case_no"]).case_type == "执"
        else:
            assert "previous_case_no" not in data
    # numbered per type without gaps, in filing order
    for case_type in types:
        numbers = sorted(parse_case_no(c).seq for c, d in filings.items() if d["case_type"] == case_type)
        assert numbers == list(range(1, types[case_type] + 1))


def test_case_events_follow_their_filing(dicts):
    filed_at = {}
    for e in dicts:
        if e["type"] == "case.filed":
            filed_at[e["subject"]] = e["time"]
        elif topic_for_event_type(e["type"]).suffix == "case.events":
            assert e["subject"] in filed_at, f"{e['type']} before the filing of {e['subject']}"


def test_amounts_and_a_long_tail(dicts):
    targets = [Decimal(e["data"]["target_amount"]) for e in dicts if e["type"] == "case.filed"]
    assert all(t > 0 and t == t.quantize(Decimal("0.01")) for t in targets)
    assert max(targets) >= 5_000_000 or len(targets) < 200
    assert sorted(targets)[len(targets) // 2] < 200_000  # median: a county court's ordinary debt


def test_mix_of_facts_for_every_rule(dicts):
    types = Counter(e["type"] for e in dicts)
    for needed in ("case.filed", "node.completed", "property.inquiry.result", "property.clue.registered",
                   "case.closure_proposed", "case.closed", "funds.received", "funds.disbursed",
                   "funds.matched", "clock.tick"):
        assert types[needed] > 0, needed
    modes = Counter(e["data"]["mode"] for e in dicts if e["type"] == "case.closed")
    assert modes["performed"] + modes["terminated_current"] > 0.8 * sum(modes.values())
    channels = Counter(e["data"]["channel"] for e in dicts if e["type"] == "property.inquiry.result")
    assert channels["network"] and channels["traditional"]


def test_unidentified_deposits_are_keyed_by_receipt(dicts):
    unmatched = [e for e in dicts if e["subject"].startswith("unmatched:")]
    assert unmatched
    for e in unmatched:
        assert e["type"] in ("funds.received", "funds.matched")
        assert e["subject"] == f"unmatched:{e['data']['receipt_id']}"
        if e["type"] == "funds.received":
            assert "case_no" not in e["data"]
    received = {e["data"]["receipt_id"]: e["time"] for e in unmatched if e["type"] == "funds.received"}
    for e in unmatched:
        if e["type"] == "funds.matched":
            assert received[e["data"]["receipt_id"]] < e["time"]


def test_ticks_every_interval():
    events = generate_year(7, 5, tick_every=timedelta(days=1))
    ticks = [e for e in events if e.type == "clock.tick"]
    assert len(ticks) == 365
    assert all(e.subject == "clock" for e in ticks)
    assert not [e for e in generate_year(7, 5, tick_every=None) if e.type == "clock.tick"]


def test_zero_cases_is_only_the_clock():
    events = generate_year(1, 0, tick_every=timedelta(days=7))
    assert events and {e.type for e in events} == {"clock.tick"}
