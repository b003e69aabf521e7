"""The generated line -> JSON functions write exactly what the reference path writes.

Reference: ``dumps_jsonl(decoder.decode(line))`` (what ``RecordWriter("jsonl")`` writes). For every
line the fast function must return either that text or None (then the caller takes the reference
path); its `plain` variant the same on lines `is_plain_block` accepts. Checked on every corpus the
decoder tests use, generated logs with tricky lines, and arbitrary values (hypothesis).
"""

from __future__ import annotations

import importlib.util
import json
import random

import pytest
from conftest import PROJECT_ROOT, SAMPLE_LOGS, VECTORS
from hekacli.parsers import build_decoder
from hekacli.parsers.jsonout import (
    compile_line_json,
    is_plain_block,
    jsonl_encoder,
    timestamp_json,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hekacli.output import dumps_jsonl, format_timestamp

RSYSLOG_CONF = str(SAMPLE_LOGS / "rsyslog" / "rsyslog.conf")
CASES = json.loads((VECTORS / "decoder-cases.json").read_text())
NGINX_RICH = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" rt=$request_time ua2=[$http_x_forwarded_for] $ssl_protocol/$ssl_cipher '
    "$msec $upstream_addr $upstream_response_time $upstream_status"
)


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_access_log", PROJECT_ROOT / "bench" / "gen_access_log.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reference(decoder, line: str) -> str | None:
    rec = decoder.decode(line)
    return None if rec is None else dumps_jsonl(rec)


def assert_same_json(decoder, lines: list[str], *, expect_fast: bool | None = None) -> int:
    """Fast and reference agree on every line; returns how many lines the fast function wrote."""
    fast = compile_line_json(decoder)
    if expect_fast is not None:
        assert (fast is not None) == expect_fast
    encode = jsonl_encoder(decoder)
    written = 0
    for line in lines:
        want = reference(decoder, line)
        assert encode(line) == want, line
        if fast is None:
            continue
        got = fast(line)
        assert got is None or got == want, (line, got, want)
        written += got is not None
        if is_plain_block(line.encode("utf-8", "surrogatepass")) and "\n" not in line:
            plain = fast.plain(line)
            assert plain is None or plain == want, (line, plain, want)
            assert plain == got, line  # a plain line: both variants take it the same way
    return written


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"raw_values": True},
        {"log_format": "main"},
        {"log_format": NGINX_RICH},
        {"user_agent": "keep"},
        {"user_agent": "drop"},
    ],
)
def test_generated_nginx_logs_with_tricky_lines(opts):
    lines = list(_generator().generate_lines(3000, seed=11, tricky=0.3))
    written = assert_same_json(build_decoder("nginx", **opts), lines)
    if not opts or opts == {"raw_values": True}:
        assert written >= 0.6 * len(lines)  # the plain ones go the fast way


def test_sample_logs():
    cases = [
        (
            "nginx",
            {"nginx_conf": str(SAMPLE_LOGS / "nginx" / "nginx.conf")},
            SAMPLE_LOGS / "nginx" / "access.log",
        ),
        ("nginx", {}, SAMPLE_LOGS / "nginx" / "access.log"),
        ("apache", {"log_format": "combined"}, SAMPLE_LOGS / "apache" / "access.log"),
        (
            "apache",
            {"apache_conf": str(SAMPLE_LOGS / "apache" / "apache2.conf"), "log_format_name": "timing"},
            SAMPLE_LOGS / "apache" / "timing.log",
        ),
        ("rsyslog", {"template": "RSYSLOG_TraditionalFileFormat"}, SAMPLE_LOGS / "rsyslog" / "syslog"),
        (
            "rsyslog",
            {"rsyslog_conf": RSYSLOG_CONF, "template_name": "Precise"},
            SAMPLE_LOGS / "rsyslog" / "messages",
        ),
        (
            "rsyslog",
            {"rsyslog_conf": RSYSLOG_CONF, "template_name": "Pipes"},
            SAMPLE_LOGS / "rsyslog" / "mail.log",
        ),
        ("rsyslog", {"template": "RSYSLOG_TraditionalFileFormat"}, SAMPLE_LOGS / "rsyslog" / "messages"),
        ("syslog", {}, SAMPLE_LOGS / "rsyslog" / "syslog"),
    ]
    total = 0
    for kind, opts, path in cases:
        if not path.exists():
            continue
        d = build_decoder(kind, **opts)
        text = path.read_text(encoding="utf-8", errors="backslashreplace")
        lines = text.split("\n")[:3000]
        total += assert_same_json(d, lines)
    assert total > 1000


