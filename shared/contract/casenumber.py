"""Case numbers (案号) of enforcement cases, contract §2.

Normalised form: `（YYYY）<court code><type>N号`, e.g. `（2021）豫0481执123号`.

What is accepted:
- parentheses full-width `（）` or half-width `()` (mixed too), normalised to
  full-width; full-width digits `０-９` normalised to ASCII; surrounding
  whitespace stripped. Nothing else is rewritten: inner spaces are an error.
- year 1900-2099;
- court code (法院代字): 1-3 Chinese characters (not 执) followed by 0-6
  digits: `豫0481` (basic court), `京01` (intermediate), `粤` (high court),
  `最高法` (Supreme People's Court), `兵0102` (Xinjiang corps courts);
- type (类型代字): 执 执恢 执保 执异 执复 执监 执协 执他 (the longer ones are
  matched first, so `执恢` is never read as `执` + `恢`);
- sequence (序号): 1-7 digits without a leading zero, then `号`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, WithJsonSchema

from shared.contract.messages import contract_error

CaseType = Literal["执", "执恢", "执保", "执异", "执复", "执监", "执协", "执他"]
"""执 first enforcement, 执恢 resumed, 执保 preservation, 执异 objection, 执复 review,
执监 supervision, 执协 coordination, 执他 other (e.g. entrusted)."""

CASE_TYPES: tuple[str, ...] = get_args(CaseType)

# Longest first, so that the regex alternation prefers 执恢 over 执.
_TYPE_ALTERNATION = "|".join(sorted(CASE_TYPES, key=len, reverse=True))
_HAN_NOT_ZHI = r"(?:(?!执)[\u4e00-\u9fff])"
COURT_CODE_PATTERN = rf"{_HAN_NOT_ZHI}{{1,3}}[0-9]{{0,6}}"
_CORE = (
    rf"[（(](?P<year>(?:19|20)[0-9]{{2}})[）)]"
    rf"(?P<court>{COURT_CODE_PATTERN})"
    rf"(?P<type>{_TYPE_ALTERNATION})"
    rf"(?P<seq>[1-9][0-9]{{0,6}})号"
)
_FULL = re.compile(rf"^{_CORE}\Z")
# In free text a sequence must not run on into more digits before 号 (it can't: 号 closes it).
_IN_TEXT = re.compile(_CORE)
_COURT_CODE = re.compile(rf"^{COURT_CODE_PATTERN}\Z")
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# For diagnosing a rejected number: anything shaped like a case number at all.
_LOOSE = re.compile(r"^[（(](?P<year>[^）)]*)[）)](?P<body>.*?)(?P<seq>[0-9]*)(?P<hao>号?)$")

EXAMPLE = "（2021）豫0481执123号"

# JSON Schema pattern (API docs, schemathesis): what the API accepts before normalising.
CASE_NO_JSON_PATTERN = (
    r"^\s*[（(](19|20)[0-9]{2}[）)][\u4e00-\u6266\u6268-\u9fff]{1,3}[0-9]{0,6}"
    rf"({_TYPE_ALTERNATION})[1-9][0-9]{{0,6}}号\s*$"
)


class CaseNumberError(ValueError):
    """A malformed case number. `reason` is English, `reason_zh` Chinese (案号格式错误)."""

    def __init__(self, text: object, reason: str, reason_zh: str):
        self.text = text
        self.reason = reason
        self.reason_zh = reason_zh
        super().__init__(f"{reason} / {reason_zh}")


@dataclass(frozen=True)
class CaseNumber:
    """A parsed case number (案号). `normalized` is the contract's form, used as `subject`."""

    year: int
    court_code: str
    case_type: str
    seq: int
    normalized: str

    def __str__(self) -> str:
        return self.normalized


def _canonical_chars(text: str) -> str:
    return text.strip().translate(_FULLWIDTH_DIGITS).replace("(", "（").replace(")", "）")


def _from_match(match: re.Match[str]) -> CaseNumber:
    year, court, case_type, seq = match.group("year", "court", "type", "seq")
    return CaseNumber(
        year=int(year), court_code=court, case_type=case_type, seq=int(seq),
        normalized=f"（{year}）{court}{case_type}{seq}号",
    )


def parse_case_no(text: object) -> CaseNumber:
    """Parse and normalise a case number; raise CaseNumberError saying what is wrong."""
    if not isinstance(text, str):
        raise CaseNumberError(
            text, f"case number must be a string, not {type(text).__name__}",
            "案号须为字符串",
        )
    canonical = _canonical_chars(text)
    match = _FULL.match(canonical)
    if match is None:
        reason, reason_zh = _diagnose(canonical)
        raise CaseNumberError(text, reason, reason_zh)
    return _from_match(match)


