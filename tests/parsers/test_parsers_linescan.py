"""The compiled line scanner (`parsers/_linescan.c`, `parsers/linescan.py`) changes nothing but speed.

Every test decodes the same bytes twice, with the scanner on and with ``HEKA_LINESCAN=0`` (the polars
regex path), and wants identical good rows (values, dtypes, column order), identical rejects (line
numbers, text, reason) and the same line count; most also check the rows against the streaming
`decode()`. Inputs: generated traffic (``bench/gen_access_log.py --tricky``), the sample logs, lines
built to trip the scanner (bytes it must decline, values around the 12-byte inline limit of a string
view, a match up to the last step), hypothesis-made times/numbers/requests for the conversions the
scanner computes itself, multi-chunk files and the analyzer end to end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator

import polars as pl
import pytest
from conftest import PROJECT_ROOT, SAMPLE_LOGS, run_heka
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("hekacli.parsers._linescan", reason="the line scanner extension is not built (setup.py)")

from hekacli.parsers import build_decoder, core, linescan  # noqa: E402
from hekacli.parsers.core import lines_series_from_bytes  # noqa: E402
from hekacli.parsers.derive import split_request  # noqa: E402
from hekacli.parsers.grammar import CLF_DATE, HOST, MONTH_NUM  # noqa: E402
from hekacli.parsers.times import _MAX_SEC, _MIN_SEC, NS, clf_to_ns  # noqa: E402

from .conftest import assert_paths_agree  # noqa: E402
from .test_parsers_bulk_tricky import GOOD, TRICKY  # noqa: E402


def _load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_access_log", PROJECT_ROOT / "bench" / "gen_access_log.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_lines


generate_lines = _load_generator()


@contextlib.contextmanager
def scanner(on: bool) -> Iterator[None]:
    """HEKA_LINESCAN set for the block (restored after)."""
    old = os.environ.get("HEKA_LINESCAN")
    os.environ["HEKA_LINESCAN"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HEKA_LINESCAN", None)
        else:
            os.environ["HEKA_LINESCAN"] = old


def reference(decoder, data: bytes, columns=None) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    """The polars regex path: (rows, number of lines, rejects)."""
    with scanner(False):
        assert not linescan.available()
        df, n = decoder.frame_bytes(data, columns)
        ref = decoder.frame(lines_series_from_bytes(data), columns)
        assert_same(df, ref, "frame_bytes with the scanner off vs frame()")
        return df, n, decoder.rejects


def scanned(decoder, data: bytes, columns=None) -> tuple[pl.DataFrame, int, pl.DataFrame]:
    with scanner(True):
        assert linescan.available()
        df, n = decoder.frame_bytes(data, columns)
        return df, n, decoder.rejects


def assert_same(got: pl.DataFrame, want: pl.DataFrame, what: str) -> None:
    assert got.columns == want.columns, f"{what}: column order\n{got.columns}\n{want.columns}"
    assert got.schema == want.schema, f"{what}: dtypes\n{got.schema}\n{want.schema}"
    if not got.equals(want):
        diff = pl.concat([got.with_row_index("row"), want.with_row_index("row")]).unique(keep="none")
        raise AssertionError(f"{what}: values differ (rows in only one of the two):\n{diff}")


def agree(decoder, data: bytes, columns=None, streaming: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scanner on == scanner off (rows, rejects, line count); rows also == streaming `decode()`."""
    want, n_want, rej_want = reference(decoder, data, columns)
    got, n_got, rej_got = scanned(decoder, data, columns)
    assert n_got == n_want == len(lines_series_from_bytes(data))
    assert_same(got, want, "rows")
    assert_same(rej_got, rej_want, "rejects")
    if streaming and columns is None:
        lines = lines_series_from_bytes(data).to_list()
        with scanner(True):
            recs = assert_paths_agree(decoder, lines)
        assert len(recs) == len(got)
    return got, rej_got


def to_bytes(lines: list[str], end: str = "\n") -> bytes:
    return "".join(ln + end for ln in lines).encode()


# -- which formats get a scan program -------------------------------------------------------------

COMBINED = build_decoder("nginx").source
UPSTREAM = (
    '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent rt=$request_time '
    "uct=$upstream_connect_time urt=$upstream_response_time ua=$upstream_addr us=$upstream_status "
    "cache=$upstream_cache_status"
)
KV = "ip=$remote_addr|st=$status|bytes=$body_bytes_sent|req=$request|ua=$http_user_agent"

