"""Alert rules and Alertmanager routing (issue 6): promtool/amtool offline, and how compose and the
Kubernetes base carry them. The tools come from Debian's `prometheus` and `prometheus-alertmanager`
packages (.ci/run installs them)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shared.config import SERVICE_PORTS
from tests.deploy.conftest import DEPLOY, ROOT, by_kind, run
from tests.deploy.test_monitoring import debian_tool

RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
TOKEN_FILE = "/etc/alertmanager/secrets/oncall-token"
CJK = re.compile(r"[\u4e00-\u9fff]")


def alert_rules() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"] if "alert" in rule]


def doc_anchors() -> set[str]:
    """GitHub-style anchors of the headings in docs/alerts.md."""
    anchors = set()
    for line in ALERTS_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


# ---------------------------------------------------------------- rules

def test_rules_pass_promtool_check():
    promtool = debian_tool("promtool", "prometheus")
    assert RULES, "no rules files in deploy/prometheus/rules"
    proc = run([promtool, "check", "rules", *map(str, RULES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_unit_tests_pass():
    promtool = debian_tool("promtool", "prometheus")
    assert RULE_TESTS
    proc = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_really_fails_a_wrong_expectation(tmp_path):
    """Guard against a runner that passes everything: a wrong expected label must fail."""
    promtool = debian_tool("promtool", "prometheus")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    for path in RULES:
        (tmp_path / "rules" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = RULE_TESTS[0].read_text(encoding="utf-8").replace("service: triage, instance", "service: intake, instance")
    broken = tmp_path / "tests" / RULE_TESTS[0].name
    broken.write_text(text, encoding="utf-8")
    proc = run([promtool, "test", "rules", str(broken)])
    assert proc.returncode != 0


def test_every_rule_has_routing_labels_and_bilingual_annotations():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    anchors = doc_anchors()
    for rule in rules:
        name, labels, notes = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in ("warning", "critical"), name
        assert labels.get("family") in ("pipeline", "infrastructure"), name
        assert "for" in rule, f"{name}: say `for:` explicitly, even 0m"
        summary = notes.get("summary", "")
        assert CJK.search(summary) and re.search(r"[A-Za-z]{3,}", summary), f"{name}: summary needs 中文 and English"
        assert notes.get("description"), name
        runbook = notes.get("runbook_url", "")
        assert runbook.startswith("docs/alerts.md#"), name
        assert runbook.split("#", 1)[1] in anchors, f"{name}: {runbook} has no heading in docs/alerts.md"


def test_every_rule_is_tested_firing_with_a_service_and_quiet():
    """Each alert fires in some test case with severity, family and service, and stays quiet in another."""
    fired: dict[str, list[dict]] = {}
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.setdefault(check["alertname"], []).extend(a["exp_labels"] for a in check["exp_alerts"])
                else:
                    quiet.add(check["alertname"])
    for rule in alert_rules():
        name = rule["alert"]
        assert name in fired, f"{name}: no test case where it fires"
        assert name in quiet, f"{name}: no test case where it stays quiet"
        for labels in fired[name]:
            assert {"severity", "family", "service"} <= set(labels), (name, labels)


# ---------------------------------------------------------------- alertmanager

def amtool_routes(config: Path, *labels: str) -> str:
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    proc = run([amtool, "config", "routes", "test", f"--config.file={config}", *labels])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize(("labels", "receiver"), [
    (("alertname=ECCConsumerStalled", "severity=critical", "family=pipeline", "service=triage"), "oncall-critical"),
    (("alertname=ECCServiceDown", "severity=critical", "family=infrastructure", "service=intake"), "oncall-critical"),
    (("alertname=ECCDeadLetters", "severity=warning", "family=pipeline", "service=funds"), "oncall-warning"),
    (("alertname=ECCOverdueBacklogHigh", "severity=warning", "family=pipeline", "service=nodewatch"), "oncall-warning"),
    (("alertname=SomethingElse",), "oncall-warning"),  # no severity: still delivered
])
def test_amtool_routes(labels, receiver):
    assert amtool_routes(ALERTMANAGER, *labels) == receiver


def test_amtool_routes_really_checks(tmp_path):
    """A wrong expectation fails (amtool exits 1 when --verify.receivers differs)."""
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    proc = run([amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                "--verify.receivers=oncall-critical", "severity=warning"])
    assert proc.returncode != 0


def test_every_rule_label_set_routes_by_its_severity():
    for rule in alert_rules():
        labels = rule["labels"]
        got = amtool_routes(ALERTMANAGER, f"alertname={rule['alert']}",
                            *(f"{k}={v}" for k, v in sorted(labels.items())))
        assert got == f"oncall-{labels['severity']}", rule["alert"]


def test_receivers_are_oncall_webhooks_with_credentials():
    config = yaml.safe_load(ALERTMANAGER.read_text(encoding="utf-8"))
    route = config["route"]
    assert route["group_by"] == ["alertname", "service"]
    assert {r["receiver"] for r in route["routes"]} == {"oncall-critical", "oncall-warning"}
    critical = next(r for r in route["routes"] if r["receiver"] == "oncall-critical")
    assert _seconds(critical["repeat_interval"]) < _seconds(route["repeat_interval"])
    assert _seconds(critical["group_wait"]) <= _seconds(route["group_wait"])
    for receiver in config["receivers"]:
        [hook] = receiver["webhook_configs"]
        assert hook["url"] == f"http://oncall:{SERVICE_PORTS['oncall']}/alertmanager/webhook"
        assert hook["send_resolved"] is True
        auth = hook["http_config"]["authorization"]
        assert auth.get("type", "Bearer") == "Bearer" and auth["credentials_file"] == TOKEN_FILE
        assert "credentials" not in auth, "never a token in the config file"
    # The cause is paged, not its effects: each inhibited alert name is a rule.
    names = {r["alert"] for r in alert_rules()}
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            pattern = matcher.split("=~", 1)[1].strip('"')
            assert set(pattern.split("|")) <= names, pattern
        assert rule["equal"] == ["service"]


def _seconds(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"s": 1, "m": 60, "h": 3600}[unit]


# ---------------------------------------------------------------- how compose and k8s carry them

def test_compose_mounts_rules_alertmanager_config_and_token():
    from tests.deploy.test_compose import compose_config
    proc = compose_config()
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    mounts = {v["target"]: v["source"] for v in services["prometheus"]["volumes"] if v["type"] == "bind"}
    assert Path(mounts["/etc/prometheus/rules"]) == DEPLOY / "prometheus" / "rules"
    am = services["alertmanager"]
    mounts = {v["target"]: v["source"] for v in am["volumes"] if v["type"] == "bind"}
    assert Path(mounts["/etc/alertmanager/alertmanager.yml"]) == ALERTMANAGER
    assert [s["target"] for s in am["secrets"]] == [TOKEN_FILE]


def test_k8s_base_carries_rules_and_alertmanager_config(rendered, tmp_path):
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    for overlay, docs in rendered.items():
        maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
        rules = maps["ecc-prometheus-rules"]["data"]
        assert rules == {p.name: p.read_text(encoding="utf-8") for p in RULES}, overlay
        text = maps["ecc-alertmanager"]["data"]["alertmanager.yml"]
        config = yaml.safe_load(text)
        urls = {w["url"] for r in config["receivers"] for w in r["webhook_configs"]}
        assert urls == {f"http://ecc-oncall:{SERVICE_PORTS['oncall']}/alertmanager/webhook"}, overlay
        copy = tmp_path / f"{overlay}-alertmanager.yml"
        copy.write_text(text, encoding="utf-8")
        proc = run([amtool, "check-config", str(copy)])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert amtool_routes(copy, "severity=critical", "service=triage") == "oncall-critical"
        # The token is a Secret the operator creates: never rendered by the overlays.
        assert "ecc-alertmanager-oncall" not in {d["metadata"]["name"] for d in by_kind(docs, "Secret")}


def test_k8s_secret_placeholder_names_the_credentials_file_key():
    path = DEPLOY / "k8s" / "base" / "monitoring" / "alertmanager-secret.example.yaml"
    [secret] = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "ecc-alertmanager-oncall"
    assert set(secret["stringData"]) == {Path(TOKEN_FILE).name}
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "base" / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "monitoring/alertmanager-secret.example.yaml" not in kustomization["resources"]
    assert "`ecc-alertmanager-oncall`" in ALERTS_DOC.read_text(encoding="utf-8")
