"""termination (port 8008): 终本审查与动态管理, review and re-check of 终结本次执行程序 (terminated_current)
closures, rules.md §5.

Seed articles 14 (终本案件动态管理: review before 终本, re-check of terminated cases when the
platform's bulk query finds property, restore enforcement 恢复执行) and 17 (结案审核, stricter
for 终本). Reviews the checklist at the closure proposal (stage `proposed`) and at the closure
(stage `closed`), publishes `termination.reviewed` and `termination.restore_suggested` on
`ecc.termination.events`, and raises `termination.unqualified`, `termination.property_found` and
the six-monthly `termination.recheck` deadline alerts on `ecc.alerts` (shared/deadline_book.py).
"""
