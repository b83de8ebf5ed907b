"""Event data models (contract §4-9, rules.md §2, §5, §7) and their registry."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contract.envelope import EventError, make_event, parse_event
from shared.contract.events import EVENT_DATA_MODELS, model_for
from shared.contract.messages import field_errors
from shared.topics import ALL_TOPICS
from tests.unit.event_examples import CASE_NO, EVENT_EXAMPLES, ORG_USCC, PERSON_ID

ALL_TYPES = sorted(EVENT_DATA_MODELS)


def example(event_type: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EVENT_EXAMPLES[event_type])
    data.update(changes)
    return data


def error_types(event_type: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, error type) pairs, asserted identical from JSON text and from a dict."""
    model = EVENT_DATA_MODELS[event_type]
    results = []
    for validate in (lambda: model.model_validate_json(json.dumps(data)), lambda: model.model_validate(data)):
        try:
            validate()
            results.append([])
        except ValidationError as exc:
            results.append([(e["field"], e["type"]) for e in field_errors(exc)])
    assert results[0] == results[1], f"JSON and dict validation differ: {results}"
    return results[0]


def envelope(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": "evt-1", "source": "test", "type": event_type,
        "subject": CASE_NO, "time": "2021-03-01T09:30:00+08:00",
        "datacontenttype": "application/json", "data": data,
    }, ensure_ascii=False).encode()


# ---------------------------------------------------------------- registry

def test_examples_cover_the_registry() -> None:
    assert set(EVENT_EXAMPLES) == set(EVENT_DATA_MODELS)


def test_registry_matches_the_topic_registry() -> None:
    on_topics = set().union(*(topic.event_types for topic in ALL_TOPICS))
    assert on_topics == set(EVENT_DATA_MODELS)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_models_are_closed_and_frozen(event_type: str) -> None:
    model = model_for(event_type)
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True
    assert model.event_type == event_type  # type: ignore[attr-defined]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_json_schema_is_available(event_type: str) -> None:
    # FastAPI publishes these in its OpenAPI document.
    model = model_for(event_type)
    assert model.model_json_schema()["additionalProperties"] is False
    model.model_json_schema(mode="serialization")


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_json_round_trip(event_type: str) -> None:
    model = EVENT_DATA_MODELS[event_type]
    data = EVENT_EXAMPLES[event_type]
    from_json = model.model_validate_json(json.dumps(data, ensure_ascii=False))
    from_dict = model.model_validate(json.loads(json.dumps(data)))
    assert from_json == from_dict
    written = from_json.model_dump(mode="json", exclude_none=True)
    again = model.model_validate_json(json.dumps(written, ensure_ascii=False))
    assert again == from_json
    assert again.model_dump(mode="json", exclude_none=True) == written


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_envelope_round_trip(event_type: str) -> None:
    event = parse_event(envelope(event_type, EVENT_EXAMPLES[event_type]))
    assert isinstance(event.data, EVENT_DATA_MODELS[event_type])
    assert parse_event(event.to_bytes()) == event


def test_amounts_are_written_with_two_decimals() -> None:
    data = example("case.closed", amount_recovered="100")
    written = model_for("case.closed").model_validate(data).model_dump(mode="json")
    assert written["amount_recovered"] == "100.00"


def test_case_no_is_normalised_in_data() -> None:
    data = example("case.filed", case_no="(2021)豫0481执123号")
    assert model_for("case.filed").model_validate(data).case_no == CASE_NO  # type: ignore[attr-defined]


def test_unidentified_deposit_has_no_case_no() -> None:
    model = model_for("funds.received")
    assert model.model_validate(example("funds.received", case_no=None)).case_no is None  # type: ignore[attr-defined]
    data = example("funds.received")
    del data["case_no"]
    event = parse_event(envelope("funds.received", data))
    assert "case_no" not in event.to_json_dict()["data"]


def test_null_rate_is_kept_in_snapshot() -> None:
    snapshot = model_for("metrics.snapshot").model_validate(EVENT_EXAMPLES["metrics.snapshot"])
    written = snapshot.model_dump(mode="json", exclude_none=True)
    assert written["indicators"]["zb_qualified_rate"] is None
    assert written["counts"]["recovery_rate"] == {"numerator": "400000.00", "denominator": "500000.00"}
    assert written["counts"]["closure_rate"] == {"numerator": 137, "denominator": 300}


def test_make_event_validates_data() -> None:
    event = make_event(type="clock.tick", subject="clock", time=datetime(2021, 3, 1, tzinfo=timezone.utc),
                       data={"now": "2021-03-01T09:30:00+08:00"}, source="ecc/test", id="tick-1")
    assert event.data.now.utcoffset() is not None  # type: ignore[attr-defined]
    with pytest.raises(EventError):
        make_event(type="clock.tick", subject="clock", time=datetime(2021, 3, 1, tzinfo=timezone.utc),
                   data={"now": "2021-03-01T09:30:00"}, source="ecc/test", id="tick-2")


# ---------------------------------------------------------------- rejections

