"""Prometheus, Alertmanager and Grafana provisioning for compose; the k8s copies are in test_kubernetes.

promtool and amtool come from Debian's `prometheus` and `prometheus-alertmanager` packages.
(Debian's promtool is built without Kubernetes service discovery, so the k8s scrape ConfigMap,
which uses kubernetes_sd_configs, is checked structurally in test_kubernetes instead.)
"""
from __future__ import annotations

import shutil

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, run


def debian_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed: apt-get install {package}")
    return path


def test_compose_prometheus_config_is_valid():
    promtool = debian_tool("promtool", "prometheus")
    proc = run([promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alertmanager_config_is_valid():
    amtool = debian_tool("amtool", "prometheus-alertmanager")
    proc = run([amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml")])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_grafana_provisioning():
    datasources = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    [ds] = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] == "ecc-prometheus" and ds["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "ecc.yaml").read_text())
    [provider] = dashboards["providers"]
    assert provider["type"] == "file" and provider["folder"] == "ECC"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/ecc"
