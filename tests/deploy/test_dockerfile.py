"""The Dockerfile: one image, non-root, pinned base, a working /healthz healthcheck, no embedded extras."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess  # nosec B404 - runs the healthcheck one-liner with a fixed argv
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, HTTPServer

from tests.deploy.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()


def test_base_image_is_pinned():
    bases = re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert bases and all(b.startswith("python:3.11") for b in bases)
    for base in bases:
        tag = base.split("@")[0].split(":", 1)[1]
        assert "@sha256:" in base or re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), base


def test_runs_as_a_non_root_user():
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert int(users[-1].split(":")[0]) >= 10000


def test_no_embedded_extras_in_the_image():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = " ".join(pyproject["project"]["dependencies"]).lower()
    for package in ("secantusdb", "calfkit"):
        assert package not in runtime
        assert package not in DOCKERFILE.lower().replace("secantusdb - gpl", "")
    assert "[embedded" not in DOCKERFILE and ".[" not in DOCKERFILE
    assert "['project']['dependencies']" in DOCKERFILE
    for excluded in ("tests", "tools", ".venv", ".git", "bench", "docs", "deploy"):
        assert excluded in DOCKERIGNORE


def test_the_command_chooses_the_service():
    assert re.search(r'^CMD \["python", "-m", "services\.intake"\]', DOCKERFILE, re.M)
    assert "ENTRYPOINT" not in DOCKERFILE
    assert "ECC_HTTP_HOST=0.0.0.0" in DOCKERFILE


def healthcheck_argv() -> list[str]:
    [line] = re.findall(r"^\s*CMD (\[\"python\", \"-c\", .*\])\s*$", DOCKERFILE, re.M)
    return json.loads(line)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"alive": true}')

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_one_liner_hits_healthz():
    argv = healthcheck_argv()
    assert argv[:2] == ["python", "-c"]
    port = _free_port()
    server = HTTPServer(("127.0.0.1", port), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "ECC_SERVICE": "triage", "ECC_TRIAGE_PORT": str(port), "PYTHONPATH": str(ROOT)}
        ok = subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True, timeout=20)  # nosec
        assert ok.returncode == 0, ok.stderr.decode()
        env["ECC_TRIAGE_PORT"] = str(_free_port())  # nothing listens there: unhealthy
        down = subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True, timeout=20)  # nosec
        assert down.returncode != 0
    finally:
        server.shutdown()