@pytest.mark.parametrize("decoder", ["nginx_access", "apache_access", "rsyslog"])
def test_conformance_cases(decoder):
    kind = {"nginx_access": "nginx", "apache_access": "apache", "rsyslog": "rsyslog"}[decoder]
    opt = "template" if kind == "rsyslog" else "log_format"
    checked = 0
    for c in CASES:
        if c["decoder"] != decoder or c["level"] != "grammar" or not c["format"]:
            continue
        try:
            d = build_decoder(kind, **{opt: c["format"]})
        except Exception:  # noqa: BLE001 - formats Heka rejected at build time have no lines to compare
            continue
        line = c["line"]
        assert_same_json(d, [line, line + " trailing", "x" + line, line + "\r", line + "\r\n", line + "\n"])
        checked += 1
    assert checked >= 10


def test_other_kinds_and_line_endings():
    err = [
        '2014/03/01 11:29:39 [notice] 16842#0: *8878 using inherited sockets from "6;"',
        "2014/03/01 11:29:39 [error] 1#1: *2 connect() failed (111: Connection refused)",
        "2014/03/01 11:29:39 [error] 1#1: no connection number here",
        "2014/03/01 11:29:39 [bogus] 1#1: x",
        "",
    ]
    assert assert_same_json(build_decoder("nginx-error"), err, expect_fast=True) == 3
    combined = '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 304 0 "-" "UA"'
    endings = [
        combined,
        combined + "\n",
        combined + "\r\n",
        combined + "\r",
        combined + "\r\r\n",
        combined + "\x00",
    ]
    assert_same_json(build_decoder("nginx"), endings, expect_fast=True)
    # decoders without a generated function: the reference path only
    assert_same_json(
        build_decoder("json"), ['{"a": 1, "Timestamp": 5}', "[1]", "not json"], expect_fast=False
    )
    assert_same_json(build_decoder("syslog"), ["<13>Feb  9 14:17:01 host app[12]: hi"], expect_fast=False)
    assert_same_json(
        build_decoder("regex", pattern=r"(?P<a>[a-z]+) (?P<Timestamp>[0-9]+) (?P<n>[0-9.]+)"),
        ["abc 17 1.5", "abc x 2", 'a"b 1 2', "z 1 nan"],
        expect_fast=True,
    )


def test_values_that_need_escaping_or_the_reference_writer():
    d = build_decoder("nginx")
    base = '127.0.0.1 - {user} [10/Feb/2014:08:46:41 -0800] "{req}" 200 {size} "{ref}" "{ua}"'
    lines = [
        base.format(user='"quoted"', req="GET / HTTP/1.1", size="5", ref="-", ua="a"),
        base.format(user="-", req="GET /caf\u00e9 HTTP/1.1", size="007", ref="\u2028", ua="\u00a0x"),
        base.format(user="-", req="GET /\x01 HTTP/1.1", size="-0", ref="-", ua="\x7f"),
        base.format(user="-", req="GET /a\\x22b HTTP/1.1", size="1", ref="\\xff\\xfe", ua="\\x5C"),
        base.format(user="\udcff", req="GET / HTTP/1.1", size="1", ref="-", ua="-"),
        base.format(user="-", req="NOT-A-REQUEST", size="1", ref="-", ua="-"),
        base.format(user="-", req="GET", size="1", ref="-", ua="-"),
        base.format(user="-", req="GET /a b c HTTP/9.9", size="1", ref="-", ua="-"),
        base.format(user="-", req="G@T / HTTP/1.1", size="1", ref="-", ua="-"),
        base.format(user="-", req="GET / HTTP/1.1", size="9" * 5000, ref="-", ua="-"),
        base.format(user="-", req="GET / HTTP/1.1", size="1", ref="{}{{", ua="}"),
        base.replace("127.0.0.1", "::1").format(user="-", req="GET / HTTP/1.1", size="1", ref="-", ua="-"),
        base.replace("127.0.0.1", "1:2:3").format(user="-", req="GET / HTTP/1.1", size="1", ref="-", ua="-"),
        base.replace("08:46:41", "08:46:60").format(
            user="-", req="GET / HTTP/1.1", size="1", ref="-", ua="-"
        ),
        base.replace("2014", "1677")
        .replace("Feb", "Sep")
        .replace("10/", "21/")
        .format(user="-", req="GET / HTTP/1.1", size="1", ref="-", ua="-"),
        base.replace("2014", "2262")
        .replace("Feb", "Apr")
        .replace("10/", "11/")
        .replace("08:46", "23:47")
        .format(user="-", req="GET / HTTP/1.1", size="1", ref="-", ua="-"),
    ]
    assert_same_json(d, lines, expect_fast=True)