REQUIRED = {  # the formats that must get a scan program
    "nginx combined": ("nginx", {}),
    "nginx main": ("nginx", {"log_format": "main"}),
    "apache common": ("apache", {"log_format": "common"}),
    "apache combined": ("apache", {"log_format": "combined"}),
}
OTHERS = {  # with or without a program: the answers must agree either way
    "apache vhost_combined": ("apache", {"log_format": "vhost_combined"}),
    "nginx timed": ("nginx", {"log_format": COMBINED + " $request_time"}),
    "nginx key=value": ("nginx", {"log_format": KV}),
    "nginx iso8601": ("nginx", {"log_format": '$remote_addr [$time_iso8601] "$request" $status'}),
    "nginx msec": ("nginx", {"log_format": '$msec $remote_addr "$request" $status $body_bytes_sent'}),
    "nginx upstream": ("nginx", {"log_format": UPSTREAM}),
    "nginx error": ("nginx-error", {}),
    "apache timing": (
        "apache",
        {"apache_conf": str(SAMPLE_LOGS / "apache" / "apache2.conf"), "log_format_name": "timing"},
    ),
    "rsyslog file": ("rsyslog", {"template": "RSYSLOG_FileFormat"}),
    "rsyslog traditional": ("rsyslog", {"template": "RSYSLOG_TraditionalFileFormat"}),
    "rsyslog forward": ("rsyslog", {"template": "RSYSLOG_ForwardFormat"}),
    "rsyslog protocol23": ("rsyslog", {"template": "RSYSLOG_SyslogProtocol23Format"}),
}
ALL = {**REQUIRED, **OTHERS}
SCANNED = [
    "nginx combined",
    "nginx main",
    "nginx key=value",
    "nginx timed",
    "apache combined",
    "apache common",
    "apache vhost_combined",
]


def make(name: str):
    kind, opts = ALL[name]
    return build_decoder(kind, **opts)


@pytest.mark.parametrize("name", list(REQUIRED))
def test_formats_with_a_scan_program(name):
    program = make(name).scan_program
    assert program is not None
    assert {"request", "int", "clf"} <= set(program.conversions.values())


def test_which_other_formats_get_a_program():
    """Not a requirement, a record: which of the other formats the scanner takes today."""
    have = {name for name in OTHERS if getattr(make(name), "scan_program", None) is not None}
    assert {"nginx key=value", "nginx timed"} <= have
    assert not {n for n in have if n.startswith("rsyslog")}
    # %v is a host, which may be an IPv6 address holding ':': its value ends at the last ':' of its
    # run (a split run), as the regex's greedy host does before "%p "
    assert "apache vhost_combined" in have


def test_a_host_that_holds_the_separator_ends_at_its_last_one():
    """Apache's "%v:%p ": the host's class holds ':' (IPv6), so its value ends at the last ':' of
    its run, as the regex's greedy host does; such lines are scanned, not handed back."""
    d = make("apache vhost_combined")
    lines = [f"{host} {GOOD}" for host in ("::1:8443", "fe80::1:0", "www.example.com:443", "h:-1")]
    data = to_bytes(lines)
    with scanner(True):
        result = linescan.scan(data, d.scan_program)
    assert not result.declined and len(result.groups) == 4
    got, _ = agree(d, data)
    assert got.select("server_name", "server_port").rows() == [
        ("::1", 8443), ("fe80::1", 0), ("www.example.com", 443), ("h", -1)
    ]


def test_the_syslog_decoder_is_not_a_pattern_decoder():
    assert not hasattr(build_decoder("syslog"), "frame_bytes")


# -- realistic lines per format ---------------------------------------------------------------------


def _generated(n: int, seed: int) -> list[str]:
    return list(generate_lines(n, seed=seed, tricky=0.3))


