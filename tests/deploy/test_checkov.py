"""checkov over the rendered overlays and the Dockerfile; every skip is listed in deploy/checkov-skips.md."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from tests.deploy.conftest import DEPLOY, ROOT, find_tool, run

SKIPS = DEPLOY / "checkov-skips.md"
ROW = re.compile(r"^\|\s*(CKV2?_[A-Z0-9_]+)\s*\|\s*(global|inline)\s*\|", re.M)


def documented_skips() -> dict[str, str]:
    return {check: scope for check, scope in ROW.findall(SKIPS.read_text(encoding="utf-8"))}


def inline_skips(docs) -> set[str]:
    found = set()
    for doc in docs:
        for key, value in ((doc.get("metadata") or {}).get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert reason.strip(), f"{doc['kind']}/{doc['metadata']['name']}: skip {check} without a reason"
                found.add(check)
    return found


def test_every_inline_skip_is_documented(rendered):
    skips = documented_skips()
    for overlay, docs in rendered.items():
        for check in inline_skips(docs):
            assert skips.get(check) == "inline", f"{overlay}: inline skip {check} not in deploy/checkov-skips.md"


def test_checkov_passes(rendered_text):
    checkov = find_tool("checkov", "checkov")
    skips = documented_skips()
    global_skips = sorted(c for c, scope in skips.items() if scope == "global")
    with tempfile.TemporaryDirectory() as tmp:
        for overlay, text in rendered_text.items():
            Path(tmp, f"{overlay}.yaml").write_text(text, encoding="utf-8")
        shutil.copy(ROOT / "Dockerfile", Path(tmp, "Dockerfile"))
        argv = [checkov, "-d", tmp, "--framework", "kubernetes", "dockerfile", "--quiet", "--compact",
                "--skip-download", "-o", "json"]
        if global_skips:
            argv += ["--skip-check", ",".join(global_skips)]
        proc = run(argv, env={"PATH": str(Path(checkov).parent) + ":/usr/bin:/bin", "HOME": tmp})
    assert proc.stdout.strip(), proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"kubernetes", "dockerfile"}
    failed = [f"{r['check_type']}: {f['check_id']} {f['check_name']} - {f['resource']}"
              for r in reports for f in r["results"]["failed_checks"]]
    assert not failed, "checkov failures (fix them, or document a skip in deploy/checkov-skips.md):\n  " + "\n  ".join(failed)
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0
        assert report["summary"]["passed"] > 0
    kube = next(r for r in reports if r["check_type"] == "kubernetes")
    assert kube["summary"]["resource_count"] > 50


def test_skips_file_rows_have_reasons():
    text = SKIPS.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if ROW.match(line)]
    assert rows
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 4 and len(cells[3]) > 40, line