@pytest.mark.parametrize(("amount", "error"), [
    (125000.5, "money_type"), (125000, "money_type"), ("-1.00", "money_negative"),
    ("1.005", "money_scale"), ("1e5", "money_format"), (True, "money_type"),
])
def test_target_amount_rejections(amount: Any, error: str) -> None:
    assert error_types("case.filed", example("case.filed", target_amount=amount)) == [("target_amount", error)]


def test_payout_of_nothing_is_rejected() -> None:
    assert error_types("funds.disbursed", example("funds.disbursed", amount="0")) == [("amount", "money_not_positive")]


def test_bool_is_not_coerced() -> None:
    data = example("property.inquiry.result")
    data["assets"][0]["controllable"] = "true"
    assert error_types("property.inquiry.result", data) == [("assets.0.controllable", "bool_type")]
    assert error_types("termination.reviewed", example("termination.reviewed", passed=0)) == [("passed", "bool_type")]


def test_unknown_type_goes_nowhere() -> None:
    with pytest.raises(EventError, match="unknown event type"):
        parse_event(envelope("case.reopened", {}))


def test_bad_data_is_reported_with_its_field() -> None:
    with pytest.raises(EventError, match=r"data\.target_amount"):
        parse_event(envelope("case.filed", example("case.filed", target_amount=1.5)))


def test_bad_id_check_digit() -> None:
    data = example("case.filed")
    data["applicants"][0]["id_no"] = PERSON_ID[:-1] + ("0" if PERSON_ID[-1] != "0" else "1")
    assert error_types("case.filed", data) == [("applicants.0.id_no", "party_id_invalid")]
    data = example("funds.disbursed", payee_id_no=ORG_USCC[:-1] + "0")
    assert error_types("funds.disbursed", data) == [("payee_id_no", "party_id_invalid")]


def test_party_kind_must_fit_the_number() -> None:
    data = example("case.filed")
    data["respondents"][1]["id_no"] = ORG_USCC  # 李四 is a person
    assert error_types("case.filed", data) == [("respondents.1.id_no", "party_id_kind")]


def test_case_type_must_match_case_no() -> None:
    assert error_types("case.filed", example("case.filed", case_type="执恢")) == [("case_type", "case_type_mismatch")]
    assert error_types("case.filed", example("case.filed", court_code="豫0482")) == [
        ("court_code", "court_code_mismatch")]


def test_case_filed_needs_parties() -> None:
    assert error_types("case.filed", example("case.filed", applicants=[])) == [("applicants", "too_short")]
    data = example("case.filed")
    del data["respondents"]
    assert error_types("case.filed", data) == [("respondents", "missing")]


@pytest.mark.parametrize(("event_type", "changes", "expected"), [
    ("case.filed", {"case_type": "执行"}, [("case_type", "literal_error")]),
    ("case.filed", {"filed_on": "2021/03/01"}, [("filed_on", "court_date_format")]),
    ("case.filed", {"extra": 1}, [("extra", "extra_forbidden")]),
    ("case.filed", {"case_no": "（2021）豫0481民初1号"}, [("case_no", "case_no_format")]),
    ("case.closed", {"mode": "closed"}, [("mode", "literal_error")]),
    ("node.completed", {"node": "clue_verified", "ref": None, "asset_kind": None}, [("ref", "node_ref_required")]),
    ("node.completed", {"asset_kind": None}, [("asset_kind", "node_ref_required")]),
    ("node.completed", {"done_at": "2021-03-20T10:00:00"}, [("done_at", "event_time_format")]),
    ("case.resumed", {"new_case_no": "（2022）豫0481执8号"}, [("new_case_no", "resumed_case_type")]),
    ("termination.reviewed", {"passed": True}, [("missing", "review_inconsistent")]),
    ("termination.reviewed", {"missing": ["notice", "nonsense"]}, [("missing.1", "literal_error")]),
    ("triage.decided", {"revision": 0}, [("revision", "greater_than_equal")]),
    ("triage.decided", {"reasons": []}, [("reasons", "too_short")]),
    ("alert.raised", {"severity": "major"}, [("severity", "literal_error")]),
    ("metrics.snapshot", {"period": "2021-13"}, [("period", "string_pattern_mismatch")]),
    ("metrics.snapshot", {"scope": "handler:h-1"}, [("scope", "string_pattern_mismatch")]),
    ("clock.tick", {"now": 1614562200}, [("now", "event_time_type")]),
    ("sentiment.registered", {"url": "javascript:alert(1)"}, [("url", "string_pattern_mismatch")]),
])
def test_rejections(event_type: str, changes: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert error_types(event_type, example(event_type, **changes)) == expected


def test_duplicate_asset_refs() -> None:
    data = example("property.inquiry.result")
    data["assets"][1]["ref"] = data["assets"][0]["ref"]
    assert error_types("property.inquiry.result", data) == [("assets", "duplicate_asset_ref")]


def test_inquiry_may_find_nothing() -> None:
    assert error_types("property.inquiry.result", example("property.inquiry.result", assets=[])) == []
