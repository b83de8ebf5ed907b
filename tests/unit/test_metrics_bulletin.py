"""The bulletin (通报, seed art. 26) rendered from the hand-worked April of test_metrics_indicators, and its
export to PDF/PNG (export.py: command line, file name, errors; a stand-in browser script, no Chromium)."""
from __future__ import annotations

import asyncio
import re
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import pytest

from services.metrics.bulletin import gather, grouped_bars, rate_chart, render
from services.metrics.export import Exporter, ExportSettings, browser_command, content_disposition, find_browser
from shared.config import ConfigError
from shared.http.errors import ApiError
from tests.unit.test_metrics_indicators import POLICY, Metrics, april_2025, day_ticks, raised


async def test_bulletin_shows_indicators_against_targets_and_team_workload_and_alerts():
    m = Metrics()
    await m.in_batches(april_2025() + day_ticks("2025-04-01", "2025-05-01"))
    await m.run(raised("node.notice.overdue:（2025）豫0481执9101号", "node.notice", "quick"))
    data = await gather(m.store, POLICY, "2025-04", date(2025, 4, 30))
    page = render(POLICY, "2025-04", date(2025, 4, 30), data)
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert "执行质效通报（2025年4月）" in page and "截至2025-04-30" in page
    for indicator in POLICY.indicators:
        assert indicator.name_zh in page
    assert "66.67%" in page and "94.2天" in page      # closure_rate, avg_days_to_close (court)
    assert "6 / 9" in page                            # closure_rate numerator / denominator
    assert "未达标" in page                           # zb_qualified_rate 50% < 90%
    assert page.count("<svg") == 3 and "<script" not in page
    # team workload: quick had 2 open at the start, 2 filed, 1 closed; fine 3, 2, 5
    assert re.search(r"<td>quick</td><td class=\"num\">2</td><td class=\"num\">2</td><td class=\"num\">1</td>", page)
    assert re.search(r"<td>fine</td><td class=\"num\">3</td><td class=\"num\">2</td><td class=\"num\">5</td>", page)
    assert "node.notice" in page and "逾期" in page


def test_charts_escape_text_and_show_missing_values():
    svg = rate_chart([("<b>结案率</b>", None, 0.9, "higher"), ("终本率", 0.3, None, "lower")], "标题&")
    assert "&lt;b&gt;" in svg and "标题&amp;" in svg and "无数据（分母为0）" in svg
    assert "暂无数据" in grouped_bars([], [], "空")


# -- export to PDF / PNG (services/metrics/export.py) ---------------------------------------------------

FAKE_BROWSER = '''#!{python}
"""A stand-in browser: behaves as told by FAKE_MODE, logs its run to FAKE_LOG."""
import os, sys, time
mode = os.environ.get("FAKE_MODE", "ok")
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(f"start {{time.monotonic()}} {{' '.join(sys.argv[1:])}}\\n")
if mode == "hang":
    time.sleep(60)
if mode == "crash":
    print("renderer crashed", file=sys.stderr)
    sys.exit(3)
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
for arg in sys.argv[1:]:
    if arg.startswith("--print-to-pdf="):
        open(arg.split("=", 1)[1], "wb").write(b"%PDF-1.4 fake")
    if arg.startswith("--screenshot="):
        open(arg.split("=", 1)[1], "wb").write(b"\\x89PNG fake")
if "--dump-dom" in sys.argv:
    print('<html><body data-ecc-height="1234"></body></html>')
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(f"end {{time.monotonic()}}\\n")
'''


@pytest.fixture
def fake_browser(tmp_path, monkeypatch):
    path = tmp_path / "bin" / "chromium"
    path.parent.mkdir()
    path.write_text(FAKE_BROWSER.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "runs.log"))
    return path


def runs(tmp_path) -> list[str]:
    return (tmp_path / "runs.log").read_text(encoding="utf-8").splitlines()


def test_content_disposition_names_the_file_in_chinese_with_an_ascii_fallback():
    header = content_disposition("2025-04", "pdf")
    assert header.startswith("attachment; ") and 'filename="bulletin-2025-04.pdf"' in header
    encoded = re.search(r"filename\*=UTF-8''(\S+)$", header).group(1)
    assert encoded.isascii() and unquote(encoded) == "通报-2025-04.pdf"
    assert unquote(re.search(r"''(\S+)$", content_disposition("2025", "png")).group(1)) == "通报-2025.png"


