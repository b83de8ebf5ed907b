"""metrics' HTTP API: indicators of a scope and period as of a day (computed from the buckets),
the scopes known, and the periodic bulletin (通报, bulletin.py)."""
from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.metrics.policy import IndicatorPolicy
from services.metrics.rules import Snapshot, compute, last_day, months_needed
from services.metrics.store import MetricsStore
from shared.contract.types import format_money
from shared.deadlines import court_date
from shared.http.errors import ApiError
from shared.security import Permission, Principal, require

PERIOD = re.compile(r"^[0-9]{4}(-(0[1-9]|1[0-2]))?$")
SCOPE = re.compile(r"^(court|team):\S{1,190}$")


def period_bounds(period: str) -> tuple[date, date]:
    if not PERIOD.match(period):
        raise ApiError(422, "period_format", "period must be YYYY-MM or YYYY", "period 应为 YYYY-MM 或 YYYY")
    year = int(period[:4])
    if len(period) == 7:
        month = int(period[5:7])
        return date(year, month, 1), last_day(year, month)
    return date(year, 1, 1), date(year, 12, 31)


async def default_as_of(store: MetricsStore, period: str) -> date:
    """The period's last day, or the last completed day when the watermark is still inside it."""
    start, end = period_bounds(period)
    now = await store.watermark()
    if now is None:
        return end
    yesterday = court_date(now) - timedelta(days=1)
    return max(start, min(end, yesterday))


async def compute_for(store: MetricsStore, policy: IndicatorPolicy, scopes: list[str], period: str,
                      as_of: date) -> dict[str, Snapshot]:
    months = months_needed(period, as_of)
    buckets, flows = await store.buckets_for(scopes, months)
    out = {}
    for scope in scopes:
        docs = [buckets[f"{scope}|{m}"] for m in months if f"{scope}|{m}" in buckets]
        out[scope] = compute(policy, scope, period, as_of, docs, flows.get(f"flow|{scope}"))
    return out


def indicator_rows(policy: IndicatorPolicy, snapshot: Snapshot) -> list[dict[str, Any]]:
    rows = []
    for indicator in policy.indicators:
        value = snapshot.indicators.get(indicator.id)
        counts = snapshot.counts[indicator.id]
        met = None
        if value is not None and indicator.target is not None:
            met = value >= indicator.target if indicator.direction == "higher" else value <= indicator.target
        rows.append({
            "id": indicator.id, "name_zh": indicator.name_zh, "name_en": indicator.name_en, "kind": indicator.kind,
            "value": value, "target": indicator.target, "direction": indicator.direction, "met": met,
            "numerator": counts["numerator"] if isinstance(counts["numerator"], int) else format_money(
                counts["numerator"]),
            "denominator": counts["denominator"] if isinstance(counts["denominator"], int) else format_money(
                counts["denominator"]),
            "source": indicator.source,
        })
    return rows


def build_router(store: MetricsStore, policy: IndicatorPolicy) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get("/indicators", summary="质效指标: the indicators of a scope (court:<code> | team:<team>) and period "
                                       "(YYYY-MM or YYYY) to date, as of a day (default: the last completed day)")
    async def indicators(
        _principal: Annotated[Principal, Depends(require(Permission.METRICS_READ))],
        scope: Annotated[str, Query(max_length=200)],
        period: Annotated[str, Query(max_length=7)],
        as_of: Annotated[date | None, Query()] = None,
    ) -> Any:
        if not SCOPE.match(scope):
            raise ApiError(422, "scope_format", "scope must be court:<code> or team:<team>",
                           "scope 应为 court:<法院代码> 或 team:<团队>")
        start, end = period_bounds(period)
        as_of = as_of or await default_as_of(store, period)
        if not start <= as_of <= end:
            raise ApiError(422, "as_of_outside_period", f"as_of {as_of} is not in {period}",
                           f"as_of {as_of} 不在统计期 {period} 内")
        snapshot = (await compute_for(store, policy, [scope], period, as_of))[scope]
        watermark = await store.watermark()
        return {"scope": scope, "period": period, "as_of": as_of.isoformat(),
                "watermark": watermark.isoformat() if watermark else None,
                "indicators": indicator_rows(policy, snapshot)}

    @router.get("/scopes", summary="The scopes with counted cases (court:<code>, team:<team>)")
    async def scopes(_principal: Annotated[Principal, Depends(require(Permission.METRICS_READ))]) -> Any:
        return {"scopes": await store.scopes()}

    return router
