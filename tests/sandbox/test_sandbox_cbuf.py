# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""circular_buffer conformance (spec section 6): exact cbuf/cbufd text, compute, mannwhitneyu, errors."""

from __future__ import annotations

import pytest

HEADER = ('{"time":%d,"rows":3,"columns":2,"seconds_per_row":60,"column_info":[{"name":"Requests","unit":"count",'
          '"aggregation":"sum"},{"name":"Max_Size","unit":"KiB","aggregation":"max"}]}\n')

WORKED = '''
require "circular_buffer"
cb = circular_buffer.new(3, 2, 60, true)
cb:set_header(1, "Requests"); cb:set_header(2, "Max Size", "KiB", "max")
'''

CALLS = '''
local r = {cb:add(1379660460e9,1,3), cb:set(1379660470e9,2,12.5), cb:add(1379660520e9,1,1),
           cb:add(1379660530e9,1,2), cb:set(1379660530e9,2,7), cb:set(1379660535e9,2,9.25)}
add_to_payload(table.concat(r, " "), "|", cb:get(1379660400e9,1), "|", tostring(cb:get(1379660580e9,1)), "\\n")
'''


def test_fresh_buffer(lua_timer):
    text = lua_timer("add_to_payload(cb)", WORKED)
    assert text == HEADER % 0 + "nan\tnan\n" * 3


def test_worked_example_cbuf(lua_timer):
    text = lua_timer('require "table"' + CALLS + "add_to_payload(cb:format('cbuf'))", WORKED)
    assert text == ("3 12.5 1 3 7 9.25|nan|nil\n" + HEADER % 1379660400 + "nan\tnan\n3\t12.5\n3\t9.25\n")


def test_worked_example_cbufd_and_advance(lua_timer):
    body = ('require "table"' + CALLS + '''
add_to_payload(cb:format("cbufd"))
add_to_payload("--\\n", cb)
cb:format("cbuf")
cb:add(1379660640e9, 1, 1)
add_to_payload("--\\n", cb)
''')
    text = lua_timer(body, WORKED)
    first, rest = text.split("\n", 1)
    cbufd, again, advanced = rest.split("--\n")
    header, *rows = cbufd.splitlines(keepends=True)
    assert header == HEADER.splitlines(keepends=True)[0] % 1379660400
    assert sorted(rows) == ["1379660460\t3\t12.5\n", "1379660520\t3\t16.25\n"]  # max deltas accumulate
    assert again == ""  # deltas were cleared: nothing at all, not even the header
    assert advanced == HEADER % 1379660520 + "3\t9.25\nnan\tnan\n1\tnan\n"


def test_compute_vectors(lua_timer):
    prelude = 'require "circular_buffer"\ncb = circular_buffer.new(5, 1, 1)\nfor i = 1, 4 do cb:set(i * 1e9, 1, i) end'
    body = '''
local function out(...) add_to_payload(table.concat({...}, ","), "\\n") end
require "table"
for _, f in ipairs({"sum", "avg", "variance", "min", "max"}) do out(f, cb:compute(f, 1)) end
out("range", cb:compute("sum", 1, 3e9, 4e9)); out("sd", cb:compute("sd", 1, 3e9, 4e9))
local v, n = cb:compute("sum", 1, 11e9, 14e9); out("future", tostring(v), n)
'''
    assert lua_timer(body, prelude).splitlines() == [
        "sum,10,4", "avg,2.5,4", "variance,1.25,4", "min,1,4", "max,4,4", "range,7,2", "sd,0.5,2",
        "future,nil,0"]


def test_compute_max_quirk_and_empty(lua_timer):
    prelude = 'require "circular_buffer"\ncb = circular_buffer.new(4, 2, 1)\ncb:set(1e9, 1, -5); cb:set(2e9, 1, 0)'
    body = 'add_to_payload(cb:compute("max", 1), " ", cb:compute("min", 1), " ", cb:compute("sum", 2), " ", cb:compute("avg", 2))'
    # max starts from DBL_MIN (all non-positive -> nan); avg of nothing is nan, sum of nothing 0
    assert lua_timer(body, prelude) == "nan -5 0 nan0"  # only the last call keeps its 2nd value