def _lines_for(name: str) -> list[str]:
    gen = _generated(600, 7) + TRICKY
    if name == "nginx combined":
        return gen
    if name == "nginx main":
        return [ln + (' "-"' if i % 3 else ' "10.0.0.1, 10.0.0.2"') for i, ln in enumerate(gen)]
    if name == "nginx timed":
        return [ln + " 0.00" + str(i % 10) for i, ln in enumerate(gen)]
    if name == "apache combined":
        return (SAMPLE_LOGS / "apache" / "access.log").read_text().splitlines() + gen
    if name == "apache common":
        return [ln.rsplit(' "', 2)[0] for ln in gen]
    if name == "apache vhost_combined":
        hosts = ["www.example.com:443", "10.1.2.3:80", "::1:8443", "fe80::1:0", "%41%42:80",
                 "xn--bcher-kva.example:8080", "h:-1", "h:08"]
        odd = ["[::1]:443", "a:b:80", ":80", "h:", "h::80", "h:8a", "h:99999999999999999999",
               "ex%zz:80", "h:80:", "h:80:90"]  # (each line, scanned or not, must agree)
        pick = [odd[i // 5 % len(odd)] if i % 5 == 0 else hosts[i % len(hosts)] for i in range(len(gen))]
        return [f"{host} {ln}" for host, ln in zip(pick, gen, strict=True)]
    if name == "apache timing":
        return (SAMPLE_LOGS / "apache" / "timing.log").read_text().splitlines()
    if name == "nginx key=value":
        out = []
        for i, ln in enumerate(gen):
            m = re.match(r'(\S+) .*?"(.*)" (\S+)  ?(\S+) "[^"]*" "(.*)"$', ln)
            if m is None:
                out.append("ip=1.2.3.4|st=200|bytes=1|req=" + ln + "|ua=-")
                continue
            ip, req, st_, size, ua = m.groups()
            out.append(f"ip={ip}|st={st_}|bytes={size}|req={req}|ua={ua}" + ("|" if i % 50 == 0 else ""))
        return out + ["ip=::1|st=200|bytes=5|req=GET /a|b HTTP/1.1|ua=x", "ip=|st=|bytes=|req=|ua="]
    if name == "nginx iso8601":
        return [
            f'10.0.0.{i % 250} [2026-11-02T09:{i % 60:02d}:15+01:00] "GET /p{i} HTTP/1.1" 200'
            for i in range(300)
        ] + ['::1 [2026-13-02T09:00:00Z] "GET / HTTP/1.1" 200', ""]
    if name == "nginx msec":
        return [
            f'1762074855.{i:03d} 10.0.0.1 "GET /x?{i} HTTP/1.1" {200 + i % 5} {i * 7}' for i in range(300)
        ]
    if name == "nginx upstream":
        return [
            f'10.0.0.1 [2026-11-02T09:15:12+00:00] "GET /api HTTP/1.1" 200 {i} rt=0.01{i % 10} '
            f"uct=0.001 urt=0.00{i % 10}, 0.002 ua=127.0.0.1:8080, 127.0.0.1:8081 us=502, 200 "
            "cache=MISS"
            for i in range(200)
        ] + [
            '10.0.0.1 [2026-11-02T09:15:12+00:00] "GET / HTTP/1.1" 200 0 rt=0.000 uct=- urt=- ua=- us=- '
            "cache=-"
        ]
    if name == "nginx error":
        return [
            "2026/11/02 09:15:11 [error] 811#811: *4021 connect() failed (111: Connection refused) while "
            'connecting to upstream, client: 10.0.0.1, server: _, request: "GET / HTTP/1.1"',
            "2026/11/02 09:15:12 [warn] 811#811: conflicting server name",
            "not an error line",
        ] * 50
    if name.startswith("rsyslog"):
        return (
            (SAMPLE_LOGS / "rsyslog" / "messages").read_text().splitlines()
            + (SAMPLE_LOGS / "rsyslog" / "syslog").read_text().splitlines()
            + [
                "<13>1 2026-11-02T09:14:15.090592+00:00 web1 app 12 - - hello",
                "<13>2026-11-02T09:14:15+00:00 web1 app[1]: hi",
            ]
        )
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(ALL))
def test_realistic_lines_agree(name):
    d = make(name)
    data = to_bytes(_lines_for(name))
    got, rejects = agree(d, data)
    assert len(got) > 0
    if name in SCANNED:
        # the scanner really ran: it took most lines (clean ones) and handed back the rest
        assert d.scan_program is not None
        with scanner(True):
            result = linescan.scan(data, d.scan_program)
        assert len(result.groups) > 300 and result.declined
        assert len(result.groups) + len(result.declined) == result.n_lines


def test_sample_nginx_access_log_agrees():
    d = build_decoder("nginx", nginx_conf=str(SAMPLE_LOGS / "nginx" / "nginx.conf"), log_format_name="main")
    data = (SAMPLE_LOGS / "nginx" / "access.log").read_bytes()[:400_000]
    data = data[: data.rfind(b"\n") + 1]
    agree(d, data, streaming=False)
    agree(build_decoder("nginx"), data, streaming=False)


def test_the_scanner_takes_clean_lines_and_declines_the_rest():
    program = build_decoder("nginx").scan_program
    clean = GOOD.encode()
    declined_lines = [
        GOOD.replace("curl", "cu\\x22rl"),
        GOOD.replace("curl", 'cu\\"rl'),
        GOOD.replace(" 612", "  612"),
        GOOD.replace("curl", "cu\trl"),
        GOOD.replace("curl", "cu\x0brl"),
        GOOD.replace("curl", "cu\x0crl"),
        GOOD.replace("curl", "cé"),
        GOOD.replace("200", "20x"),
    ]
    data = b"\n".join([clean] + [ln.encode() for ln in declined_lines] + [clean])
    with scanner(True):
        result = linescan.scan(data, program)
    assert result.n_lines == 10
    assert result.groups["__row"].to_list() == [0, 9]
    assert [row for row, _, _ in result.declined] == list(range(1, 9))
    for row, a, b in result.declined:
        assert data[a:b] == declined_lines[row - 1].encode()


# -- tricky bytes -----------------------------------------------------------------------------------


def _view_sized(n: int) -> str:
    return ("/" + "a" * 40)[:n]


TRICKY_BYTES = {
    "empty buffer": b"",
    "only newlines": b"\n\n\n",
    "one newline": b"\n",
    "empty lines between": b"\n" + GOOD.encode() + b"\n\n" + GOOD.encode() + b"\n\n",
    "no final newline": to_bytes([GOOD] * 3)[:-1],
    "crlf": to_bytes([GOOD, GOOD.replace("200", "404")], end="\r\n"),
    "crlf mixed": GOOD.encode() + b"\r\n" + GOOD.encode() + b"\n" + GOOD.encode() + b"\r",
    "lone cr inside": GOOD.replace("curl", "cu\rrl").encode() + b"\n" + GOOD.encode() + b"\n",
    "invalid utf-8": GOOD.replace("curl", "cu\udcffrl").encode("utf-8", "surrogateescape")
    + b"\n"
    + GOOD.encode()
    + b"\n"
    + b"\xff\xfe\n",
    "invalid utf-8 in request": GOOD.replace("/a?b=c", "/\udce9t\udce9").encode("utf-8", "surrogateescape"),
    "non-ascii": to_bytes([GOOD.replace("curl", "cürl"), GOOD.replace("/a?b=c", "/日本"), GOOD]),
    "backslash escapes": to_bytes(
        [
            GOOD.replace("curl", "say \\x22hi\\x22"),
            GOOD.replace("curl", 'say \\"hi\\"'),
            GOOD.replace("/a?b=c", "/a\\x20b"),
            GOOD.replace("curl", "end\\"),
        ]
    ),
    "double spaces": to_bytes(
        [
            GOOD.replace(" 612", "  612"),
            GOOD.replace("GET ", "GET  "),
            GOOD.replace("curl/8.5.0", "a  b"),
            GOOD + "  ",
        ]
    ),
    "tabs": to_bytes([GOOD.replace(" 612", "\t612"), GOOD.replace("curl", "a\tb"), GOOD + "\t"]),
    "unit separator": to_bytes([GOOD.replace("curl", "a\x1fb"), GOOD]),
    "nul": to_bytes([GOOD.replace("curl", "a\x00b"), GOOD.replace("/a?b=c", "/\x00"), GOOD + "\x00", GOOD]),
    "control bytes": to_bytes(
        [
            GOOD.replace("curl", "a\x01\x7fb"),
            GOOD.replace("curl", "a\x0bb"),
            GOOD.replace("curl", "a\x0cb"),
            GOOD.replace("GET", "G\x08ET"),
        ]
    ),
    "long line": to_bytes(
        [GOOD.replace("curl/8.5.0", "u" * 100_000), GOOD.replace("/a?b=c", "/" + "q" * 100_000), GOOD]
    ),
    "view inline limit": to_bytes(
        [
            GOOD.replace("/a?b=c", _view_sized(n))
            .replace("curl/8.5.0", "x" * n)
            .replace('"-"', '"' + "r" * n + '"')
            for n in (0, 1, 4, 11, 12, 13, 14, 16, 17)
        ]
        + [GOOD.replace("GET /a?b=c HTTP/1.1", "GET /abcdefghijk HTTP/1.1")]  # 12-byte URI
        + [GOOD.replace("GET /a?b=c HTTP/1.1", "GET /abcdefghijkl HTTP/1.1")]  # 13-byte URI
        + [GOOD.replace("GET /a?b=c HTTP/1.1", "GETGETGETGET / HTTP/1.1")]  # 12-byte method
        + [GOOD.replace("GET /a?b=c HTTP/1.1", "GETGETGETGETG / HTTP/12.12345")]
    ),
    "matches up to the last step": to_bytes(
        [
            GOOD[:-1],
            GOOD[:-2],
            GOOD + '"',
            GOOD + " ",
            GOOD + "x",
            GOOD.rsplit(" ", 1)[0],
            GOOD[: GOOD.index(" 200")],
            GOOD[:1],
            GOOD[:20],
            " " + GOOD,
            GOOD.replace("] ", "]"),
        ]
    ),
    "tricky list": to_bytes(TRICKY),
    "tricky list crlf": to_bytes(TRICKY, end="\r\n"),
    "numbers": to_bytes(
        [
            GOOD.replace(" 612 ", f" {v} ")
            for v in (
                "0",
                "-0",
                "-",
                "007",
                "-12",
                "9" * 18,
                "1" + "0" * 18,
                "9223372036854775807",
                "-9223372036854775808",
                "9223372036854775808",
                "-9223372036854775809",
                "1" * 30,
                "--1",
                "1-",
                "+1",
                "",
            )
        ]
        + [GOOD.replace(" 200 ", f" {v} ") for v in ("000", "999", "20", "2000", "-20", "abc")]
    ),
    "requests": to_bytes(
        [
            GOOD.replace("GET /a?b=c HTTP/1.1", r)
            for r in (
                "",
                "-",
                "GET",
                "GET ",
                " GET / HTTP/1.1",
                "GET /",
                "GET / HTTP/1.",
                "GET / HTTP/x.y",
                "GET / HTTP/1.1 ",
                "GET /a b c HTTP/1.1",
                "GET /a HTTP/1.1 HTTP/1.0",
                "G(T / HTTP/1.1",
                "GET  / HTTP/1.1",
                "GET HTTP/1.1",
                "GET /x HTTP/11.0",
                "get / http/1.1",
                "\x16\x03\x01",
                "PRI * HTTP/2.0",
                "GET / HTTP/2",
                "GET / HTTP/1.1x",
                "a b",
            )
        ]
    ),
}


@pytest.mark.parametrize("name", SCANNED)
@pytest.mark.parametrize("case", sorted(TRICKY_BYTES))
def test_tricky_bytes_agree(name, case):
    d = make(name)
    data = TRICKY_BYTES[case]
    if name == "nginx main":
        data = data.replace(b"\n", b' "-"\n')
    elif name == "nginx timed":
        data = data.replace(b"\n", b" 0.004\n")
    elif name == "apache common":
        data = re.sub(rb' "[^"\n]*" "[^\n]*"$', b"", data, flags=re.M)
    elif name == "nginx key=value":
        data = re.sub(
            rb'^(\S*) - \S* \[[^]]*\] "(.*)" (\S*) (\S*) "[^"]*" "(.*)"$',
            rb"ip=\1|st=\3|bytes=\4|req=\2|ua=\5",
            data,
            flags=re.M,
        )
    agree(d, data)


def test_crlf_and_missing_final_newline_count_lines_like_the_reference():
    d = build_decoder("nginx")
    for data in (b"", b"\n", b"\r\n", GOOD.encode(), GOOD.encode() + b"\r\n", b"x\r\n" + GOOD.encode()):
        _, n, _ = scanned(d, data)
        assert n == len(lines_series_from_bytes(data)), data


# -- columns= ---------------------------------------------------------------------------------------

COLUMN_SETS = [
    ["status"],
    ["Timestamp"],
    ["request_uri"],
    ["request_method", "server_protocol"],
    ["Type"],
    [],
    ["body_bytes_sent", "request"],
    ["http_user_agent", "Timestamp", "status"],
]


@pytest.mark.parametrize("columns", COLUMN_SETS, ids=lambda c: ",".join(c) or "none")
def test_columns_agree_and_rejects_do_not_depend_on_them(columns):
    d = build_decoder("nginx")
    data = to_bytes(_generated(300, 3) + TRICKY) + TRICKY_BYTES["numbers"] + TRICKY_BYTES["requests"]
    _, all_rejects = agree(d, data)
    got, rejects = agree(d, data, columns)
    assert_same(rejects, all_rejects, "rejects with columns vs without")
    assert set(columns) <= set(got.columns) | set(d.constants)  # a hint: more may come back


@pytest.mark.parametrize("columns", [["status"], ["Timestamp"], ["request_uri"], []], ids=str)
def test_columns_agree_on_apache(columns):
    d = build_decoder("apache", log_format="combined")
    agree(d, to_bytes(_generated(200, 4) + TRICKY), columns)


@pytest.mark.parametrize(
    "columns",
    [["request_uri"], ["request_method", "status"], ["server_protocol"], ["request", "request_uri"]],
    ids=str,
)
def test_a_derived_field_brings_only_what_was_asked(columns):
    """A derived field is computed from its source alone; the source comes back only when asked
    for, and no column comes back empty on the lines the scanner took (it returns only the parts
    it was asked for)."""
    d = build_decoder("nginx")
    data = to_bytes(_generated(300, 5) + TRICKY) + TRICKY_BYTES["requests"]
    full, _ = agree(d, data)
    got, _ = agree(d, data, columns)
    assert set(got.columns) == set(columns)
    assert got.equals(full.select(got.columns))


# -- conversions ------------------------------------------------------------------------------------

DECODER_NGINX = build_decoder("nginx")
DECODER_APACHE = build_decoder("apache", log_format="combined")
DECODER_TIMED = build_decoder("nginx", log_format=COMBINED + " $request_time")

MONTHS = st.sampled_from(list(MONTH_NUM) + ["feb", "FEB", "Foo", "Jan ", "Ja"])
TWO = st.integers(0, 99).map("{:02d}".format)
VALID_TIMES = st.builds(
    lambda t, sign, zh, zm: t.strftime("%d/%b/%Y:%H:%M:%S ") + f"{sign}{zh:02d}{zm:02d}",
    st.datetimes(),
    st.sampled_from("+-"),
    st.integers(0, 23),
    st.integers(0, 59),
)
RANDOM_TIMES = st.builds(
    lambda d, mon, y, h, mi, s, sign, zh, zm: f"{d}/{mon}/{y}:{h}:{mi}:{s} {sign}{zh}{zm}",
    TWO,
    MONTHS,
    st.one_of(st.integers(0, 9999), st.integers(1670, 2270)).map("{:04d}".format),
    TWO,
    TWO,
    TWO,
    st.sampled_from("+-"),
    TWO,
    TWO,
)
TIMES = st.one_of(VALID_TIMES, RANDOM_TIMES)
NUMBERS = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.integers(0, 999).map(str),
    st.sampled_from(["-", "", "0", "-0", "00", "+1", "1e3", "0x1", "9223372036854775808"]),
)
TOKENS = st.text("GETPOSabc!#$%&'*+.^_`|~-(),/:;", min_size=0, max_size=6)
URIS = st.text("/abc?=& %:.-_", min_size=0, max_size=20).map(lambda s: re.sub(" +", " ", s))
PROTOCOLS = st.sampled_from(
    [
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/1.",
        "HTTP/x.y",
        "HTTP/11.22",
        "http/1.1",
        "HTTP/1",
        "",
        "HTTP/1.1x",
    ]
)
REQUESTS = st.one_of(
    st.builds(lambda m, u, p: " ".join(x for x in (m, u, p) if x), TOKENS, URIS, PROTOCOLS),
    st.text("GET /H1.T ", max_size=12).map(lambda s: re.sub(" +", " ", s)),
)
COMBINED_LINE = st.builds(
    lambda t, r, s, b: f'10.0.0.1 - - [{t}] "{r}" {s} {b} "-" "ua"', TIMES, REQUESTS, NUMBERS, NUMBERS
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMBINED_LINE, min_size=1, max_size=25))
def test_generated_times_numbers_requests_agree(lines):
    d = DECODER_NGINX
    agree(d, to_bytes(lines))
    agree(DECODER_APACHE, to_bytes(lines), streaming=False)


