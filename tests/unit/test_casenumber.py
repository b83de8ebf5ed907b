"""Case numbers (案号), contract §2."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contract.casenumber import (
    CASE_TYPES,
    CaseNo,
    CaseNumber,
    CaseNumberError,
    find_case_numbers,
    is_case_no,
    is_court_code,
    normalize_case_no,
    parse_case_no,
)
from shared.contract.messages import field_errors
from shared.contract.types import ContractModel


class Holder(ContractModel):
    case_no: CaseNo


def test_parse_gives_parts_and_normalised_form() -> None:
    assert parse_case_no("（2021）豫0481执123号") == CaseNumber(
        year=2021, court_code="豫0481", case_type="执", seq=123, normalized="（2021）豫0481执123号")


@pytest.mark.parametrize(("text", "normalized", "case_type", "court"), [
    ("(2021)豫0481执123号", "（2021）豫0481执123号", "执", "豫0481"),
    ("  （2021)豫0481执恢12号\n", "（2021）豫0481执恢12号", "执恢", "豫0481"),
    ("(２０２０)京01执保3号", "（2020）京01执保3号", "执保", "京01"),
    ("（2019）最高法执监45号", "（2019）最高法执监45号", "执监", "最高法"),
    ("（2022）粤执复7号", "（2022）粤执复7号", "执复", "粤"),
    ("（2022）兵0102执异1号", "（2022）兵0102执异1号", "执异", "兵0102"),
    ("（2023）粤0306执协9999999号", "（2023）粤0306执协9999999号", "执协", "粤0306"),
    ("（2023）湘0102执他5号", "（2023）湘0102执他5号", "执他", "湘0102"),
])
def test_accepted_forms(text: str, normalized: str, case_type: str, court: str) -> None:
    parsed = parse_case_no(text)
    assert (parsed.normalized, parsed.case_type, parsed.court_code) == (normalized, case_type, court)
    assert normalize_case_no(text) == normalized
    assert is_case_no(text)


def test_longest_type_wins() -> None:
    for case_type in CASE_TYPES:
        assert parse_case_no(f"（2021）豫0481{case_type}1号").case_type == case_type


@pytest.mark.parametrize(("text", "hint"), [
    ("", "empty"),
    ("2021豫0481执1号", "year in parentheses"),
    ("（21）豫0481执1号", "4-digit year"),
    ("（2021）豫0481民初1号", "not an enforcement case"),
    ("（2021）豫0481执行1号", "not an enforcement case"),
    ("（2021）豫0481执1", "does not end with 号"),
    ("（2021）豫0481执号", "no sequence"),
    ("（2021）豫0481执0123号", "leading zero"),
    ("（2021）豫0481执12345678号", "1-7 digits"),
    ("（2021）ABC执1号", "court code"),
    ("（2021）豫0481234执1号", "court code"),
    ("（2021）豫 0481执1号", "court code"),
    ("（2021）执1号", "court code"),
])
def test_malformed_numbers_are_explained_in_both_languages(text: str, hint: str) -> None:
    with pytest.raises(CaseNumberError) as caught:
        parse_case_no(text)
    assert hint in caught.value.reason
    assert "案号" in caught.value.reason_zh
    assert isinstance(caught.value, ValueError)
    assert not is_case_no(text)


def test_not_a_string() -> None:
    with pytest.raises(CaseNumberError):
        parse_case_no(2021)


def test_pydantic_type_normalises_and_explains() -> None:
    assert Holder.model_validate({"case_no": "(2021)豫0481执1号"}).case_no == "（2021）豫0481执1号"
    with pytest.raises(ValidationError) as caught:
        Holder.model_validate_json(json.dumps({"case_no": "（2021）豫0481民初1号"}))
    [error] = field_errors(caught.value)
    assert error["field"] == "case_no" and error["type"] == "case_no_format"
    assert "not an enforcement case" in error["message"]
    assert "不是执行案件案号" in error["message_zh"]
    with pytest.raises(ValidationError) as caught:
        Holder.model_validate({"case_no": 123})
    assert caught.value.errors()[0]["type"] == "case_no_type"


def test_find_case_numbers_in_free_text() -> None:
    text = ("网民称(2021)豫0481执恢12号执行拖延，另涉（２０２０）京01执保3号；"
            "又见（2021）豫0481执恢12号。（2020）豫0481民初5号不是执行案件。")
    assert find_case_numbers(text) == ["（2021）豫0481执恢12号", "（2020）京01执保3号"]
    assert find_case_numbers("没有案号，金额12345.67元") == []


def test_court_codes() -> None:
    assert all(is_court_code(c) for c in ["豫0481", "京01", "粤", "最高法", "兵0102"])
    assert not any(is_court_code(c) for c in ["", "0481", "豫执", "豫04811234", "河南省高", "ab"])


_han = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF).filter(lambda c: c != "执")


@given(
    year=st.integers(1900, 2099),
    court=st.tuples(st.text(_han, min_size=1, max_size=3), st.text("0123456789", max_size=6)),
    case_type=st.sampled_from(CASE_TYPES),
    seq=st.integers(1, 9_999_999),
    half_width=st.booleans(),
)
def test_any_well_formed_number_round_trips(
    year: int, court: tuple[str, str], case_type: str, seq: int, half_width: bool,
) -> None:
    court_code = "".join(court)
    opening, closing = ("(", ")") if half_width else ("（", "）")
    parsed = parse_case_no(f"{opening}{year}{closing}{court_code}{case_type}{seq}号")
    assert (parsed.year, parsed.court_code, parsed.case_type, parsed.seq) == (year, court_code, case_type, seq)
    assert parse_case_no(parsed.normalized) == parsed
    assert find_case_numbers(f"见{parsed.normalized}。") == [parsed.normalized]
