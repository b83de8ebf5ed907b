"""Valid request bodies for intake tests, with real check digits."""
from __future__ import annotations

import copy

from stdnum.cn import uscc

from tests.unit.event_examples import with_check_digit


def resident_id(region: str = "410481", birth: str = "19800101", seq: str = "123") -> str:
    return with_check_digit(region + birth + seq)


def credit_code(body17: str = "91410481MA3X12345") -> str:
    return body17 + uscc.calc_check_digit(body17)


def filing(seq: int = 1, **overrides) -> dict:
    body = {
        "case_no": f"(2025)豫0481执{seq}号",
        "case_type": "执",
        "court_code": "豫0481",
        "filed_on": "2025-03-03",
        "target_amount": "125000.50",
        "applicants": [{"name": "张伟", "kind": "person", "id_no": resident_id(seq=f"{seq % 1000:03d}"),
                        "phone": "13812345678"}],
        "respondents": [{"name": "舞钢市某建材有限公司", "kind": "org", "id_no": credit_code()}],
        "basis": {"doc_no": "（2024）豫0481民初88号", "issuing_court": "舞钢市人民法院", "kind": "judgment"},
    }
    body.update(overrides)
    return copy.deepcopy(body)
