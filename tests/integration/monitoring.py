"""Real Prometheus and Alertmanager (Debian packages `prometheus`, `prometheus-alertmanager`) for
integration tests, plus a webhook receiver and the time-shrinking of the checked-in configuration.

Services run in the test process and share one Prometheus registry: one scrape target (any
service's port) serves every service's series, each labelled with its own `service`. The scrape
config therefore sets no `service` target label (it would overwrite theirs).

Time: the deployed rules speak in minutes (`for: 2m`, `[5m]`). `shrink_durations` divides every
duration of a rules file or an Alertmanager config by a factor (60: minutes become seconds), so a
test runs the exact rule logic that is deployed, only on a faster clock.
"""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess  # nosec B404 - fixed binaries with fixed arguments
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import wait_until

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = r"\d+(?:ms|s|m|h|d|w)"
# Durations in PromQL: range selectors [5m], subquery steps [10m:1m], offsets.
_PROMQL_DURATION = re.compile(rf"(?<=\[){_DURATION}|(?<=:){_DURATION}(?=\])|(?<=offset ){_DURATION}")


def _to_ms(text: str) -> int:
    total = 0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d|w)", text):
        total += int(number) * _UNITS_MS[unit]
    return total


def shrink(duration: str, factor: int) -> str:
    """'2m' / 60 → '2s'; '10s' / 60 → '166ms'; never below 1ms."""
    ms = max(_to_ms(duration) // factor, 1) if _to_ms(duration) else 0
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def shrink_rules(text: str, factor: int = 60) -> str:
    """A rules file with every `for:` and every PromQL duration divided by `factor`."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = shrink(rule["for"], factor)
            rule["expr"] = _PROMQL_DURATION.sub(lambda m: shrink(m.group(0), factor), rule["expr"])
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def shrink_alertmanager(text: str, receiver_url: str, credentials_file: Path, factor: int = 60) -> str:
    """The checked-in routing with its timings divided by `factor` and every webhook sent to `receiver_url`."""
    doc = yaml.safe_load(text)

    def walk(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval", "repeat_interval"):
            if key in route:
                route[key] = shrink(route[key], factor)
        for child in route.get("routes", []):
            walk(child)

    walk(doc["route"])
    if "resolve_timeout" in doc.get("global", {}):
        doc["global"]["resolve_timeout"] = shrink(doc["global"]["resolve_timeout"], factor)
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = receiver_url
            hook["http_config"]["authorization"]["credentials_file"] = str(credentials_file)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# ---------------------------------------------------------------- processes

@contextlib.contextmanager
def _process(argv: list[str], log_path: Path) -> Iterator[subprocess.Popen]:
    log = log_path.open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  # nosec B603
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


async def _ready(client: httpx.AsyncClient, what: str, proc: subprocess.Popen, log_path: Path) -> None:
    async def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return (await client.get("/-/ready")).status_code == 200
        return False

    await wait_until(ready, timeout=30, what=f"{what} ready")


@contextlib.asynccontextmanager
async def prometheus_server(tmp_path: Path, target_port: int, *, rules: str | None = None,
                            alertmanager_port: int | None = None,
                            interval: str = "1s") -> AsyncIterator[httpx.AsyncClient]:
    """A real Prometheus scraping 127.0.0.1:target_port every `interval`, optionally with a rules file
    (its text) and an Alertmanager to send alerts to; yields an HTTP client for its API."""
    from tools import stack
    port = stack.free_port()
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{"job_name": "ecc", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
    }
    if rules is not None:
        (tmp_path / "rules.yml").write_text(rules, encoding="utf-8")
        config["rule_files"] = [str(tmp_path / "rules.yml")]
    if alertmanager_port is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = tmp_path / "prometheus.log"
    argv = [PROMETHEUS or "prometheus", f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    with _process(argv, log_path) as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _ready(client, "prometheus", proc, log_path)
            yield client


# The name test_metrics_prometheus.py has always used.
def prometheus_scraping(tmp_path: Path, target_port: int):
    return prometheus_server(tmp_path, target_port)


@contextlib.asynccontextmanager
async def alertmanager_server(tmp_path: Path, config: str) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """A real Alertmanager with `config` (its text), clustering off; yields (API client, port)."""
    from tools import stack
    port = stack.free_port()
    path = tmp_path / "alertmanager.yml"
    path.write_text(config, encoding="utf-8")
    log_path = tmp_path / "alertmanager.log"
    argv = [ALERTMANAGER or "prometheus-alertmanager", f"--config.file={path}",
            f"--storage.path={tmp_path / 'alertmanager-data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address="]  # no gossip port: several test runs share the machine
    with _process(argv, log_path) as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await _ready(client, "alertmanager", proc, log_path)
            yield client, port


# ---------------------------------------------------------------- webhook receiver

@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookReceiver:
    """Records every POST (Alertmanager webhook deliveries) and answers 200."""
    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alertmanager/webhook"

    def alerts(self, alertname: str, status: str | None = None) -> list[tuple[Delivery, dict[str, Any]]]:
        return [(d, a) for d in list(self.deliveries) for a in d.body.get("alerts", [])
                if a["labels"].get("alertname") == alertname and (status is None or a["status"] == status)]


@contextlib.contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
