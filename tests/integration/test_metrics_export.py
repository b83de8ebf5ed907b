"""The bulletin exported to PDF and PNG by a real headless Chromium, from the service in-process
against the real embedded broker and database (the hand-worked April of the unit tests).

Needs a Chromium on PATH (`.ci/run` installs Debian's `chromium`): without one the test is skipped
locally and fails in CI. ECC_CHROMIUM points at a symlink to it, which the test then removes: the
next export must answer 503 with the bilingual message, not a trace.
"""
from __future__ import annotations

import os
import re
import struct
from urllib.parse import unquote

import pytest

from services.metrics.export import find_browser
from services.metrics.main import build
from shared.runtime.service import ServiceProcess
from tests.integration.harness import auth, running
from tests.integration.test_metrics import EVENTS, applied, publish_events

pytestmark = pytest.mark.integration

BROWSER = find_browser(None)
if BROWSER is None and os.environ.get("CI"):
    raise RuntimeError("CI must provide headless Chromium for the bulletin export test (.ci/run installs it)")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RENDER_TIMEOUT = 120  # a whole browser per render; slow on 2 shared cores, the service's own deadline is 30 s


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(BROWSER is None, reason="no chromium / chromium-headless-shell / google-chrome on PATH")
async def test_bulletin_exports_to_pdf_and_png_and_503_without_a_browser(settings, tmp_path, monkeypatch):
    link = tmp_path / "chromium"
    link.symlink_to(BROWSER)
    monkeypatch.setenv("ECC_CHROMIUM", str(link))
    process = ServiceProcess("metrics", settings)
    app, _ = build(process)
    async with running(process, app) as client:
        await publish_events(settings, EVENTS)
        await applied(process, EVENTS)
        query = {"period": "2025-04"}
        html = await client.get("/bulletin", params=query, headers=auth("case_handler"))
        pdf = await client.get("/bulletin", params={**query, "format": "pdf"}, headers=auth("case_handler"),
                               timeout=RENDER_TIMEOUT)
        png = await client.get("/bulletin", params={**query, "format": "png"}, headers=auth("bureau_chief"),
                               timeout=RENDER_TIMEOUT)
        unknown = await client.get("/bulletin", params={**query, "format": "docx"}, headers=auth("operator"))
        anonymous = await client.get("/bulletin", params={**query, "format": "pdf"})
        link.unlink()
        gone = await client.get("/bulletin", params={**query, "format": "pdf"}, headers=auth("operator"))

    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "66.67%" in html.text  # the page being exported carries the April figures

    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert 15_000 < len(body) < 5_000_000, len(body)  # embedded CJK font subset, charts; not a blank page
    assert len(re.findall(rb"/Type\s*/Page\b", body)) >= 1
    disposition = pdf.headers["content-disposition"]
    assert 'filename="bulletin-2025-04.pdf"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "通报-2025-04.pdf"

    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    width, height = png_size(png.content)
    assert width == 1120 and height > 900, (width, height)  # the whole page, not just the first screen
    assert 20_000 < len(png.content) < 20_000_000, len(png.content)
    assert unquote(png.headers["content-disposition"].split("filename*=UTF-8''")[1]) == "通报-2025-04.png"

    assert unknown.status_code == 422 and anonymous.status_code == 401

    assert gone.status_code == 503, gone.text
    error = gone.json()
    assert error["error"] == "export_unavailable" and "ECC_CHROMIUM" in error["message"]
    assert "Chromium" in error["message_zh"] and "Traceback" not in gone.text