def normalize_case_no(text: object) -> str:
    """The normalised form of a case number, e.g. "(2021)豫0481执123号" -> "（2021）豫0481执123号"."""
    return parse_case_no(text).normalized


def is_case_no(text: object) -> bool:
    try:
        parse_case_no(text)
    except CaseNumberError:
        return False
    return True


def find_case_numbers(text: str) -> list[str]:
    """Case numbers found inside free text, normalised, each once, in order of appearance.

    Used to link a public-sentiment item (舆情) to the cases it names.
    """
    found: dict[str, None] = {}
    for match in _IN_TEXT.finditer(text.translate(_FULLWIDTH_DIGITS)):
        found.setdefault(_from_match(match).normalized, None)
    return list(found)


def is_court_code(text: str) -> bool:
    """True for a court code (法院代字) such as 豫0481, 京01, 最高法."""
    return bool(_COURT_CODE.match(text))


def _diagnose(canonical: str) -> tuple[str, str]:
    """(English, Chinese) reason why `canonical` is not a case number."""
    expected = f"expected （YYYY）<court code><type>N号, e.g. {EXAMPLE}"
    expected_zh = f"应为“（年份）法院代字+类型代字+序号+号”，如 {EXAMPLE}"
    if not canonical:
        return "case number is empty", "案号为空"
    loose = _LOOSE.match(canonical)
    if loose is None:
        return (f"case number {canonical!r} does not start with the year in parentheses; {expected}",
                f"案号 {canonical!r} 未以括号内的年份开头；{expected_zh}")
    if not re.fullmatch(r"(?:19|20)[0-9]{2}", loose["year"]):
        return (f"case number {canonical!r}: year {loose['year']!r} is not a 4-digit year; {expected}",
                f"案号 {canonical!r} 的年份 {loose['year']!r} 不是 4 位年份；{expected_zh}")
    if not loose["hao"]:
        return (f"case number {canonical!r} does not end with 号; {expected}",
                f"案号 {canonical!r} 未以“号”结尾；{expected_zh}")
    if not loose["seq"]:
        return (f"case number {canonical!r} has no sequence number before 号; {expected}",
                f"案号 {canonical!r} 缺少“号”前的序号；{expected_zh}")
    if loose["seq"].startswith("0") or len(loose["seq"]) > 7:
        return (f"case number {canonical!r}: sequence {loose['seq']!r} must be 1-7 digits "
                f"without a leading zero; {expected}",
                f"案号 {canonical!r} 的序号 {loose['seq']!r} 须为 1-7 位且不以 0 开头；{expected_zh}")
    body = loose["body"]
    type_match = re.search(rf"({_TYPE_ALTERNATION})$", body)
    if type_match is None:
        types = " ".join(CASE_TYPES)
        return (f"case number {canonical!r} is not an enforcement case: the type before the sequence "
                f"must be one of {types}; {expected}",
                f"案号 {canonical!r} 不是执行案件案号：序号前的类型代字须为 {types} 之一；{expected_zh}")
    court = body[: type_match.start()]
    return (f"case number {canonical!r}: court code {court!r} must be 1-3 Chinese characters "
            f"followed by up to 6 digits, e.g. 豫0481; {expected}",
            f"案号 {canonical!r} 的法院代字 {court!r} 须为 1-3 个汉字加至多 6 位数字（如 豫0481）；{expected_zh}")


def _validate_case_no(value: Any) -> str:
    if not isinstance(value, str):
        raise contract_error("case_no_type", input=value)
    try:
        return parse_case_no(value).normalized
    except CaseNumberError as exc:
        raise contract_error("case_no_format", reason=exc.reason, reason_zh=exc.reason_zh) from None


CaseNo = Annotated[
    str,
    BeforeValidator(_validate_case_no),
    WithJsonSchema({
        "type": "string", "pattern": CASE_NO_JSON_PATTERN, "examples": [EXAMPLE],
        "description": "案号 case number, （YYYY）<court code><type>N号",
    }),
]
"""A case number (案号) field: a string, validated and normalised to full-width parentheses."""


def _validate_court_code(value: Any) -> str:
    if not isinstance(value, str):
        raise contract_error("court_code_format", value=repr(value))
    code = value.strip().translate(_FULLWIDTH_DIGITS)
    if not _COURT_CODE.match(code):
        raise contract_error("court_code_format", value=value)
    return code


CourtCode = Annotated[
    str,
    BeforeValidator(_validate_court_code),
    WithJsonSchema({
        "type": "string", "pattern": r"^\s*[\u4e00-\u6266\u6268-\u9fff]{1,3}[0-9]{0,6}\s*$",
        "examples": ["豫0481"], "description": "法院代字 court code",
    }),
]
"""A court code (法院代字) such as 豫0481: 1-3 Chinese characters and up to 6 digits."""
