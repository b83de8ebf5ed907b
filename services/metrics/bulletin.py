"""The periodic bulletin (通报, seed art. 26): `GET /bulletin?period=2025-04`, one HTML page in Chinese.

What it shows, for the period to date (as of its last day, or the last completed day while the
watermark is inside it): the indicators of the court against their targets (month and year to
date), each team's workload (旧存, 新收, 结案, 结案率) and indicators, and the open alerts per team
and rule on ecc.alerts (now, not per period). Charts are inline SVG (no script, no CDN), so the
page prints to PDF from any browser (print styles included) and renders offline.
`format=pdf` / `format=png` answer the same page rendered server-side (export.py).
"""
from __future__ import annotations

from datetime import date
from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from services.metrics.api import compute_for, default_as_of, period_bounds
from services.metrics.export import MEDIA_TYPES, Exporter, ExportSettings, content_disposition
from services.metrics.policy import IndicatorPolicy
from services.metrics.rules import Snapshot, months_needed, open_at_start, totals
from services.metrics.store import MetricsStore
from shared.alerts import court_iso
from shared.security import Permission, Principal, require

FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
COLORS = {"value": "#2b6cb0", "target": "#c53030", "filed": "#2f855a", "closed": "#2b6cb0", "open": "#b7791f",
          "overdue": "#c53030", "due_soon": "#d69e2e", "raised": "#718096"}
KIND_ZH = {"overdue": "逾期", "due_soon": "临期", "raised": "异常"}


def period_zh(period: str) -> str:
    return f"{period[:4]}年{int(period[5:7])}月" if len(period) == 7 else f"{period}年"


def fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}天" if kind == "mean" else f"{value * 100:.2f}%"


# -- SVG -----------------------------------------------------------------------------------------------


def _text(x: float, y: float, text: str, *, size: int = 12, anchor: str = "start", color: str = "#1a202c") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{color}" '
            f'font-family="{FONT}">{escape(text)}</text>')


def rate_chart(rows: list[tuple[str, float | None, float | None, str]], title: str) -> str:
    """Horizontal bars of rates (0..100%) with a red target mark; rows: (label, value, target, direction)."""
    label_w, bar_w, row_h, top = 250, 380, 26, 30
    height = top + row_h * len(rows) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
             f'width="{label_w + bar_w + 90}" height="{height}" viewBox="0 0 {label_w + bar_w + 90} {height}">',
             _text(0, 18, title, size=14)]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + bar_w * tick
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 26}" stroke="#e2e8f0"/>')
        parts.append(_text(x, height - 10, f"{int(tick * 100)}%", size=10, anchor="middle", color="#718096"))
    for i, (label, value, target, direction) in enumerate(rows):
        y = top + i * row_h
        parts.append(_text(label_w - 8, y + 15, label, anchor="end"))
        if value is not None:
            width = bar_w * max(0.0, min(value, 1.0))
            met = target is None or (value >= target if direction == "higher" else value <= target)
            color = COLORS["value"] if met else "#dd6b20"
            parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{width:.1f}" height="{row_h - 10}" fill="{color}">'
                         f'<title>{escape(label)} {value * 100:.2f}%</title></rect>')
            parts.append(_text(label_w + width + 6, y + 15, f"{value * 100:.1f}%", size=11))
        else:
            parts.append(_text(label_w + 6, y + 15, "无数据（分母为0）", size=11, color="#a0aec0"))
        if target is not None:
            x = label_w + bar_w * min(target, 1.0)
            parts.append(f'<line x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + row_h - 3}" '
                         f'stroke="{COLORS["target"]}" stroke-width="2"><title>目标 {target * 100:.0f}%</title></line>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars(categories: list[str], series: list[tuple[str, str, list[float]]], title: str) -> str:
    """Vertical grouped bars: one group per category, one bar per series (name, color, values)."""
    if not categories:
        return f'<p class="empty">{escape(title)}：暂无数据</p>'
    group_w = max(60, 22 * len(series) + 24)
    chart_h, left, top = 180, 40, 46
    width = max(left + group_w * len(categories) + 20, left + 90 * len(series) + 20)
    height = top + chart_h + 60
    peak = max([v for _n, _c, values in series for v in values] + [1])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">', _text(0, 18, title, size=14)]
    base = top + chart_h
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#a0aec0"/>')
    for i, category in enumerate(categories):
        x0 = left + i * group_w + 12
        for j, (name, color, values) in enumerate(series):
            value = values[i]
            h = chart_h * value / peak
            x = x0 + j * 22
            parts.append(f'<rect x="{x}" y="{base - h:.1f}" width="18" height="{h:.1f}" fill="{color}">'
                         f'<title>{escape(category)} {escape(name)} {value:g}</title></rect>')
            parts.append(_text(x + 9, base - h - 3, f"{value:g}", size=10, anchor="middle"))
        parts.append(_text(x0 + 11 * len(series) - 2, base + 16, category, anchor="middle"))
    legend_y = base + 40
    for j, (name, color, _values) in enumerate(series):
        x = left + j * 90
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 16, legend_y, name, size=11))
    parts.append("</svg>")
    return "".join(parts)


