"""Per-service egress and Secret (deploy/services.yaml `egress`, `secret`, `env`; issues 6 and 7):
oncall may reach its notification gateways and reads their settings from files of a mounted
Secret; no other service gains any egress, and compose passes the oncall settings through."""
from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.oncall.channels import SmsChannel, WebhookChannel, WeComBotChannel, build_channels
from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind
from tests.deploy.test_compose import compose_config
from tests.deploy.test_kubernetes import pod_labels, pod_spec, selects

GATEWAY = "192.0.2.10"       # inside the shipped placeholder network (TEST-NET-1)
OUTSIDE = "198.51.100.7"     # TEST-NET-2: no rule names it
PLAIN_EGRESS_PORTS = (53, 9094, 27017)


def peer_admits(peer: dict[str, Any], ip: str) -> bool:
    block = peer.get("ipBlock")
    if not block:
        return False  # pod/namespace selectors match pods of the cluster, never an outside address
    addr = ipaddress.ip_address(ip)
    return (addr in ipaddress.ip_network(block["cidr"])
            and not any(addr in ipaddress.ip_network(e) for e in block.get("except", [])))


def egress_allowed(policies: list[dict[str, Any]], labels: dict[str, str], ip: str, port: int) -> bool:
    """NetworkPolicy semantics for one TCP connection from a pod to an address outside the cluster:
    allowed when any policy selecting the pod has an egress rule admitting both the peer and port."""
    for policy in policies:
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("egress") or []:
            peers, ports = rule.get("to"), rule.get("ports")
            peer_ok = not peers or any(peer_admits(p, ip) for p in peers)  # no `to`: any destination
            port_ok = not ports or any(p.get("protocol", "TCP") == "TCP" and p.get("port") == port for p in ports)
            if peer_ok and port_ok:
                return True
    return False


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in by_kind(docs, "Deployment")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_oncall_may_reach_the_gateway_network(rendered, generator, overlay):
    docs = rendered[overlay]
    policies = by_kind(docs, "NetworkPolicy")
    deps = deployments(docs)
    for svc in generator.load_services():
        labels = pod_labels(deps[svc.deployment])
        allowed = egress_allowed(policies, labels, GATEWAY, 443)
        assert allowed == (svc.name == "oncall"), (overlay, svc.name, allowed)
        # Nobody reaches an arbitrary internet address, on any port the suite uses.
        for port in (443, 80, *PLAIN_EGRESS_PORTS):
            assert not egress_allowed(policies, labels, OUTSIDE, port), (overlay, svc.name, port)
    oncall = pod_labels(deps["ecc-oncall"])
    assert not egress_allowed(policies, oncall, GATEWAY, 80)  # only the declared port
    assert not egress_allowed(policies, oncall, "8.8.8.8", 443)


def test_no_network_policy_opens_every_address(rendered):
    for overlay, docs in rendered.items():
        for policy in by_kind(docs, "NetworkPolicy"):
            for rule in policy["spec"].get("egress") or []:
                assert rule.get("to"), (overlay, policy["metadata"]["name"], "egress rule without `to`")
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        assert ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen > 0, (overlay, policy)


def test_prod_overlay_carries_the_gateway_network(rendered, generator):
    """The court sets its gateway network in the prod overlay; a `test` op pins the patch to the
    generated rule, so a reordered policy fails `kubectl kustomize` instead of opening the wrong rule."""
    [oncall] = [s for s in generator.load_services() if s.name == "oncall"]
    [rule] = oncall.egress
    kust = yaml.safe_load((DEPLOY / "k8s" / "overlays" / "prod" / "kustomization.yaml").read_text(encoding="utf-8"))
    [patch] = [p for p in kust["patches"] if p["target"] == {"kind": "NetworkPolicy", "name": "ecc-oncall"}]
    ops = yaml.safe_load(patch["patch"])
    cidr_path = "/spec/egress/3/to/0/ipBlock/cidr"
    assert {"op": "test", "path": cidr_path, "value": rule.cidr} in ops
    [replace] = [op for op in ops if op["op"] == "replace" and op["path"] == cidr_path]
    [policy] = [p for p in by_kind(rendered["prod"], "NetworkPolicy") if p["metadata"]["name"] == "ecc-oncall"]
    assert policy["spec"]["egress"][3]["to"] == [{"ipBlock": {"cidr": replace["value"]}}]


