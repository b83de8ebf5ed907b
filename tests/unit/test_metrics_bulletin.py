"""The bulletin (通报, seed art. 26) rendered from the hand-worked April of test_metrics_indicators."""
from __future__ import annotations

import re
from datetime import date

from services.metrics.bulletin import gather, grouped_bars, rate_chart, render
from tests.unit.test_metrics_indicators import POLICY, Metrics, april_2025, day_ticks, raised


async def test_bulletin_shows_indicators_against_targets_and_team_workload_and_alerts():
    m = Metrics()
    await m.in_batches(april_2025() + day_ticks("2025-04-01", "2025-05-01"))
    await m.run(raised("node.notice.overdue:（2025）豫0481执9101号", "node.notice", "quick"))
    data = await gather(m.store, POLICY, "2025-04", date(2025, 4, 30))
    page = render(POLICY, "2025-04", date(2025, 4, 30), data)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert "执行质效通报（2025年4月）" in page and "截至2025-04-30" in page
    for indicator in POLICY.indicators:
        assert indicator.name_zh in page
    assert "66.67%" in page and "94.2天" in page      # closure_rate, avg_days_to_close (court)
    assert "6 / 9" in page                            # closure_rate numerator / denominator
    assert "未达标" in page                           # zb_qualified_rate 50% < 90%
    assert page.count("<svg") == 3 and "<script" not in page
    # team workload: quick had 2 open at the start, 2 filed, 1 closed; fine 3, 2, 5
    assert re.search(r"<td>quick</td><td class=\"num\">2</td><td class=\"num\">2</td><td class=\"num\">1</td>", page)
    assert re.search(r"<td>fine</td><td class=\"num\">3</td><td class=\"num\">2</td><td class=\"num\">5</td>", page)
    assert "node.notice" in page and "逾期" in page


def test_charts_escape_text_and_show_missing_values():
    svg = rate_chart([("<b>结案率</b>", None, 0.9, "higher"), ("终本率", 0.3, None, "lower")], "标题&")
    assert "&lt;b&gt;" in svg and "标题&amp;" in svg and "无数据（分母为0）" in svg
    assert "暂无数据" in grouped_bars([], [], "空")
