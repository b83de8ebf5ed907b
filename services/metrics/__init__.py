"""metrics (port 8007): 质效指标 quality and efficiency indicators, rules.md §7.

Seed articles 18 (质效监管: 实际执结率、执行完毕率、实际执行到位率、终本率、终本合格率 watched daily),
23-26 (大数据分析, "3+1" core indicators, periodic bulletins 通报 on workload and quality). Computes the
indicators of `rules/indicators.yaml` incrementally from the case, triage and termination streams,
per court and per team, month and year to date; publishes `metrics.snapshot` on
`ecc.metrics.snapshots` whenever the watermark's local day changes; serves them, the case-flow
counts (open cases by type and team) and the open alerts of `ecc.alerts` as Prometheus gauges.
"""
