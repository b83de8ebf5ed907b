"""Grafana dashboards as code (grafana-foundation-sdk==0.0.21), generated into deploy/grafana/dashboards/.

    python -m tools.dashboards            # write the JSON files
    python -m tools.dashboards --check    # exit 1 when a file differs from what the code generates

Both refuse dashboards that do not validate against Grafana's published dashboard JSON schema
(deploy/vendor/grafana-schema/, provenance in its README).

Three dashboards (issue 8), every query on the Prometheus datasource uid `ecc-prometheus`
(deploy/grafana/provisioning):
1. ecc-overview   指挥中心总览: open cases, new filings, overdue by rule, alerts by severity, funds;
2. ecc-indicators 质效指标: the indicators of rules/indicators.yaml against their targets, per team;
3. ecc-pipeline   数据管道健康: consumer lag, events/s, dead letters, handler latency, watermark lag.
No query selects by case (no metric carries a case label).
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode, LegendDisplayMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableRefresh

from shared.config import PROJECT_ROOT

OUT_DIR = PROJECT_ROOT / "deploy" / "grafana" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="ecc-prometheus")
INDICATORS_FILE = PROJECT_ROOT / "rules" / "indicators.yaml"
SCHEMA_FILE = PROJECT_ROOT / "deploy" / "vendor" / "grafana-schema" / "dashboard.jsonschema.json"
WIDTH = 24


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if instant:
        q = q.instant()
    return q


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def legend() -> common.VizLegendOptions:
    return common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement("bottom").show_legend(True)


def ts(title: str, *targets: prometheus.Dataquery, unit: str = "short", height: int = 8, span: int = 12,
       description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit).height(height).span(span) \
        .legend(legend()).fill_opacity(10).line_width(1)
    if description:
        panel = panel.description(description)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def big(title: str, expr: str, unit: str = "short", steps=((None, "green"),), span: int = 6,
        description: str = "") -> stat.Panel:
    panel = stat.Panel().title(title).datasource(DATASOURCE).unit(unit).height(5).span(span) \
        .with_target(query(expr, instant=True)).graph_mode(BigValueGraphMode.AREA) \
        .color_mode(BigValueColorMode.VALUE).thresholds(thresholds(*steps))
    if description:
        panel = panel.description(description)
    return panel


def bars(title: str, expr: str, legend_format: str, unit: str = "short", span: int = 12, height: int = 8,
         steps=((None, "blue"),), maximum: float | None = None, description: str = "") -> bargauge.Panel:
    panel = bargauge.Panel().title(title).datasource(DATASOURCE).unit(unit).height(height).span(span) \
        .with_target(query(expr, legend_format, instant=True)).thresholds(thresholds(*steps)) \
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if maximum is not None:
        panel = panel.min(0).max(maximum)
    if description:
        panel = panel.description(description)
    return panel


def base(uid: str, title: str, tags: list[str], description: str) -> dashboard.Dashboard:
    return dashboard.Dashboard(title).uid(uid).tags(["ecc", *tags]).description(description) \
        .timezone("Asia/Shanghai").refresh("1m").time("now-24h", "now").editable()


# -- 1. overview ------------------------------------------------------------------------------------


def overview() -> dashboard.Dashboard:
    d = base("ecc-overview", "ECC 指挥中心总览", ["overview"],
             "执行指挥中心总览: open cases, new filings, overdue alerts by rule, alerts by severity, case funds.")
    d = d.with_row(dashboard.Row("案件 Cases"))
    d = d.with_panel(big("未结案件 Open cases", "sum(ecc_cases_open)",
                         description="Filed and not closed, every case type (metrics service)."))
    d = d.with_panel(big("今日新收 Filed (24h)", "sum(increase(ecc_cases_filed_total[1d]))"))
    d = d.with_panel(big("逾期告警 Overdue alerts", 'sum(ecc_alerts_open{kind="overdue"})',
                         steps=((None, "green"), (1, "orange"), (20, "red"))))
    d = d.with_panel(big("临期预警 Due soon", 'sum(ecc_alerts_open{kind="due_soon"})',
                         steps=((None, "green"), (1, "yellow"))))
    d = d.with_panel(ts("未结案件（类型） Open cases by type", query("sum by (case_type) (ecc_cases_open)",
                                                                "{{case_type}}")))
    d = d.with_panel(bars("未结案件（团队） Open cases by team", "sum by (team) (ecc_cases_open)", "{{team}}"))
    d = d.with_panel(ts("新收案件 New filings per hour",
                        query("sum by (case_type) (increase(ecc_cases_filed_total[1h]))", "{{case_type}}")))
    d = d.with_row(dashboard.Row("预警 Alerts"))
    d = d.with_panel(bars("逾期（规则） Overdue by rule", 'sum by (rule) (ecc_alerts_open{kind="overdue"})', "{{rule}}",
                          steps=((None, "orange"), (10, "red"))))
    d = d.with_panel(bars("逾期（团队） Overdue by team", 'sum by (team) (ecc_alerts_open{kind="overdue"})', "{{team}}",
                          steps=((None, "orange"), (10, "red"))))
    d = d.with_panel(ts("告警（级别） Alerts raised by severity",
                        query("sum by (severity) (increase(ecc_alerts_raised_total[1h]))", "{{severity}}"),
                        description="Per hour; counts handler runs (a re-run batch counts twice)."))
    d = d.with_panel(ts("未解除告警（类别） Open alerts by kind",
                        query("sum by (kind) (ecc_alerts_open)", "{{kind}}")))
    d = d.with_row(dashboard.Row("案款 Case funds"))
    d = d.with_panel(big("在账案款 Funds held", "sum(ecc_funds_balance_held_yuan)", unit="currencyCNY", span=8))
    d = d.with_panel(big("超期未发放 Overdue payouts", "sum(ecc_funds_overdue_pending_yuan)", unit="currencyCNY",
                         steps=((None, "green"), (0.01, "red")), span=8))
    d = d.with_panel(big("不明款 Unidentified deposits", "sum(ecc_funds_unidentified_yuan)", unit="currencyCNY",
                         steps=((None, "green"), (0.01, "orange")), span=8))
    return d


# -- 2. indicators ------------------------------------------------------------------------------------


def _indicators() -> list[dict[str, Any]]:
    import yaml
    return yaml.safe_load(INDICATORS_FILE.read_text(encoding="utf-8"))["indicators"]


def indicators() -> dashboard.Dashboard:
    d = base("ecc-indicators", "ECC 质效指标", ["indicators"],
             "质效指标 of rules/indicators.yaml, month to date as of the last completed day, against their targets.")
    d = d.with_variable(dashboard.QueryVariable("scope").label("范围 Scope").datasource(DATASOURCE)
                        .query("label_values(ecc_indicator, scope)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                        .multi(True).include_all(True))
    d = d.with_row(dashboard.Row("本月 Month to date"))
    d = d.with_panel(bars("质效指标（本月） Indicators", 'ecc_indicator{scope=~"$scope",indicator!="avg_days_to_close"}',
                          "{{scope}} {{indicator}}", unit="percentunit", maximum=1, span=12, height=10,
                          steps=((None, "red"), (0.6, "orange"), (0.9, "green"))))
    d = d.with_panel(bars("质效指标（本年累计） Year to date",
                          'ecc_indicator_ytd{scope=~"$scope",indicator!="avg_days_to_close"}',
                          "{{scope}} {{indicator}}", unit="percentunit", maximum=1, span=12, height=10,
                          steps=((None, "red"), (0.6, "orange"), (0.9, "green"))))
    d = d.with_row(dashboard.Row("目标与团队 Targets and teams"))
    for item in _indicators():
        ident, name = item["id"], item["name_zh"]
        if item.get("kind") == "mean":
            d = d.with_panel(ts(f"{name}（各团队） {ident}",
                                query(f'ecc_indicator{{indicator="{ident}",scope=~"team:.*"}}', "{{scope}}"),
                                query(f'ecc_indicator{{indicator="{ident}",scope=~"court:.*"}}', "{{scope}}", "B"),
                                unit="d", span=8))
            continue
        targets = [query(f'ecc_indicator{{indicator="{ident}",scope=~"team:.*"}}', "{{scope}}"),
                   query(f'ecc_indicator{{indicator="{ident}",scope=~"court:.*"}}', "{{scope}}", "B")]
        if item.get("target") is not None:
            targets.append(query(f'ecc_indicator_target{{indicator="{ident}"}}', "目标 target", "C"))
        better = "越低越好" if item.get("direction") == "lower" else "越高越好"
        d = d.with_panel(ts(f"{name}（各团队） {ident}", *targets, unit="percentunit", span=8,
                            description=f"{item['name_en']}; {better}; source: {item['source']}"))
    return d


# -- 3. pipeline -----------------------------------------------------------------------------------------


def pipeline() -> dashboard.Dashboard:
    d = base("ecc-pipeline", "ECC 数据管道健康", ["pipeline"],
             "Pipeline health: consumer lag, events/s, dead letters, handler latency, watermark lag, outbox.")
    d = d.with_panel(big("未就绪服务 Services not ready", "count(ecc_ready == 0) or vector(0)",
                         steps=((None, "green"), (1, "red"))))
    d = d.with_panel(big("消费积压 Consumer lag", "sum(ecc_consumer_lag)", steps=((None, "green"), (1000, "orange"))))
    d = d.with_panel(big("死信（1小时） Dead letters (1h)", "sum(increase(ecc_events_deadlettered_total[1h]))",
                         steps=((None, "green"), (1, "red"))))
    d = d.with_panel(big("待发出站 Outbox pending", "sum(ecc_outbox_pending)", steps=((None, "green"), (100, "orange"))))
    d = d.with_panel(ts("消费积压 Consumer lag by service", query("sum by (service) (ecc_consumer_lag)", "{{service}}")))
    d = d.with_panel(ts("处理速率 Events/s consumed",
                        query("sum by (service) (rate(ecc_events_consumed_total[1m]))", "{{service}}"), unit="ops"))
    d = d.with_panel(ts("发布速率 Events/s produced",
                        query("sum by (topic) (rate(ecc_events_produced_total[1m]))", "{{topic}}"), unit="ops"))
    d = d.with_panel(ts("死信 Dead letters",
                        query("sum by (service, topic) (increase(ecc_events_deadlettered_total[5m]))",
                              "{{service}} {{topic}}")))
    d = d.with_panel(ts("处理耗时 p95 Handler latency",
                        query("histogram_quantile(0.95, sum by (service, le) (rate(ecc_handler_seconds_bucket[5m])))",
                              "{{service}}"), unit="s"))
    d = d.with_panel(ts("批次耗时 p95 Batch latency",
                        query("histogram_quantile(0.95, sum by (service, le) (rate(ecc_batch_seconds_bucket[5m])))",
                              "{{service}}"), unit="s"))
    d = d.with_panel(ts("水位滞后 Watermark lag", query("time() - ecc_watermark_timestamp_seconds", "{{service}}"),
                        unit="s", description="Wall time minus each service's clock watermark (event time)."))
    d = d.with_panel(ts("期限评估滞后 Deadline evaluation lag",
                        query("ecc_deadline_evaluation_lag_seconds", "{{service}}"), unit="s"))
    d = d.with_panel(ts("错误 Recovered errors", query("sum by (service, kind) (rate(ecc_errors_total[5m]))",
                                                     "{{service}} {{kind}}"), unit="ops"))
    d = d.with_panel(ts("重复丢弃 Duplicates dropped",
                        query("sum by (service) (rate(ecc_events_duplicate_total[5m]))", "{{service}}"), unit="ops"))
    return d


DASHBOARDS = {"ecc-overview": overview, "ecc-indicators": indicators, "ecc-pipeline": pipeline}


def build_all() -> dict[str, dict[str, Any]]:
    """name → dashboard JSON (as Grafana reads it from a provisioned file), panels numbered 1..n."""
    encoder = JSONEncoder(sort_keys=True, indent=2)
    out = {}
    for name, make in DASHBOARDS.items():
        doc = json.loads(encoder.encode(make().build()))
        for number, panel in enumerate(doc.get("panels", []), start=1):
            panel["id"] = number  # stable ids: links and provisioning diffs stay put
        out[name] = doc
    return out


@functools.cache
def _validator() -> Any:
    import jsonschema  # the deploy/test extras; only the generator and its tests need it

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Where `doc` breaks Grafana's dashboard JSON schema ("path: message"), empty when it is valid."""
    validator = _validator()
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a generated file is out of date")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    docs = build_all()
    invalid = [f"{name}: {error}" for name, doc in docs.items() for error in schema_errors(doc)]
    if invalid:  # nothing is written: a file Grafana would reject never reaches deploy/
        print("not valid against Grafana's dashboard schema:\n  " + "\n  ".join(invalid), file=sys.stderr)
        return 1
    stale = []
    for name, doc in docs.items():
        path = args.out / f"{name}.json"
        text = render(doc)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python -m tools.dashboards): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
