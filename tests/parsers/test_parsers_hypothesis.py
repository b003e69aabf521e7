"""Property tests: values rendered through a format (as the server writes them) decode back exactly,
and the streaming and bulk paths agree on arbitrary lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hekacli.parsers import build_decoder
from hekacli.parsers.escapes import escape_apache, escape_nginx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import assert_paths_agree

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# nginx escapes only '"', '\\' and non-printable bytes, so a value cannot contain the character that
# ends it in the format: the [$http_x_forwarded_for] value is generated without ']'.
NGINX_FMT = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    '"$http_user_agent" rt=$request_time ua2=[$http_x_forwarded_for] $ssl_protocol/$ssl_cipher'
)
APACHE_FMT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["::1", "2001:db8::1", "fe80::1ff:fe23:4567:890a", "2001:db8:85a3::8a2e:370:7334"])
hostname = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)
token = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
free_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
stamp = st.tuples(st.integers(0, 4_000_000_000), st.integers(-12 * 60, 14 * 60))
method = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"])
path = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
).map(lambda s: "/" + s)


def clf(epoch: int, offset_min: int) -> str:
    tz = timezone(timedelta(minutes=offset_min))
    t = datetime.fromtimestamp(epoch, UTC).astimezone(tz)
    sign = "-" if offset_min < 0 else "+"
    off = abs(offset_min)
    return (
        f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year:04d}:{t.hour:02d}:{t.minute:02d}:{t.second:02d} "
        f"{sign}{off // 60:02d}{off % 60:02d}"
    )


@SETTINGS
@given(
    addr=st.one_of(ipv4, ipv6, hostname),
    user=token,
    when=stamp,
    meth=method,
    uri=path,
    status=st.integers(100, 599),
    size=st.integers(0, 10**12),
    ref=free_text,
    ua=free_text,
    rt=st.integers(0, 10**6),
    xff=free_text.map(lambda t: t.replace("]", ")")),  # nginx does not escape "]": see NGINX_FMT
    proto=token,
    cipher=token,
)
def test_nginx_values_round_trip(addr, user, when, meth, uri, status, size, ref, ua, rt, xff, proto, cipher):
    request = f"{meth} {uri} HTTP/1.1"
    line = (
        f'{addr} - {user} [{clf(*when)}] "{escape_nginx(request)}" {status} {size} "{escape_nginx(ref)}" '
        f'"{escape_nginx(ua)}" rt={rt // 1000}.{rt % 1000:03d} ua2=[{escape_nginx(xff)}] {proto}/{cipher}'
    )
    d = build_decoder("nginx", log_format=NGINX_FMT)
    [rec] = assert_paths_agree(d, [line])
    assert rec["Timestamp"] == when[0] * 1_000_000_000
    assert rec["remote_addr"] == addr
    assert rec["remote_user"] == user
    assert rec["request"] == request
    assert (rec["request_method"], rec["request_uri"], rec["server_protocol"]) == (meth, uri, "HTTP/1.1")
    assert rec["status"] == status and rec["body_bytes_sent"] == size
    assert rec["http_referer"] == ref and rec["http_user_agent"] == ua and rec["http_x_forwarded_for"] == xff
    assert rec["request_time"] == rt / 1000
    assert (rec["ssl_protocol"], rec["ssl_cipher"]) == (proto, cipher)


@SETTINGS
@given(
    addr=st.one_of(ipv4, ipv6),
    when=stamp,
    meth=method,
    uri=path,
    status=st.integers(100, 599),
    size=st.one_of(st.none(), st.integers(1, 10**9)),
    ref=free_text,
    ua=free_text,
    us=st.integers(0, 10**9),
)
def test_apache_values_round_trip(addr, when, meth, uri, status, size, ref, ua, us):
    request = f"{meth} {uri} HTTP/1.1"
    line = (
        f'{addr} - - [{clf(*when)}] "{escape_apache(request)}" {status} {"-" if size is None else size} '
        f'"{escape_apache(ref)}" "{escape_apache(ua)}" {us}'
    )
    d = build_decoder("apache", log_format=APACHE_FMT)
    [rec] = assert_paths_agree(d, [line])
    assert rec["Timestamp"] == when[0] * 1_000_000_000
    assert rec["remote_addr"] == addr
    assert rec["request"] == request
    assert rec["status"] == status and rec["body_bytes_sent"] == (size or 0)
    assert rec["http_referer"] == ref and rec["http_user_agent"] == ua
    assert rec["request_time"] == us


# Arbitrary, mostly-broken lines: whatever each path decides, both decide the same.
line_chars = st.sampled_from(list('0123456789.:-[]/" \t\\xabcGETHTP') + ["  ", "\\x22", "-0800"])
noisy_line = st.lists(line_chars, max_size=60).map("".join)
COMBINED_SEED = '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 304 0 "-" "UA"'


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.one_of(
            noisy_line,
            st.builds(
                lambda a, b: COMBINED_SEED[:a] + b + COMBINED_SEED[a:],
                st.integers(0, len(COMBINED_SEED)),
                noisy_line,
            ),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_paths_agree_on_noisy_lines(lines):
    lines = [x.replace("\n", " ").replace("\r", " ") for x in lines]
    for kind, opts in (
        ("nginx", {}),
        ("nginx", {"log_format": "$remote_addr:$remote_port $upstream_addr [$msec] $status"}),
        ("apache", {"log_format": '%h %l %u %t "%r" %>s %b'}),
        ("syslog", {}),
    ):
        assert_paths_agree(build_decoder(kind, **opts), lines)
