"""Bulletin export (通报导出): the bulletin's HTML rendered to PDF or PNG by headless Chromium.

`GET /bulletin?period=2025-04&format=pdf|png` renders the same page as the HTML answer. The browser
runs as a subprocess (argv, never a shell) on a file in a private temporary directory, with its own
throw-away profile, a deadline, no DNS (`--host-resolver-rules`) and no background networking; the
page itself is self-contained (inline SVG and CSS, no script), so it needs no network. At most
`ECC_EXPORT_CONCURRENCY` renders run at once (each is a whole browser: ~1.5 s here).

A PNG is a screenshot of the whole page: headless Chromium captures only its window, so a first
run measures the page height (`--dump-dom` of a copy with a one-line script that writes the
height into the DOM) and a second one takes the screenshot at that height.

Configuration:
    ECC_CHROMIUM                  browser binary (path or name); default: the first of chromium,
                                  chromium-headless-shell, google-chrome found on PATH
    ECC_EXPORT_TIMEOUT_SECONDS    deadline of one export, waiting for a slot included (30)
    ECC_EXPORT_CONCURRENCY        renders at once (2)

No browser, a browser that fails or a deadline passed: 503 with a bilingual message, never a trace.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from shared.config import env_float, env_int
from shared.http.errors import ApiError
from shared.logging import get_logger

log = get_logger()

BROWSERS = ("chromium", "chromium-headless-shell", "google-chrome")
MEDIA_TYPES = {"pdf": "application/pdf", "png": "image/png"}
PAGE_WIDTH = 1120  # the bulletin's max-width 1080 px plus its padding
MAX_PNG_HEIGHT = 16384  # Chromium's largest screenshot surface; a longer page is cut there
MEASURE_SCRIPT = ('<script>document.body.setAttribute("data-ecc-height",'
                  'String(Math.ceil(document.documentElement.scrollHeight)))</script>')
HEIGHT = re.compile(r'data-ecc-height="([0-9]+)"')


@dataclass(frozen=True)
class ExportSettings:
    browser: str | None = None  # ECC_CHROMIUM; None: search BROWSERS on PATH
    timeout_seconds: float = 30.0
    concurrency: int = 2

    @classmethod
    def from_env(cls) -> ExportSettings:
        return cls(browser=os.environ.get("ECC_CHROMIUM") or None,
                   timeout_seconds=env_float("ECC_EXPORT_TIMEOUT_SECONDS", cls.timeout_seconds),
                   concurrency=env_int("ECC_EXPORT_CONCURRENCY", cls.concurrency))


def find_browser(configured: str | None) -> str | None:
    """The browser's absolute path: the configured one if it is an executable, else the first on PATH."""
    if configured:
        return shutil.which(configured)  # a path is checked as is, a bare name searched on PATH
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_command(browser: str, page: Path, profile: Path, *, output: Path | None = None, fmt: str = "pdf",
                    height: int = 0, as_root: bool = False) -> list[str]:
    """argv of one headless run: print `page` to `output` (pdf), screenshot it (png), or dump its DOM."""
    argv = [browser, "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update", "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}"]
    if as_root:
        argv.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox on
    if output is None:
        argv += [f"--window-size={PAGE_WIDTH},900", "--dump-dom"]
    elif fmt == "pdf":
        argv += ["--no-pdf-header-footer", f"--print-to-pdf={output}"]
    else:
        argv += [f"--window-size={PAGE_WIDTH},{height}", f"--screenshot={output}"]
    return [*argv, page.as_uri()]


def content_disposition(period: str, fmt: str) -> str:
    """`attachment` named 通报-<period>.<fmt> (RFC 6266/5987), with an ASCII name for old clients."""
    name = f"通报-{period}.{fmt}"
    return f"attachment; filename=\"bulletin-{period}.{fmt}\"; filename*=UTF-8''{quote(name, safe='')}"


