"""A real Apache httpd writes access logs in several LogFormats; `--apache-conf` must give every field back.

apache2 runs as the test's own instance (own config, pid file and logs) on a free 127.0.0.1 port,
in the foreground, for a few seconds. Workers run as nobody, so the document root is a world-readable
temporary directory.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import time
from datetime import datetime

import pytest
from conftest import free_port, run_heka
from hekacli.parsers import build_decoder

from hekacli.output import record_for_output

from .conftest import assert_paths_agree, running, wait_for

APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"

CONF = r"""
ServerRoot "{d}"
ServerName localhost:{port}
DefaultRuntimeDir "{d}"
PidFile "{d}/httpd.pid"
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule dir_module {mods}/mod_dir.so
User nobody
Group nogroup
ErrorLog "{d}/error.log"
LogLevel info
DocumentRoot "{root}"
<Directory "{root}">
    Require all granted
</Directory>
DirectoryIndex index.html
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{{Referer}}i\" \"%{{User-Agent}}i\"" combined
LogFormat "%v:%p %h %l %u %t \"%r\" %>s %O \"%{{Referer}}i\" \"%{{User-Agent}}i\"" vhost_combined
LogFormat "[%{{%Y-%m-%d %H:%M:%S}}t.%{{usec_frac}}t %{{%z}}t] %D %{{remote}}p %a \"%{{X-Request-Id}}i\" \
%m %U%q %>s %B %{{local}}p \"%{{User-Agent}}i\"" custom
CustomLog "{d}/access.log" combined
CustomLog "{d}/vhost.log" vhost_combined
CustomLog "{d}/custom.log" custom
"""

UA_TRICKY = 'Mozilla/5.0 "quoted" \\back\\slash\\ caf\u00e9'
REQUESTS = [
    # method, path, user agent, referer, request id, status
    ("GET", "/index.html", UA_TRICKY, "https://example.com/a?b=1", "req-1", 200),
    ("GET", "/nope?x=1&y=2", "curl/8.5.0", "-", "req-2", 404),
    ("HEAD", "/", "Wget/1.21", "http://ref.example/", "req-3", 200),
    (
        "GET",
        "/index.html?q=%22x%22",
        "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "-",
        "req-4",
        200,
    ),
]


def _request(port, method, path, ua, referer, rid):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("User-Agent", ua.encode("utf-8"))
        conn.putheader("X-Request-Id", rid)
        if referer != "-":
            conn.putheader("Referer", referer)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status, conn.sock.getsockname()[1]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def apache_logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("apache")
    root = tempfile.mkdtemp(prefix="heka-apache-root-", dir="/tmp")
    try:
        os.chmod(root, 0o755)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<h1>hello</h1>\n")
        os.chmod(os.path.join(root, "index.html"), 0o644)
        port = free_port()
        conf = d / "apache2.conf"
        conf.write_text(CONF.format(d=d, port=port, mods=MODULES, root=root))
        start = time.time_ns()
        env_tz = os.environ.get("TZ")
        os.environ["TZ"] = "UTC"
        try:
            with running([APACHE, "-f", str(conf), "-DFOREGROUND"], port=port):
                results = [_request(port, m, p, ua, ref, rid) for m, p, ua, ref, rid, _ in REQUESTS]
                assert wait_for(
                    lambda: (
                        (d / "custom.log").exists()
                        and len((d / "custom.log").read_text().splitlines()) == len(REQUESTS)
                    )
                )
        finally:
            if env_tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = env_tz
        end = time.time_ns()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert [r[0] for r in results] == [r[5] for r in REQUESTS]
    return {
        "dir": d,
        "conf": conf,
        "port": port,
        "start": start,
        "end": end,
        "client_ports": [r[1] for r in results],
    }


def _decode(logs, name, fmt_name=None):
    path = logs["dir"] / f"{name}.log"
    opts = {"apache_conf": str(logs["conf"]), "log_file": str(path)}
    if fmt_name:
        opts["log_format_name"] = fmt_name
    d = build_decoder("apache", **opts)
    lines = path.read_text().splitlines()
    recs = assert_paths_agree(d, lines)
    assert len(recs) == len(REQUESTS)
    return recs


def _request_key(rec):
    """Which of REQUESTS a record logs: Apache writes a line when a worker finishes, so two
    back-to-back requests served by different workers can be logged in either order."""
    if "request" in rec:
        return rec["request"].rsplit(" ", 1)[0]
    return rec["http_x_request_id"]


def _in_request_order(recs):
    keys = [f"{m} {p}" for m, p, *_ in REQUESTS] if "request" in recs[0] else [r[4] for r in REQUESTS]
    assert len(set(keys)) == len(keys)  # each record matches exactly one request
    by_key = {_request_key(r): r for r in recs}
    assert sorted(by_key) == sorted(keys)
    return [by_key[k] for k in keys]


def _in_window(logs, ns, slack=1_000_000_000):
    return logs["start"] - slack <= ns <= logs["end"] + slack


def test_combined(apache_logs):
    for rec, (method, path, ua, ref, _rid, status) in zip(
        _in_request_order(_decode(apache_logs, "access")), REQUESTS, strict=True
    ):
        assert rec["Type"] == "apache.access"
        assert _in_window(apache_logs, rec["Timestamp"])
        assert rec["remote_addr"] == "127.0.0.1"
        assert rec["remote_user"] == "-"
        assert rec["request"] == f"{method} {path} HTTP/1.1"
        assert (rec["request_method"], rec["request_uri"]) == (method, path)
        assert rec["status"] == status
        assert rec["http_referer"] == ref
        assert rec["http_user_agent"] == ua  # Apache's \" \\ \xhh escapes decoded
        if method == "HEAD":
            assert rec["body_bytes_sent"] == 0  # "-" in %b


def test_vhost_combined(apache_logs):
    for rec, (method, path, ua, ref, _rid, status) in zip(
        _in_request_order(_decode(apache_logs, "vhost")), REQUESTS, strict=True
    ):
        assert rec["server_name"] == "localhost"
        assert rec["server_port"] == apache_logs["port"]
        assert rec["request"] == f"{method} {path} HTTP/1.1"
        assert rec["status"] == status
        assert rec["response_length"] > 0
        assert rec["http_user_agent"] == ua
        assert rec["http_referer"] == ref


def test_custom_format(apache_logs):
    recs = _in_request_order(_decode(apache_logs, "custom", "custom"))
    for rec, (method, path, ua, _ref, rid, status), cport in zip(
        recs, REQUESTS, apache_logs["client_ports"], strict=True
    ):
        # %{...}t wall clock + %{usec_frac}t + %{%z}t fold into one UTC Timestamp with microseconds
        assert _in_window(apache_logs, rec["Timestamp"])
        assert rec["Timestamp"] % 1000 == 0
        assert rec["utc_offset"] == 0
        assert 0 <= rec["sec_frac"] < 1
        assert rec["request_time"] >= 0
        assert rec["remote_port"] == cport
        assert rec["remote_addr"] == "127.0.0.1"
        assert rec["http_x_request_id"] == rid
        assert rec["request_method"] == method
        uri, _, query = path.partition("?")
        assert rec["uri"] == ("/index.html" if uri == "/" else uri)  # %U is the URI after DirectoryIndex
        assert rec["query_string"] == (f"?{query}" if query else "")
        assert rec["status"] == status
        assert rec["server_port"] == apache_logs["port"]
        assert rec["http_user_agent"] == ua
    msg = build_decoder("apache", apache_conf=str(apache_logs["conf"]), log_format_name="custom").to_message(
        recs[0]
    )
    assert msg.find_field("request_time").representation == "us"


def test_cli_with_apache_conf(apache_logs):
    path = apache_logs["dir"] / "custom.log"
    r = run_heka("decode", "apache", "--apache-conf", str(apache_logs["conf"]), str(path), "-f", "jsonl")
    assert r.returncode == 0, r.stderr.decode()
    import json

    got = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert got == [record_for_output(x) for x in _decode(apache_logs, "custom", "custom")]
    ts = datetime.fromisoformat(got[0]["Timestamp"].replace("Z", "+00:00"))
    assert (
        ts.microsecond == got[0]["sec_frac"] * 1e6 // 1 or abs(ts.microsecond - got[0]["sec_frac"] * 1e6) < 1
    )
