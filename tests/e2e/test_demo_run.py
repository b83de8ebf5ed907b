"""The whole suite as `make demo` runs it: processes, logs, and what `make down` leaves behind.

Runs `tools.stack up`, a smaller demo workload and `tools.stack down` as subprocesses, on free
ports with a private state dir, then checks that no valid ID number or mobile number appears
unmasked in any log line of any process, and that no process is left running.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import PROJECT_ROOT, SERVICE_PORTS
from shared.contract.identity import is_valid_resident_id
from tools import stack

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECC_")}
    env.update({
        "ECC_STATE_DIR": str(state),
        "ECC_KAFKA_BOOTSTRAP": f"127.0.0.1:{stack.free_port()}",
        "ECC_MONGO_URL": f"mongodb://127.0.0.1:{stack.free_port()}/?directConnection=true&retryWrites=false",
        "ECC_RATE_LIMIT_WRITES": "off",
        "ECC_PARTITIONS": "3",
    })
    for name in SERVICE_PORTS:
        env[f"ECC_{name.upper()}_PORT"] = str(stack.free_port())
    return env


def _run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_demo_logs_hold_no_unmasked_personal_data_and_down_leaves_nothing(tmp_path):
    state = tmp_path / "ecc"
    env = _env(state)
    up = _run(["-m", "tools.stack", "up"], env, timeout=240)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (state / "token").exists()
        demo = _run(["-m", "tools.demo", "--cases", "60", "--concurrency", "8"], env, timeout=400)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "case.filed" in demo.stdout
    finally:
        down = _run(["-m", "tools.stack", "down"], env, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not list((state / "pids").glob("*.pid"))
    survivors = subprocess.run(["pgrep", "-f", str(state)], capture_output=True, text=True, check=False).stdout
    assert survivors.strip() == "", f"processes left behind: {survivors}"

    logs = sorted((state / "logs").glob("*.log"))
    assert any(p.name.startswith("intake") for p in logs)
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)
    assert text.count('"submission"') >= 60  # the filings were logged, so masking had something to do
    leaked_ids = {c for c in ID_CANDIDATE.findall(text) if is_valid_resident_id(c.upper())}
    assert not leaked_ids, f"unmasked ID numbers in logs: {sorted(leaked_ids)[:5]}"
    assert not MOBILE.findall(text), "unmasked mobile numbers in logs"