def _raw_scan(lines: list[str]) -> tuple[linescan.Scan, linescan.ScanProgram]:
    program = DECODER_NGINX.scan_program
    with scanner(True):
        return linescan.scan(to_bytes(lines), program), program


def _group_of(program: linescan.ScanProgram, conversion: str) -> list[int]:
    return sorted(g for g, c in program.conversions.items() if c == conversion)


@settings(max_examples=80, deadline=None)
@given(st.lists(TIMES, min_size=1, max_size=30))
def test_clf_check_and_conversion_equal_the_regex_and_clf_to_ns(times):
    result, program = _raw_scan([GOOD.replace("10/Feb/2014:08:46:41 -0800", t) for t in times])
    (group,) = _group_of(program, "clf")
    df = result.groups
    scanned_rows = set(df["__row"].to_list())
    for row, t in enumerate(times):
        # a line the scanner takes has a valid date; it may hand back others (the regex judges them)
        if row in scanned_rows:
            assert re.fullmatch(CLF_DATE, t), t
    for text, value in zip(df[f"g{group}"], df[linescan.converted_name(group)], strict=True):
        want = clf_to_ns(text)
        assert value == (want if _MIN_SEC <= want // NS <= _MAX_SEC else None), text


HOSTS = st.one_of(
    st.tuples(*[st.integers(0, 300)] * 4).map(lambda t: ".".join(map(str, t))),
    st.lists(
        st.sampled_from(["0", "1", "ffff", "FFFF", "abcd", "12345", "g", "", "1.2.3.4", "01.2.3.4"]),
        min_size=1,
        max_size=10,
    ).map(":".join),
    st.text("0123456789abcdefABCDEF:.", min_size=1, max_size=20),
    st.text("az09._~!$&'()*+,;=%-:", min_size=1, max_size=12),
    st.sampled_from(
        [
            "::",
            ":::",
            "::1",
            "1::",
            "1::2::3",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:1.2.3.4",
            "1.2.3.4::",
            ":1::",
            "%41",
            "a%4",
            "a%4g",
            "%",
            "localhost",
            "-",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3.4",
            "1::1.2.3.4",
        ]
    ),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(HOSTS, min_size=1, max_size=30))
def test_host_check_accepts_only_what_the_regex_accepts(hosts):
    lines = [GOOD.replace("127.0.0.1", h, 1) for h in hosts]
    result, program = _raw_scan(lines)
    df = result.groups
    scanned_rows = set(df["__row"].to_list())
    for row, h in enumerate(hosts):
        if row in scanned_rows:
            assert re.fullmatch(HOST, h), h
        elif re.fullmatch(r"[0-9]{1,2}(\.[0-9]{1,2}){3}|[a-z]+", h):
            raise AssertionError(f"a plain address or name is declined: {h!r}")
    agree(DECODER_NGINX, to_bytes(lines))


DECIMALS = st.one_of(
    st.from_regex(r"\A[0-9]{0,3}\.?[0-9]{0,3}\Z"), st.sampled_from(["-", ".", "1.", ".5", "1.2.3"])
)


@settings(max_examples=25, deadline=None)
@given(st.lists(DECIMALS, min_size=1, max_size=30))
def test_trailing_decimal_field_agrees(values):
    d = DECODER_TIMED
    assert d.scan_program is not None
    agree(d, to_bytes([GOOD + " " + v for v in values]))


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "1" * 30])
def test_integer_beyond_int64_is_rejected_on_both_paths(value):
    d = build_decoder("nginx")
    line = GOOD.replace(" 612 ", f" {value} ")
    got, rejects = agree(d, to_bytes([line, GOOD]))
    assert rejects["lineno"].to_list() == [1] and len(got) == 1
    assert d.decode(line) is None


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(NUMBERS, st.integers(-(10**22), 10**22).map(str)).filter(
            lambda s: " " not in s and '"' not in s
        ),
        min_size=1,
        max_size=30,
    )
)
def test_int_conversion_equals_int(numbers):
    result, program = _raw_scan([GOOD.replace(" 612 ", f" {v} ") for v in numbers])
    df = result.groups
    (status, size) = _group_of(program, "int")
    for text, value in zip(df[f"g{size}"], df[linescan.converted_name(size)], strict=True):
        if value is not None:
            assert value == int(text), text
        elif re.fullmatch(r"-?[0-9]{1,18}", text):
            raise AssertionError(f"{text!r} not converted")


