"""A real nginx writes access and error logs; `heka decode --nginx-conf` must give back every field.

nginx runs as the test's own instance (its own prefix, config, pid file and logs in tmp_path) on a
free 127.0.0.1 port, with a proxied upstream that refuses connections, for a few seconds.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest
from conftest import free_port, run_heka
from hekacli.parsers import build_decoder

from hekacli.output import record_for_output

from .conftest import assert_paths_agree, running, wait_for

NGINX = "/usr/sbin/nginx"

CONF = r"""
user root;
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    log_format timed '$remote_addr [$time_iso8601] $request_time $msec "$request" $status '
                     '$upstream_addr $upstream_status $upstream_response_time '
                     '"$http_user_agent"';
    log_format kv 'ip=$remote_addr|method=$request_method|uri=$request_uri|'
                  'status=$status|bytes=$body_bytes_sent|proto=$server_protocol/$scheme|'
                  'ref=[$http_referer]|ua=$http_user_agent';
    log_format jsonish escape=json '{{"ua":"$http_user_agent","req":"$request","port":$server_port}}';
    server {{
        listen 127.0.0.1:{port};
        access_log {d}/combined.log combined;
        access_log {d}/timed.log timed;
        access_log {d}/kv.log kv;
        access_log {d}/json.log jsonish;
        location / {{ return 200 "hello\n"; }}
        location /missing {{ return 404; }}
        location /proxy {{ proxy_pass http://127.0.0.1:{dead}; }}
    }}
}}
"""

UA_TRICKY = 'Mozilla/5.0 "quoted" \\back\\slash\\ caf\u00e9'
REQUESTS = [
    # method, path, user agent, referer, expected status
    ("GET", "/", UA_TRICKY, "https://example.com/a?b=1", 200),
    ("POST", "/missing?x=1&y=%22z%22", "curl/8.5.0", "-", 404),
    (
        "GET",
        "/proxy/upstream",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "-",
        502,
    ),
    ("HEAD", "/", "Wget/1.21", "http://ref.example/", 200),
    ("DELETE", '/quote"in"path', "ua\ttab", "-", 200),
]


def _request(port: int, method: str, path: str, ua: str, referer: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("User-Agent", ua.encode("utf-8"))
        if referer != "-":
            conn.putheader("Referer", referer)
        body = b"data=1" if method == "POST" else None
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def nginx_logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("nginx")
    port, dead = free_port(), free_port()
    conf = d / "nginx.conf"
    conf.write_text(CONF.format(d=d, port=port, dead=dead))
    start = time.time_ns()
    with running(
        [NGINX, "-p", str(d), "-e", str(d / "startup.log"), "-c", str(conf), "-g", "daemon off;"], port=port
    ):
        statuses = [_request(port, m, p, ua, ref) for m, p, ua, ref, _ in REQUESTS]
        assert wait_for(lambda: len((d / "json.log").read_text().splitlines()) == len(REQUESTS))
        assert wait_for(lambda: "Connection refused" in (d / "error.log").read_text())
    end = time.time_ns()
    assert statuses == [r[4] for r in REQUESTS]
    return {"dir": d, "conf": conf, "port": port, "dead": dead, "start": start, "end": end}


def _decode(logs, name, *extra):
    """Decode one of the logs with the library (the CLI is exercised once, below)."""
    path = logs["dir"] / f"{name}.log"
    opts = {"nginx_conf": str(logs["conf"]), "log_file": str(path)}
    if extra:
        opts["log_format_name"] = extra[1]
    if "--raw-values" in extra:
        opts["raw_values"] = True
    d = build_decoder("nginx", **opts)
    recs = [d.decode(x) for x in path.read_text().splitlines()]
    assert None not in recs
    return [record_for_output(r) for r in recs]


def test_cli_decodes_with_nginx_conf(nginx_logs):
    path = nginx_logs["dir"] / "combined.log"
    r = run_heka("decode", "nginx", "--nginx-conf", str(nginx_logs["conf"]), str(path), "-f", "jsonl")
    assert r.returncode == 0, r.stderr.decode()
    assert f"{len(REQUESTS)} decoded, 0 rejected" in r.stderr.decode()
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert recs == _decode(nginx_logs, "combined")


def _ts_ok(logs, rfc3339: str, slack_ns: int = 1_000_000_000) -> bool:
    from datetime import datetime

    ns = int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()) * 1_000_000_000
    return logs["start"] - slack_ns <= ns <= logs["end"] + slack_ns


def test_combined_found_from_access_log_line(nginx_logs):
    # no --log-format-name: the config's access_log line for combined.log names the format
    recs = _decode(nginx_logs, "combined")
    for rec, (method, path, ua, ref, status) in zip(recs, REQUESTS, strict=True):
        assert rec["Type"] == "nginx.access"
        assert _ts_ok(nginx_logs, rec["Timestamp"])
        assert rec["remote_addr"] == "127.0.0.1"
        assert rec["remote_user"] == "-"
        assert rec["request"] == f"{method} {path} HTTP/1.1"
        assert (rec["request_method"], rec["request_uri"], rec["server_protocol"]) == (
            method,
            path,
            "HTTP/1.1",
        )
        assert rec["status"] == status
        assert rec["body_bytes_sent"] >= 0
        assert rec["http_referer"] == ref
        assert rec["http_user_agent"] == ua  # nginx's \xHH escapes decoded (quotes, backslashes, UTF-8)


def test_raw_values_keep_nginx_escapes(nginx_logs):
    recs = _decode(nginx_logs, "combined", "--log-format-name", "combined", "--raw-values")
    assert recs[0]["http_user_agent"] != UA_TRICKY
    assert recs[0]["http_user_agent"] == "Mozilla/5.0 \\x22quoted\\x22 \\x5Cback\\x5Cslash\\x5C caf\\xC3\\xA9"


def test_timed_format_with_upstream(nginx_logs):
    recs = _decode(nginx_logs, "timed", "--log-format-name", "timed")
    for rec, (method, path, ua, _ref, status) in zip(recs, REQUESTS, strict=True):
        assert _ts_ok(nginx_logs, rec["Timestamp"])  # the last time variable ($msec) wins
        assert "." in rec["Timestamp"]
        assert rec["request"] == f"{method} {path} HTTP/1.1"
        assert rec["status"] == status
        assert rec["http_user_agent"] == ua
        assert isinstance(rec["request_time"], float) and rec["request_time"] >= 0
        if path.startswith("/proxy"):
            assert rec["upstream_addr"] == [f"127.0.0.1:{nginx_logs['dead']}"]
            assert rec["upstream_status"] == [502]
            assert len(rec["upstream_response_time"]) == 1 and rec["upstream_response_time"][0] >= 0
        else:
            # nginx writes "-" when no upstream was involved: no field rather than Heka's ["-"] / [0]
            for k in ("upstream_addr", "upstream_status", "upstream_response_time"):
                assert k not in rec


def test_key_value_format_lifts_heka_limits(nginx_logs):
    # a=$a|b=$b, [$var] and $a/$b all failed in Heka (delimiter came from the preceding literal)
    recs = _decode(nginx_logs, "kv", "--log-format-name", "kv")
    for rec, (method, path, ua, ref, status) in zip(recs, REQUESTS, strict=True):
        assert rec["remote_addr"] == "127.0.0.1"
        assert rec["request_method"] == method
        assert rec["request_uri"] == path
        assert rec["status"] == status
        assert rec["server_protocol"] == "HTTP/1.1"
        assert rec["scheme"] == "http"
        assert rec["http_referer"] == ref
        assert rec["http_user_agent"] == ua


def test_escape_json_format(nginx_logs):
    recs = _decode(nginx_logs, "json", "--log-format-name", "jsonish")
    for rec, (method, path, ua, _ref, _status) in zip(recs, REQUESTS, strict=True):
        assert rec["http_user_agent"] == ua
        assert rec["request"] == f"{method} {path} HTTP/1.1"
        assert rec["server_port"] == nginx_logs["port"]


def test_error_log(nginx_logs):
    r = run_heka("decode", "nginx-error", str(nginx_logs["dir"] / "error.log"), "-f", "jsonl")
    assert r.returncode == 0, r.stderr.decode()
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    refused = [x for x in recs if "Connection refused" in x["Payload"]]
    assert len(refused) == 1
    rec = refused[0]
    assert rec["Type"] == "nginx.error"
    assert rec["Severity"] == 3  # [error]
    assert rec["Pid"] > 0 and rec["tid"] > 0  # nginx on Linux logs the thread id (= pid)
    assert rec["connection"] >= 1
    assert "while connecting to upstream" in rec["Payload"]
    assert f'upstream: "http://127.0.0.1:{nginx_logs["dead"]}/proxy/upstream"' in rec["Payload"]
    # error.log times are local wall clock (UTC here, the test host's zone)
    notices = [x for x in recs if x["Severity"] == 5]
    assert notices, "nginx logs its start-up at [notice]"


@pytest.mark.parametrize("name", ["combined", "timed", "kv", "json"])
def test_streaming_and_bulk_agree_on_real_logs(nginx_logs, name):
    fmt_name = {"combined": "combined", "timed": "timed", "kv": "kv", "json": "jsonish"}[name]
    d = build_decoder(
        "nginx", nginx_conf=str(nginx_logs["conf"]), log_format_name=fmt_name, user_agent="keep"
    )
    lines = (nginx_logs["dir"] / f"{name}.log").read_text().splitlines()
    recs = assert_paths_agree(d, lines)
    assert len(recs) == len(REQUESTS)
    err = build_decoder("nginx-error")
    assert_paths_agree(err, (nginx_logs["dir"] / "error.log").read_text().splitlines())
