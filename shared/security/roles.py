"""Roles (who) and permissions (which endpoint family) — names only.

Which role holds which permission is data: rules/access.yaml, loaded by
shared.security.access. Values are the strings tokens and the YAML carry.
"""
from __future__ import annotations

from enum import StrEnum


class _Named(StrEnum):
    """A StrEnum whose members also carry a Chinese name (`.zh`)."""

    zh: str

    def __new__(cls, value: str, zh: str) -> "_Named":
        member = str.__new__(cls, value)
        member._value_ = value
        member.zh = zh
        return member


class Role(_Named):
    WINDOW_CLERK = "window_clerk", "窗口立案人员"
    CASE_HANDLER = "case_handler", "承办人/执行团队"
    OPERATOR = "operator", "指挥中心值班/操作员"
    FUND_MANAGER = "fund_manager", "案款管理员"
    BUREAU_CHIEF = "bureau_chief", "执行局长"
    TECHNICIAN = "technician", "技术人员"
    DOWNSTREAM = "downstream", "下游系统"
    MONITORING = "monitoring", "监控系统(Alertmanager)"


class Permission(_Named):
    """One family of endpoints; a route declares the one it belongs to."""

    CASE_WRITE = "case_write", "立案登记 (POST /cases)"
    CASE_EVENTS_WRITE = "case_events_write", "案件节点事件 (POST /cases/{case_no}/events)"
    CASE_READ = "case_read", "查看案件"
    CASE_READ_PERSONAL = "case_read_personal", "查看未脱敏身份证号/手机号"
    TRIAGE_READ = "triage_read", "查看繁简分流结果"
    DEADLINES_READ = "deadlines_read", "查看节点期限"
    ALERTS_READ = "alerts_read", "查看预警"
    FUNDS_READ = "funds_read", "查看案款"
    FUNDS_WRITE = "funds_write", "登记案款收发"
    FUNDS_APPROVE = "funds_approve", "审批案款延期发放"
    ENTRUST_READ = "entrust_read", "查看委托/督办事项"
    ENTRUST_WRITE = "entrust_write", "办理委托/督办事项"
    SENTIMENT_READ = "sentiment_read", "查看舆情"
    SENTIMENT_WRITE = "sentiment_write", "登记处置舆情"
    SENTIMENT_APPROVE = "sentiment_approve", "舆情审签"
    TERMINATION_READ = "termination_read", "查看终本审查"
    TERMINATION_WRITE = "termination_write", "终本审查/恢复执行处理"
    METRICS_READ = "metrics_read", "查看质效指标"
    ONCALL_READ = "oncall_read", "查看值班与告警分派"
    ONCALL_ACK = "oncall_ack", "确认告警"
    ONCALL_ADMIN = "oncall_admin", "维护值班表"
    ONCALL_INGEST = "oncall_ingest", "推送基础设施告警 (POST /alertmanager/webhook)"
    PIPELINE_READ = "pipeline_read", "查看数据管道(死信等)"