@settings(max_examples=80, deadline=None)
@given(st.lists(REQUESTS.filter(lambda s: '"' not in s and "  " not in s), min_size=1, max_size=30))
def test_request_split_equals_split_request(requests):
    result, program = _raw_scan([GOOD.replace("GET /a?b=c HTTP/1.1", r) for r in requests])
    (group,) = _group_of(program, "request")
    df = result.groups
    names = linescan.request_part_names(group)
    for row in df.select(f"g{group}", *names).iter_rows():
        text, parts = row[0], row[1:]
        want = split_request(text)
        assert parts == (want if want is not None else (None, None, None)), text


def test_dates_outside_the_nanosecond_range_are_rejected_on_both_paths():
    lines = [
        GOOD.replace("2014", y) for y in ("1600", "1677", "1678", "2261", "2262", "2263", "9999", "0000")
    ]
    lines += [
        GOOD.replace("10/Feb", "30/Feb"),
        GOOD.replace("10/Feb", "29/Feb"),
        GOOD.replace("41 -0800", "60 +0000"),
        GOOD.replace("10/Feb", "00/Feb"),
        GOOD.replace("08:46", "24:46"),
        GOOD.replace("-0800", "+2400"),
        GOOD.replace("Feb", "feb"),
    ]
    got, rejects = agree(build_decoder("nginx"), to_bytes(lines))
    assert rejects["lineno"].to_list()[:2] == [1, 2]


