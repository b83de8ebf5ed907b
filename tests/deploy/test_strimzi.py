"""Strimzi resources validated against the vendored Strimzi schemas (deploy/vendor/strimzi-1.x: every
file there is a byte-for-byte copy whose size and sha256 its README records; provenance there).

Two kinds of schema file, one per kind we use:
- `*.yaml`, Strimzi's own CRD: its `v1` openAPIV3Schema is turned into a JSON Schema the way the API
  server applies it with strict field validation (`kubectl apply --validate=strict`): an object with
  declared properties accepts no others unless it says x-kubernetes-preserve-unknown-fields.
- `datree/<kind>_v1.json`, the kubeconform catalog's JSON Schema extracted from Strimzi's CRD: already
  strict below the root, used unmodified (Draft 4 keywords); only the top level is closed here.
CEL rules (x-kubernetes-validations) are not evaluated.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind

jsonschema = pytest.importorskip("jsonschema", reason="pip install jsonschema (the `deploy` extra)")

VENDOR = DEPLOY / "vendor" / "strimzi-1.x"
CATALOG = VENDOR / "datree"
KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}


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


def load_schemas() -> dict[str, list[tuple[Path, Any]]]:
    """{kind: [(file, validator)]} for every schema file vendored, CRDs and catalog alike."""
    found: dict[str, list[tuple[Path, Any]]] = {}
    for path in sorted(VENDOR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        assert version["served"] and version["storage"], path
        schema = to_json_schema(version["schema"]["openAPIV3Schema"])
        found.setdefault(crd["spec"]["names"]["kind"], []).append((path, jsonschema.Draft7Validator(schema)))
    by_file = {f"{kind.lower()}_v1.json": kind for kind in KINDS}
    for path in sorted(CATALOG.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        found.setdefault(by_file.get(path.name, path.name), []).append((path, jsonschema.Draft4Validator(schema)))
    return found


SOURCES = load_schemas()


def errors(kind: str, doc: dict[str, Any]) -> list[str]:
    [(_, validator)] = SOURCES[kind]
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
    if "additionalProperties" not in validator.schema:  # the catalog leaves the root open; the API server does not
        problems += [f"{key}: not a top-level field of a {kind}" for key in sorted(set(doc) - TOP_LEVEL)]
    return problems


def test_one_vendored_schema_per_kind_we_use():
    assert {kind: [p.relative_to(VENDOR).as_posix() for p, _ in files] for kind, files in SOURCES.items()} == {
        "Kafka": ["datree/kafka_v1.json"], "KafkaNodePool": ["datree/kafkanodepool_v1.json"],
        "KafkaTopic": ["datree/kafkatopic_v1.json"], "KafkaUser": ["044-Crd-kafkauser.yaml"]}


@pytest.mark.parametrize("name", ["kafka_v1.json", "kafkanodepool_v1.json", "kafkatopic_v1.json"])
def test_catalog_files_are_json_schemas_of_a_custom_resource(name):
    schema = json.loads((CATALOG / name).read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["required"] == ["spec"]
    assert set(schema["properties"]) == TOP_LEVEL
    spec = schema["properties"]["spec"]
    assert spec["type"] == "object" and spec["additionalProperties"] is False and spec["properties"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_match_the_schemas(rendered, overlay):
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
    """Guard against a validator that passes everything, in the subtrees we set and in those we do not
    set yet (pod templates, status), which the earlier pruned schemas accepted blindly."""
    [kafka] = by_kind(rendered["prod"], "Kafka")
    [topic] = by_kind(rendered["prod"], "KafkaTopic")[:1]
    [user] = by_kind(rendered["prod"], "KafkaUser")[:1]
    [pool] = by_kind(rendered["prod"], "KafkaNodePool")
    breakages = [
        (kafka, lambda d: d["spec"]["kafka"]["listeners"][0].update(tpye="internal")),
        (kafka, lambda d: d["spec"]["kafka"].update(template={"pod": {"tolerations": [{"efect": "NoSchedule"}]}})),
        (kafka, lambda d: d["spec"]["kafka"]["listeners"][0].update(configuration={"maxConnections": "many"})),
        (kafka, lambda d: d.update(sepc={})),
        (topic, lambda d: d["spec"].update(partitions=0)),
        (topic, lambda d: d.update(status={"replicasChange": {"state": "done"}})),
        (user, lambda d: d["spec"]["authorization"]["acls"][0].update(operations=["Reed"])),
        (pool, lambda d: d["spec"].update(roles=["zookeeper"])),
        (pool, lambda d: d["spec"].update(template={"pod": {"securityContext": {"runAsUser": "root"}}})),
    ]
    for good, breakage in breakages:
        assert not errors(good["kind"], good)
        bad = copy.deepcopy(good)
        breakage(bad)
        assert errors(bad["kind"], bad), f"{good['kind']}: {bad['spec']}"


def recorded_files() -> dict[str, tuple[str, int, str]]:
    """README "Official files" and "Catalog files" tables: {path under the folder: (commit, bytes, sha256)}."""
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    rows = []
    for title in ("## Official files", "## Catalog files"):
        section = readme.split(title, 1)[1].split("\n## ", 1)[0]
        rows += [line.strip("|").split("|") for line in section.splitlines()
                 if line.startswith("| ") and line.endswith(" |") and "sha256" not in line]
    return {cells[0].strip(): (cells[2].strip(), int(cells[3]), cells[4].strip()) for cells in rows}


def test_vendored_files_are_byte_for_byte_what_the_readme_records():
    recorded = recorded_files()
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file() and p.name != "README.md"}
    assert set(recorded) == on_disk, "every vendored file, and only those, has a row in the README"
    assert {"044-Crd-kafkauser.yaml", "datree/kafka_v1.json", "datree/kafkanodepool_v1.json",
            "datree/kafkatopic_v1.json", "datree/LICENSE"} <= on_disk
    for name, (commit, size, sha) in recorded.items():
        data = (VENDOR / name).read_bytes()
        assert len(commit) == 40 and int(commit, 16) >= 0, name
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha), f"{name} is not the recorded file"
        assert b"ECC-PRUNED" not in data, f"{name} was edited"
