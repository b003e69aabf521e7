"""The docs/sbmgr.md walkthrough, end to end with the real commands and the bundled sample configs.

The sample configs point at /tmp/heka-demo and the fixed ports 5565/4352; the test uses copies where
only those are replaced (a tmp directory, free ports), so two runs never collide.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

from conftest import PROJECT_ROOT, SAMPLE_LOGS, free_port, heka_cmd, run_heka

SANDBOX = SAMPLE_LOGS / "sandbox"
LINES = 600  # a slice of the sample access log keeps the run short


def copy_config(name: str, tmp_path, tls_port: int, dash_port: int):
    text = (SANDBOX / name).read_text()
    assert "/tmp/heka-demo" in text
    text = text.replace("/tmp/heka-demo", str(tmp_path / "demo"))
    text = text.replace("127.0.0.1:5565", f"127.0.0.1:{tls_port}").replace("127.0.0.1:4352",
                                                                          f"127.0.0.1:{dash_port}")
    out = tmp_path / name
    out.write_text(text)
    return out


def api(dash_port: int, path: str = "/api/status"):
    with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def start_serve(config, dash_port: int) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(heka_cmd("serve", "--config", config), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=PROJECT_ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"heka serve exited: {proc.stderr.read().decode()}")
        try:
            api(dash_port)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("heka serve did not start in 30 s")


def stop_serve(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.stderr.read().decode()


def cbuf_total(dash_port: int) -> float:
    sb = api(dash_port, "/api/sandboxes/SandboxManager-StatusCounter")
    if not sb["outputs"]:
        return -1
    return sum(float(v) for line in sb["outputs"][0]["text"].splitlines()[1:] for v in line.split("\t")
               if v != "nan")


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_walkthrough(tmp_path, heka_here):
    tls_port, dash_port = free_port(), free_port()
    serve_yaml = copy_config("serve.yaml", tmp_path, tls_port, dash_port)
    sbmgr_toml = copy_config("sbmgr.toml", tmp_path, tls_port, dash_port)
    certs = tmp_path / "demo" / "certs"
    assert run_heka("certs", certs).returncode == 0

    proc = start_serve(serve_yaml, dash_port)
    try:
        p = run_heka("sbmgr", "--config", sbmgr_toml, "load", "sample_logs/sandbox/status_counter.lua",
                     "--scriptconfig", "sample_logs/sandbox/status_counter.toml", cwd=PROJECT_ROOT)
        assert p.returncode == 0, p.stderr.decode()
        assert b"loaded SandboxManager-StatusCounter: running" in p.stderr
        # a second copy under another section name, to be unloaded before the restart
        other = tmp_path / "other.toml"
        other.write_text((SANDBOX / "status_counter.toml").read_text().replace("StatusCounter", "Other"))
        p = heka_here("sbmgr", "--config", sbmgr_toml, "load", SANDBOX / "status_counter.lua",
                      "--scriptconfig", other)  # in-process: the real-process path was just shown
        assert p.returncode == 0, p.stderr.decode()

        access = tmp_path / "access.log"
        with open(SAMPLE_LOGS / "nginx" / "access.log") as src:
            access.write_text("".join(next(src) for _ in range(LINES)))
        # heka decode nginx access.log --format heka | heka send tls://... (both start at once)
        decode = subprocess.Popen(heka_cmd("decode", "nginx", access, "--format", "heka"),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT)
        send = subprocess.Popen(heka_cmd("send", f"tls://127.0.0.1:{tls_port}", "--ca", certs / "ca.pem",
                                         "--cert", certs / "client.pem", "--key", certs / "client-key.pem",
                                         "--wait", "60", "--settle", "0.2"),
                                stdin=decode.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                cwd=PROJECT_ROOT)
        decode.stdout.close()
        try:
            assert send.wait(timeout=120) == 0, send.stderr.read().decode()
            assert decode.wait(timeout=60) == 0
        finally:
            for child in (decode, send):
                if child.poll() is None:
                    child.kill()
                    child.wait()
            send.stderr.close()
        # the dashboard draws what the filter counted (it reports once a second)
        assert wait_for(lambda: cbuf_total(dash_port) == LINES), cbuf_total(dash_port)
        page = urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/", timeout=5).read().decode()
        assert 'data-name="SandboxManager-StatusCounter"' in page and 'class="cbuf-chart"' in page

        p = heka_here("sbmgr", "--config", sbmgr_toml, "unload", "Other")
        assert p.returncode == 0, p.stderr.decode()
        # restart: the loaded filter comes back with its preserved counts, the unloaded one does not
        stop_serve(proc)
        proc = start_serve(serve_yaml, dash_port)
        assert [sb["name"] for sb in api(dash_port)["sandboxes"]] == ["SandboxManager-StatusCounter"]
        assert wait_for(lambda: cbuf_total(dash_port) == LINES), cbuf_total(dash_port)
        files = sorted(p.name for p in (tmp_path / "demo" / "state" / "sbxmgrs").iterdir())
        assert files == ["SandboxManager-StatusCounter.lua", "SandboxManager-StatusCounter.toml"]
    finally:
        log = stop_serve(proc)
    assert "SandboxManager: restored SandboxManager-StatusCounter" in log, log