def unavailable(configured: str | None) -> ApiError:
    # The configured path goes to the log, not to the caller (no host details in answers).
    log.warning("bulletin_export_no_browser", ecc_chromium=configured, searched=None if configured else BROWSERS)
    where = "ECC_CHROMIUM is set but not an executable" if configured else f"none of {', '.join(BROWSERS)} is on PATH"
    where_zh = "ECC_CHROMIUM 所指不是可执行文件" if configured else f"PATH 中未找到 {'、'.join(BROWSERS)}"
    return ApiError(
        503, "export_unavailable",
        f"PDF/PNG export needs headless Chromium on the metrics host ({where}); "
        "the HTML bulletin (format=html) works without it.",
        f"导出 PDF/PNG 需要指标服务主机安装无头 Chromium（{where_zh}）；"
        "HTML 版通报（format=html）不受影响。")


def failed(reason: str) -> ApiError:
    return ApiError(503, "export_failed", f"The browser could not render the bulletin ({reason}); retry shortly.",
                    f"浏览器未能生成通报文件（{reason}），请稍后重试。")


class Exporter:
    """Renders bulletin HTML to PDF/PNG bytes; a semaphore bounds the browsers running at once."""

    def __init__(self, settings: ExportSettings | None = None) -> None:
        self.settings = settings or ExportSettings()
        self._slots = asyncio.Semaphore(self.settings.concurrency)

    async def export(self, html: str, fmt: str) -> bytes:
        if fmt not in MEDIA_TYPES:
            raise ValueError(f"unknown export format {fmt!r}")
        browser = find_browser(self.settings.browser)
        if browser is None:
            raise unavailable(self.settings.browser)
        started = time.monotonic()
        deadline = started + self.settings.timeout_seconds
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.settings.timeout_seconds)
        except TimeoutError:
            raise ApiError(503, "export_busy", "Too many bulletin exports at once; retry shortly.",
                           "同时导出的通报过多，请稍后重试。") from None
        try:
            data = await self._render(browser, html, fmt, deadline)
        finally:
            self._slots.release()
        log.info("bulletin_exported", format=fmt, bytes=len(data), ms=round((time.monotonic() - started) * 1000))
        return data

    async def _render(self, browser: str, html: str, fmt: str, deadline: float) -> bytes:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        with tempfile.TemporaryDirectory(prefix="ecc-bulletin-", ignore_cleanup_errors=True) as tmp:
            work = Path(tmp)
            page, profile, output = work / "bulletin.html", work / "profile", work / f"bulletin.{fmt}"
            page.write_text(html, encoding="utf-8")
            height = 0
            if fmt == "png":
                probe = work / "measure.html"
                probe.write_text(html.replace("</body>", MEASURE_SCRIPT + "</body>", 1), encoding="utf-8")
                dom = await run(browser_command(browser, probe, profile, as_root=as_root), deadline)
                found = HEIGHT.search(dom)
                if not found:
                    raise failed("page height not measured")
                height = max(1, min(int(found.group(1)), MAX_PNG_HEIGHT))
            await run(browser_command(browser, page, profile, output=output, fmt=fmt, height=height,
                                      as_root=as_root), deadline)
            data = output.read_bytes() if output.exists() else b""
            if not data:
                raise failed("no output file")
            return data


async def run(argv: list[str], deadline: float) -> str:
    """Run one browser to completion before `deadline` (monotonic); its stdout. Kills the whole
    process group (renderer and GPU helpers too) on timeout and after exit."""
    timeout = deadline - time.monotonic()
    if timeout <= 0:
        raise timeout_error()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        log.warning("bulletin_export_timeout", argv0=argv[0])
        raise timeout_error() from None
    finally:
        _kill_group(proc.pid)  # a helper process outliving the browser must not pile up
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        log.warning("bulletin_export_failed", argv0=argv[0], returncode=proc.returncode, stderr=" | ".join(tail))
        raise failed(f"exit status {proc.returncode}")
    return stdout.decode("utf-8", "replace")


def timeout_error() -> ApiError:
    return ApiError(503, "export_timeout", "Rendering the bulletin took too long; retry shortly.",
                    "生成通报文件超时，请稍后重试。")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
