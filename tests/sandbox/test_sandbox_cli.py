# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""`heka sandbox run`: payloads and injected messages on stdout, ticks in message time, exit codes."""

from __future__ import annotations

import json

from conftest import SAMPLE_LOGS, run_heka

from hekacli.framing import frame, read_stream
from hekacli.message import Message

BASE = 1_700_000_000 * 10**9


def _input(n: int, step_s: int = 10) -> bytes:
    out = bytearray()
    for i in range(n):
        m = Message.new(type="nginx.access", timestamp=BASE + i * step_s * 10**9, hostname="web1")
        m.add_field("status", [200, 404, 500][i % 3])
        m.add_field("remote_addr", f"10.0.0.{i % 2}")
        out += frame(m)
    return bytes(out)


def test_run_payloads_with_toml_config(tmp_path):
    toml = tmp_path / "filter.toml"
    toml.write_text('[HttpStatus]\ntype = "SandboxFilter"\nfilename = "http_status.lua"\nticker_interval = 60\n'
                    'message_matcher = "Fields[status] != 404"\n[HttpStatus.config]\nrows = 3\nsec_per_row = 60\n')
    data = tmp_path / "in.heka"
    data.write_bytes(_input(12))  # 120 s of messages, one every 10 s
    r = run_heka("sandbox", "run", SAMPLE_LOGS / "sandbox" / "http_status.lua", "--config", toml, data)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    # one tick at +60 s (crossed by the message at +60 s), then one at the end of input (+110 s)
    assert out.count("# cbuf HTTP Status\n") == 2 and out.count("# txt summary\n") == 2
    last = out.split("# cbuf HTTP Status\n")[-1].split("# txt summary\n")
    lines = last[0].splitlines()
    assert lines[0].startswith('{"time":1699999980,"rows":3,"columns":6,"seconds_per_row":60,')
    # BASE is 20 s past a minute: rows hold offsets -20..39 s (200,500,200), 40..99 s (500,200,500,200)
    # and 100..159 s (500; the 404s are not matched)
    assert lines[1:] == ["nan\t2\tnan\tnan\t1\tnan", "nan\t2\tnan\tnan\t2\tnan", "nan\tnan\tnan\tnan\t1\tnan"]
    assert last[1] == "2xx total 4 over 2 rows; 5xx per row 1.33\n"
    assert "8 processed, 4 not matched, 0 failed" in r.stderr.decode()


def test_run_from_stdin_injected_messages_as_jsonl(tmp_path):
    script = tmp_path / "f.lua"
    script.write_text('n = 0\nfunction process_message() n = n + 1 return 0 end\n'
                      'function timer_event(ns) inject_message({Type = "count", Payload = tostring(n), '
                      'Fields = {n = n}}) end\n')
    r = run_heka("sandbox", "run", script, input=_input(5))
    assert r.returncode == 0, r.stderr
    (rec,) = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert (rec["Type"], rec["Logger"], rec["Payload"], rec["n"]) == ("heka.sandbox.count", "f", "5", 5.0)


def test_run_format_heka(tmp_path):
    import io

    r = run_heka("sandbox", "run", SAMPLE_LOGS / "sandbox" / "counter.lua", "--format", "heka", input=_input(4))
    assert r.returncode == 0, r.stderr
    (rec,) = list(read_stream(io.BytesIO(r.stdout)))
    m = rec.message()
    assert (m.type, m.payload, m.get_field("payload_type")) == ("heka.sandbox-output", "4", "txt")


def test_run_terminated_exit_5(tmp_path):
    script = tmp_path / "loop.lua"
    script.write_text("function process_message() while true do end end\n")
    r = run_heka("sandbox", "run", script, input=_input(2))
    assert r.returncode == 5
    assert r.stderr.decode() == "heka: error: sandbox loop terminated: process_message() instruction_limit exceeded\n"


def test_run_failures_exit_1_and_load_error(tmp_path):
    script = tmp_path / "fail.lua"
    script.write_text("function process_message() return -1, 'no good' end\n")
    r = run_heka("sandbox", "run", script, input=_input(3))
    assert r.returncode == 1
    assert "process_message failed 3 times; last: no good" in r.stderr.decode()
    bad = tmp_path / "bad.lua"
    bad.write_text("require 'nope'\n")
    r = run_heka("sandbox", "run", bad, "--module-dir", tmp_path, input=b"")
    assert r.returncode == 5
    assert r.stderr.decode().startswith(f"heka: error: Init() module 'nope' not found:\n\tno file '{tmp_path}/nope.lua'")


def test_run_module_dir_and_preserve(tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "util.lua").write_text("local M = {}\nfunction M.double(x) return 2 * x end\nreturn M\n")
    script = tmp_path / "f.lua"
    script.write_text('local util = require "util"\ntotal = 0\n'
                      'function process_message() total = total + util.double(1) return 0 end\n'
                      'function timer_event(ns) inject_payload("txt", "total", total) end\n')
    data = tmp_path / "f.data"
    for want in ("# txt total\n6\n", "# txt total\n12\n"):
        r = run_heka("sandbox", "run", script, "-M", mods, "--preserve", data, input=_input(3))
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode() == want


def test_decode_piped_into_sandbox_run(tmp_path):
    """`heka decode nginx --format heka` | `heka sandbox run`: status classes counted in Lua match the log."""
    import re
    from collections import Counter

    lines = (SAMPLE_LOGS / "nginx" / "access.log").read_text().splitlines(keepends=True)[:2000]
    log = tmp_path / "access.log"
    log.write_text("".join(lines))
    decoded = run_heka("decode", "nginx", "--format", "heka", log)
    assert decoded.returncode == 0, decoded.stderr
    script = tmp_path / "classes.lua"
    script.write_text('require "math"\nrequire "string"\nc = {}\n'
                      'function process_message() local s = read_message("Fields[status]")\n'
                      '  local k = math.floor(s / 100) c[k] = (c[k] or 0) + 1 return 0 end\n'
                      'function timer_event(ns) for k = 1, 5 do add_to_payload(string.format("%dxx=%d\\n", k, c[k] or 0)) end\n'
                      '  inject_payload("txt", "classes") end\n')
    r = run_heka("sandbox", "run", script, input=decoded.stdout)
    assert r.returncode == 0, r.stderr
    want = Counter(int(m.group(1)) // 100 for m in (re.search(r'" (\d{3}) ', ln) for ln in lines))
    assert r.stdout.decode() == "# txt classes\n" + "".join(f"{k}xx={want.get(k, 0)}\n" for k in range(1, 6))
