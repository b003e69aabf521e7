"""The bulk path (polars) equals the streaming path on lines built to trip a decoder up.

Separators where they do not belong (a quote-space inside the request, a space in the user,
brackets in the wrong place, digits where a field ends early), dates out of range, a trailing typed
field with text after it: the bulk rows must equal the streaming records, rejects included, also
when only some columns are asked for.
"""

from __future__ import annotations

from hekacli.parsers import build_decoder
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import assert_paths_agree

GOOD = '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /a?b=c HTTP/1.1" 200 612 "-" "curl/8.5.0"'
TRICKY = [
    GOOD,
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET /a" 200 HTTP/1.1" 200 612 "-" "curl/8.5.0"',
    '127.0.0.1 - a b [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '127.0.0.1 - a [b [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 2000 612 "-" "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 61x2 "-" "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "a" "b" "-" "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "ua" trailing text',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "no end quote',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800]] "GET / HTTP/1.1" 200 612 "-" "-"',
    '127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "" 200 612 "" ""',
    '127.0.0.1 -  - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '300.1.1.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    'host.example - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '::1 - - [31/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '::1 - - [10/Feb/2014:08:46:60 +0000] "GET / HTTP/1.1" 200 612 "-" "-"',
    '::1 - - [10/Feb/1600:08:46:41 +0000] "GET / HTTP/1.1" 200 612 "-" "-"',
    '::1 - - [10/Feb/9999:08:46:41 +0000] "GET / HTTP/1.1" 200 612 "-" "-"',
    '- - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 200 612 "-" "-"',
    '',
    '::1 - - [10/Feb/2014:08:46:41 -0800] "GET /é ü HTTP/1.1" 200 612 "-" "Mozilla/5.0 (ü; Linux)"',
]


def test_tricky_lines_agree_with_streaming():
    d = build_decoder("nginx")
    assert_paths_agree(d, TRICKY)
    assert_paths_agree(build_decoder("nginx", log_format="main"), [ln + ' "-"' for ln in TRICKY])


def test_out_of_range_years_are_rejected_on_both_paths():
    d = build_decoder("nginx")
    lines = [GOOD.replace("2014", "1600"), GOOD.replace("2014", "9999"), GOOD]
    d.frame(lines)
    assert d.rejects["lineno"].to_list() == [1, 2]
    assert [d.decode(ln) is None for ln in lines] == [True, True, False]


PIECES = st.sampled_from(
    ['"', " ", "-", "[", "]", "200", "612", "GET", "/", "HTTP/1.1", "10/Feb/2014:08:46:41 -0800",
     "::1", "127.0.0.1", "a", "é", '" "', "] ", " [", '" ', ' "', "0.5", "."]
)


DECODERS = {
    "nginx combined": build_decoder("nginx"),
    "nginx timed": build_decoder("nginx", log_format=build_decoder("nginx").source + " $request_time"),
    "apache combined": build_decoder("apache", log_format="combined"),
}


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(DECODERS)),
    st.lists(st.lists(PIECES, max_size=12).map("".join), min_size=1, max_size=8),
)
def test_random_lines_agree(name, extra):
    d = DECODERS[name]
    good = GOOD + (" 0.004" if "timed" in name else "")
    # half the lines are a good line with random text spliced in at a random place
    lines = []
    for i, junk in enumerate(extra):
        cut = (i * 7) % (len(good) + 1)
        lines.append(good[:cut] + junk + good[cut:] if i % 2 else junk)
    assert_paths_agree(d, lines)


def test_only_the_columns_asked_for_same_rows_same_rejects():
    d = build_decoder("nginx")
    full = d.frame(TRICKY)
    rejects = d.rejects["lineno"].to_list()
    for columns in (["status"], ["status", "Timestamp"], ["request_uri"], ["Type"], []):
        part = d.frame(TRICKY, columns=columns)
        assert d.rejects["lineno"].to_list() == rejects
        assert part.height == full.height
        assert set(columns) <= set(part.columns)
        assert part.equals(full.select(part.columns))


TIMED = [ln + " 0.004" for ln in TRICKY] + [
    GOOD + " 0.004 more text",
    GOOD + " 12.5x",
    GOOD + " x0.004",
    GOOD + " 0.",
    GOOD + " ",
]


def test_trailing_typed_field_and_apache_agree_with_streaming():
    timed = build_decoder("nginx", log_format=build_decoder("nginx").source + " $request_time")
    assert_paths_agree(timed, TIMED)
    for name in ("combined", "common"):
        assert_paths_agree(build_decoder("apache", log_format=name), TRICKY + TIMED)