# -- data ----------------------------------------------------------------------------------------------


def workload(policy: IndicatorPolicy, buckets: dict[str, dict], flows: dict[str, dict], scope: str, period: str,
             as_of: date) -> dict[str, int]:
    """旧存 / 新收 / 结案 of a scope in the period (执行实施类: every counted case type)."""
    docs = [buckets[f"{scope}|{m}"] for m in months_needed(period, as_of) if f"{scope}|{m}" in buckets]
    sums = totals(docs, as_of)
    opening = open_at_start(flows.get(f"flow|{scope}"), period, as_of)
    types = policy.counted_types
    filed = sum(v for t, v in sums.get("filed", {}).items() if t in types)
    closed = sum(v for t, v in sums.get("closed", {}).items() if t in types)
    start = sum(v for t, v in opening.items() if t in types)
    return {"open_at_start": start, "filed": filed, "closed": closed, "open_at_end": start + filed - closed}


async def gather(store: MetricsStore, policy: IndicatorPolicy, period: str, as_of: date) -> dict[str, Any]:
    scopes = await store.scopes()
    year = period[:4]
    month_snaps = await compute_for(store, policy, scopes, period, as_of)
    year_snaps = await compute_for(store, policy, scopes, year, as_of) if len(period) == 7 else month_snaps
    buckets, flows = await store.buckets_for(scopes, months_needed(period, as_of))
    loads = {s: workload(policy, buckets, flows, s, period, as_of) for s in scopes}
    alerts: dict[str, dict[str, dict[str, int]]] = {}
    open_cases: dict[str, int] = {}
    for doc in await store.gauge_docs():
        labels, n = doc.get("labels") or {}, int(doc.get("n", 0))
        if n <= 0:
            continue
        if doc.get("kind") == "alerts":
            per_rule = alerts.setdefault(labels["team"], {}).setdefault(labels["rule"], {})
            per_rule[labels["kind"]] = per_rule.get(labels["kind"], 0) + n
        elif doc.get("kind") == "open":
            open_cases[labels["team"]] = open_cases.get(labels["team"], 0) + n
    return {"scopes": scopes, "month": month_snaps, "year": year_snaps, "loads": loads, "alerts": alerts,
            "open_cases": open_cases, "watermark": await store.watermark()}


# -- the page ------------------------------------------------------------------------------------------


