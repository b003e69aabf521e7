# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""Sandbox filters in a real `heka serve`: messages in over TCP (heka inject and framed batches),
outputs and terminations out on stdout; bad sandboxes are terminated while the others keep going."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, SAMPLE_LOGS, free_port, heka_cmd, run_heka

from hekacli.framing import frame
from hekacli.message import Message
from hekacli.transport import send_framed

BASE_TS = 1_700_000_000 * 10**9
STATUSES = [200, 200, 404, 500, 301, 200, 503, 200, 302, 200]


def _batch(n: int) -> bytes:
    out = bytearray()
    for i in range(n):
        m = Message.new(type="nginx.access", timestamp=BASE_TS + i * 10**9, hostname=f"web{i % 2}", logger="nginx")
        m.add_field("status", STATUSES[i % len(STATUSES)])
        m.add_field("remote_addr", f"10.0.0.{i % 3}")
        out += frame(m)
    return bytes(out)


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"heka serve exited early: {proc.stderr.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("heka serve did not start listening")


def _serve(config: Path, count: int, send) -> tuple[list[dict], str]:
    """Run `heka serve --config config --count count`, call send(url), return (stdout records, stderr)."""
    port = int(config.read_text().split("127.0.0.1:")[1].split()[0])
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(heka_cmd("serve", "--config", str(config), "--count", str(count)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=PROJECT_ROOT)
    try:
        _wait_listening(proc, port)
        send(f"tcp://127.0.0.1:{port}")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()], err.decode()


BAD = {
    "Loop": "function process_message() while true do end end",
    "Bomb": 'require "string"\nt = {}\nfunction process_message() for i = 1, 100 do '
            't[i] = string.rep("x", 1024 * 1024) .. i end return 0 end',
    "Exec": 'require "os"\nfunction process_message() os.execute("touch {marker}") return 0 end',
    "Recurse": "local function f() return 1 + f() end\nfunction process_message() return f() end",
}
REASONS = {
    "Loop": "process_message() instruction_limit exceeded",
    "Bomb": "process_message() not enough memory",
    # Lua shortens long chunk names to "...<end of path>", as in Heka
    "Exec": "process_message() ...exec.lua:2: attempt to call field 'execute' (a nil value)",
    "Recurse": "process_message() ...recurse.lua:1: stack overflow",
}


@pytest.fixture
def serve_config(tmp_path):
    port = free_port()
    marker = tmp_path / "pwned"
    bad = []
    for name, src in BAD.items():
        p = tmp_path / f"{name.lower()}.lua"
        p.write_text(src.replace("{marker}", str(marker)))
        bad.append(f"  - name: {name}\n    script: {p}\n    message_matcher: \"Type == 'nginx.access'\"\n")
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"""listeners:
  - url: tcp://127.0.0.1:{port}
state_dir: {tmp_path / 'state'}
filters:
  - name: HttpStatus
    script: {SAMPLE_LOGS / 'sandbox' / 'http_status.lua'}
    message_matcher: "Type == 'nginx.access'"
    timer_event_on_shutdown: true
    config: {{rows: 20, sec_per_row: 1, alert_window: 5}}
  - name: TopAddr
    script: {SAMPLE_LOGS / 'sandbox' / 'top_items.lua'}
    message_matcher: "Type == 'nginx.access'"
    timer_event_on_shutdown: true
    config: {{message_variable: "Fields[remote_addr]", max_items: 2}}
  - name: Heartbeat
    script: {SAMPLE_LOGS / 'sandbox' / 'heartbeat.lua'}
    message_matcher: "Type == 'nginx.access' || Type == 'inject.message'"
    timer_event_on_shutdown: true
  - name: Counter
    script: {SAMPLE_LOGS / 'sandbox' / 'counter.lua'}
    message_matcher: "Type != 'heka.sandbox-output' && Type != 'heka.sandbox-terminated'"
    preserve_data: true
    timer_event_on_shutdown: true
""" + "".join(bad))
    return cfg, marker


