"""`heka send`: framed and JSONL input, TLS, and the receiver (`heka serve`) killed with SIGKILL and
restarted mid-stream while records keep coming: every record arrives at least once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import free_port, heka_cmd, run_heka

from hekacli.flood.generator import FloodGenerator, build_templates
from hekacli.framing import read_stream

ENV = {**os.environ, "NO_COLOR": "1"}


def numbered(n: int) -> list[bytes]:
    templates, _ = build_templates(variable=False, static_size=40, ascii_only=True)
    gen = FloodGenerator(templates, None, run_id="send")
    return [gen.next(time.time_ns())[0] for _ in range(n)]


def seqs(*files: Path) -> list[int]:
    out: list[int] = []
    for f in files:
        if f.exists():
            with open(f, "rb") as fh:
                out += [r.message().get_field("flood_seq") for r in read_stream(fh)]
    return out


def test_send_survives_a_receiver_killed_and_restarted(fl, tmp_path):
    port = free_port()
    records = numbered(3000)
    one, two = tmp_path / "one.heka", tmp_path / "two.heka"
    serve1 = fl.start_serve(port, one)
    serve2 = None
    sender = subprocess.Popen(heka_cmd("send", f"tcp://127.0.0.1:{port}", "--queue-dir", str(tmp_path / "q"),
                                       "--settle", "1.0", "--backoff-initial", "0.05", "--backoff-max", "0.5",
                                       "--wait", "60", "--json"),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        for i in range(0, 1000, 100):  # a steady stream...
            sender.stdin.write(b"".join(records[i:i + 100]))
            sender.stdin.flush()
            time.sleep(0.03)
        fl.stop_proc(serve1, signal.SIGKILL)  # ...the receiver dies without a goodbye...
        for i in range(1000, 2000, 100):
            sender.stdin.write(b"".join(records[i:i + 100]))
            sender.stdin.flush()
            time.sleep(0.03)
        serve2 = fl.start_serve(port, two)  # ...and comes back on the same port
        for i in range(2000, 3000, 100):
            sender.stdin.write(b"".join(records[i:i + 100]))
            sender.stdin.flush()
            time.sleep(0.01)
        sender.stdin.close()
        sender.wait(90)
        out, err = sender.stdout.read(), sender.stderr.read()
        assert sender.returncode == 0, err.decode()
        summary = json.loads(out)
    finally:
        if sender.poll() is None:
            sender.kill()
        fl.stop_proc(serve1, signal.SIGKILL)
        if serve2 is not None:
            fl.stop_proc(serve2)
    got = seqs(one, two)
    assert set(got) == set(range(3000)), f"missing {sorted(set(range(3000)) - set(got))[:20]}"
    assert summary["records"] == 3000 and summary["connects"] >= 2 and summary["queue_bytes"] == 0


def in_process_serve(out: Path, **extra):
    from hekacli.serve.daemon import ServeDaemon

    return ServeDaemon({"listeners": ["tcp://127.0.0.1:0"], "output": {"path": str(out), "format": "heka"},
                        **extra}, log=lambda text: None).running()


def test_send_jsonl_and_framed_files(tmp_path):
    out = tmp_path / "out.heka"
    framed = tmp_path / "in.heka"
    framed.write_bytes(b"".join(numbered(50)))
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"Type": "app.log", "Payload": f"line {i}", "flood_run": "j",
                                         "flood_seq": 50 + i}) + "\n" for i in range(20)))
    with in_process_serve(out) as d:
        proc = run_heka("send", d.urls[0], str(framed), str(jsonl), "--settle", "0.2", timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(seqs(out)) == list(range(70))


def test_send_rejects_bad_jsonl_lines_by_number(tmp_path):
    out = tmp_path / "out.heka"
    with in_process_serve(out) as d:
        proc = run_heka("send", d.urls[0], "--settle", "0.1", "--json",
                        input='{"Payload": "ok"}\nnot json\n[1, 2]\n{"Payload": "ok too"}\n', timeout=60)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "<stdin>:2: rejected" in err and "<stdin>:3: rejected" in err
    assert json.loads(proc.stdout)["records"] == 2
    with open(out, "rb") as fh:
        assert [r.message().payload for r in read_stream(fh)] == ["ok", "ok too"]


def test_send_gives_up_after_wait_with_exit_4(tmp_path):
    proc = run_heka("send", f"tcp://127.0.0.1:{free_port()}", "--wait", "0.5", "--backoff-max", "0.2",
                    input=b"".join(numbered(3)), timeout=60)
    assert proc.returncode == 4
    assert b"not confirmed" in proc.stderr and b"Traceback" not in proc.stderr


def test_send_usage_error_is_one_line():
    proc = run_heka("send", "udp2://x:1", "--on-full", "drop-oldest", input=b"")
    assert proc.returncode == 2 and proc.stderr.startswith(b"heka: error:")

