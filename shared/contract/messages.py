"""Bilingual validation messages (校验错误提示, English and Chinese).

Every error the contract types raise themselves is built by `contract_error`,
so it carries a stable `type` (e.g. `money_scale`), an English message and a
Chinese template in `ZH_MESSAGES`. `ZH_MESSAGES` also translates the pydantic
error types an API caller is likely to meet. `field_errors` turns a
`pydantic.ValidationError` into the field-level list the intake API answers
with on HTTP 422.
"""
from __future__ import annotations

import string
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

# English templates of the contract's own error types; placeholders come from ctx.
EN_MESSAGES: dict[str, str] = {
    # Money 金额
    "money_type": "amount must be a decimal string in yuan such as \"12345.67\", not {input_kind}",
    "money_format": "amount {value!r} is not a plain decimal string in yuan such as \"12345.67\" "
                    "(no sign, exponent, spaces or leading zeros)",
    "money_scale": "amount {value!r} has more than 2 decimal places (fen is the smallest unit)",
    "money_negative": "amount {value!r} must not be negative",
    "money_not_positive": "amount {value!r} must be greater than 0",
    "money_too_large": "amount {value!r} has more than {max_digits} digits before the decimal point",
    # Dates and times 日期与时间
    "court_date_type": "date must be a \"YYYY-MM-DD\" string, not {input_kind}",
    "court_date_format": "date {value!r} must be written as YYYY-MM-DD, e.g. \"2021-03-01\"",
    "court_date_invalid": "date {value!r} is not a calendar date",
    "event_time_type": "time must be an RFC 3339 string with an offset, not {input_kind}",
    "event_time_format": "time {value!r} must be RFC 3339 with an offset, "
                         "e.g. \"2021-03-01T09:30:00+08:00\"",
    # Case numbers 案号
    "case_no_type": "case number must be a string, not {input_kind}",
    "case_no_format": "{reason}",
    "case_type_mismatch": "case_type {case_type!r} does not match the type {case_no_type!r} "
                          "in case number {case_no}",
    "court_code_mismatch": "court_code {court_code!r} does not match the court code {case_no_court!r} "
                           "in case number {case_no}",
    "court_code_format": "court code {value!r} must be 1-3 Chinese characters followed by up to "
                         "6 digits, e.g. \"豫0481\"",
    "resumed_case_type": "new_case_no {case_no} of a resumed case must be of type 执恢, not {case_type!r}",
    # Identity 身份
    "resident_id_invalid": "{value!r} is not a valid 18-character resident ID number "
                           "(format, birth date or check digit is wrong)",
    "uscc_invalid": "{value!r} is not a valid 18-character unified social credit code "
                    "(format or check digit is wrong)",
    "party_id_invalid": "{value!r} is neither a valid resident ID number nor a valid "
                        "unified social credit code",
    "party_id_kind": "a party of kind {kind!r} needs {expected}; {value!r} is not one",
    "phone_format": "phone {value!r} must be a mainland mobile number (11 digits, e.g. 13812345678) "
                    "or a landline with area code, e.g. 0731-1234567",
    # Cross-field rules 字段间规则
    "node_ref_required": "node {node!r} needs {field}",
    "duplicate_asset_ref": "asset ref {ref!r} appears more than once",
    "review_inconsistent": "passed must be true exactly when missing is empty",
    "single_line": "must be a single line without control characters",
    "no_whitespace": "must not contain whitespace or control characters",
}

