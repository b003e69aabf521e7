"""The HTML report opened in a real headless Chromium, driven over the DevTools protocol (pipe mode).

Checks: the page loads from file:// and makes no other request, logs no console error or exception,
has every panel with its table/chart, and renders to a non-blank screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import run_heka

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PANELS = (
    "overview",
    "panel-visitors",
    "panel-requests",
    "panel-static",
    "panel-not_found",
    "panel-hosts",
    "panel-os",
    "panel-browsers",
    "panel-browser_versions",
    "panel-visit_times",
    "panel-referrers",
    "panel-referring_sites",
    "panel-status_codes",
    "panel-time_served",
)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, user_data_dir: str) -> None:
        self._to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, self._from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies/events on fd 4 (set up in the child).
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(3, 4),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=self._wire_fds,
        )
        os.close(self._to_chrome_r)
        os.close(self._from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _wire_fds(self) -> None:  # runs in the child between fork and exec
        # Move both ends out of the way first so neither dup2 can clobber the other.
        r = fcntl.fcntl(self._to_chrome_r, fcntl.F_DUPFD, 100)
        w = fcntl.fcntl(self._from_chrome_w, fcntl.F_DUPFD, 100)
        os.dup2(r, 3)
        os.dup2(w, 4)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_chrome_r, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._to_chrome_w, self._from_chrome_r):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def html_report(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    res = run_heka("report", str(corpus.log), "--html", str(out))
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout == b""  # piped: only the HTML file is written
    assert f"wrote {out}" in res.stderr.decode()
    return out


def test_html_is_self_contained(html_report) -> None:
    text = html_report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower()
    # No resource is referenced: no src/href attributes at all, no CSS url() or @import.
    assert not re.search(r"\b(src|href|srcset|xlink:href)\s*=", text, re.I)
    assert "url(" not in text and "@import" not in text
    for pid in PANELS:
        assert f'id="{pid}"' in text, pid


def test_html_in_headless_chromium(html_report, tmp_path) -> None:
    profile = tempfile.mkdtemp(dir=tmp_path)
    dt = DevTools(profile)
    try:
        target = dt.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            dt.call(f"{domain}.enable", session=session)
        dt.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        dt.call("Page.navigate", {"url": html_report.as_uri()}, session=session)
        dt.wait_event("Page.loadEventFired")
        # DOM checks (the test's own script; the page has none).
        expr = (
            "JSON.stringify({ids: [...document.querySelectorAll('section')].map(s => s.id),"
            " tables: document.querySelectorAll('table').length,"
            " svgs: document.querySelectorAll('svg').length,"
            " bars: document.querySelectorAll('.bar').length,"
            " height: document.documentElement.scrollHeight, title: document.title})"
        )
        value = dt.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)[
            "result"
        ]["value"]
        dom = json.loads(value)
        shot = dt.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
        )
    finally:
        dt.close()
    assert set(PANELS) <= set(dom["ids"])
    assert dom["tables"] >= 12 and dom["svgs"] >= 3 and dom["bars"] >= 50
    assert dom["height"] > 2000
    assert "heka report" in dom["title"]
    requests = [
        e["params"]["request"]["url"] for e in dt.events if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requests == [html_report.as_uri()], requests
    errors = [
        e
        for e in dt.events
        if e.get("method") in ("Runtime.exceptionThrown",)
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
    ]
    assert errors == []
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000
    (html_report.parent / "report.png").write_bytes(png)