def test_browser_command_is_an_argv_without_network_or_shell(tmp_path):
    page, profile = tmp_path / "bulletin.html", tmp_path / "profile"
    pdf = browser_command("/usr/bin/chromium", page, profile, output=tmp_path / "b.pdf", fmt="pdf")
    assert pdf[0] == "/usr/bin/chromium" and pdf[-1] == page.as_uri() and pdf[-1].startswith("file:///")
    assert "--headless" in pdf and "--host-resolver-rules=MAP * ~NOTFOUND" in pdf
    assert f"--user-data-dir={profile}" in pdf and f"--print-to-pdf={tmp_path / 'b.pdf'}" in pdf
    assert "--no-pdf-header-footer" in pdf and "--no-sandbox" not in pdf
    png = browser_command("chromium", page, profile, output=tmp_path / "b.png", fmt="png", height=2750, as_root=True)
    assert "--window-size=1120,2750" in png and f"--screenshot={tmp_path / 'b.png'}" in png and "--no-sandbox" in png
    measure = browser_command("chromium", page, profile)
    assert "--dump-dom" in measure and not any(a.startswith(("--screenshot", "--print-to-pdf")) for a in measure)


def test_find_browser_honours_ecc_chromium_then_searches_path(tmp_path, monkeypatch, fake_browser):
    assert find_browser(str(fake_browser)) == str(fake_browser)
    assert find_browser(str(tmp_path / "no-such-chromium")) is None
    (tmp_path / "plain-file").write_text("not executable")
    assert find_browser(str(tmp_path / "plain-file")) is None
    monkeypatch.setenv("PATH", str(fake_browser.parent))
    assert find_browser(None) == str(fake_browser)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_browser(None) is None


def test_export_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("ECC_CHROMIUM", "/opt/chrome/chrome")
    monkeypatch.setenv("ECC_EXPORT_TIMEOUT_SECONDS", "12.5")
    monkeypatch.setenv("ECC_EXPORT_CONCURRENCY", "3")
    assert ExportSettings.from_env() == ExportSettings("/opt/chrome/chrome", 12.5, 3)
    monkeypatch.setenv("ECC_EXPORT_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="ECC_EXPORT_CONCURRENCY"):
        ExportSettings.from_env()
    monkeypatch.setenv("ECC_EXPORT_CONCURRENCY", "0")
    with pytest.raises(ConfigError):
        ExportSettings.from_env()


async def test_no_browser_is_a_bilingual_503(tmp_path):
    with pytest.raises(ApiError) as caught:
        await Exporter(ExportSettings(browser=str(tmp_path / "missing"))).export("<html></html>", "pdf")
    err = caught.value
    assert err.status == 503 and err.error == "export_unavailable"
    assert "ECC_CHROMIUM is set" in err.message and "format=html" in err.message and "无头 Chromium" in err.message_zh
    assert str(tmp_path) not in err.message + err.message_zh  # no host path in the answer


async def test_pdf_and_png_come_from_the_browser_run_on_a_private_file(tmp_path, fake_browser):
    exporter = Exporter(ExportSettings(browser=str(fake_browser)))
    assert await exporter.export("<html><body>通报</body></html>", "pdf") == b"%PDF-1.4 fake"
    assert await exporter.export("<html><body>通报</body></html>", "png") == b"\x89PNG fake"
    starts = [line for line in runs(tmp_path) if line.startswith("start")]
    assert len(starts) == 3  # pdf; png = measure + screenshot
    assert "--dump-dom" in starts[1] and "measure.html" in starts[1]
    assert "--window-size=1120,1234" in starts[2] and "bulletin.html" in starts[2]
    work = re.search(r"file://(\S+)/bulletin.html", starts[0]).group(1)
    assert "ecc-bulletin-" in work and not Path(work).exists()  # the temp dir is gone afterwards


async def test_a_crashing_browser_is_a_503_not_a_trace(tmp_path, fake_browser, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "crash")
    with pytest.raises(ApiError) as caught:
        await Exporter(ExportSettings(browser=str(fake_browser))).export("<html></html>", "pdf")
    assert caught.value.status == 503 and caught.value.error == "export_failed" and "3" in caught.value.message


async def test_a_hanging_browser_is_killed_at_the_deadline(tmp_path, fake_browser, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "hang")
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        await Exporter(ExportSettings(browser=str(fake_browser), timeout_seconds=1.0)).export("<html></html>", "pdf")
    assert caught.value.status == 503 and caught.value.error == "export_timeout"
    assert time.monotonic() - started < 10  # not the fake's 60 s
    assert not any(line.startswith("end") for line in runs(tmp_path))


async def test_renders_beyond_the_concurrency_limit_wait_for_a_slot(tmp_path, fake_browser, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    exporter = Exporter(ExportSettings(browser=str(fake_browser), concurrency=1))
    await asyncio.gather(*(exporter.export("<html></html>", "pdf") for _ in range(3)))
    events = [(line.split()[0], float(line.split()[1])) for line in runs(tmp_path)]
    assert [kind for kind, _ in events] == ["start", "end"] * 3  # never two browsers at once