# -- frame_file over several chunks -----------------------------------------------------------------


def test_column_buffers_used_again_after_release_give_the_same_rows():
    """Column buffers of 1 MB and more go back to a pool when polars drops them and serve the next
    chunks (grown when too short). A chunk big enough for pooled buffers is scanned again and again:
    every time the same rows as the regex path, and a frame still held is never written over."""
    d = make("nginx combined")
    data = to_bytes(_generated(12000, 11))
    assert len(data) > 2 << 20
    with scanner(False):
        want, lines = d.frame_bytes(data)
        want_rejects = d.rejects
    with scanner(True):
        held = None
        for turn in range(5):
            got, n = d.frame_bytes(data, columns=None if turn % 2 else ["request_uri", "http_user_agent"])
            assert n == lines
            if turn % 2:
                assert_same(got, want, f"rows, turn {turn}")
                assert_same(d.rejects, want_rejects, f"rejects, turn {turn}")
            else:
                assert_same(got, want.select(got.columns), f"two columns, turn {turn}")
            if turn == 1:
                held = got
            del got
        assert held is not None
        assert_same(held, want, "a frame held while later chunks were scanned")


@pytest.mark.parametrize("name", ["nginx combined", "apache combined", "nginx timed"])
def test_frame_file_over_many_chunks(name, tmp_path, monkeypatch):
    monkeypatch.setattr(core, "_CHUNK_BYTES", 4096)
    d = make(name)
    lines = _lines_for(name) + _lines_for(name)[:50]
    path = tmp_path / "access.log"
    path.write_bytes(to_bytes(lines))
    assert path.stat().st_size > 20 * 4096
    with scanner(False):
        want = d.frame_file(path)
        want_rejects = d.rejects
        ref = d.frame(lines_series_from_bytes(path.read_bytes()))
        ref_rejects = d.rejects
    with scanner(True):
        got = d.frame_file(path)
        got_rejects = d.rejects
    assert_same(want, ref, "frame_file (scanner off) vs frame")
    assert_same(want_rejects, ref_rejects, "frame_file rejects (scanner off) vs frame")
    assert_same(got, want, "frame_file rows")
    assert_same(got_rejects, want_rejects, "frame_file rejects")
    if name != "nginx timed":
        assert len(got_rejects) > 0 and got_rejects["lineno"].max() > 600  # numbered across chunks


