"""Party identity numbers and phones (当事人身份证件号码、联系电话), contract §4 Party.

- 公民身份号码 resident ID: 18 characters, 17 digits and a check digit (0-9 or
  X, ISO 7064 MOD 11-2), a real birth date (year 1900 or later) and a known
  province code in the first two digits (GB/T 2260, plus 81/82/83 for the
  residence permits of Hong Kong, Macao and Taiwan residents). The county part
  is NOT looked up: stdnum's county table lags behind new county codes, and
  refusing a real person's ID at the service window costs more than accepting
  an unknown county.
- 统一社会信用代码 unified social credit code (USCC): 18 characters, GB 32100
  shape and check character (`stdnum.cn.uscc.calc_check_digit`).
- Surrounding whitespace is stripped and letters upper-cased (a lower-case x
  is common); inner spaces or hyphens are rejected, not silently removed.
- Phone (联系电话): a mainland mobile number `1[3-9]` + 9 digits, or a landline
  written with its area code and a hyphen, optionally an extension:
  `0731-1234567`, `010-12345678`, `0731-1234567-123`. No `+86` prefix.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, WithJsonSchema
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from shared.contract.messages import contract_error

PartyKind = Literal["person", "org"]
"""person 自然人, org 法人或非法人组织."""

_RESIDENT_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]\Z")
# GB 32100: registering authority and kind (digits or letters, e.g. 91, N2, Y1), a 6-digit
# area code, then the organisation code and the check character. stdnum.cn.uscc wants 8
# leading digits, which would refuse real codes issued by 农业 (N) or 其他 (Y) authorities.
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}\Z")
# First two digits of GB/T 2260 province codes; 81/82/83 are HK/Macao/Taiwan residence permits.
PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
    "71", "81", "82", "83",
})
MOBILE_PATTERN = r"1[3-9][0-9]{9}"
LANDLINE_PATTERN = r"0[1-9][0-9]{1,2}-[1-9][0-9]{6,7}(?:-[0-9]{1,6})?"
_PHONE = re.compile(rf"^(?:{MOBILE_PATTERN}|{LANDLINE_PATTERN})\Z")


def normalize_id_no(text: str) -> str:
    """Strip surrounding whitespace and upper-case (…x -> …X); nothing else."""
    return text.strip().upper()


def is_valid_resident_id(text: str) -> bool:
    """True for a valid 18-character resident ID (公民身份号码), check digit included."""
    if not isinstance(text, str):
        return False
    number = normalize_id_no(text)
    if not _RESIDENT_ID_SHAPE.match(number) or number[:2] not in PROVINCE_CODES:
        return False
    if ric.calc_check_digit(number) != number[-1]:
        return False
    try:
        return ric.get_birth_date(number).year >= 1900
    except StdnumError:
        return False


def is_valid_uscc(text: str) -> bool:
    """True for a valid unified social credit code (统一社会信用代码)."""
    if not isinstance(text, str):
        return False
    number = normalize_id_no(text)
    return bool(_USCC_SHAPE.match(number)) and uscc.calc_check_digit(number[:17]) == number[17]


def is_valid_phone(text: str) -> bool:
    """True for a mainland mobile (13812345678) or landline with area code (0731-1234567)."""
    return isinstance(text, str) and bool(_PHONE.match(text.strip()))


def check_party_id(kind: str, id_no: str) -> str:
    """The id for a party of `kind`, or a contract error: person → resident ID, org → USCC."""
    if kind == "person" and not is_valid_resident_id(id_no):
        raise contract_error("party_id_kind", kind=kind, kind_zh="自然人", value=id_no,
                             expected="a valid resident ID number", expected_zh="有效的公民身份号码")
    if kind == "org" and not is_valid_uscc(id_no):
        raise contract_error("party_id_kind", kind=kind, kind_zh="单位", value=id_no,
                             expected="a valid unified social credit code",
                             expected_zh="有效的统一社会信用代码")
    return id_no


def _validate_party_id(value: Any) -> str:
    if not isinstance(value, str):
        raise contract_error("party_id_invalid", value=repr(value))
    number = normalize_id_no(value)
    if is_valid_resident_id(number) or is_valid_uscc(number):
        return number
    raise contract_error("party_id_invalid", value=value)


def _validate_resident_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_resident_id(value):
        raise contract_error("resident_id_invalid", value=value if isinstance(value, str) else repr(value))
    return normalize_id_no(value)


def _validate_phone(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_phone(value):
        raise contract_error("phone_format", value=value if isinstance(value, str) else repr(value))
    return value.strip()


_ID_SCHEMA = {"type": "string", "pattern": r"^\s*[0-9A-Za-z]{18}\s*$", "minLength": 18}

PartyIdNo = Annotated[
    str,
    BeforeValidator(_validate_party_id),
    WithJsonSchema({**_ID_SCHEMA, "examples": ["11010519491231002X", "91110000600037341L"],
                    "description": "公民身份号码 resident ID or 统一社会信用代码 USCC, check digit verified"}),
]
"""A resident ID or a USCC, normalised (upper-case, stripped)."""

ResidentIdNo = Annotated[
    str,
    BeforeValidator(_validate_resident_id),
    WithJsonSchema({**_ID_SCHEMA, "examples": ["11010519491231002X"],
                    "description": "公民身份号码 resident ID, check digit verified"}),
]

Phone = Annotated[
    str,
    BeforeValidator(_validate_phone),
    WithJsonSchema({"type": "string", "pattern": rf"^\s*(?:{MOBILE_PATTERN}|{LANDLINE_PATTERN})\s*$",
                    "examples": ["13812345678", "0731-1234567"],
                    "description": "联系电话: mainland mobile or landline with area code"}),
]