def test_filters_in_serve(serve_config):
    cfg, marker = serve_config

    def send(url):
        send_framed(url, _batch(20))
        r = run_heka("inject", "--heka", url, "--hostname", "db1", "--payload", "beat")
        assert r.returncode == 0, r.stderr

    records, err = _serve(cfg, 21, send)
    outputs = {(r["Logger"], r.get("payload_name")): r["Payload"] for r in records
               if r["Type"] == "heka.sandbox-output"}
    # HttpStatus: 20 messages one second apart into 20 rows of 1 s
    cbuf = outputs[("HttpStatus", "HTTP Status")].splitlines()
    assert cbuf[0].startswith('{"time":1700000000,"rows":20,"columns":6,"seconds_per_row":1,')
    expected = []
    for i in range(20):
        row = ["nan"] * 6
        row[STATUSES[i % 10] // 100 - 1] = "1"
        expected.append("\t".join(row))
    assert cbuf[1:] == expected
    summary = outputs[("HttpStatus", "summary")]
    assert summary.startswith("2xx total 10 over 10 rows; 5xx per row 1.00; 5xx mann-whitney U=")
    assert outputs[("TopAddr", "Top Fields[remote_addr]")] == "Fields[remote_addr]\tCount\n10.0.0.0\t7\n10.0.0.1\t7\n"
    beats = json.loads(outputs[("Heartbeat", "heartbeat")])
    assert sorted(beats) == ["db1", "web0", "web1"]
    assert outputs[("Counter", "count")] == "21"
    # every bad sandbox was terminated with its reason, and nothing escaped
    terminated = {r["plugin"]: r["Payload"] for r in records if r["Type"] == "heka.sandbox-terminated"}
    for name, reason in REASONS.items():
        head, _, tail = reason.partition("...")
        got = terminated[name]
        assert got == reason if not tail else (got.startswith(head) and got.endswith(tail)), got
        assert f"{name}: terminated: " in err
    assert set(terminated) == set(BAD)
    assert not marker.exists()
    # the nginx messages themselves went through to the output too
    assert sum(r["Type"] == "nginx.access" for r in records) == 20


def test_preserve_data_survives_restart(serve_config):
    cfg, _ = serve_config

    def send(url):
        send_framed(url, _batch(3))

    records, _ = _serve(cfg, 3, send)
    assert [r["Payload"] for r in records if r.get("Logger") == "Counter"] == ["3"]
    assert (cfg.parent / "state" / "sandbox_preservation" / "Counter.data").exists()
    records, _ = _serve(cfg, 2, lambda url: send_framed(url, _batch(2)))
    assert [r["Payload"] for r in records if r.get("Logger") == "Counter"] == ["5"]


def test_bad_filter_config_is_one_line(tmp_path):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(f"listeners:\n  - url: tcp://127.0.0.1:{free_port()}\nfilters:\n  - name: X\n"
                   f"    script: {tmp_path / 'missing.lua'}\n")
    r = run_heka("serve", "--config", str(cfg), "--count", "1", timeout=60)
    assert r.returncode == 2
    assert r.stderr.decode().strip().count("\n") == 0
    assert "cannot open" in r.stderr.decode() and "missing.lua" in r.stderr.decode()
    bad = tmp_path / "bad.lua"
    bad.write_text("x = = 1\n")
    cfg.write_text(f"listeners:\n  - url: tcp://127.0.0.1:{free_port()}\nfilters:\n  - name: X\n    script: {bad}\n")
    r = run_heka("serve", "--config", str(cfg), "--count", "1", timeout=60)
    assert r.returncode == 5
    err = r.stderr.decode()
    assert err.startswith("heka: error: ") and err.count("\n") == 1
    assert "filter X: Init() " in err and "bad.lua:1: unexpected symbol near '='" in err  # Lua may shorten the path