# Chinese templates: the contract's own types first, then pydantic's.
ZH_MESSAGES: dict[str, str] = {
    "money_type": "金额须为以元为单位的十进制字符串，如 \"12345.67\"，不能是{input_kind_zh}",
    "money_format": "金额 {value!r} 格式错误：须为不带符号、指数、空格或前导零的十进制字符串，如 \"12345.67\"",
    "money_scale": "金额 {value!r} 小数位超过 2 位（最小单位为分）",
    "money_negative": "金额 {value!r} 不能为负数",
    "money_not_positive": "金额 {value!r} 须大于 0",
    "money_too_large": "金额 {value!r} 整数部分超过 {max_digits} 位",
    "court_date_type": "日期须为 \"YYYY-MM-DD\" 格式的字符串，不能是{input_kind_zh}",
    "court_date_format": "日期 {value!r} 须写作 YYYY-MM-DD，如 \"2021-03-01\"",
    "court_date_invalid": "日期 {value!r} 不是有效的日历日期",
    "event_time_type": "时间须为带时区偏移的 RFC 3339 字符串，不能是{input_kind_zh}",
    "event_time_format": "时间 {value!r} 须为带时区偏移的 RFC 3339 格式，如 \"2021-03-01T09:30:00+08:00\"",
    "case_no_type": "案号须为字符串，不能是{input_kind_zh}",
    "case_no_format": "{reason_zh}",
    "case_type_mismatch": "案件类型 {case_type!r} 与案号 {case_no} 中的类型代字 {case_no_type!r} 不一致",
    "court_code_mismatch": "法院代字 {court_code!r} 与案号 {case_no} 中的法院代字 {case_no_court!r} 不一致",
    "court_code_format": "法院代字 {value!r} 须为 1-3 个汉字加至多 6 位数字，如 \"豫0481\"",
    "resumed_case_type": "恢复执行的新案号 {case_no} 类型须为“执恢”，而不是 {case_type!r}",
    "resident_id_invalid": "{value!r} 不是有效的 18 位公民身份号码（格式、出生日期或校验码错误）",
    "uscc_invalid": "{value!r} 不是有效的 18 位统一社会信用代码（格式或校验码错误）",
    "party_id_invalid": "{value!r} 既不是有效的公民身份号码，也不是有效的统一社会信用代码",
    "party_id_kind": "{kind_zh}当事人须提供{expected_zh}，{value!r} 不符合",
    "phone_format": "电话 {value!r} 须为大陆手机号（11 位，如 13812345678）或带区号的固定电话（如 0731-1234567）",
    "node_ref_required": "节点 {node!r} 须提供 {field}",
    "duplicate_asset_ref": "财产编号 {ref!r} 重复",
    "review_inconsistent": "仅当 missing 为空时 passed 才能为 true",
    "single_line": "须为单行文本，不能含控制字符",
    "no_whitespace": "不能含空白或控制字符",
    # pydantic's own error types
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段（契约中没有该字段）",
    "string_type": "应为字符串",
    "string_sub_type": "应为字符串",
    "string_unicode": "应为有效的 Unicode 字符串",
    "string_too_short": "长度至少为 {min_length} 个字符",
    "string_too_long": "长度不能超过 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符合要求（{pattern}）",
    "bool_type": "应为布尔值 true 或 false",
    "bool_parsing": "应为布尔值 true 或 false",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能带小数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限数值（不能是 NaN 或无穷大）",
    "decimal_type": "应为十进制数",
    "decimal_parsing": "应为十进制数",
    "greater_than": "应大于 {gt}",
    "greater_than_equal": "应大于或等于 {ge}",
    "less_than": "应小于 {lt}",
    "less_than_equal": "应小于或等于 {le}",
    "literal_error": "取值无效，应为以下之一：{expected}",
    "enum": "取值无效，应为以下之一：{expected}",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "日期无效，应为 YYYY-MM-DD 格式的有效日期",
    "date_from_datetime_parsing": "日期无效，应为 YYYY-MM-DD 格式的有效日期",
    "date_from_datetime_inexact": "日期不能带时间部分，应为 YYYY-MM-DD",
    "datetime_type": "应为带时区偏移的时间，如 2021-03-01T09:30:00+08:00",
    "datetime_parsing": "时间无效，应为带时区偏移的 RFC 3339 时间，如 2021-03-01T09:30:00+08:00",
    "datetime_from_date_parsing": "时间无效，应为带时区偏移的 RFC 3339 时间，如 2021-03-01T09:30:00+08:00",
    "datetime_object_invalid": "时间对象无效",
    "timezone_aware": "时间须带时区偏移，如 +08:00",
    "timezone_naive": "时间不能带时区偏移",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多允许 {max_length} 项",
    "list_type": "应为数组",
    "tuple_type": "应为数组",
    "set_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dataclass_type": "应为对象",
    "json_invalid": "不是有效的 JSON：{error}",
    "json_type": "应为 JSON 字符串",
    "union_tag_invalid": "区分字段 {discriminator} 的取值 {tag} 无效，应为以下之一：{expected_tags}",
    "union_tag_not_found": "缺少区分字段 {discriminator}",
    "url_type": "应为网址字符串",
    "url_parsing": "网址无效：{error}",
    "url_scheme": "网址协议应为 {expected_schemes}",
    "none_required": "应为 null",
    "frozen_instance": "对象不可修改",
    "frozen_field": "字段不可修改",
    "value_error": "取值无效：{error}",
    "assertion_error": "校验未通过：{error}",
    "is_instance_of": "类型不符，应为 {class}",
}

# Plain-language names of Python input kinds, for the *_type errors.
_INPUT_KINDS: dict[type, tuple[str, str]] = {
    bool: ("a boolean", "布尔值"),
    int: ("an integer", "整数"),
    float: ("a floating-point number", "浮点数"),
    list: ("an array", "数组"),
    dict: ("an object", "对象"),
    type(None): ("null", "null"),
}


def input_kind(value: Any) -> tuple[str, str]:
    """(English, Chinese) words for what a wrong-typed input was, e.g. ("an integer", "整数")."""
    kind = _INPUT_KINDS.get(type(value))
    return kind if kind else (f"a {type(value).__name__}", f"{type(value).__name__} 类型的值")


def contract_error(error_type: str, **ctx: Any) -> PydanticCustomError:
    """A PydanticCustomError of one of the contract's own types, English text from EN_MESSAGES."""
    if "input" in ctx:
        # *_type errors describe what the caller sent instead of a string.
        english, chinese = input_kind(ctx.pop("input"))
        ctx.setdefault("input_kind", english)
        ctx.setdefault("input_kind_zh", chinese)
    return PydanticCustomError(error_type, _render(EN_MESSAGES[error_type], ctx), ctx)


class _Lenient(string.Formatter):
    """str.format that leaves an unknown placeholder visible instead of failing."""

    def get_value(self, key: Any, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)


_FORMATTER = _Lenient()


def _render(template: str, ctx: dict[str, Any] | None) -> str:
    try:
        return _FORMATTER.format(template, **(ctx or {}))
    except (ValueError, IndexError, KeyError, AttributeError):
        return template


def message_zh(error: dict[str, Any]) -> str:
    """The Chinese message of one entry of ValidationError.errors()."""
    template = ZH_MESSAGES.get(error["type"])
    if template is None:
        return f"输入无效：{error.get('msg', '')}"
    return _render(template, error.get("ctx"))


def field_path(loc: tuple[Any, ...]) -> str:
    """("applicants", 0, "id_no") -> "applicants.0.id_no"; "" for the whole object."""
    return ".".join(str(part) for part in loc)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Field-level errors for an HTTP 422 answer, in English and Chinese.

    e.g. [{"field": "applicants.0.id_no", "type": "party_id_kind",
           "message": "...", "message_zh": "..."}]
    """
    return [
        {
            "field": field_path(tuple(err["loc"])),
            "type": err["type"],
            "message": err["msg"],
            "message_zh": message_zh(err),
        }
        for err in exc.errors(include_url=False)
    ]
