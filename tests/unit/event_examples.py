"""One valid `data` example per contract event type, as json.loads would give it.

The ids are real-shaped: resident IDs and USCCs carry valid check digits.
test_events.py checks that this covers exactly the registry's types.
"""
from __future__ import annotations

from typing import Any

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check_digit(first_17: str) -> str:
    """A resident ID from its first 17 digits: ISO 7064 MOD 11-2, computed here independently
    of stdnum so the tests do not check stdnum against itself."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS, strict=True))
    return first_17 + "10X98765432"[total % 11]


CASE_NO = "（2021）豫0481执123号"
PERSON_ID = "410481198503121238"      # 公民身份号码, check digit 8
PERSON_ID_X = "11010519491231002X"    # check digit X
ORG_USCC = "91410481MA3X5B7Q2Y"       # 统一社会信用代码

EVENT_EXAMPLES: dict[str, dict[str, Any]] = {
    "case.filed": {
        "case_no": CASE_NO,
        "case_type": "执",
        "court_code": "豫0481",
        "filed_on": "2021-03-01",
        "target_amount": "125000.50",
        "applicants": [
            {"name": "张三", "kind": "person", "id_no": PERSON_ID, "phone": "13812345678"},
        ],
        "respondents": [
            {"name": "舞钢市某建材有限公司", "kind": "org", "id_no": ORG_USCC, "phone": "0375-8123456"},
            {"name": "李四", "kind": "person", "id_no": PERSON_ID_X},
        ],
        "basis": {"doc_no": "（2020）豫0481民初456号", "issuing_court": "舞钢市人民法院", "kind": "judgment"},
        "handler": "h-017",
    },
    "node.completed": {
        "node": "property_controlled", "done_at": "2021-03-20T10:00:00+08:00", "by": "h-017",
        "ref": "A-1", "asset_kind": "real_estate", "note": "查封房产一处",
    },
    "property.inquiry.result": {
        "channel": "network", "returned_at": "2021-03-05T16:20:00+08:00",
        "assets": [
            {"ref": "A-1", "kind": "real_estate", "value": "800000.00", "controllable": True},
            {"ref": "D-1", "kind": "deposit", "value": "1520.35", "controllable": True},
        ],
    },
    "property.clue.registered": {
        "clue_id": "C-1", "kind": "vehicle", "description": "被执行人名下车辆豫D12345",
        "reported_by": "applicant", "reported_at": "2021-03-10T09:00:00+08:00",
    },
    "case.term_extended": {"new_deadline": "2021-12-31", "approved_by": "院长王五"},
    "case.closure_proposed": {"mode": "terminated_current", "proposed_on": "2021-07-01", "by": "h-017"},
    "case.closed": {"mode": "performed", "closed_on": "2021-08-15", "amount_recovered": "125000.50"},
    "case.resumed": {"new_case_no": "（2022）豫0481执恢8号", "resumed_on": "2022-02-10"},
    "funds.received": {
        "receipt_id": "R-2021-0001", "case_no": CASE_NO, "amount": "50000.00",
        "payer_name": "李四", "received_at": "2021-04-01T11:00:00+08:00",
    },
    "funds.disbursed": {
        "payout_id": "P-2021-0001", "case_no": CASE_NO, "amount": "50000.00", "payee_name": "张三",
        "payee_id_no": PERSON_ID, "approved_by": "局长赵六", "disbursed_at": "2021-04-20T15:00:00+08:00",
    },
    "funds.matched": {"receipt_id": "R-2021-0002", "case_no": CASE_NO, "matched_at": "2021-04-03T09:00:00+08:00"},
    "funds.delay_approved": {
        "case_no": CASE_NO, "until": "2021-06-30", "reason": "案外人提出异议", "approved_by": "局长赵六",
    },
    "entrust.sent": {
        "entrust_id": "E-1", "case_no": CASE_NO, "counterpart_court": "广州市天河区人民法院",
        "matter": "查询被执行人房产", "at": "2021-04-02T10:00:00+08:00", "due_on": "2021-05-02",
    },
    "entrust.received": {
        "entrust_id": "E-2", "case_no": "（2021）粤0106执88号", "counterpart_court": "广州市天河区人民法院",
        "matter": "送达执行通知书", "at": "2021-04-02T10:00:00+08:00",
    },
    "entrust.supplement_requested": {"entrust_id": "E-2", "at": "2021-04-05T10:00:00+08:00", "note": "缺少生效法律文书"},
    "entrust.returned": {"entrust_id": "E-2", "at": "2021-05-06T10:00:00+08:00"},
    "entrust.replied": {"entrust_id": "E-1", "at": "2021-04-20T10:00:00+08:00", "note": "已查询，无房产"},
    "entrust.completed": {"entrust_id": "E-1", "at": "2021-04-21T10:00:00+08:00"},
    "supervision.issued": {
        "item_id": "S-1", "case_no": CASE_NO, "level": "high", "to_team": "fine",
        "issued_at": "2021-05-01T09:00:00+08:00", "due_on": "2021-05-15",
    },
    "supervision.replied": {"item_id": "S-1", "replied_at": "2021-05-10T17:00:00+08:00", "by": "h-017"},
    "sentiment.registered": {
        "item_id": "Y-1", "captured_at": "2021-06-01T08:30:00+08:00", "channel": "微博",
        "title": "当事人反映执行拖延", "text": "（2021）豫0481执123号 申请人称执行拖延。",
        "url": "https://weibo.example/p/1", "case_no": CASE_NO,
    },
    "sentiment.approved": {"item_id": "Y-1", "at": "2021-06-01T10:00:00+08:00", "by": "局长赵六"},
    "sentiment.transferred": {
        "item_id": "Y-1", "at": "2021-06-01T10:30:00+08:00", "by": "指挥中心", "to_team": "fine",
    },
    "sentiment.resolved": {"item_id": "Y-1", "at": "2021-06-03T10:00:00+08:00", "by": "h-017", "note": "已回复"},
    "clock.tick": {"now": "2021-06-03T10:01:00+08:00"},
    "triage.decided": {
        "case_no": CASE_NO, "track": "complex", "reasons": ["needs_disposal", "partial_property"],
        "team": "fine", "decided_at": "2021-03-05T16:20:00+08:00", "revision": 1,
        "policy_version": "2021.1",
    },
    "termination.reviewed": {
        "case_no": CASE_NO, "stage": "proposed", "passed": False,
        "missing": ["traditional_inquiry", "min_duration"],
    },
    "termination.restore_suggested": {
        "case_no": CASE_NO, "trigger": "flow:evt-9876", "reason": "平台批量查询发现可控制财产",
    },
    "metrics.snapshot": {
        "scope": "court:豫0481", "period": "2021-06", "as_of": "2021-06-30",
        "indicators": {"closure_rate": 0.4567, "recovery_rate": 0.8, "zb_qualified_rate": None},
        "counts": {
            "closure_rate": {"numerator": 137, "denominator": 300},
            "recovery_rate": {"numerator": "400000.00", "denominator": "500000.00"},
            "zb_qualified_rate": {"numerator": 0, "denominator": 0},
        },
    },
    "alert.raised": {
        "alert_id": f"node.notice.overdue:{CASE_NO}", "rule": "node.notice", "severity": "critical",
        "case_no": CASE_NO, "team": "fine", "due_at": "2021-03-11T23:59:59+08:00",
        "raised_at": "2021-03-12T00:00:00+08:00", "summary": "执行通知书逾期未送达",
        "details": {"trigger": "case.filed", "days": 10},
    },
    "alert.resolved": {
        "alert_id": f"node.notice.overdue:{CASE_NO}", "resolved_at": "2021-03-13T09:00:00+08:00",
        "reason": "notice_served",
    },
}
