"""The contract's closed vocabularies (枚举值), as Literal types.

Each one is spelled once here; services compare against these, never against
their own copies. `get_args(NodeCode)` etc. gives the tuple of values.
"""
from __future__ import annotations

from typing import Literal

from shared.contract.casenumber import CaseType
from shared.contract.identity import PartyKind

__all__ = [
    "CaseType", "PartyKind", "BasisKind", "ClosureMode", "NodeCode", "AssetKind",
    "InquiryChannel", "ClueReporter", "SupervisionLevel", "AlertSeverity",
    "TriageTrack", "TriageReason", "ReviewStage", "ChecklistCode",
    "NODE_FIELDS_REQUIRED",
]

BasisKind = Literal["judgment", "mediation", "ruling", "arbitration", "notarial", "other"]
"""执行依据 kind: 判决书 judgment, 调解书 mediation, 裁定书 ruling, 仲裁裁决 arbitration,
公证债权文书 notarial, other."""

ClosureMode = Literal["performed", "terminated_current", "terminated", "rejected", "not_enforced", "withdrawn"]
"""结案方式: 执行完毕 performed, 终结本次执行程序 (终本) terminated_current, 终结执行 terminated,
驳回申请 rejected, 不予执行 not_enforced, 销案 withdrawn."""

NodeCode = Literal[
    "notice_served",                  # 执行通知书送达
    "property_report_order_served",   # 报告财产令送达
    "network_inquiry_launched",       # 发起网络查控
    "traditional_inquiry_done",       # 传统查控完成
    "investigation_completed",        # 财产调查完成
    "clue_verified",                  # 财产线索核查 (ref = clue id)
    "applicant_interviewed",          # 约谈申请执行人
    "respondent_questioned",          # 询问被执行人
    "consumption_restricted",         # 限制消费
    "dishonest_listed",               # 纳入失信名单
    "property_controlled",            # 查封、扣押、冻结 (ref = asset ref, asset_kind)
    "control_renewed",                # 续行查封/冻结 (ref = asset ref)
    "valuation_completed",            # 评估完成
    "auction_listed",                 # 网拍挂拍
    "auction_failed",                 # 流拍
    "disposal_concluded",             # 处置完毕
]
"""流程节点 flow-node codes of rules.md §1."""

# Which optional node.completed fields a node cannot do without (rules.md §1).
NODE_FIELDS_REQUIRED: dict[str, frozenset[str]] = {
    "ref": frozenset({"clue_verified", "property_controlled", "control_renewed"}),
    "asset_kind": frozenset({"property_controlled"}),
}

AssetKind = Literal["deposit", "real_estate", "vehicle", "equity", "securities", "other"]
"""财产类型: 存款 deposit, 不动产 real_estate, 车辆 vehicle, 股权 equity, 证券 securities, other."""

InquiryChannel = Literal["network", "traditional"]
"""查控渠道: 网络查控 network, 传统查控 traditional."""

ClueReporter = Literal["applicant", "platform_bulk_query", "other"]
"""财产线索来源: 申请执行人 applicant, 平台批量查询 platform_bulk_query, other."""

SupervisionLevel = Literal["supreme", "high", "intermediate", "own"]
"""督办层级: 最高法 supreme, 高院 high, 中院 intermediate, 本院 own."""

AlertSeverity = Literal["info", "warning", "critical"]

TriageTrack = Literal["simple", "complex", "preservation"]
"""繁简分流: 简案 simple, 繁案 complex, 保全 preservation."""

TriageReason = Literal[
    "preservation_case", "full_deposit", "needs_disposal", "many_respondents",
    "large_amount", "resumed_case", "no_property", "partial_property",
]
"""Reason codes of the triage table, rules.md §2."""

ReviewStage = Literal["proposed", "closed"]
"""终本审查阶段: at the closure proposal, or at the closure."""

ChecklistCode = Literal[
    "notice", "report_order", "consumption_restricted", "network_inquiry", "traditional_inquiry",
    "clues_verified", "property_disposed", "applicant_interviewed", "min_duration",
]
"""终本 checklist codes of rules.md §5, in the order `missing` lists them."""