def secret_files(deployment: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """VARIABLE -> (Secret name, key) for every `<VARIABLE>_FILE` that points into a Secret volume."""
    spec = pod_spec(deployment)
    [container] = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    out = {}
    for env in container["env"]:
        if not env["name"].endswith("_FILE") or "value" not in env:
            continue
        for mount in container["volumeMounts"]:
            prefix = mount["mountPath"].rstrip("/") + "/"
            if env["value"].startswith(prefix) and "secret" in volumes[mount["name"]]:
                assert mount.get("readOnly") is True
                source = volumes[mount["name"]]["secret"]
                items = {i["path"]: i["key"] for i in source.get("items", [])}
                rel = env["value"][len(prefix):]
                assert rel in items, f"{env['name']} names {env['value']}, which the volume does not project"
                out[env["name"][: -len("_FILE")]] = (source["secretName"], items[rel])
    return out


async def _channels(env: dict[str, str]):
    async with httpx.AsyncClient() as client:
        return build_channels(client, env)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_oncall_reads_its_gateways_from_the_mounted_secret(rendered, overlay, tmp_path):
    """Follow the Deployment's *_FILE variables through the mount to the Secret keys, write files as
    the kubelet would, and let services/oncall/channels.py build its channels from them."""
    files = {var: source for var, source in secret_files(deployments(rendered[overlay])["ecc-oncall"]).items()
             if var.startswith("ECC_ONCALL_")}  # the others are the Kafka user's and CA's (Strimzi's)
    names = {name.rsplit("-", 1)[0] if overlay == "dev" else name for name, _ in files.values()}
    assert names == {"ecc-oncall-channels"}  # dev's generated Secret carries a hash suffix
    values = {"ECC_ONCALL_WEBHOOK_URL": "https://duty.court.example/notify",
              "ECC_ONCALL_WEBHOOK_TOKEN": "webhook-bearer",
              "ECC_ONCALL_SMS_URL": "https://sms.court.example/send",
              "ECC_ONCALL_SMS_TOKEN": "sms-bearer",
              "ECC_ONCALL_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}
    assert set(files) == set(values)
    env = {}
    for var, (_, key) in files.items():
        path = tmp_path / key
        path.write_text(values[var] + "\n", encoding="utf-8")  # a trailing newline, as from --from-file
        env[f"{var}_FILE"] = str(path)
    channels = asyncio.run(_channels(env))
    assert set(channels) == {"webhook", "sms", "wecom"}
    webhook, sms, wecom = channels["webhook"], channels["sms"], channels["wecom"]
    assert isinstance(webhook, WebhookChannel) and isinstance(sms, SmsChannel) and isinstance(wecom, WeComBotChannel)
    assert (webhook.url, webhook.token) == (values["ECC_ONCALL_WEBHOOK_URL"], "webhook-bearer")
    assert (sms.url, sms.token) == (values["ECC_ONCALL_SMS_URL"], "sms-bearer")
    assert wecom.url == values["ECC_ONCALL_WECOM_URL"]
    # An empty key (a channel the court does not use, or dev's Secret) is "not configured".
    for var, (_, key) in files.items():
        (tmp_path / key).write_text("", encoding="utf-8")
    assert asyncio.run(_channels(env)) == {}


def test_the_channel_secret_keys_are_documented_and_generated_in_dev(rendered, generator):
    [oncall] = [s for s in generator.load_services() if s.name == "oncall"]
    keys = {key for key, _ in oncall.secret.files}
    example = {d["metadata"]["name"]: d["stringData"] for d in
               yaml.safe_load_all((DEPLOY / "k8s" / "overlays" / "prod" / "secrets.example.yaml").read_text())}
    assert set(example[oncall.secret.name]) == keys
    [dev] = [d for d in by_kind(rendered["dev"], "Secret") if d["metadata"]["name"].startswith("ecc-oncall-channels-")]
    assert set(dev["data"]) == keys
    assert all(value == "" for value in dev["data"].values())  # dev: no gateway, oncall still starts


def test_no_other_service_mounts_a_service_secret_or_gains_egress(rendered, generator):
    for overlay, docs in rendered.items():
        deps = deployments(docs)
        policies = {p["metadata"]["name"]: p for p in by_kind(docs, "NetworkPolicy")}
        for svc in generator.load_services():
            if svc.name == "oncall":
                continue
            dep = deps[svc.deployment]
            assert not any(v["name"] == "service-secret" for v in pod_spec(dep)["volumes"]), (overlay, svc.name)
            assert not [v for v in secret_files(dep) if v.startswith("ECC_ONCALL_")], (overlay, svc.name)
            rules = policies[svc.deployment]["spec"]["egress"]
            assert not any("ipBlock" in peer for rule in rules for peer in rule["to"]), (overlay, svc.name)
            assert {p["port"] for rule in rules for p in rule["ports"]} == set(PLAIN_EGRESS_PORTS)


def test_compose_passes_the_oncall_settings_through():
    names = ("ECC_ONCALL_WEBHOOK_URL", "ECC_ONCALL_WEBHOOK_TOKEN", "ECC_ONCALL_SMS_URL", "ECC_ONCALL_SMS_TOKEN",
             "ECC_ONCALL_WECOM_URL", "ECC_ONCALL_SMS_SIGN", "ECC_ONCALL_POLL_SECONDS")
    proc = compose_config()
    assert proc.returncode == 0, proc.stderr
    services = yaml.safe_load(proc.stdout)["services"]
    env = services["oncall"]["environment"]
    assert {name: env.get(name) for name in names} == dict.fromkeys(names, "")  # unset: empty, no error
    assert asyncio.run(_channels(env)) == {}  # ...and empty means "no gateway", not a crash
    for name, spec in services.items():
        if name != "oncall":
            assert not [v for v in spec.get("environment") or {} if v.startswith("ECC_ONCALL_")], name
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"
    proc = compose_config({"ECC_ONCALL_WECOM_URL": url, "ECC_ONCALL_SMS_SIGN": "舞钢市人民法院"})
    assert proc.returncode == 0, proc.stderr
    env = yaml.safe_load(proc.stdout)["services"]["oncall"]["environment"]
    assert env["ECC_ONCALL_WECOM_URL"] == url and env["ECC_ONCALL_SMS_SIGN"] == "舞钢市人民法院"
    assert set(asyncio.run(_channels(env))) == {"wecom"}


@pytest.mark.parametrize("entry, message", [
    ({"egress": [{"cidr": "0.0.0.0/0", "ports": [443]}]}, "allows every address"),
    ({"egress": [{"cidr": "::/0", "ports": [443]}]}, "allows every address"),
    ({"egress": [{"cidr": "192.0.2.1/24", "ports": [443]}]}, "host bits set"),
    ({"egress": [{"cidr": "192.0.2.0/24", "ports": []}]}, "non-empty list"),
    ({"egress": [{"cidr": "192.0.2.0/24", "ports": [70000]}]}, "non-empty list"),
    ({"egress": [{"cidr": "192.0.2.0/24", "ports": [443], "protocol": "UDP"}]}, "exactly {cidr, ports}"),
    ({"secret": {"name": "ecc-oncall-channels", "files": {"url": "ECC_ONCALL_WEBHOOK_URL_FILE"}}}, "VARIABLE"),
    ({"secret": {"name": "Bad_Name", "files": {"url": "ECC_ONCALL_WEBHOOK_URL"}}}, "object name"),
    ({"env": ["lower-case"]}, "VARIABLE names"),
])
def test_services_yaml_refuses_a_bad_egress_or_secret(generator, tmp_path: Path, entry, message):
    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump({"services": {"oncall": {"api": True, **entry}}}), encoding="utf-8")
    with pytest.raises(SystemExit, match=message.replace("{", r"\{").replace("}", r"\}")):
        generator.load_services(path)