def _indicator_table(policy: IndicatorPolicy, month: Snapshot, year: Snapshot | None, period: str) -> str:
    head = "<tr><th>指标</th><th>本期</th><th>分子/分母</th>" + ("<th>本年累计</th>" if year else "") + \
        "<th>目标</th><th>达标</th></tr>"
    rows = []
    for ind in policy.indicators:
        value = month.indicators.get(ind.id)
        counts = month.counts[ind.id]
        target = "—" if ind.target is None else (f"{'≥' if ind.direction == 'higher' else '≤'}"
                                                 f"{fmt(ind.target, ind.kind)}")
        met = "—"
        if value is not None and ind.target is not None:
            ok = value >= ind.target if ind.direction == "higher" else value <= ind.target
            met = '<span class="ok">达标</span>' if ok else '<span class="bad">未达标</span>'
        direction = "（越低越好）" if ind.direction == "lower" else ""
        year_cell = f"<td>{fmt(year.indicators.get(ind.id), ind.kind)}</td>" if year else ""
        rows.append(f"<tr><td>{escape(ind.name_zh)}{direction}</td><td class=\"num\">{fmt(value, ind.kind)}</td>"
                    f"<td class=\"num\">{escape(str(counts['numerator']))} / {escape(str(counts['denominator']))}</td>"
                    f"{year_cell}<td class=\"num\">{target}</td><td>{met}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render(policy: IndicatorPolicy, period: str, as_of: date, data: dict[str, Any]) -> str:
    scopes: list[str] = data["scopes"]
    courts = [s for s in scopes if s.startswith("court:")]
    teams = [s for s in scopes if s.startswith("team:")]
    title = f"执行质效通报（{period_zh(period)}）"
    sections = []
    for court in courts:
        month, year = data["month"][court], data["year"][court] if len(period) == 7 else None
        rates = [(i.name_zh, month.indicators.get(i.id), i.target, i.direction)
                 for i in policy.indicators if i.kind == "rate"]
        sections.append(
            f"<section><h2>一、质效指标（{escape(court[6:])}）</h2>"
            f"{_indicator_table(policy, month, year, period)}"
            f"<figure>{rate_chart(rates, f'{period_zh(period)}质效指标与目标（红线为目标值）')}</figure></section>")
    team_names = [t[5:] for t in teams]
    loads = [data["loads"][t] for t in teams]
    rows = []
    for team, load in zip(teams, loads, strict=True):
        snap = data["month"][team]
        rate = snap.indicators.get("closure_rate")
        rows.append(f"<tr><td>{escape(team[5:])}</td><td class=\"num\">{load['open_at_start']}</td>"
                    f"<td class=\"num\">{load['filed']}</td><td class=\"num\">{load['closed']}</td>"
                    f"<td class=\"num\">{load['open_at_end']}</td><td class=\"num\">{fmt(rate, 'rate')}</td>"
                    f"<td class=\"num\">{data['open_cases'].get(team[5:], 0)}</td></tr>")
    chart = grouped_bars(team_names, [("旧存", COLORS["open"], [float(x["open_at_start"]) for x in loads]),
                                      ("新收", COLORS["filed"], [float(x["filed"]) for x in loads]),
                                      ("结案", COLORS["closed"], [float(x["closed"]) for x in loads])],
                         "各团队收结案情况")
    sections.append(
        "<section><h2>二、各团队收结案情况</h2><table><tr><th>团队</th><th>旧存</th><th>新收</th><th>结案</th>"
        "<th>期末未结</th><th>结案率</th><th>当前未结（全部类型）</th></tr>"
        f"{''.join(rows) or '<tr><td colspan=7>暂无数据</td></tr>'}</table><figure>{chart}</figure></section>")
    head = "".join(f"<th>{escape(i.name_zh)}</th>" for i in policy.indicators)
    rows = []
    for team in teams:
        snap = data["month"][team]
        cells = "".join(f"<td class=\"num\">{fmt(snap.indicators.get(i.id), i.kind)}</td>" for i in policy.indicators)
        rows.append(f"<tr><td>{escape(team[5:])}</td>{cells}</tr>")
    sections.append(f"<section><h2>三、各团队质效指标</h2><table class=\"wide\"><tr><th>团队</th>{head}</tr>"
                    f"{''.join(rows) or '<tr><td>暂无数据</td></tr>'}</table></section>")
    alert_rows = []
    alert_teams = sorted(data["alerts"])
    for team in alert_teams:
        for rule, kinds in sorted(data["alerts"][team].items()):
            alert_rows.append(f"<tr><td>{escape(team)}</td><td>{escape(rule)}</td>"
                              + "".join(f"<td class=\"num\">{kinds.get(k, 0)}</td>" for k in KIND_ZH) + "</tr>")
    alert_chart = grouped_bars(alert_teams, [
        (KIND_ZH[k], COLORS[k], [float(sum(r.get(k, 0) for r in data["alerts"][t].values())) for t in alert_teams])
        for k in KIND_ZH], "各团队未解除预警（当前）")
    sections.append(
        "<section><h2>四、流程节点预警与逾期（当前未解除）</h2><table><tr><th>团队</th><th>规则</th>"
        + "".join(f"<th>{v}</th>" for v in KIND_ZH.values()) + "</tr>"
        + ("".join(alert_rows) or "<tr><td colspan=5>无未解除预警</td></tr>") + f"</table><figure>{alert_chart}</figure>"
        "</section>")
    watermark = data["watermark"]
    sources = "".join(f"<li>{escape(i.name_zh)}：{escape(i.source)}</li>" for i in policy.indicators)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: {FONT}; color: #1a202c; margin: 24px auto; max-width: 1080px; padding: 0 16px; }}
h1 {{ font-size: 24px; text-align: center; }} h2 {{ font-size: 18px; border-left: 4px solid #2b6cb0; padding-left: 8px; }}
.meta {{ text-align: center; color: #4a5568; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }} th, td {{ border: 1px solid #cbd5e0; padding: 4px 8px; }}
th {{ background: #edf2f7; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.wide {{ font-size: 12px; }} .ok {{ color: #2f855a; }} .bad {{ color: #c53030; font-weight: bold; }}
figure {{ margin: 8px 0; }} .empty {{ color: #a0aec0; }} footer {{ color: #718096; font-size: 12px; }}
@page {{ size: A4; margin: 12mm; }}
@media print {{ body {{ margin: 0; max-width: none; }} section {{ page-break-inside: avoid; }} }}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="meta">统计期：{escape(period_zh(period))}（截至{as_of.isoformat()}）；数据水位：{escape(court_iso(watermark) if watermark else "—")}</p>
{''.join(sections)}
<footer><p>口径：执行实施类案件（执、执恢）；案件按结案日期（结案类）或立案日期（收案类）归属统计期；分母为0的指标不计算（—）。
预警为 ecc.alerts 上当前未解除的告警。依据《执行指挥中心实体化运行工作实施细则》第二十六条定期通报。</p>
<ul>{sources}</ul></footer>
</body></html>"""


def build_router(store: MetricsStore, policy: IndicatorPolicy, exporter: Exporter | None = None) -> APIRouter:
    router = APIRouter(tags=["metrics"])
    exporter = exporter or Exporter(ExportSettings.from_env())

    @router.get("/bulletin", response_class=HTMLResponse,
                responses={200: {"content": {"application/pdf": {}, "image/png": {}}},
                           503: {"description": "format=pdf/png without a usable headless Chromium"}},
                summary="通报: the periodic bulletin for a month or year: HTML (Chinese, inline SVG charts), "
                        "or the same page as PDF / PNG (format=pdf|png, rendered by headless Chromium)")
    async def bulletin(
        _principal: Annotated[Principal, Depends(require(Permission.METRICS_READ))],
        period: Annotated[str, Query(max_length=7)],
        as_of: Annotated[date | None, Query()] = None,
        fmt: Annotated[Literal["html", "pdf", "png"], Query(alias="format")] = "html",
    ) -> Response:
        start, end = period_bounds(period)
        as_of = as_of if as_of is not None and start <= as_of <= end else await default_as_of(store, period)
        data = await gather(store, policy, period, as_of)
        page = render(policy, period, as_of, data)
        if fmt == "html":
            return HTMLResponse(page)
        content = await exporter.export(page, fmt)
        return Response(content, media_type=MEDIA_TYPES[fmt],
                        headers={"Content-Disposition": content_disposition(period, fmt)})

    return router
