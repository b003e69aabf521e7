"""`heka cat` / `heka-cat` end to end, on Heka's sample streams and on damaged ones."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

import pytest
from conftest import VECTORS, heka_cmd, run_heka

from hekacli.framing import Signer, frame
from hekacli.message import Field, Message, ValueType

MULTI = VECTORS / "heka" / "multi.dat"
PROTOBUF_LOG = VECTORS / "heka" / "protobuf.log"

FIRST_TXT = (
    "Timestamp: 2015-02-03 13:51:12.123352639 +0000 UTC\n"
    "Type: heka.httpdata.request\n"
    "Hostname: 127.0.0.1:57746\n"
    "Pid: 56854\n"
    "UUID: 7df9512e-9d97-46be-a7f9-56035eba4656\n"
    "Logger: TestInput\n"
    'Payload: {"test": 1}\n'
    "EnvVersion: \n"
    "Severity: 6\n"
    'Fields: [name:"Protocol" value_type:STRING representation:"" value_string:"HTTP/1.1"  '
    'name:"UserAgent" value_type:STRING representation:"" value_string:"curl/7.37.1"  '
    'name:"ContentType" value_type:STRING representation:"" '
    'value_string:"application/x-www-form-urlencoded" ]\n'
    "\n"
)
FIRST_JSON = (
    '{"uuid":"fflRLp2XRr6n+VYDXrpGVg==","timestamp":1422971472123352639,"type":"heka.httpdata.request",'
    '"logger":"TestInput","severity":6,"payload":"{\\"test\\": 1}","pid":56854,"hostname":"127.0.0.1:57746",'
    '"fields":[{"name":"Protocol","value_type":0,"representation":"","value_string":["HTTP/1.1"]},'
    '{"name":"UserAgent","value_type":0,"representation":"","value_string":["curl/7.37.1"]},'
    '{"name":"ContentType","value_type":0,"representation":"",'
    '"value_string":["application/x-www-form-urlencoded"]}]}'
)


def test_txt_format_as_heka_cat_prints_it(heka_inproc, utc) -> None:
    res = heka_inproc("cat", MULTI)
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert out.startswith(FIRST_TXT)
    assert out.count("\nSeverity: 6\n") == 50
    assert b"Processed: 50, matched: 50 messages" in res.stderr
    assert b"Input:" in res.stderr and b"Format:txt" in res.stderr


def test_json_format_as_heka_cat_prints_it(heka_inproc) -> None:
    res = heka_inproc("cat", "--format", "json", MULTI)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 50
    assert lines[0] == FIRST_JSON
    assert all(json.loads(x)["type"] == "heka.httpdata.request" for x in lines)


def test_jsonl_flat_records(heka_inproc) -> None:
    res = heka_inproc("cat", "-f", "jsonl", PROTOBUF_LOG)
    assert res.returncode == 0, res.stderr
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(recs) == 7
    r = recs[0]
    assert list(r)[:8] == ["Timestamp", "Type", "Logger", "Hostname", "Severity", "Pid", "Uuid", "EnvVersion"]
    assert r["Timestamp"].endswith("Z") and len(r["Timestamp"].split(".")[1]) == 10
    assert r["Type"] == "hekabench" and r["Severity"] == 0
    assert r["string0"] == "value0" and r["int1"] == 1 and r["bool0"] is True


def test_heka_format_is_byte_identical_and_count_prints_nothing(heka_inproc) -> None:
    res = heka_inproc("cat", "--format", "heka", PROTOBUF_LOG)
    assert res.returncode == 0
    assert res.stdout == PROTOBUF_LOG.read_bytes()
    res = heka_inproc("cat", "--format", "count", MULTI)
    assert res.returncode == 0 and res.stdout == b""
    assert b"Processed: 50, matched: 50 messages" in res.stderr


def test_offset_and_output_file(heka_inproc, tmp_path) -> None:
    data = MULTI.read_bytes()
    first_len = data.index(b"\x1e", 1)
    out = tmp_path / "out.heka"
    res = heka_inproc("cat", "--offset", str(first_len), "--format", "heka", "--output", out, MULTI)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == data[first_len:]
    assert b"Processed: 49, matched: 49 messages" in res.stderr
    # An offset into the middle of a record: the garbage is reported at its true offset.
    res = heka_inproc("cat", "--offset", "10", "-f", "count", MULTI)
    assert res.returncode == 1
    assert f"Corruption detected at offset: 10 bytes: {first_len - 10}".encode() in res.stderr
    assert b"Processed: 49, matched: 49 messages" in res.stderr


def test_garbage_between_records_reported_with_true_offsets(heka_inproc) -> None:
    a = frame(Message.new(type="a"))
    b = frame(Message.new(type="b"))
    stream = b"BOGUS" + a + b"\x1e\x05junk" + b + b"tail"
    res = heka_inproc("cat", "-f", "jsonl", "-", input=stream)
    assert res.returncode == 1
    assert [json.loads(x)["Type"] for x in res.stdout.splitlines()] == ["a", "b"]
    err = res.stderr.decode()
    assert "Corruption detected at offset: 0 bytes: 5" in err
    assert f"Corruption detected at offset: {5 + len(a)} bytes: 6" in err
    assert f"Corruption detected at offset: {11 + len(a) + len(b)} bytes: 4" in err
    assert "Processed: 2, matched: 2 messages" in err
    assert "Dropped: corrupt 3 (15 corrupt bytes)" in err


def test_undecodable_message_reported_and_counted(heka_inproc) -> None:
    bad = frame(b"\x0a\x10abc")  # a uuid entry longer than the message
    good = frame(Message.new(type="ok"))
    res = heka_inproc("cat", "-f", "jsonl", "-", input=bad + good)
    assert res.returncode == 1
    assert b"Error unmarshalling message at offset: 0 error:" in res.stderr
    assert b"Processed: 2, matched: 1 messages" in res.stderr
    assert b"undecodable 1" in res.stderr


def test_signed_records_are_shown_without_authentication(heka_inproc) -> None:
    rec = frame(Message.new(type="signed"), Signer("ops", 1, "sha1", b"k"))
    res = heka_inproc("cat", "-f", "heka", "-", input=rec)
    assert res.returncode == 0 and res.stdout == rec


def test_non_utf8_payload_is_printed_raw_in_txt_and_replaced_in_json(heka_inproc, utc) -> None:
    msg = Message(
        timestamp=0,
        payload=b"a\xffb".decode("utf-8", "surrogateescape"),
        fields=[Field("bin", ValueType.BYTES, "", [b"\x00\xff\n"])],
    )
    rec = frame(msg)
    txt = heka_inproc("cat", "-", input=rec)
    assert b"Payload: a\xffb\n" in txt.stdout
    assert b'value_bytes:"\\000\\377\\n" ' in txt.stdout
    assert b"Timestamp: 1970-01-01 00:00:00 +0000 UTC\n" in txt.stdout
    js = heka_inproc("cat", "-f", "json", "-", input=rec)
    assert b'"payload":"a\\ufffdb"' in js.stdout
    assert b'"value_bytes":["AP8K"]' in js.stdout


def test_one_megabyte_of_random_bytes_no_traceback() -> None:
    data = random.Random(7).randbytes(1 << 20)
    res = run_heka("cat", "-f", "count", "-", input=data, timeout=120)
    assert res.returncode == 1
    assert b"Traceback" not in res.stderr
    assert b"Corruption detected at offset: 0" in res.stderr
    assert b"Processed:" in res.stderr


def test_usage_and_io_errors(heka_inproc) -> None:
    res = heka_inproc("cat", "--format", "xml", MULTI)
    assert res.returncode == 2 and b"unknown --format" in res.stderr
    res = run_heka("cat", "/no/such/file.heka")  # one real process: one line, no traceback
    assert res.returncode == 3
    assert res.stderr.decode().strip().splitlines()[-1].startswith("heka: error: /no/such/file.heka: ")
    assert b"Traceback" not in res.stderr
    res = heka_inproc("cat", "--output", "/no/such/dir/out", MULTI)
    assert res.returncode == 3


def test_follow_picks_up_appended_records(tmp_path) -> None:
    path = tmp_path / "live.heka"
    path.write_bytes(frame(Message.new(type="first")))
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        heka_cmd("cat", "--follow", "-f", "jsonl", path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["Type"] == "first"
        with open(path, "ab") as fh:
            fh.write(frame(Message.new(type="second")))
        assert json.loads(proc.stdout.readline())["Type"] == "second"
        size = path.stat().st_size
        with open(path, "ab") as fh:
            fh.write(b"junk" + frame(Message.new(type="after.junk")))  # junk reported at its true offset
        assert json.loads(proc.stdout.readline())["Type"] == "after.junk"
        # Rotated in place (truncated and rewritten): read again from the start.
        path.write_bytes(frame(Message.new(type="third")))
        assert json.loads(proc.stdout.readline())["Type"] == "third"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert f"Corruption detected at offset: {size} bytes: 4".encode() in err
        assert b"file was truncated; reading it again from the start" in err
        assert b"Processed: 4, matched: 4 messages" in err
        assert b"Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def test_heka_cat_alias_takes_go_flags() -> None:
    code = "import sys; from hekacli.commands.cat import alias_main; alias_main()"
    res = subprocess.run(
        [sys.executable, "-c", code, "-format=count", "-max-message-size", "70000", str(MULTI)],
        capture_output=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert b"Processed: 50, matched: 50 messages" in res.stderr


def test_match_selects_messages(heka_inproc) -> None:
    pytest.importorskip("hekacli.matcher")
    res = heka_inproc(
        "cat", "-f", "jsonl", "--match", "Fields[Protocol] == 'HTTP/1.1' && Pid == 56854", MULTI
    )
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 50
    res = heka_inproc("cat", "-f", "count", "--match", "Payload == '{\"test\": 1}'", MULTI)
    assert b"Processed: 50, matched: 1 messages" in res.stderr
    res = heka_inproc("cat", "--match", "Type ==", MULTI)
    assert res.returncode == 2


def test_broken_pipe_is_quiet() -> None:
    p1 = subprocess.Popen(
        heka_cmd("cat", "-f", "jsonl", PROTOBUF_LOG, MULTI, MULTI),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p1.stdout is not None
    p1.stdout.readline()
    p1.stdout.close()
    _, err = p1.communicate(timeout=60)
    assert b"Traceback" not in err
    assert p1.returncode == 0
