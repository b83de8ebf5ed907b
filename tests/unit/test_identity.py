"""Resident IDs, USCCs and phones of parties (当事人身份)."""
from __future__ import annotations

import json

import pytest
from tests.unit.event_examples import ORG_USCC, PERSON_ID, PERSON_ID_X, with_check_digit
from pydantic import ValidationError
from stdnum.cn import ric, uscc

from shared.contract.events import Party
from shared.contract.identity import (
    PartyIdNo,
    ResidentIdNo,
    is_valid_phone,
    is_valid_resident_id,
    is_valid_uscc,
)
from shared.contract.messages import field_errors
from shared.contract.types import ContractModel


def test_check_digit_helper_agrees_with_stdnum() -> None:
    for first_17 in ("11010519491231002", "41048119850312123", "43010219900101002"):
        number = with_check_digit(first_17)
        assert ric.calc_check_digit(number) == number[-1]


@pytest.mark.parametrize("number", [
    PERSON_ID, PERSON_ID_X, PERSON_ID_X.lower(), f" {PERSON_ID} ",
    with_check_digit("81000019900101001"),  # Hong Kong residents' residence permit
])
def test_valid_resident_ids(number: str) -> None:
    assert is_valid_resident_id(number)


def test_county_is_not_looked_up() -> None:
    # 410481 (舞钢市) postdates 1985 in stdnum's table, yet people born there hold such IDs.
    assert not ric.is_valid(PERSON_ID)
    assert is_valid_resident_id(PERSON_ID)


def _wrong_check_digit(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


@pytest.mark.parametrize("number", [
    _wrong_check_digit(PERSON_ID),
    PERSON_ID[:-1],
    PERSON_ID + "1",
    with_check_digit("41048119851332123"),   # month 13
    with_check_digit("41048118991231123"),   # born 1899
    with_check_digit("99048119850312123"),   # no such province
    "4104811985 0312123",
    PERSON_ID[:10] + "-" + PERSON_ID[10:],
    "41048119850312123A",
    "",
    ORG_USCC,
])
def test_invalid_resident_ids(number: str) -> None:
    assert not is_valid_resident_id(number)


def test_uscc() -> None:
    assert is_valid_uscc(ORG_USCC)
    assert is_valid_uscc(ORG_USCC.lower())
    # Authority codes may be letters (N 农业, Y 其他); stdnum alone would refuse these.
    other_authority = "Y1410481MA3X5B7Q2" + uscc.calc_check_digit("Y1410481MA3X5B7Q2")
    assert is_valid_uscc(other_authority)
    assert not is_valid_uscc(ORG_USCC[:-1] + ("A" if ORG_USCC[-1] != "A" else "B"))
    assert not is_valid_uscc("91410481MA3X5B7QI" + "0")  # I is not in the alphabet
    assert not is_valid_uscc(PERSON_ID)


@pytest.mark.parametrize(("phone", "ok"), [
    ("13812345678", True), ("19912345678", True), ("0731-1234567", True), ("010-12345678", True),
    ("0731-1234567-123", True), (" 13812345678 ", True),
    ("12812345678", False), ("1381234567", False), ("138123456789", False), ("+8613812345678", False),
    ("07311234567", False), ("0731-0234567", False), ("1234567", False), ("", False),
])
def test_phones(phone: str, ok: bool) -> None:
    assert is_valid_phone(phone) is ok


class Holder(ContractModel):
    id_no: PartyIdNo
    resident: ResidentIdNo | None = None


def test_party_id_type_normalises() -> None:
    held = Holder.model_validate({"id_no": PERSON_ID_X.lower(), "resident": f" {PERSON_ID} "})
    assert held.id_no == PERSON_ID_X
    assert held.resident == PERSON_ID
    assert Holder.model_validate({"id_no": ORG_USCC}).id_no == ORG_USCC


@pytest.mark.parametrize(("value", "error"), [
    (_wrong_check_digit(PERSON_ID), "party_id_invalid"), (410481198503121238, "party_id_invalid"),
])
def test_party_id_type_refuses(value: object, error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Holder.model_validate({"id_no": value})
    assert caught.value.errors()[0]["type"] == error


def test_party_kind_decides_which_number() -> None:
    Party.model_validate({"name": "张三", "kind": "person", "id_no": PERSON_ID})
    Party.model_validate({"name": "某公司", "kind": "org", "id_no": ORG_USCC})
    with pytest.raises(ValidationError) as caught:
        Party.model_validate_json(json.dumps({"name": "张三", "kind": "person", "id_no": ORG_USCC}))
    [error] = field_errors(caught.value)
    assert (error["field"], error["type"]) == ("id_no", "party_id_kind")
    assert "resident ID" in error["message"] and "公民身份号码" in error["message_zh"]
    with pytest.raises(ValidationError) as caught:
        Party.model_validate({"name": "某公司", "kind": "org", "id_no": PERSON_ID})
    assert caught.value.errors()[0]["type"] == "party_id_kind"


def test_party_phone_is_optional_but_checked() -> None:
    assert Party.model_validate({"name": "张三", "kind": "person", "id_no": PERSON_ID}).phone is None
    with pytest.raises(ValidationError) as caught:
        Party.model_validate({"name": "张三", "kind": "person", "id_no": PERSON_ID, "phone": 13812345678})
    assert caught.value.errors()[0]["type"] == "phone_format"
