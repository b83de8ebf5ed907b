"""The Grafana dashboards (tools/dashboards.py → deploy/grafana/dashboards/*.json).

- the checked-in files are what the code generates (no hand edits, no drift);
- each validates against Grafana's published dashboard JSON schema (deploy/vendor/grafana-schema/),
  a dashboard broken in any of several ways does not, and the vendored schema describes the same
  fields and enums as the SDK model the generator uses (an SDK upgrade that outgrows it fails here);
- each decodes into grafana-foundation-sdk's generated Dashboard model and encodes back to the
  same JSON (no field the model does not know, every panel type known to the SDK);
- layout and datasource: unique panel ids, 24-column grid, every query on `ecc-prometheus`;
- every query is valid PromQL (promtool) and names only metrics the code base declares, and no
  query selects by case.
"""
from __future__ import annotations

import copy
import enum
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytest.importorskip("grafana_foundation_sdk", reason="grafana-foundation-sdk==0.0.21 not installed")

from tools.dashboards import OUT_DIR, SCHEMA_FILE, build_all, render, schema_errors  # noqa: E402

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
def test_each_checked_in_dashboard_validates_against_grafanas_schema(name):
    import jsonschema

    jsonschema.Draft7Validator.check_schema(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    doc = json.loads((OUT_DIR / f"{name}.json").read_text(encoding="utf-8"))  # the file Grafana reads
    assert schema_errors(doc) == []


def _break(doc: dict, how: str) -> str:
    """Damage a copy of a real dashboard in one way; return the path the schema must point at."""
    panels = doc["panels"]
    row = next(p for p in panels if p["type"] == "row")
    panel = next(p for p in panels if p["type"] != "row")
    if how == "no schemaVersion":
        del doc["schemaVersion"]
        return "(root)"
    if how == "legacy rows key":
        doc["rows"] = []
        return "(root)"
    if how == "schemaVersion as text":
        doc["schemaVersion"] = "42"
        return "schemaVersion"
    if how == "panel wider than the grid":
        panel["gridPos"]["w"] = 25
        return f"panels/{panels.index(panel)}"
    if how == "unknown panel field":
        panel["colour"] = "red"
        return f"panels/{panels.index(panel)}"
    if how == "threshold mode":
        panel["fieldConfig"]["defaults"]["thresholds"]["mode"] = "relative"
        return f"panels/{panels.index(panel)}"
    if how == "row without panels":
        del row["panels"]
        return f"panels/{panels.index(row)}"
    if how == "variable type":
        doc["templating"]["list"] = [{"type": "dropdown", "name": "scope"}]
        return "templating/list/0/type"
    if how == "refresh as number":
        doc["refresh"] = 60
        return "refresh"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["no schemaVersion", "legacy rows key", "schemaVersion as text",
                                 "panel wider than the grid", "unknown panel field", "threshold mode",
                                 "row without panels", "variable type", "refresh as number"])
def test_a_broken_dashboard_fails_validation(how):
    doc = copy.deepcopy(DASHBOARDS["ecc-overview"])
    assert schema_errors(doc) == []
    where = _break(doc, how)
    errors = schema_errors(doc)
    assert errors and any(e.startswith(f"{where}:") for e in errors), errors


def test_generator_refuses_to_write_an_invalid_dashboard(tmp_path, monkeypatch):
    import tools.dashboards as gen

    broken = {name: copy.deepcopy(doc) for name, doc in DASHBOARDS.items()}
    del broken["ecc-pipeline"]["schemaVersion"]
    monkeypatch.setattr(gen, "build_all", lambda: broken)
    assert gen.main(["--out", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the valid two


def test_vendored_schema_knows_every_field_and_enum_of_the_sdk_model():
    """The schema file is the one generated beside the pinned SDK: same JSON fields, same enum members."""
    from grafana_foundation_sdk.models import dashboard as model

    definitions = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["definitions"]
    compared = 0
    for name, cls in vars(model).items():
        if not inspect.isclass(cls) or cls.__module__ != model.__name__ or name not in definitions:
            continue
        schema = definitions[name]
        if issubclass(cls, enum.Enum):
            assert sorted(str(m.value) for m in cls) == sorted(str(v) for v in schema["enum"]), name
            compared += 1
        elif hasattr(cls, "to_json") and "properties" in schema:
            written = set(re.findall(r'payload\["([^"]+)"\]', inspect.getsource(cls)))
            assert written <= set(schema["properties"]), (name, written - set(schema["properties"]))
            compared += 1
    assert compared >= 50  # the comparison really ran over the model (53 definitions with 0.0.21)


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
