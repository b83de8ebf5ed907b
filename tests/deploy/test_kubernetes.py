"""`kubectl kustomize` of each overlay, validated by `kubernetes-validate --strict`, plus the
properties issue 7 asks of the manifests (probes, resources, PDBs, NetworkPolicies, HPA, secrets)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.config import SERVICE_PORTS
from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind, find_tool, run

STRIMZI_GROUP = "kafka.strimzi.io/"
# The oldest Kubernetes the manifests are meant for, and the newest schema the validator knows.
K8S_VERSIONS = ("1.30.0", "1.37.0")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_overlay_passes_kubernetes_validate_strict(rendered, overlay, k8s_version):
    validator = find_tool("kubernetes-validate", "kubernetes-validate")
    core = [d for d in rendered[overlay] if not d["apiVersion"].startswith(STRIMZI_GROUP)]
    assert len(core) > 20
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{overlay}.yaml"
        path.write_text(yaml.safe_dump_all(core, sort_keys=False), encoding="utf-8")
        proc = run([validator, "--strict", "--quiet", "-k", k8s_version, str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout


def test_strict_validation_is_really_strict(rendered):
    """Guard against a validator that passes everything: a misspelt field must fail."""
    validator = find_tool("kubernetes-validate", "kubernetes-validate")
    [service] = [d for d in by_kind(rendered["prod"], "Service") if d["metadata"]["name"] == "ecc-intake"]
    broken = {**service, "spec": {**service["spec"], "selectr": service["spec"]["selector"]}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "broken.yaml"
        path.write_text(yaml.safe_dump(broken), encoding="utf-8")
        proc = run([validator, "--strict", "--quiet", str(path)])
    assert proc.returncode != 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_probes_resources_and_a_safe_pod(rendered, generator, overlay):
    deployments = {d["metadata"]["name"]: d for d in by_kind(rendered[overlay], "Deployment")}
    for svc in generator.load_services():
        dep = deployments[f"ecc-{svc.name}"]
        spec = pod_spec(dep)
        [container] = spec["containers"]
        port = SERVICE_PORTS[svc.name]
        assert container["command"] == ["python", "-m", f"services.{svc.name}"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        url = next(e["value"] for e in container["env"] if e["name"] == "ECC_MONGO_URL")
        assert "replicaSet=rs0" in url and "retryWrites=true" in url and "retryWrites=false" not in url
        env = next(d for d in by_kind(rendered[overlay], "ConfigMap") if d["metadata"]["name"] == "ecc-env")
        assert int(env["data"]["ECC_SESSION_TIMEOUT_MS"]) >= 6000  # Kafka's group.min.session.timeout.ms


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_a_pdb_and_a_network_policy(rendered, overlay):
    docs = rendered[overlay]
    pdbs = by_kind(docs, "PodDisruptionBudget")
    policies = by_kind(docs, "NetworkPolicy")
    default_deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert default_deny, "no default-deny NetworkPolicy"
    for doc in (d for d in docs if d["kind"] in WORKLOADS):
        labels = pod_labels(doc)
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert any(selects(p["spec"]["podSelector"], labels) for p in default_deny), f"{name}: not default-denied"
        allowing = [p for p in policies if p not in default_deny and selects(p["spec"]["podSelector"], labels)]
        assert allowing, f"{name}: no NetworkPolicy allows its traffic"
        if doc["kind"] != "Job":
            assert any(selects(p["spec"]["selector"], labels) for p in pdbs), f"{name}: no PodDisruptionBudget"


def test_network_policies_allow_only_what_each_service_needs(rendered, generator):
    policies = {p["metadata"]["name"]: p for p in by_kind(rendered["prod"], "NetworkPolicy")}
    for svc in generator.load_services():
        spec = policies[f"ecc-{svc.name}"]["spec"]
        [ingress] = spec["ingress"]
        assert ingress["ports"] == [{"protocol": "TCP", "port": SERVICE_PORTS[svc.name]}]
        sources = [peer["namespaceSelector"]["matchLabels"]["ecc-access"] for peer in ingress["from"]]
        assert sources == (["monitoring", "api-gateway"] if svc.api else ["monitoring"])
        egress_ports = sorted(p["port"] for rule in spec["egress"] for p in rule["ports"])
        declared = [port for rule in svc.egress for port in rule.ports]  # services.yaml `egress`
        assert egress_ports == sorted([53, 53, 9094, 27017, *declared])  # 9094: the Kafka `scram` listener


def test_hpa_only_for_stateless_http_fronts(rendered, generator):
    wanted = {f"ecc-{s.name}" for s in generator.load_services() if s.hpa}
    assert wanted == {"ecc-intake"}
    for overlay in OVERLAYS:
        hpas = by_kind(rendered[overlay], "HorizontalPodAutoscaler")
        assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas} == wanted
        for hpa in hpas:  # slow steps: every scale event is a consumer-group rebalance
            assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_consumers_never_outnumber_partitions(rendered, generator):
    partitions = min(d["spec"]["partitions"] for d in by_kind(rendered["prod"], "KafkaTopic"))
    for dep in by_kind(rendered["prod"], "Deployment"):
        assert dep["spec"]["replicas"] <= partitions
    for hpa in by_kind(rendered["prod"], "HorizontalPodAutoscaler"):
        assert hpa["spec"]["maxReplicas"] <= partitions


def test_mongo_is_a_replica_set_with_an_init_job(rendered):
    for overlay in OVERLAYS:
        docs = rendered[overlay]
        [sts] = by_kind(docs, "StatefulSet")
        [headless] = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == sts["spec"]["serviceName"]]
        assert headless["spec"]["clusterIP"] == "None"
        assert pod_spec(sts)["containers"][0]["args"][:2] == ["--replSet", "rs0"]
        [job] = by_kind(docs, "Job")
        assert job["metadata"]["name"].startswith("mongo-init-")
        env = {e["name"]: e for e in pod_spec(job)["containers"][0]["env"]}
        hosts_cm = next(d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == "ecc-env")
        members = hosts_cm["data"]["ECC_MONGO_HOSTS"].split(",")
        assert len(members) == sts["spec"]["replicas"], overlay
        assert env["ECC_MONGO_HOSTS"]["valueFrom"]["configMapKeyRef"]["key"] == "ECC_MONGO_HOSTS"
    [sts] = by_kind(rendered["prod"], "StatefulSet")
    assert sts["spec"]["replicas"] == 3


def test_secrets_are_referenced_not_shipped_in_prod(rendered):
    """Prod renders no Secret (the operator creates them); secrets.example.yaml shows every key used."""
    assert not by_kind(rendered["prod"], "Secret")
    example = {d["metadata"]["name"]: set(d["stringData"]) for d in
               yaml.safe_load_all((DEPLOY / "k8s" / "overlays" / "prod" / "secrets.example.yaml").read_text())}
    used: dict[str, set[str]] = {}
    for doc in (d for d in rendered["prod"] if d["kind"] in WORKLOADS):
        spec = pod_spec(doc)
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.setdefault(ref["name"], set()).add(ref["key"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                keys = {i["key"] for i in volume["secret"].get("items", [])}
                used.setdefault(volume["secret"]["secretName"], set()).update(keys)
    # Strimzi writes the KafkaUsers' password Secrets and the cluster CA Secret itself.
    [kafka] = by_kind(rendered["prod"], "Kafka")
    strimzi = {u["metadata"]["name"] for u in by_kind(rendered["prod"], "KafkaUser")}
    strimzi.add(f"{kafka['metadata']['name']}-cluster-ca-cert")
    used = {name: keys for name, keys in used.items() if name not in strimzi}
    assert set(used) == set(example)
    for name, keys in used.items():
        assert keys <= example[name], (name, keys - example[name])
    assert "public.pem" in example["ecc-jwt"]
    # Dev generates its own throwaway secrets with the same keys.
    dev = {d["metadata"]["name"].rsplit("-", 1)[0]: set(d["data"]) for d in by_kind(rendered["dev"], "Secret")}
    assert dev["ecc-mongo"] == example["ecc-mongo"]


def test_every_namespaced_resource_has_the_overlay_namespace(rendered):
    for overlay, namespace in (("dev", "ecc-dev"), ("prod", "ecc")):
        for doc in rendered[overlay]:
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == namespace, (overlay, doc["kind"], doc["metadata"]["name"])


def test_scrape_config_configmap_is_a_prometheus_config(rendered):
    [cm] = [d for d in by_kind(rendered["prod"], "ConfigMap") if d["metadata"]["name"] == "ecc-prometheus-scrape"]
    config = yaml.safe_load(cm["data"]["ecc-scrape.yml"])
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert {"ecc", "ecc-kafka-exporter"} <= jobs