def test_timestamp_json_is_format_timestamp():
    rnd = random.Random(5)
    values = [0, -1, 1, 59_999_999_999, 60_000_000_000, -(2**63), 2**63 - 1]
    values += [rnd.randrange(-(2**63), 2**63) for _ in range(3000)]
    for ns in values:
        assert timestamp_json(ns) == '"' + format_timestamp(ns) + '"', ns


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
value_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    user=st.one_of(st.just("-"), value_text.map(lambda t: t.replace(" ", "_") or "-")),
    day=st.integers(1, 31),
    month=st.sampled_from(MONTHS),
    year=st.integers(1600, 2300),
    hms=st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 60)),
    offset=st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
    req=value_text,
    status=st.integers(0, 999),
    size=st.one_of(st.integers(-5, 10**15), st.sampled_from(["00", "-0", "-"])),
    ref=value_text,
    ua=value_text,
)
def test_arbitrary_values(user, day, month, year, hms, offset, req, status, size, ref, ua):
    h, m, sec = hms
    when = f"{day:02d}/{month}/{year:04d}:{h:02d}:{m:02d}:{sec:02d} {offset[0]}{offset[1]:02d}{offset[2]:02d}"
    line = f'127.0.0.1 - {user} [{when}] "{req}" {status:03d} {size} "{ref}" "{ua}"'
    for d in (build_decoder("nginx"), build_decoder("apache", log_format="combined")):
        assert_same_json(d, [line])


def test_groups_always_set():
    from hekacli.parsers.jsonout import _always_set_groups

    pattern = r"^(?P<g0>)(?P<g1>a)(?:x(?P<g2>b))?(?P<g3>c|d)(?:e|(?P<g4>f))(?P<g5>x)*(?:(?P<g6>y))+"
    assert _always_set_groups(pattern) == {0, 1, 3, 6}


def _with_inline(code: list[str]):
    """The nginx combined decoder with its request split replaced by `code` (both paths rebuilt)."""
    import dataclasses

    d = build_decoder("nginx")
    old = d.derived[0]
    names = old.inline[1]
    d.derived = [dataclasses.replace(old, inline=(code, names))]
    d._build_plan()
    return d


def test_derived_code_the_fast_path_takes_or_leaves():
    lines = [
        '::1 - - [10/Feb/2014:08:46:41 -0800] "GET /a HTTP/1.1" 200 1 "-" "-"',
        '::1 - - [10/Feb/2014:08:46:41 -0800] "GET /a" 200 1 "-" "-"',
        '::1 - - [10/Feb/2014:08:46:41 -0800] "x" 200 1 "-" "-"',
    ]
    # keys set in the order of the derived names on every path, reading the record: fast path
    same_order = [
        "    s = r.get('request')",
        "    if s is not None and ' ' in s:",
        "        r['request_method'] = s.split(' ')[0]",
        "        if s.endswith('1'):",
        "            r['server_protocol'] = 'x\"y'",
        "    else:",
        "        r['request_uri'] = r.get('Type')",
    ]
    assert assert_same_json(_with_inline(same_order), lines, expect_fast=True) == 3
    # parts of a value that may hold a '"' (remote_user) are escaped, parts of "$request" need not be
    split = [
        "    s = r.get('remote_user')",
        "    q = r.get('request')",
        "    if s is not None and q is not None:",
        "        a, b, c = s.partition('x')",
        "        e, f, g = q.rpartition(' ')",
        "        r['request_method'] = a",
        "        r['request_uri'] = g",
        "        r['server_protocol'] = f",
    ]
    quoted = [x.replace(" - - ", ' - a"bxc"d ') for x in lines]
    assert assert_same_json(_with_inline(split), lines + quoted, expect_fast=True) == 6
    fast = compile_line_json(_with_inline(split))
    assert "f'{_enc(_d0)}'" in fast.source and "f'\"{_d1}\"'" in fast.source
    # the order of the keys would depend on the path, a loop, or another use of the record: no fast path
    unordered = [
        "    s = r.get('request')",
        "    if s == 'x':",
        "        r['request_uri'] = s",
        "    r['request_method'] = s",
    ]
    looping = ["    for k in ('a',):", "        r['request_method'] = k"]
    other_use = ["    r.update(request_method='x')"]
    reads_own = ["    r['request_method'] = 'a'", "    r['request_uri'] = r.get('request_method')"]
    for code in (unordered, looping, other_use, reads_own):
        assert assert_same_json(_with_inline(code), lines, expect_fast=False) == 0
