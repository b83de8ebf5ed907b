"""Reusable field types of the event contract (contract §1): money, dates, times, text.

Every type here behaves the same whether a model is validated from JSON text
(`model_validate_json`) or from `json.loads` output (`model_validate`, which
is what FastAPI does). So the strictness is per field, never model-wide: a
model-wide `strict=True` would refuse a date string in Python mode.

- `Money` 金额: a decimal string in yuan, e.g. "12345.67", parsed to Decimal.
  Refused: numbers (float or int), booleans, a sign (+ or -), an exponent,
  NaN/Infinity, spaces, leading zeros ("007"), more than 2 decimals, "12.",
  ".5", empty. Python code may also pass a finite, non-negative Decimal with at
  most 2 decimals (json.loads never produces one).
  **Normalised to 2 decimals**: "100" and "100.0" both become Decimal("100.00"),
  and `model_dump(mode="json")` writes "100.00". So one amount has one
  spelling on every topic, and comparing two filings compares amounts.
- `CourtDate` 日期: "YYYY-MM-DD" only (a `date` from Python code too; never a
  datetime, a timestamp or "20210301").
- `EventTime` 事件时间: an RFC 3339 string with an offset (Z or ±hh:mm);
  naive times, timestamps and dates are refused. The offset is kept as given.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    AllowInfNan,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    Strict,
    StrictBool,  # re-exported: event modules take every field type from here
    StringConstraints,
    WithJsonSchema,
)

from shared.contract.messages import contract_error

__all__ = [
    "ContractModel", "EventData", "Money", "PositiveMoney", "parse_money", "format_money",
    "CourtDate", "parse_court_date", "EventTime", "StrictBool",
    "Identifier", "Name", "Actor", "Line", "Note", "LongText", "Url", "Count", "Revision", "Rate",
    "single_line_text", "multi_line_text",
]


class ContractModel(BaseModel):
    """Base of every event data model: unknown fields refused, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventData(ContractModel):
    """Base of every event's `data` model; `event_type` is the envelope `type` it belongs to."""

    event_type: ClassVar[str]


# ---------------------------------------------------------------- Money 金额

MONEY_MAX_INTEGER_DIGITS = 15  # a sanity bound on the text, not a business limit
MONEY_JSON_PATTERN = rf"^(0|[1-9][0-9]{{0,{MONEY_MAX_INTEGER_DIGITS - 1}}})(\.[0-9]{{1,2}})?$"
# \Z, not $: $ also matches before a trailing newline.
_MONEY = re.compile(r"^(?P<int>0|[1-9][0-9]*)(?:\.(?P<frac>[0-9]+))?\Z")
_CENT = Decimal("0.01")


def parse_money(value: Any) -> Decimal:
    """A contract amount (decimal string in yuan) -> Decimal with exactly 2 decimals."""
    if isinstance(value, Decimal):
        return _money_from_decimal(value)
    if not isinstance(value, str):
        raise contract_error("money_type", input=value)
    match = _MONEY.match(value)
    if match is None:
        if value.startswith("-") and _MONEY.match(value[1:]):
            raise contract_error("money_negative", value=value)
        raise contract_error("money_format", value=value)
    if match["frac"] is not None and len(match["frac"]) > 2:
        raise contract_error("money_scale", value=value)
    if len(match["int"]) > MONEY_MAX_INTEGER_DIGITS:
        raise contract_error("money_too_large", value=value, max_digits=MONEY_MAX_INTEGER_DIGITS)
    return Decimal(value).quantize(_CENT)


def _money_from_decimal(value: Decimal) -> Decimal:
    text = format(value, "f") if value.is_finite() else str(value)
    if not value.is_finite():
        raise contract_error("money_format", value=text)
    if value < 0:
        raise contract_error("money_negative", value=text)
    if value >= Decimal(10) ** MONEY_MAX_INTEGER_DIGITS:
        raise contract_error("money_too_large", value=text, max_digits=MONEY_MAX_INTEGER_DIGITS)
    if value != value.quantize(_CENT):
        raise contract_error("money_scale", value=text)
    return abs(value).quantize(_CENT)  # abs: Decimal("-0") is zero, written "0.00"


