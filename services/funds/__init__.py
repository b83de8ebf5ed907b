"""funds (port 8005): 一案一账户 case-fund supervision, rules.md §3.

Seed article 15 (执行款物管理: real-time supervision of receipts and payouts of the
"one case, one account" system; anomalies reported to the bureau chief 执行局局长).
A per-case ledger (案款台账) built from `ecc.funds.events`, with parties and closures
from `ecc.case.events`, teams from `ecc.triage.decisions` and event time from
`ecc.clock`; anomaly and deadline alerts (不明款, 认领期限, 超期未发放, 发放对象非当事人,
超额发放, 结案仍有余额) on `ecc.alerts` through the shared deadline book.
"""
