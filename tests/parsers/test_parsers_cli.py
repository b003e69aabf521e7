"""`heka decode` end to end: formats, rejects and exit codes, --where, .gz, stdin, --explain, pipes."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys

import polars as pl
from conftest import PROJECT_ROOT, heka_cmd, run_heka

from hekacli.framing import read_stream

GOOD = (
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /a HTTP/1.1" 200 5 "-" "curl/8.0"\n'
    '::1 - bob [10/Feb/2014:08:46:42 -0800] "POST /b?x=1 HTTP/1.1" 502 0 "http://r/" "Mozilla/5.0 (X11; '
    'Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"\n'
)
BAD = "this is not an access log line\n"


def test_stdin_jsonl_summary_and_exit_0():
    r = run_heka("decode", "nginx", input=GOOD)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert [x["status"] for x in recs] == [200, 502]
    assert recs[0]["Timestamp"] == "2014-02-10T16:46:41.000000000Z"
    assert recs[1]["remote_user"] == "bob" and recs[1]["request_uri"] == "/b?x=1"
    assert r.stderr.decode().strip() == "heka decode: 2 decoded, 0 rejected"


def test_rejects_are_reported_and_exit_1(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(GOOD + BAD + GOOD)
    r = run_heka("decode", "nginx", str(log))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"heka: {log}:3: rejected: column 6: expected the text '-' for '-'" in err
    assert "4 decoded, 1 rejected" in err
    assert len(r.stdout.decode().splitlines()) == 4  # good lines still come out
    rej = tmp_path / "rejects.jsonl"
    r = run_heka("decode", "nginx", str(log), "--rejects", str(rej), "--allow-rejects")
    assert r.returncode == 0
    [entry] = [json.loads(x) for x in rej.read_text().splitlines()]
    assert entry == {"file": str(log), "line": 3, "reason": entry["reason"], "text": BAD.strip()}
    assert entry["reason"].startswith("column 6:")


def test_gzip_csv_and_where(tmp_path):
    gz = tmp_path / "access.log.gz"
    gz.write_bytes(gzip.compress(GOOD.encode()))
    r = run_heka("decode", "nginx", str(gz), "-f", "csv", "--where", "Fields[status] >= 500")
    assert r.returncode == 0, r.stderr
    rows = r.stdout.decode().splitlines()
    assert rows[0].startswith("Timestamp,Type,remote_addr,remote_user,request,status")
    assert len(rows) == 2 and ",502," in rows[1]
    assert "2 decoded, 0 rejected, 1 matched --where" in r.stderr.decode()


def test_parquet_bulk_path(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(GOOD * 3 + BAD)
    out = tmp_path / "out.parquet"
    r = run_heka("decode", "nginx", str(log), "-f", "parquet", "-o", str(out), "-u", "keep")
    assert r.returncode == 1  # one rejected line
    assert "6 decoded, 1 rejected" in r.stderr.decode()
    df = pl.read_parquet(out)
    assert df.height == 6
    assert df.schema["Timestamp"] == pl.Datetime("ns", "UTC")
    assert df.schema["status"] == pl.Int64 and df["status"].to_list() == [200, 502] * 3
    assert df["user_agent_browser"].to_list()[:2] == [None, "Firefox"]
    r = run_heka(
        "decode",
        "nginx",
        str(log),
        "-f",
        "parquet",
        "-o",
        str(out),
        "--where",
        "Fields[status] == 200",
        "--allow-rejects",
    )
    assert r.returncode == 0 and pl.read_parquet(out).height == 3


def test_heka_framed_output_is_what_heka_injected():
    r = run_heka("decode", "nginx", "-f", "heka", input=GOOD)
    assert r.returncode == 0, r.stderr
    msgs = [rec.message() for rec in read_stream(io.BytesIO(r.stdout))]
    assert [m.type for m in msgs] == ["nginx.access", "nginx.access"]
    m = msgs[1]
    assert m.timestamp == 1392050802000000000 and m.severity == 7
    assert m.find_field("remote_addr").representation == "ipv6"
    assert m.find_field("status").values == [502.0]
    assert m.find_field("body_bytes_sent").representation == "B"


def test_table_and_explain():
    r = run_heka("decode", "nginx", "-f", "table", input=GOOD)
    assert r.returncode == 0 and "remote_addr" in r.stdout.decode() and "127.0.0.1" in r.stdout.decode()
    r = run_heka("decode", "apache", "-F", "%h %>s %{X-Id}i", "--explain", "--line", "10.1.1.1 404 abc")
    out = r.stdout.decode()
    assert r.returncode == 0 and "http_x_id" in out and "how the line splits" in out and "10.1.1.1" in out
    r = run_heka("decode", "apache", "-F", "%h %>s", "--explain", "--line", "10.1.1.1 4o4")
    assert r.returncode == 1
    assert "column 10: expected a 3-digit status for '%>s'" in r.stdout.decode()


def test_usage_and_input_errors(tmp_path):
    r = run_heka("decode", "apache", "-F", "%Y")
    assert r.returncode == 2 and r.stderr.decode().strip() == "heka: error: unknown variable: Y"
    r = run_heka("decode", "nginx", str(tmp_path / "missing.log"))
    assert r.returncode == 3 and "missing.log: cannot read" in r.stderr.decode()
    r = run_heka("decode", "bogus")
    assert r.returncode == 2 and "unknown decoder 'bogus'" in r.stderr.decode()
    r = run_heka("decode", "nginx", "-f", "parquet")
    assert r.returncode == 2 and "--output" in r.stderr.decode()
    assert b"Traceback" not in r.stderr


def test_head_ends_quietly(tmp_path):
    log = tmp_path / "big.log"
    log.write_text(GOOD * 2000)  # ~1 MB of JSON: more than a pipe holds
    cmd = " ".join(heka_cmd("decode", "nginx", str(log))) + " | head -n 1; echo rc=${PIPESTATUS[0]} >&2"
    r = subprocess.run(
        ["bash", "-c", cmd],
        capture_output=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "HOME": "/tmp"},
    )
    assert len(r.stdout.decode().splitlines()) == 1
    assert b"Traceback" not in r.stderr and b"rc=0" in r.stderr, r.stderr
    assert sys.executable  # the interpreter heka_cmd used


def test_fast_jsonl_writes_exactly_what_record_writer_writes():
    from hekacli.commands.decode import _fast_jsonl
    from hekacli.parsers import build_decoder

    from hekacli.output import RecordWriter

    d = build_decoder(
        "nginx",
        log_format='$remote_addr [$time_iso8601] "$request" $status $upstream_addr '
        '$upstream_response_time "$http_user_agent"',
        user_agent="keep",
    )
    lines = [
        '::1 [2026-11-28T01:02:03.123456789+01:00] "GET /caf\\xC3\\xA9 HTTP/1.1" 200 a:1, b:2 0.1, 0.25 '
        '"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0 \\x22q\\x22"',
        '1.2.3.4 [1969-12-31T23:59:59Z] "GET / HTTP/1.1" 404 - - "-"',
    ]
    recs = [d.decode(x) for x in lines]
    a, b = io.StringIO(), io.StringIO()
    w = RecordWriter("jsonl", a)
    emit = _fast_jsonl(b)
    for r in recs:
        w.write(r)
        emit(r)
    assert a.getvalue() == b.getvalue()
    assert '"Timestamp":"1969-12-31T23:59:59.000000000Z"' in b.getvalue()


def test_table_shows_the_first_records_and_says_how_many_more():
    """A table of whole records is for a look at a few (rich lays it out at ~4 ms a row): the first
    200, and a note on stderr; every record is still counted."""
    r = run_heka("decode", "nginx", "-f", "table", input=GOOD * 150)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "the table shows the first 200 records; 100 more not shown" in err
    assert "300 decoded, 0 rejected" in err
    assert r.stdout.decode().count("127.0.0.1") == 100  # one of each pair of lines
