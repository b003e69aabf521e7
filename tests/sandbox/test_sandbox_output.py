# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""Number text (spec 3.1), add_to_payload / inject_payload rules, hyperloglog and bloom_filter vectors."""

from __future__ import annotations

import pytest

from hekacli.message import Message
from hekacli.sandbox.host import Limits


@pytest.mark.parametrize(("expr", "text"), [
    ("1.2", "1.2"), ("1/3", "0.33333333"), ("0.1+0.2", "0.3"), ("1e-9", "0"), ("123.00000001", "123.00000001"),
    ("5123456789", "5123456789"), ("1415311858257e6", "1.4153118582569999e+18"), ("0/0", "nan"),
    ("1/0", "inf"), ("-1/0", "-inf"), ("-0.0", "0"), ("-2.5", "-2.5"), ("0.999999999", "1"),
    ("2147483647", "2147483647"), ("1e15", "1000000000000000"), ("7", "7"), ("0.125", "0.125"), ("-1e-9", "-0"),
])
def test_number_text(lua_timer, expr, text):
    assert lua_timer(f"add_to_payload({expr})") == text


def test_add_to_payload_types(lua_timer):
    body = 'add_to_payload("a\\0b", " ", nil, " ", true, " ", false, " ", {}, " ", function() end)'
    assert lua_timer(body) == "a\0b nil true false (unsupported type) (unsupported type)"


def test_buffer_persists_and_empty_sends_nothing(sandbox):
    h = sandbox('function process_message() add_to_payload("x") return 0 end\n'
                'function timer_event(ns) inject_payload("txt", "a") inject_payload("txt", "b") end')
    for _ in range(3):
        assert h.f.process_message(Message.new(type="t")) == 0
    h.f.timer_event(0)
    assert h.payloads() == ["xxx"]  # the second inject_payload had an empty buffer
    out = h.injected[0]
    assert out.type == "heka.sandbox-output" and out.logger == "test"
    assert [(f.name, f.values, f.representation) for f in out.fields] == [
        ("payload_type", ["txt"], "file-extension"), ("payload_name", ["a"], "")]
    assert out.severity is None and out.env_version is None
    assert h.f.outputs() == {"a": ("txt", "xxx")}


def test_inject_payload_args_and_default_type(sandbox):
    h = sandbox('function process_message() return 0 end\n'
                'function timer_event(ns) add_to_payload("a") inject_payload("", "n", 1.5, " ", true) end')
    h.f.timer_event(0)
    assert h.payloads() == ["a1.5 true"]
    assert h.injected[0].get_field("payload_type") == "txt"


def test_output_limit(sandbox):
    h = sandbox('function process_message() add_to_payload("12345") return 0 end', limits=Limits(output=11))
    m = Message.new(type="t")
    assert h.f.process_message(m) == 0
    assert h.f.process_message(m) == 0  # 10 bytes fit (at most limit-1) ...
    assert h.f.process_message(m) == 1  # ... 15 do not
    assert h.f.last_error == "process_message() test.lua:1: output_limit exceeded"


def test_hyperloglog_vector(sandbox):
    h = sandbox('require "hyperloglog"\nh = hyperloglog.new()\nfunction process_message() return 0 end\n'
                'function timer_event(ns) for i = 0, 99999 do h:add(i) end\n'
                'local h2 = hyperloglog.new() local a1 = h2:add("k") local a2 = h2:add("k")\n'
                'add_to_payload(h:count(), " ", a1, " ", a2, " ", type(h)) inject_payload() '
                'add_to_payload(h) inject_payload("hll") h:clear() add_to_payload(h:count()) inject_payload() end',
                limits=Limits(instructions=0))
    h.f.timer_event(0)
    counts, raw, cleared = h.payloads()
    assert counts == "100070 true false userdata"
    assert cleared == "0"
    raw_bytes = raw.encode("utf-8", "surrogateescape")
    assert len(raw_bytes) == 12304 and raw_bytes[:4] == b"HYLL"


def test_bloom_filter_counts_and_restore(sandbox, tmp_data):
    src = ('require "bloom_filter"\nbf = bloom_filter.new(20, 0.01)\n'
           'function process_message() bf:add(read_message("Payload")) return 0 end\n'
           'function timer_event(ns) add_to_payload(bf:count(), " ", bf:query("a"), " ", bf:query("zz")) '
           'inject_payload() end')
    h = sandbox(src, preserve_path=tmp_data)
    seen = []
    for p in ["a", "b", "c", "a"]:
        h.f.process_message(Message.new(type="t", payload=p))
        h.f.timer_event(0)
        seen.append(h.last_payload().split()[0])
    assert seen == ["1", "2", "3", "3"]
    h.f.stop()
    h2 = sandbox(src + "\nfunction clear() end", preserve_path=tmp_data)
    h2.f.timer_event(0)
    assert h2.last_payload() == "3 true false"
    h2b = sandbox(src.replace("inject_payload() end", "inject_payload() bf:clear() end"), preserve_path=tmp_data)
    h2b.f.timer_event(0)
    h2b.f.process_message(Message.new(type="t", payload="x"))
    h2b.f.timer_event(0)
    assert h2b.last_payload().split()[0] == "1"


def test_bloom_has_no_output(sandbox):
    h = sandbox('require "bloom_filter"\nbf = bloom_filter.new(20, 0.01)\n'
                'function process_message() add_to_payload(bf) return 0 end')
    assert h.f.process_message(Message.new(type="t")) == 1
    assert h.f.last_error == "process_message() bad argument #1 to 'add_to_payload' (unknown userdata type)"