def test_http_status_vector(lua_timer):
    # Heka sandbox_filters_test.go: rows=2, spr=1, every message at ts 0
    prelude = '''require "circular_buffer"
cb = circular_buffer.new(2, 6, 1)
for i, n in ipairs({"HTTP_100","HTTP_200","HTTP_300","HTTP_400","HTTP_500","HTTP_UNKNOWN"}) do cb:set_header(i, n) end
for col = 1, 6 do cb:add(0, col, 1) end
cb:add(0, 6, 1)'''
    text = lua_timer("add_to_payload(cb)", prelude)
    lines = text.splitlines()
    assert lines[0].startswith('{"time":0,"rows":2,"columns":6,"seconds_per_row":1,')
    assert lines[1:] == ["1\t1\t1\t1\t1\t2", "nan\tnan\tnan\tnan\tnan\tnan"]


def test_headers_sanitized(lua_timer):
    prelude = 'require "circular_buffer"\ncb = circular_buffer.new(2, 1, 1)'
    body = 'cb:set_header(1, "WeightedTimeDoingIO", "per 60 s", "min"); add_to_payload(cb:get_header(1))'
    assert lua_timer(body, prelude) == "WeightedTimeDoiper_60_min"


def test_configuration_and_current_time(lua_timer):
    prelude = 'require "circular_buffer"\ncb = circular_buffer.new(10, 3, 60)'
    assert lua_timer("add_to_payload(cb:get_configuration()); add_to_payload(' ', cb:current_time())",
                     prelude) == "10360 540000000000"


def test_mannwhitneyu(lua_timer):
    # two samples of 5 rows: 1..5 vs 11..15 -> complete separation: U1 = 0
    prelude = '''require "circular_buffer"
cb = circular_buffer.new(10, 1, 1)
for i = 0, 4 do cb:set(i * 1e9, 1, i + 1); cb:set((i + 5) * 1e9, 1, i + 11) end'''
    body = '''local u, p = cb:mannwhitneyu(1, 0, 4e9, 5e9, 9e9)
local u2, p2 = cb:mannwhitneyu(1, 0, 4e9, 5e9, 9e9, false)
add_to_payload(u, " ", math.floor(p * 1e5), " ", u2, " ", math.floor(p2 * 1e5))'''
    text = lua_timer('require "math"\n' + body, prelude)
    # z = (25 - 0.5 - 12.5)/sqrt(25*11/12) = 2.50672 -> p = 0.006092; without continuity z = 2.61116
    assert text == "0 609 0 451"


def test_mannwhitneyu_no_values_when_all_equal(lua_timer):
    prelude = 'require "circular_buffer"\ncb = circular_buffer.new(4, 1, 1)\nfor i = 0, 3 do cb:set(i * 1e9, 1, 7) end'
    assert lua_timer('add_to_payload(select("#", cb:mannwhitneyu(1, 0, 1e9, 2e9, 3e9)))', prelude) == "0"


@pytest.mark.parametrize(("call", "error"), [
    ("circular_buffer.new(1, 1, 1)", "bad argument #1 to 'new' (rows must be > 1)"),
    ("circular_buffer.new(2, 0, 1)", "bad argument #2 to 'new' (columns must be > 0)"),
    ("circular_buffer.new(2, 1, 0)", "bad argument #3 to 'new' (seconds_per_row is out of range)"),
    ("cb:add(0, 3, 1)", "bad argument #2 to 'add' (column out of range)"),
    ("cb:add(0, 1)", "bad argument #-1 to 'add' (incorrect number of arguments)"),
    ("cb:set_header(1, 'x', 'y', 'avg')", "bad argument #4 to 'set_header' (invalid option 'avg')"),
    ("cb:compute('median', 1)", "bad argument #1 to 'compute' (invalid option 'median')"),
    ("cb:compute('sum', 1, 2e9, 1e9)", "bad argument #4 to 'compute' (end must be >= start)"),
    ("cb:mannwhitneyu(1, 0, 2e9, 1e9, 3e9)", "bad argument #4 to 'mannwhitneyu' (ranges must not overlap)"),
    ("cb:fromstring('1 2 3')", "fromstring() too few values: 3, expected 6"),
    ("cb:format('json')", "bad argument #1 to 'format' (invalid option 'json')"),
])
def test_errors(sandbox, call, error):
    h = sandbox(f'require "circular_buffer"\ncb = circular_buffer.new(2, 2, 1)\n'
                f'function process_message() {call} return 0 end')
    from hekacli.message import Message

    assert h.f.process_message(Message.new(type="x")) == 1
    assert h.f.last_error == "process_message() " + error
