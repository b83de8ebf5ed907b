"""Field types of the contract: money, dates, times, strict text and flags, messages."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contract.messages import EN_MESSAGES, ZH_MESSAGES, contract_error, field_errors
from shared.contract.types import (
    ContractModel,
    Count,
    CourtDate,
    EventTime,
    Identifier,
    Money,
    Name,
    PositiveMoney,
    Rate,
    StrictBool,
    format_money,
)


class Sample(ContractModel):
    amount: Money
    positive: PositiveMoney = Decimal("1.00")
    on: CourtDate = date(2021, 3, 1)
    at: EventTime = datetime(2021, 3, 1, 9, 30, tzinfo=timezone.utc)
    name: Name = "张三"
    ident: Identifier = "h-1"
    flag: StrictBool = False
    count: Count = 0
    rate: Rate | None = None


def errors_both_ways(data: dict[str, Any]) -> list[str]:
    """Error types from the JSON path and the dict path, asserted to be the same."""
    found = []
    for validate in (lambda d: Sample.model_validate_json(json.dumps(d)), Sample.model_validate):
        try:
            validate(data)
            found.append([])
        except ValidationError as exc:
            found.append([e["type"] for e in exc.errors()])
    assert found[0] == found[1], f"JSON and dict validation differ: {found}"
    return found[0]


def valid_both_ways(data: dict[str, Any]) -> Sample:
    from_json = Sample.model_validate_json(json.dumps(data))
    from_dict = Sample.model_validate(json.loads(json.dumps(data)))
    assert from_json == from_dict
    return from_json


# ---------------------------------------------------------------- Money

@pytest.mark.parametrize(("text", "expected"), [
    ("12345.67", "12345.67"), ("0", "0.00"), ("0.5", "0.50"), ("100", "100.00"),
    ("100.0", "100.00"), ("999999999999999.99", "999999999999999.99"),
])
def test_money_accepts_decimal_strings_and_writes_two_decimals(text: str, expected: str) -> None:
    sample = valid_both_ways({"amount": text})
    assert sample.amount == Decimal(text)
    assert sample.model_dump(mode="json")["amount"] == expected
    assert isinstance(sample.model_dump()["amount"], Decimal)


@pytest.mark.parametrize(("value", "error"), [
    (12.5, "money_type"), (100, "money_type"), (True, "money_type"), (None, "money_type"),
    ("-1.00", "money_negative"), ("1.001", "money_scale"), ("0.000", "money_scale"),
    ("1e3", "money_format"), ("1E+3", "money_format"), ("NaN", "money_format"),
    ("Infinity", "money_format"), ("+1.00", "money_format"), ("", "money_format"),
    (" 1.00", "money_format"), ("1.00\n", "money_format"), ("01.00", "money_format"), ("1.", "money_format"),
    (".5", "money_format"), ("1,000.00", "money_format"), ("１００", "money_format"),
    ("1" * 16, "money_too_large"),
])
def test_money_refuses(value: Any, error: str) -> None:
    assert errors_both_ways({"amount": value}) == [error]


def test_money_from_python_decimal() -> None:
    assert Sample(amount=Decimal("7.1")).amount == Decimal("7.10")
    assert Sample(amount=Decimal("-0")).model_dump(mode="json")["amount"] == "0.00"
    for bad in (Decimal("-1"), Decimal("0.001"), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValidationError):
            Sample(amount=bad)


def test_positive_money_refuses_zero() -> None:
    assert errors_both_ways({"amount": "1", "positive": "0.00"}) == ["money_not_positive"]


def test_format_money_never_uses_exponent() -> None:
    assert format_money(Decimal("1E+3")) == "1000.00"
    assert format_money(Decimal("0E-8")) == "0.00"


# ---------------------------------------------------------------- dates and times

def test_court_date_round_trip() -> None:
    sample = valid_both_ways({"amount": "1", "on": "2024-02-29"})
    assert sample.on == date(2024, 2, 29)
    assert sample.model_dump(mode="json")["on"] == "2024-02-29"


@pytest.mark.parametrize(("value", "error"), [
    ("2021-02-30", "court_date_invalid"), ("2021-3-1", "court_date_format"),
    ("20210301", "court_date_format"), ("2021-03-01T00:00:00", "court_date_format"),
    ("2021-03-01 ", "court_date_format"), ("2021-03-01\n", "court_date_format"),
    (1614556800, "court_date_type"), (True, "court_date_type"),
])
def test_court_date_refuses(value: Any, error: str) -> None:
    assert errors_both_ways({"amount": "1", "on": value}) == [error]


def test_court_date_refuses_python_datetime() -> None:
    with pytest.raises(ValidationError):
        Sample(amount="1", on=datetime(2021, 3, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize("text", [
    "2021-03-01T09:30:00+08:00", "2021-03-01T01:30:00Z", "2021-03-01T09:30:00.125+08:00",
])
def test_event_time_accepts_rfc3339_with_offset(text: str) -> None:
    sample = valid_both_ways({"amount": "1", "at": text})
    assert sample.at.utcoffset() is not None
    assert sample.at.replace(microsecond=0) == datetime(2021, 3, 1, 1, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(("value", "error"), [
    ("2021-03-01T09:30:00", "event_time_format"), ("2021-03-01", "event_time_format"),
    ("2021-03-01 09:30:00+08:00", "event_time_format"), ("2021-03-01T09:30:00Z\n", "event_time_format"),
    (1614562200, "event_time_type"),
    (1614562200.5, "event_time_type"), ("2021-03-01T25:30:00+08:00", "datetime_from_date_parsing"),
])
def test_event_time_refuses(value: Any, error: str) -> None:
    assert errors_both_ways({"amount": "1", "at": value}) == [error]


def test_event_time_refuses_naive_python_datetime() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample(amount="1", at=datetime(2021, 3, 1, 9, 30))
    assert caught.value.errors()[0]["type"] == "timezone_aware"


# ---------------------------------------------------------------- strict text, flags, numbers

@pytest.mark.parametrize(("field", "value", "error"), [
    ("name", 123, "string_type"), ("name", "", "string_too_short"), ("name", "   ", "string_too_short"),
    ("name", "a\nb", "single_line"), ("name", "x" * 201, "string_too_long"),
    ("ident", "h 1", "no_whitespace"), ("ident", 7, "string_type"),
    ("flag", "true", "bool_type"), ("flag", 1, "bool_type"), ("flag", "1", "bool_type"),
    ("count", True, "int_type"), ("count", "3", "int_type"), ("count", 1.0, "int_type"),
    ("count", -1, "greater_than_equal"), ("rate", "0.5", "float_type"), ("rate", True, "float_type"),
])
def test_strict_fields_refuse_coercion(field: str, value: Any, error: str) -> None:
    assert errors_both_ways({"amount": "1", field: value}) == [error]


def test_text_is_stripped_and_rate_accepts_integers() -> None:
    sample = valid_both_ways({"amount": "1", "name": "  张三 ", "rate": 1})
    assert sample.name == "张三"
    assert sample.rate == 1.0


def test_models_refuse_unknown_fields_and_are_frozen() -> None:
    assert errors_both_ways({"amount": "1", "colour": "red"}) == ["extra_forbidden"]
    sample = Sample(amount="1")
    with pytest.raises(ValidationError):
        sample.amount = Decimal("2")  # type: ignore[misc]


# ---------------------------------------------------------------- messages

def test_every_contract_error_has_a_chinese_message() -> None:
    assert set(EN_MESSAGES) <= set(ZH_MESSAGES)


@pytest.mark.parametrize("error_type", [
    "missing", "extra_forbidden", "string_type", "bool_type", "literal_error", "enum",
    "date_from_datetime_parsing", "date_parsing", "datetime_parsing", "timezone_aware",
    "too_short", "too_long", "string_too_short", "string_too_long", "list_type", "dict_type",
    "model_type", "json_invalid", "union_tag_invalid",
])
def test_common_pydantic_errors_have_chinese_messages(error_type: str) -> None:
    assert ZH_MESSAGES[error_type]


def test_field_errors_are_bilingual_and_name_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"amount": 12.5, "flag": "yes"})
    answers = {e["field"]: e for e in field_errors(caught.value)}
    assert answers["amount"]["type"] == "money_type"
    assert "decimal string" in answers["amount"]["message"]
    assert "十进制字符串" in answers["amount"]["message_zh"]
    assert answers["flag"]["message_zh"] == ZH_MESSAGES["bool_type"]


def test_field_errors_for_invalid_json() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate_json('{"amount": ')
    [answer] = field_errors(caught.value)
    assert answer["type"] == "json_invalid"
    assert answer["message_zh"].startswith("不是有效的 JSON")


def test_contract_error_renders_context() -> None:
    error = contract_error("money_scale", value="1.001")
    assert "'1.001'" in str(error)
    assert error.type == "money_scale"
