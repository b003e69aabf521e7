"""The dashboard page in headless Chromium: a remotely loaded status_counter and its chart."""

from __future__ import annotations

import shutil
import subprocess
import time

from conftest import SAMPLE_LOGS

from hekacli.framing import frame
from hekacli.message import Field, Message, ValueType
from hekacli.sbmgr import build_control_message, client_ssl, send_control, wait_for_outcome
from hekacli.transport import send_framed

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STATUSES = [200] * 30 + [304] * 6 + [404] * 9 + [500] * 3  # 48 messages


def chromium(user_data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={user_data_dir}", *args],
        capture_output=True, timeout=90)


def test_dashboard_lists_the_sandbox_and_draws_its_chart(tmp_path, start_daemon, client_config):
    with start_daemon(tmp_path / "state", max_filters=1) as (d, dash, dash_url):
        cfg = client_config(d.urls[0])
        sample = SAMPLE_LOGS / "sandbox"
        msg = build_control_message("load", script=(sample / "status_counter.lua").read_text(),
                                    config=(sample / "status_counter.toml").read_text())
        send_control(cfg, [msg])
        assert wait_for_outcome(dash, msg.uuid_string, 15).ok

        # nginx access messages spread over the last two hours, sent unsigned over the same TLS listener
        now = time.time_ns()
        data = b""
        for i, status in enumerate(STATUSES):
            m = Message.new(type="nginx.access", timestamp=now - (i % 3) * 3600 * 10**9)
            m.fields.append(Field("status", ValueType.INTEGER, "", [status]))
            data += frame(m)
        send_framed(d.urls[0], data, ssl=client_ssl(cfg))

        def counted():
            sb = dash.get_json("/api/sandboxes/SandboxManager-StatusCounter")
            return sb if sb["processed"] == len(STATUSES) and sb["outputs"] else None

        deadline = time.monotonic() + 20
        while not (sb := counted()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sb, "the filter did not count the messages and report within 20 s"
        # a tick after the last message: the chart shows all of them
        time.sleep(1.2)
        cbuf = dash.get_json("/api/sandboxes/SandboxManager-StatusCounter")["outputs"][0]
        assert (cbuf["name"], cbuf["type"]) == ("HTTP Status", "cbuf")
        rows = [line.split("\t") for line in cbuf["text"].splitlines()[1:]]
        totals = [sum(float(r[c]) for r in rows if r[c] != "nan") for c in range(6)]
        assert totals == [0, 30, 6, 9, 3, 0]

        dom = chromium(tmp_path / "ud1", "--dump-dom", dash_url + "/")
        page = dom.stdout.decode()
        assert dom.returncode == 0 and "<title>heka serve: sandboxes</title>" in page
        row = page.split('data-name="SandboxManager-StatusCounter"', 1)[1].split("</tr>", 1)[0]
        assert ">running<" in row and f">{len(STATUSES)}<" in row and "SandboxManager" in row
        figure = '<figure class="output cbuf" data-output="HTTP Status">'
        chart = page.split(figure, 1)[1].split("</figure>", 1)[0]
        assert 'class="cbuf-chart"' in chart
        # every status class that was seen gets a line
        drawn = [part.split('"', 1)[0] for part in chart.split('data-column="')[1:]]
        assert {"HTTP_2xx", "HTTP_3xx", "HTTP_4xx", "HTTP_5xx"} <= set(drawn)

        shot = tmp_path / "dashboard.png"
        png = chromium(tmp_path / "ud2", f"--screenshot={shot}", "--window-size=1000,900", dash_url + "/")
        assert png.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
