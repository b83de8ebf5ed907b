"""The Grafana dashboards (tools/dashboards.py → deploy/grafana/dashboards/*.json).

- the checked-in files are what the code generates (no hand edits, no drift);
- each decodes into grafana-foundation-sdk's generated Dashboard model and encodes back to the
  same JSON (no field the model does not know, every panel type known to the SDK);
- layout and datasource: unique panel ids, 24-column grid, every query on `ecc-prometheus`;
- every query is valid PromQL (promtool) and names only metrics the code base declares, and no
  query selects by case.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk==0.0.21 not installed")

from tools.dashboards import OUT_DIR, build_all, render  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = build_all()


def targets(doc: dict) -> list[dict]:
    return [t for p in doc["panels"] for t in p.get("targets", [])]


def declared_metrics() -> set[str]:
    names = set()
    for path in list((ROOT / "shared").rglob("*.py")) + list((ROOT / "services").rglob("*.py")):
        names |= set(re.findall(r'"(ecc_[a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_three_dashboards_are_checked_in_as_generated():
    assert sorted(DASHBOARDS) == ["ecc-indicators", "ecc-overview", "ecc-pipeline"]
    for name, doc in DASHBOARDS.items():
        path = OUT_DIR / f"{name}.json"
        assert path.read_text(encoding="utf-8") == render(doc), f"{path} is stale: run python -m tools.dashboards"
        assert doc["uid"] == name and doc["timezone"] == "Asia/Shanghai"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_each_dashboard_round_trips_through_the_sdk_model(name):
    from grafana_foundation_sdk.cog import plugins
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    plugins.register_default_plugins()
    doc = DASHBOARDS[name]
    assert json.loads(JSONEncoder(sort_keys=True).encode(Dashboard.from_json(doc))) == doc


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_layout_and_datasource(name):
    doc = DASHBOARDS[name]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel["title"] and panel["targets"], panel
            assert panel["datasource"] == {"type": "prometheus", "uid": "ecc-prometheus"}
    for target in targets(doc):
        assert target["datasource"]["uid"] == "ecc-prometheus" and target["expr"]


def test_indicator_dashboard_has_a_panel_per_indicator_with_its_target():
    doc = DASHBOARDS["ecc-indicators"]
    exprs = [t["expr"] for t in targets(doc)]
    indicators = yaml.safe_load((ROOT / "rules" / "indicators.yaml").read_text(encoding="utf-8"))["indicators"]
    for item in indicators:
        assert any(f'indicator="{item["id"]}"' in e for e in exprs), item["id"]
        if item.get("target") is not None:
            assert f'ecc_indicator_target{{indicator="{item["id"]}"}}' in exprs
    assert [v["name"] for v in doc["templating"]["list"]] == ["scope"]


def test_queries_name_declared_metrics_and_never_a_case():
    known = declared_metrics()
    for name, doc in DASHBOARDS.items():
        for target in targets(doc):
            expr = target["expr"]
            assert "case_no" not in expr and "号" not in expr
            for metric in re.findall(r"\b(ecc_[a-z0-9_]+)", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", metric)
                assert metric in known or base in known, f"{name}: {metric} is not declared anywhere"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_every_query_is_valid_promql(tmp_path):
    rules = []
    for name, doc in DASHBOARDS.items():
        for index, target in enumerate(targets(doc)):
            rules.append({"record": f"dashboard:{name.replace('-', '_')}:{index}",
                          "expr": target["expr"].replace("$scope", ".*")})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, allow_unicode=True),
                    encoding="utf-8")
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