def test_frame_file_gzip_and_one_chunk(tmp_path, monkeypatch):
    import gzip

    d = build_decoder("nginx")
    data = to_bytes(_generated(300, 9) + TRICKY)
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.log").write_bytes(data[:-1])  # no final newline
    for path in (tmp_path / "a.log.gz", tmp_path / "b.log"):
        for chunk in (1 << 20, 2048):
            monkeypatch.setattr(core, "_CHUNK_BYTES", chunk)
            with scanner(False):
                want, want_rej = d.frame_file(path), d.rejects
            with scanner(True):
                got, got_rej = d.frame_file(path), d.rejects
            assert_same(got, want, f"{path.name} {chunk}")
            assert_same(got_rej, want_rej, f"{path.name} {chunk} rejects")


# -- the analyzer end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tricky_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("linescan") / "access.log"
    lines = _generated(3000, 11) + TRICKY
    path.write_bytes(
        to_bytes(lines)
        + TRICKY_BYTES["crlf"]
        + TRICKY_BYTES["invalid utf-8"]
        + TRICKY_BYTES["numbers"]
        + TRICKY_BYTES["requests"]
    )
    return path


def _both(*args: str) -> tuple[bytes, bytes]:
    on = run_heka(*args, env={"HEKA_LINESCAN": "1"})
    off = run_heka(*args, env={"HEKA_LINESCAN": "0"})
    assert on.returncode == off.returncode, (on.stderr, off.stderr)
    assert on.stderr == off.stderr
    return on.stdout, off.stdout


@pytest.mark.parametrize(
    "query",
    [
        ["--by", "status", "--count"],
        ["--by", "request_uri", "--top", "5", "--sum", "body_bytes_sent", "--p90", "body_bytes_sent"],
    ],
    ids=["status", "uri-top5-sum"],
)
def test_analyzer_agg_same_output(tricky_log, query):
    on, off = _both("agg", str(tricky_log), *query, "--format", "jsonl", "--no-cache")
    assert on and on == off


def _without_timings(value):
    if isinstance(value, dict):
        return {
            k: _without_timings(v)
            for k, v in value.items()
            if not re.search(r"(elapsed|seconds|duration|took|time_ms|generated)", k)
        }
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_analyzer_report_same_output(tricky_log):
    on, off = _both("report", str(tricky_log), "--json", "--no-cache")
    assert _without_timings(json.loads(on)) == _without_timings(json.loads(off))
