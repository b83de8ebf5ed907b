"""Masking of resident IDs and mobile numbers in log text (日志脱敏)."""
from __future__ import annotations

import time
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.contract.casenumber import CASE_TYPES
from shared.masking import mask_text, mask_value
from tests.unit.event_examples import PERSON_ID, PERSON_ID_X, with_check_digit

AREA_CODES = ["110105", "410481", "430102", "440306", "310115", "650102", "810000"]


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from(AREA_CODES))
    born = date(1900, 1, 1) + timedelta(days=draw(st.integers(0, 45_000)))
    order = draw(st.integers(0, 999))
    number = with_check_digit(f"{area}{born:%Y%m%d}{order:03d}")
    return number.lower() if draw(st.booleans()) else number


@st.composite
def case_numbers(draw: st.DrawFn) -> str:
    court = draw(st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF).filter(lambda c: c != "执"),
                         min_size=1, max_size=3))
    digits = draw(st.text("0123456789", max_size=6))
    return f"（{draw(st.integers(1900, 2099))}）{court}{digits}{draw(st.sampled_from(CASE_TYPES))}" \
           f"{draw(st.integers(1, 9_999_999))}号"


amounts = st.decimals(min_value=0, max_value=10**15 - 1, places=2, allow_nan=False,
                      allow_infinity=False).map(lambda d: format(d, "f"))
# A separator that does not glue a number to its neighbours' digits.
separators = st.sampled_from([" ", "，", "：", "。", "号码", "ID:", "\n", "\t", "x"])


@given(resident_id=resident_ids(), before=st.text(max_size=40), after=st.text(max_size=40),
       left=separators, right=separators)
def test_a_valid_resident_id_never_survives(resident_id: str, before: str, after: str,
                                            left: str, right: str) -> None:
    masked = mask_text(before + left + resident_id + right + after)
    assert resident_id not in masked
    assert resident_id[:3] + "*" * 11 + resident_id[-4:] in masked


@given(case_no=case_numbers(), amount=amounts, before=st.text(max_size=30), after=st.text(max_size=30),
       left=separators, right=separators)
def test_case_numbers_and_amounts_are_untouched(case_no: str, amount: str, before: str, after: str,
                                                left: str, right: str) -> None:
    masked = mask_text(before + left + case_no + "，金额" + amount + "元" + right + after)
    assert case_no in masked
    assert "金额" + amount + "元" in masked


@given(mobile=st.from_regex(r"\A1[3-9][0-9]{9}\Z"), before=st.text(max_size=30), left=separators)
def test_mobile_numbers_are_masked(mobile: str, before: str, left: str) -> None:
    masked = mask_text(before + left + mobile + "。")
    assert mobile not in masked
    assert mobile[:3] + "****" + mobile[-4:] in masked


def test_examples() -> None:
    text = (f"申请人{PERSON_ID}，电话13812345678；被执行人{PERSON_ID_X}，"
            "手机 +86 138-1234-5678，8613912345678，固话0731-1234567，"
            "（2021）豫0481执123号，标的13812345678.00元，账号6222021234567890123，流水410481198503121239")
    assert mask_text(text) == (
        "申请人410***********1238，电话138****5678；被执行人110***********002X，"
        "手机 +86 138****5678，86139****5678，固话0731-1234567，"
        "（2021）豫0481执123号，标的13812345678.00元，账号6222021234567890123，流水410481198503121239")


def test_mask_value_walks_containers() -> None:
    record = {"event": "filed", "party": {"id_no": PERSON_ID, "phones": ["13812345678", 7]},
              "ids": (PERSON_ID,), "count": 3, "ok": True, "amount": None}
    assert mask_value(record) == {
        "event": "filed", "party": {"id_no": "410***********1238", "phones": ["138****5678", 7]},
        "ids": ("410***********1238",), "count": 3, "ok": True, "amount": None}


def test_fast_enough_for_every_log_line() -> None:
    line = f"case （2021）豫0481执123号 amount 12345.67 party {PERSON_ID} phone 13812345678 " * 3
    plain = "consumer lag 12 partition 3 offset 1234567 took 0.004s " * 3
    started = time.perf_counter()
    for _ in range(5_000):
        mask_text(line)
        mask_text(plain)
    # ~10 µs a line on a laptop; the bound only catches a pathological regression.
    assert time.perf_counter() - started < 2.0
