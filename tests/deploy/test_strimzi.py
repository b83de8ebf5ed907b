"""Strimzi resources validated against the vendored Strimzi CRD schemas (deploy/vendor/strimzi-1.x,
official files byte for byte where they could be had; see its README).

The CRD's openAPIV3Schema is turned into a JSON Schema the way the API server applies it with
strict field validation (`kubectl apply --validate=strict`): an object with declared properties
accepts no others unless it says x-kubernetes-preserve-unknown-fields. CEL rules
(x-kubernetes-validations) are not evaluated here.
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind

jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (the `deploy` extra)")

VENDOR = DEPLOY / "vendor" / "strimzi-1.x"
KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")


def to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()
           if not k.startswith("x-kubernetes-") and k not in ("example", "description")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in sorted(VENDOR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        kind = crd["spec"]["names"]["kind"]
        [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        assert version["served"] and version["storage"], path
        schemas[kind] = to_json_schema(version["schema"]["openAPIV3Schema"])
    return schemas


SCHEMAS = crd_schemas()


def errors(kind: str, doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMAS[kind])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def test_vendored_crds_cover_every_kind_we_use():
    assert set(SCHEMAS) == set(KINDS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_match_the_crds(rendered, overlay):
    docs = [d for d in rendered[overlay] if d["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {d["kind"] for d in docs} == set(KINDS)
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1", doc["metadata"]["name"]
        problems = errors(doc["kind"], doc)
        assert not problems, f"{overlay} {doc['kind']}/{doc['metadata']['name']}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_belong_to_the_cluster(rendered, overlay):
    docs = rendered[overlay]
    [kafka] = by_kind(docs, "Kafka")
    for doc in by_kind(docs, "KafkaNodePool") + by_kind(docs, "KafkaTopic") + by_kind(docs, "KafkaUser"):
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    # KRaft: the node pools hold the controllers; there is no ZooKeeper section in the v1 API.
    roles = {r for pool in by_kind(docs, "KafkaNodePool") for r in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] is False
    replicas = sum(pool["spec"]["replicas"] for pool in by_kind(docs, "KafkaNodePool"))
    for topic in by_kind(docs, "KafkaTopic"):
        assert topic["spec"]["replicas"] <= replicas
        assert topic["spec"]["config"]["min.insync.replicas"] <= topic["spec"]["replicas"]
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"  # KafkaUser ACLs need it


def mounted_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{file path in the container: (Secret name, key)} for every Secret item it mounts."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        for item in (secret or {}).get("items", []):
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_connect_with_scram_over_tls(rendered, generator, overlay):
    """The listener, the ConfigMap, each Deployment's env and mounts, its NetworkPolicy and its
    KafkaUser must agree, or a service cannot log in (issue 7, docs/deploy.md "Kafka security")."""
    docs = rendered[overlay]
    [kafka] = by_kind(docs, "Kafka")
    cluster = kafka["metadata"]["name"]
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(listener.get("authentication") for listener in listeners), "an unauthenticated listener"
    assert "superUsers" not in kafka["spec"]["kafka"]["authorization"]  # no ANONYMOUS super user
    [scram] = [li for li in listeners if li["authentication"]["type"] == "scram-sha-512"]
    assert scram["tls"] is True
    [env_cm] = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "ecc-env"]
    assert env_cm["data"]["ECC_KAFKA_BOOTSTRAP"] == f"{cluster}-kafka-bootstrap:{scram['port']}"
    users = {u["metadata"]["name"]: u for u in by_kind(docs, "KafkaUser")}
    deployments = {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}
    policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
    for svc in generator.load_services():
        pod = deployments[f"ecc-{svc.name}"]["spec"]["template"]
        [container] = pod["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["ECC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["ECC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        user = users[env["ECC_KAFKA_SASL_USERNAME"]]
        assert user["metadata"]["annotations"]["ecc/service"] == svc.name
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        files = mounted_files(pod["spec"], container)
        # Strimzi's Secrets: the KafkaUser's (same name, key `password`) and the cluster CA's.
        assert files[env["ECC_KAFKA_SASL_PASSWORD_FILE"]] == (user["metadata"]["name"], "password")
        assert files[env["ECC_KAFKA_CA_FILE"]] == (f"{cluster}-cluster-ca-cert", "ca.crt")
        peers = [peer["podSelector"]["matchLabels"] for peer in scram["networkPolicyPeers"]]
        assert any(all(pod["metadata"]["labels"].get(k) == v for k, v in peer.items()) for peer in peers)
        [to_kafka] = [rule for rule in policies[f"ecc-{svc.name}"]["spec"]["egress"]
                      if rule["to"][0].get("podSelector", {}).get("matchLabels", {}).get("strimzi.io/cluster")]
        assert to_kafka["ports"] == [{"protocol": "TCP", "port": scram["port"]}]
        acls = user["spec"]["authorization"]["acls"]
        assert {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]) for a in acls} == {
            ("topic", "ecc.", "prefix"), ("group", f"ecc-{svc.name}", "prefix")}
        assert all("All" not in a["operations"] and "Delete" not in a["operations"] for a in acls)
    # One identity per deployed service, no leftovers.
    assert {u for u in users if u.startswith("ecc-svc-")} == {f"ecc-svc-{s.name}" for s in generator.load_services()}


def test_prod_kafka_tolerates_one_broker_down(rendered):
    docs = rendered["prod"]
    [pool] = by_kind(docs, "KafkaNodePool")
    [kafka] = by_kind(docs, "Kafka")
    assert pool["spec"]["replicas"] >= 3
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert pool["spec"]["storage"]["volumes"][0]["deleteClaim"] is False


def test_the_schema_check_rejects_bad_resources(rendered):
    """Guard against a validator that passes everything."""
    [kafka] = by_kind(rendered["prod"], "Kafka")
    bad = copy.deepcopy(kafka)
    bad["spec"]["kafka"]["listeners"][0]["tpye"] = "internal"
    assert errors("Kafka", bad)
    [topic] = by_kind(rendered["prod"], "KafkaTopic")[:1]
    bad = copy.deepcopy(topic)
    bad["spec"]["partitions"] = 0
    assert errors("KafkaTopic", bad)
    [user] = by_kind(rendered["prod"], "KafkaUser")[:1]
    bad = copy.deepcopy(user)
    bad["spec"]["authorization"]["acls"][0]["operations"] = ["Reed"]
    assert errors("KafkaUser", bad)
    [pool] = by_kind(rendered["prod"], "KafkaNodePool")
    bad = copy.deepcopy(pool)
    bad["spec"]["roles"] = ["zookeeper"]
    assert errors("KafkaNodePool", bad)


def official_files() -> dict[str, tuple[str, int, str]]:
    """README "Official files" table: {file: (commit, bytes, sha256)}."""
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Official files", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines()
            if line.startswith("| ") and line.endswith(" |") and "sha256" not in line]
    return {cells[0].strip(): (cells[2].strip(), int(cells[3]), cells[4].strip()) for cells in rows}


def test_official_crds_are_byte_for_byte_what_the_readme_records():
    official = official_files()
    assert "044-Crd-kafkauser.yaml" in official
    for name, (commit, size, sha) in official.items():
        data = (VENDOR / name).read_bytes()
        assert len(commit) == 40 and int(commit, 16) >= 0, name
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), f"{name} is not the recorded file"
        assert b"ECC-PRUNED" not in data


def test_every_other_vendored_crd_is_a_documented_transcription():
    """Until the official files replace them (README "Transcribed files")."""
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    transcribed = sorted(p for p in VENDOR.glob("*.yaml") if p.name not in official_files())
    for path in transcribed:
        assert f"`{path.name}`" in readme, path.name
        assert path.read_text(encoding="utf-8").count("ECC-PRUNED") >= 1, path.name
    for word in ("Strimzi", "v1", "ECC-PRUNED", "description", "metio/kube-custom-resources-rs"):
        assert word in readme
