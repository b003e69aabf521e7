"""Decoder features beyond Heka: lifted format limits, escape decoding, config readers, other families."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import VECTORS
from hekacli.parsers import build_decoder
from hekacli.parsers.apache import read_apache_conf
from hekacli.parsers.escapes import escape_apache, escape_nginx, unescape_apache, unescape_nginx
from hekacli.parsers.nginx import read_nginx_conf
from hekacli.parsers.rsyslog import read_rsyslog_conf
from hekacli.parsers.useragent import classify_series, normalize_user_agent

from hekacli.errors import ConfigError, UsageError
from hekacli.message import ValueType

from .conftest import assert_paths_agree

CASES = json.loads((VECTORS / "decoder-cases.json").read_text())
COMBINED_LINE = (
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 304 0 "-" '
    '"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:26.0) Gecko/20100101 Firefox/26.0"'
)


# -- Heka limits that are lifted (the "observed" cases) -----------------------------------------------


def test_braced_variables_bracket_pairs_and_key_value_pairs():
    d = build_decoder("nginx", log_format="[$remote_user] a=$a b=$b $ssl_protocol/$ssl_cipher ${host}x")
    line = "[bob smith] a=1 b=xyz TLSv1.3/TLS_AES_256_GCM_SHA384 example.comx"
    rec = assert_paths_agree(d, [line])[0]
    assert rec == {
        "Type": "nginx.access",
        "remote_user": "bob smith",
        "a": "1",
        "b": "xyz",
        "ssl_protocol": "TLSv1.3",
        "ssl_cipher": "TLS_AES_256_GCM_SHA384",
        "host": "example.com",
    }


def _observed(id_):
    return next(c for c in CASES if c["id"] == id_)


@pytest.mark.parametrize("id_", [232, 238])
def test_observed_rejections_heka_had_are_accepted(id_):
    case = _observed(id_)
    assert not case["expect_match"]
    rec = build_decoder("nginx", log_format=case["format"]).decode(case["line"])
    assert rec is not None
    if id_ == 238:
        assert rec["request_method"] == "PATCH"  # lua_sandbox_extensions' token rule (expected_hindsight)


@pytest.mark.parametrize("id_", [225, 226, 227, 240])
def test_observed_rejections_we_keep(id_):
    # '-' is not a number, $msec needs its fraction; ${remote_addr} is a variable so "${remote_addr} x"
    # on "127.0.0.1 x" now matches (case 225 is the one we deliberately change)
    case = _observed(id_)
    rec = build_decoder("nginx", log_format=case["format"]).decode(case["line"])
    if id_ == 225:
        assert rec is not None and rec["remote_addr"] == "127.0.0.1"
    else:
        assert rec is None


def test_last_variable_takes_the_rest_of_the_line():
    case = _observed(231)  # "$status $request" on "200 GET / HTTP/1.1": Heka gave request "GET"
    rec = build_decoder("nginx", log_format=case["format"]).decode(case["line"])
    assert rec["request"] == "GET / HTTP/1.1"
    assert rec["request_uri"] == "/"


def test_upstream_dashes_mean_no_upstream():
    d = build_decoder(
        "nginx",
        log_format="$upstream_addr $upstream_status $upstream_response_time "
        "$upstream_response_length $upstream_cache_last_modified",
    )
    rec = assert_paths_agree(d, ["- - - - -", "10.0.0.1:80, 10.0.0.2:80 502, 200 0.001, 0.250 0, 512 -"])[0]
    assert rec == {"Type": "nginx.access"}
    rec = d.decode("10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80 502, 200 : - 0.001, 0.250 : - 0, 512 : - -")
    assert rec["upstream_addr"] == ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
    assert rec["upstream_status"] == [502, 200, 0]
    assert rec["upstream_response_time"] == [0.001, 0.25, 0.0]
    assert rec["upstream_response_length"] == [0, 512, 0]


def test_rsyslog_observed_cases():
    hostname = _observed(243)  # "-foo" as HOSTNAME: Heka's PEG took "-" and failed
    assert (
        build_decoder("rsyslog", template=hostname["format"]).decode(hostname["line"])["Hostname"] == "-foo"
    )
    unix = _observed(242)  # date-unixtimestamp was broken in Heka
    rec = build_decoder("rsyslog", template=unix["format"]).decode(unix["line"])
    assert rec["Timestamp"] == 1392050801 * 10**9 and rec["Payload"] == "hello"


# -- escapes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["plain", 'a "quoted" \\ value', "caf\u00e9 \u2603", "tab\there", "\x01\x7f"]
)
def test_escape_round_trips(value):
    assert unescape_nginx(escape_nginx(value)) == value
    assert unescape_apache(escape_apache(value)) == value


def test_nginx_escapes_decoded_by_default_and_kept_with_raw_values():
    line = (
        '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /a?q=\\x22x\\x22 HTTP/1.1" 200 1 "-" '
        '"UA \\x5Cbs\\x5C caf\\xC3\\xA9 bad\\xFF"'
    )
    rec = assert_paths_agree(build_decoder("nginx"), [line])[0]
    assert rec["request"] == 'GET /a?q="x" HTTP/1.1'
    assert rec["request_uri"] == '/a?q="x"'
    assert rec["http_user_agent"] == "UA \\bs\\ caf\u00e9 bad\\xff"  # invalid UTF-8 stays visible as \xff
    raw = build_decoder("nginx", raw_values=True).decode(line)
    assert raw["http_user_agent"] == "UA \\x5Cbs\\x5C caf\\xC3\\xA9 bad\\xFF"


def test_apache_escapes():
    d = build_decoder("apache", log_format="combined")
    line = (
        '::1 - - [10/Feb/2014:08:46:41 -0800] "GET /x HTTP/1.1" 200 - "-" '
        '"say \\"hi\\" \\\\o/ caf\\xc3\\xa9\\ttab"'
    )
    rec = assert_paths_agree(d, [line])[0]
    assert rec["http_user_agent"] == 'say "hi" \\o/ caf\u00e9\ttab'
    assert rec["remote_addr"] == "::1"
    assert d.to_message(rec).find_field("remote_addr").representation == "ipv6"
    assert rec["body_bytes_sent"] == 0


# -- user agents --------------------------------------------------------------------------------------


def test_user_agent_modes():
    keep = build_decoder("nginx", user_agent="keep").decode(COMBINED_LINE)
    assert (keep["user_agent_browser"], keep["user_agent_version"], keep["user_agent_os"]) == (
        "Firefox",
        26,
        "Linux",
    )
    assert "http_user_agent" in keep
    assert "http_user_agent" not in build_decoder("nginx", user_agent="drop").decode(COMBINED_LINE)
    cond = build_decoder("nginx", user_agent="conditional")
    assert "http_user_agent" not in cond.decode(COMBINED_LINE)
    curl = cond.decode(
        COMBINED_LINE.replace(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:26.0) Gecko/20100101 Firefox/26.0", "curl/8.0"
        )
    )
    assert curl["http_user_agent"] == "curl/8.0" and "user_agent_browser" not in curl
    with pytest.raises(ValueError):
        build_decoder("nginx", user_agent="bogus")


def test_classify_series_matches_per_value_function():
    uas = [c["line"] for c in CASES if c["decoder"] == "user_agent"] + [None]
    df = classify_series(pl.Series(uas, dtype=pl.String))
    for ua, row in zip(uas, df.iter_rows(), strict=True):
        assert row == normalize_user_agent(ua)


# -- config readers -----------------------------------------------------------------------------------

NGINX_CONF = r"""
# comment with log_format inside it
http {
    include mime.types;
    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      "\"$http_user_agent\" \"$http_x_forwarded_for\"";
    log_format json escape=json '{"ua":"$http_user_agent"}';
    server { access_log /var/log/nginx/site.log main; access_log /var/log/nginx/api.json json; }
}
"""


def test_nginx_conf_concatenation_escape_and_access_log(tmp_path):
    (tmp_path / "nginx.conf").write_text(NGINX_CONF)
    (tmp_path / "mime.types").write_text("types { text/html html; }\nlog_format extra '$status';\n")
    formats = read_nginx_conf(tmp_path / "nginx.conf")
    assert formats["main"] == (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"',
        "default",
    )
    assert formats["json"] == ('{"ua":"$http_user_agent"}', "json")
    assert formats["extra"] == ("$status", "default")
    d = build_decoder("nginx", nginx_conf=str(tmp_path / "nginx.conf"), log_file="/logs/api.json")
    assert d.decode('{"ua":"a \\"b\\" \\u00e9"}')["http_user_agent"] == 'a "b" \u00e9'
    d = build_decoder("nginx", nginx_conf=str(tmp_path / "nginx.conf"), log_file="site.log")
    assert d.decode(COMBINED_LINE + ' "10.0.0.1"')["http_x_forwarded_for"] == "10.0.0.1"
    with pytest.raises(ConfigError, match="no log_format named 'nope'"):
        build_decoder("nginx", nginx_conf=str(tmp_path / "nginx.conf"), log_format_name="nope")


def test_apache_conf(tmp_path):
    conf = tmp_path / "apache2.conf"
    conf.write_text(
        'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined\n'
        "LogFormat '%v %h' short\n"
        "CustomLog ${APACHE_LOG_DIR}/short.log short\n"
    )
    formats, custom = read_apache_conf(conf)
    assert formats["combined"] == '%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"'
    assert custom["${APACHE_LOG_DIR}/short.log"] == "%v %h"
    d = build_decoder("apache", apache_conf=str(conf), log_format_name="combined")
    assert d.decode(COMBINED_LINE)["response_length"] == 0
    assert build_decoder("apache", apache_conf=str(conf), log_file="short.log").decode("a.b 1.2.3.4") == {
        "Type": "apache.access",
        "server_name": "a.b",
        "remote_addr": "1.2.3.4",
    }


def test_rsyslog_conf_legacy_and_modern(tmp_path):
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(
        '$template Legacy,"%HOSTNAME% %syslogtag%%msg%\\n"\n'
        'template(name="Modern" type="string"\n  string="<%PRI%>%msg%\\n")\n'
        "*.* /var/log/legacy.log;Legacy\n"
        'mail.* action(type="omfile" file="/var/log/modern.log" template="Modern")\n'
    )
    templates, files, _ = read_rsyslog_conf(conf)
    assert templates["Legacy"] == "%HOSTNAME% %syslogtag%%msg%\\n"
    assert templates["Modern"] == "<%PRI%>%msg%\\n"
    assert files == {"/var/log/modern.log": "Modern", "/var/log/legacy.log": "Legacy"}
    rec = build_decoder("rsyslog", rsyslog_conf=str(conf), log_file="modern.log").decode("<13>hello")
    assert (rec["Severity"], rec["syslogfacility"], rec["Payload"]) == (5, 1, "hello")
    with pytest.raises(ConfigError):
        build_decoder("rsyslog", rsyslog_conf=str(conf))  # two custom templates: must choose


@pytest.mark.parametrize(
    "kind,name",
    [
        ("nginx", "combined"),
        ("nginx", "main"),
        ("apache", "common"),
        ("apache", "combined"),
        ("apache", "vhost_combined"),
        ("rsyslog", "RSYSLOG_TraditionalFileFormat"),
        ("rsyslog", "RSYSLOG_FileFormat"),
        ("rsyslog", "RSYSLOG_TraditionalForwardFormat"),
        ("rsyslog", "RSYSLOG_ForwardFormat"),
        ("rsyslog", "RSYSLOG_SyslogProtocol23Format"),
    ],
)
def test_builtin_names(kind, name):
    opt = "template" if kind == "rsyslog" else "log_format"
    d = build_decoder(kind, **{opt: name})
    assert d.explain()


def test_bad_formats_are_config_errors():
    with pytest.raises(ConfigError, match="unknown variable: Y"):
        build_decoder("apache", log_format="%Y")
    with pytest.raises(ConfigError, match="invalid rsyslog property"):
        build_decoder("rsyslog", template="%nosuchproperty%")
    with pytest.raises(ConfigError):
        build_decoder("nginx", log_format="")
    with pytest.raises(UsageError):
        build_decoder("regex", pattern="(no named groups)")
    with pytest.raises(UsageError):
        build_decoder("nginx", template="x")


# -- other families -----------------------------------------------------------------------------------


def test_syslog_rfc5424_and_3164():
    d = build_decoder("syslog")
    lines = [
        "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed on "
        "/dev/pts/8",
        '<165>1 2003-10-11T22:14:15.003Z host evntslog 8710 ID47 [exampleSDID@32473 iut="3"][x@1 a="b"]',
        "<34>Oct 11 22:14:15 mymachine su: 'su root' failed on /dev/pts/8",
        "Feb  9 14:17:01 host CRON[20758]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
        "not syslog at all",
    ]
    recs = assert_paths_agree(d, lines)
    assert recs[0]["Timestamp"] == 1065910455003000000
    assert (recs[0]["Severity"], recs[0]["syslogfacility"], recs[0]["programname"]) == (2, 4, "su")
    assert recs[0]["Payload"] == "'su root' failed on /dev/pts/8"
    assert recs[1]["Pid"] == 8710 and "Payload" not in recs[1]
    assert recs[1]["structured-data"] == '[exampleSDID@32473 iut="3"][x@1 a="b"]'
    assert (recs[2]["Hostname"], recs[2]["programname"], recs[2]["Severity"]) == ("mymachine", "su", 2)
    assert (recs[3]["Pid"], recs[3]["programname"]) == (20758, "CRON")
    assert d.rejects["lineno"].to_list() == [5]


def test_json_lines_round_trip_heka_decode_output():
    d = build_decoder("json")
    rec = d.decode(
        '{"Timestamp":"2014-02-10T16:46:41.500000000Z","Type":"nginx.access","Severity":6,'
        '"status":200,"a":{"b":[1,2]},"tags":[{"x":1}]}'
    )
    assert rec == {
        "Timestamp": 1392050801500000000,
        "Type": "nginx.access",
        "Severity": 6,
        "status": 200,
        "a.b": [1, 2],
        "tags": '[{"x": 1}]',
    }
    assert d.decode("[1,2]") is None and "not a JSON object" in d.explain_failure("[1,2]")
    assert "column" in d.explain_failure("{bad")
    frame = d.frame(['{"a":1}', "nope", '{"a":2,"b":"x"}'])
    assert frame["a"].to_list() == [1, 2] and d.rejects["lineno"].to_list() == [2]


def test_regex_decoder():
    d = build_decoder("regex", pattern=r"(?P<Hostname>\S+) (?P<status>\d+) (\w+) (?P<Timestamp>\S+)")
    lines = ["xx host1 200 abc 2014-02-10T16:46:41Z", "no match", "h 404 x 1392050801.5"]
    recs = assert_paths_agree(d, lines)
    assert recs[0] == {
        "Timestamp": 1392050801000000000,
        "Type": "regex",
        "Hostname": "host1",
        "status": "200",
    }
    assert recs[1]["Timestamp"] == 1392050801500000000
    # Python-only syntax (look-behind) still works: the bulk path falls back to per line
    lb = build_decoder("regex", pattern=r"(?<=id=)(?P<id>\d+)")
    assert assert_paths_agree(lb, ["x id=42", "none"]) == [{"Type": "regex", "id": "42"}]


def test_nginx_error_without_connection_and_schema():
    d = build_decoder("nginx-error")
    rec = d.decode("2014/03/01 11:29:39 [warn] 1#2: *x not a connection number")
    assert rec["Payload"] == "*x not a connection number" and "connection" not in rec
    assert d.schema["tid"] == (ValueType.DOUBLE, "")
    assert d.decode("2014/03/01 11:29:39 [warning] 1#2: x") is None  # nginx never writes "warning"


def test_explain_failure_points_at_the_column():
    d = build_decoder("nginx")
    why = d.explain_failure('127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 2x0 0 "-" "-"')
    assert why.startswith("column 61: expected a 3-digit status for '$status'")
    rows = d.explain_line(COMBINED_LINE)
    assert rows[0]["matched"] == "127.0.0.1" and rows[0]["columns"] == "1-9"


def test_message_form_types_and_representations():
    d = build_decoder("nginx", log_format="$remote_addr $request_time $body_bytes_sent $upstream_addr $msec")
    rec = d.decode("example.org 0.250 1024 a:1, b:2 1391794831.755")
    assert rec["Timestamp"] == 1391794831755000000
    msg = d.to_message(rec)
    assert msg.timestamp == rec["Timestamp"] and msg.type == "nginx.access" and msg.severity == 7
    f = {x.name: x for x in msg.fields}
    assert (f["remote_addr"].representation, f["remote_addr"].values) == ("hostname", ["example.org"])
    assert (f["request_time"].value_type, f["request_time"].representation) == (ValueType.DOUBLE, "s")
    assert (f["body_bytes_sent"].values, f["body_bytes_sent"].representation) == ([1024.0], "B")
    assert f["upstream_addr"].values == ["a:1", "b:2"]
    assert d.polars_schema()["upstream_addr"] == pl.List(pl.String)


REQUESTS = [
    "GET / HTTP/1.1",
    "GET HTTP/1.1",
    "GET  HTTP/1.1",
    "GET /a b HTTP/1.0",
    "x",
    "GET /a HTTP/1.1 ",
    "\x16\x03\x01",
    "GET /\nx HTTP/1.1",
    "G\u00e9T / HTTP/1.1",
    "GET /",
    "GET /\u00e9 HTTP/2.0",
    " GET / HTTP/1.1",
    "GET ",
    "PROPFIND /dav HTTP/10.10",
    "GET /x HTTP/1.1x",
]


def test_request_split_same_on_both_paths():
    d = build_decoder("nginx", log_format='"$request"', raw_values=True)
    lines = ['"' + r.replace('"', "") + '"' for r in REQUESTS]
    recs = assert_paths_agree(d, lines)
    assert [(r.get("request_method"), r.get("request_uri"), r.get("server_protocol")) for r in recs][:4] == [
        ("GET", "/", "HTTP/1.1"),
        ("GET", "HTTP/1.1", None),
        ("GET", "", "HTTP/1.1"),
        ("GET", "/a b", "HTTP/1.0"),
    ]
    assert "request_method" not in recs[4] and "request_method" not in recs[6]
