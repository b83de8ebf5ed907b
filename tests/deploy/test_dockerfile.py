"""The Dockerfile: two images (ecc, and ecc-bulletin with Chromium for metrics), non-root, pinned
base, a working /healthz healthcheck, no embedded extras."""
from __future__ import annotations

import io
import json
import os
import re
import shlex
import socket
import subprocess  # nosec B404 - runs the healthcheck one-liner and sh with fixed argvs
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
FINAL_STAGES = ("bulletin", "runtime")   # the images: ecc-bulletin (--target bulletin) and ecc (default)


@dataclass
class Stage:
    name: str
    base: str                      # an image, `scratch`, or an earlier stage's name
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for kind, value in self.instructions if kind == instruction]


def stages() -> list[Stage]:
    """The Dockerfile's stages in order, read by dockerfile-parse (a checkov dependency: the `deploy`
    extra), which joins continuation lines the way Docker does."""
    parser_module = pytest.importorskip("dockerfile_parse", reason="pip install checkov (the `deploy` extra)")
    parser = parser_module.DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.encode("utf-8")))
    out: list[Stage] = []
    for item in parser.structure:
        kind, value = item["instruction"], item["value"]
        if kind == "FROM":
            words = value.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"every stage is named: FROM {value}"
            out.append(Stage(name=words[2], base=words[0]))
        elif kind != "COMMENT":
            assert out, f"{kind} before the first FROM"
            out[-1].instructions.append((kind, value))
    return out


def stage(name: str) -> Stage:
    [found] = [s for s in stages() if s.name == name]
    return found


def lineage(name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    by_name = {s.name: s for s in stages()}
    chain = [by_name[name]]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def effective(name: str, instruction: str) -> str | None:
    """The last `instruction` (USER, CMD, ...) in force in a stage, inherited through FROM."""
    for st in lineage(name):
        found = st.values(instruction)
        if found:
            return found[-1]
    return None


def test_base_image_is_pinned():
    all_stages = stages()
    names = [s.name for s in all_stages]
    external = []
    for index, st in enumerate(all_stages):
        if st.base in names:
            assert st.base in names[:index], f"{st.name} is built FROM the later stage {st.base}"
        elif st.base != "scratch":
            external.append(st.base)
    assert external and all(b.startswith("python:3.11") for b in external)
    assert len(set(external)) == 1, external  # both images on the same base
    for base in external:
        tag = base.split("@")[0].split(":", 1)[1]
        assert "@sha256:" in base or re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), base


def test_two_images_and_the_plain_one_is_the_default():
    names = [s.name for s in stages()]
    assert set(FINAL_STAGES) <= set(names) and len(names) == len(set(names))
    assert names[-1] == "runtime"  # `docker build .` builds the last stage: the image without Chromium
    # Both carry the same code: the `app` stage, copied whole and last.
    for name in FINAL_STAGES:
        assert stage(name).values("COPY") == ["--from=app / /"], name


def test_runs_as_a_non_root_user():
    for name in FINAL_STAGES:
        user = effective(name, "USER")
        assert user is not None, f"{name}: no USER, the image would run as root"
        uid = user.split(":")[0]
        assert uid.isdigit() and int(uid) >= 10000, (name, user)  # numeric: runAsNonRoot can verify it
        # ...and USER is the stage's last word: nothing after it runs as root or changes files.
        assert stage(name).instructions[-1] == ("USER", user), name
        assert all(v.split(":")[0] not in ("root", "0") for st in lineage(name) for v in st.values("USER"))


def test_only_the_bulletin_image_has_chromium_and_cjk_fonts():
    [install] = stage("bulletin").values("RUN")
    packages = re.search(r"apt-get install (.*?)(?:&&|$)", install).group(1).split()
    assert {"chromium", "fonts-noto-cjk"} <= set(packages)
    assert "--no-install-recommends" in packages and "-y" in packages
    assert "apt-get update" in install and "rm -rf /var/lib/apt/lists/*" in install  # no lists in the layer
    env = dict(shlex.split(pair)[0].split("=", 1) for value in stage("bulletin").values("ENV")
               for pair in re.findall(r"\S+=\S+", value))
    assert env["ECC_CHROMIUM"] == "/usr/bin/chromium"  # Debian's launcher, which reads /etc/chromium.d
    assert env["HOME"] == "/tmp"  # the only writable directory under readOnlyRootFilesystem
    for name in ("runtime", "base", "app", "build"):
        text = " ".join(v for _, v in stage(name).instructions)
        assert "chromium" not in text and "apt-get" not in text, name


def test_the_bulletin_image_starts_chromium_without_its_own_sandbox(tmp_path):
    """Chromium's sandbox needs user namespaces, which RuntimeDefault seccomp refuses to the
    unprivileged container (it exits "No usable sandbox!"), and export.py adds --no-sandbox only
    for root. The image's /etc/chromium.d file adds it; run the file as Debian's launcher does."""
    [install] = stage("bulletin").values("RUN")
    match = re.search(r"(printf .*?) > (/etc/chromium\.d/[\w-]+)", install)
    assert match, "no file for Debian's chromium launcher in /etc/chromium.d"
    target = tmp_path / "flags"
    subprocess.run(["sh", "-c", f"{match.group(1)} > {shlex.quote(str(target))}"], check=True, timeout=10)  # nosec
    flags = subprocess.run(["sh", "-c", '. "$1"; printf %s "$CHROMIUM_FLAGS"', "sh", str(target)],  # nosec
                           env={"PATH": "/usr/bin:/bin", "CHROMIUM_FLAGS": "--disable-pings"},
                           capture_output=True, text=True, check=True, timeout=10).stdout
    assert flags.split() == ["--disable-pings", "--no-sandbox"]  # appended, the launcher's own kept


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
    for name in FINAL_STAGES:
        assert effective(name, "CMD") == '["python", "-m", "services.intake"]', name
        assert effective(name, "HEALTHCHECK"), name
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