def parse_positive_money(value: Any) -> Decimal:
    amount = parse_money(value)
    if amount == 0:
        raise contract_error("money_not_positive", value=format_money(amount))
    return amount


def format_money(amount: Decimal) -> str:
    """Decimal -> the contract's string, always 2 decimals and never an exponent: "12345.67"."""
    return format(amount.quantize(_CENT), "f")


_MONEY_SCHEMA = {
    "type": "string", "pattern": MONEY_JSON_PATTERN, "examples": ["12345.67"],
    "description": "金额 amount in yuan as a decimal string, at most 2 decimals",
}

Money = Annotated[
    Decimal,
    PlainValidator(parse_money),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_SCHEMA),
]
"""An amount ≥ 0 in yuan; Decimal in Python, "12345.67" in JSON."""

PositiveMoney = Annotated[
    Decimal,
    PlainValidator(parse_positive_money),
    PlainSerializer(format_money, return_type=str, when_used="json"),
    WithJsonSchema({**_MONEY_SCHEMA, "description": "金额 amount > 0 in yuan as a decimal string"}),
]
"""An amount > 0 in yuan (a receipt or a payout of nothing is not a fact)."""


# ---------------------------------------------------------------- dates and times

_DATE_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def parse_court_date(value: Any) -> date:
    """ "2021-03-01" (or a date from Python code) -> date; anything else is refused."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise contract_error("court_date_type", input=value)
    if not _DATE_TEXT.match(value):
        raise contract_error("court_date_format", value=value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise contract_error("court_date_invalid", value=value) from None


def _check_event_time(value: Any) -> Any:
    """Let through an RFC 3339 string with offset, or a datetime (awareness checked next)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise contract_error("event_time_type", input=value)
    if not _RFC3339.match(value):
        raise contract_error("event_time_format", value=value)
    return value


CourtDate = Annotated[
    date,
    PlainValidator(parse_court_date),
    PlainSerializer(date.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2021-03-01"]}),
]
"""A calendar date (日期) in the court's zone, "YYYY-MM-DD"."""

EventTime = Annotated[AwareDatetime, BeforeValidator(_check_event_time)]
"""A moment with its offset (RFC 3339), e.g. "2021-03-01T09:30:00+08:00"."""


# ---------------------------------------------------------------- text

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_CHARS_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WHITESPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def _single_line(value: str) -> str:
    if _CONTROL_CHARS.search(value):
        raise contract_error("single_line")
    return value


def _text(value: str) -> str:
    if _CONTROL_CHARS_BUT_LINES.search(value):
        raise contract_error("single_line")
    return value


def _no_whitespace(value: str) -> str:
    if _WHITESPACE_OR_CONTROL.search(value):
        raise contract_error("no_whitespace")
    return value


def single_line_text(max_length: int) -> Any:
    """A non-empty one-line string (no int→str coercion), surrounding whitespace stripped."""
    return Annotated[
        str,
        StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_single_line),
    ]


def multi_line_text(max_length: int) -> Any:
    """A non-empty string that may hold line breaks, surrounding whitespace stripped."""
    return Annotated[
        str,
        StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_text),
    ]


Identifier = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_whitespace),
]
"""An id (receipt, clue, asset ref, handler, team, event id): no spaces, ≤ 200 chars."""

Name = single_line_text(200)
"""A person's, organisation's or court's name (名称)."""
Actor = single_line_text(200)
"""Who did or approved something (承办人、审批人): a handler id or a name."""
Line = single_line_text(500)
"""A one-line text: a summary, a reason, a document number."""
Note = multi_line_text(4000)
"""A remark (备注)."""
LongText = multi_line_text(200_000)
"""A body of text, e.g. a sentiment item's text (舆情正文)."""

Url = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=8, max_length=2048,
                      pattern=r"^https?://\S+$"),
]

Count = Annotated[int, Strict(), Field(ge=0)]
"""A non-negative integer; true/false and "3" are refused."""
Revision = Annotated[int, Strict(), Field(ge=1)]
Rate = Annotated[float, Strict(), AllowInfNan(False)]
"""A JSON number (integers accepted), finite; strings and booleans refused."""
