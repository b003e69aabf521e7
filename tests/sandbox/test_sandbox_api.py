# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""read_message, read_next_field, read_config, inject_message and decode_message (spec section 3)."""

from __future__ import annotations

import pytest

from hekacli.message import Message, ValueType, decode_message, encode_message

READS = [
    ('"Type"', "TEST"), ('"Logger"', "GoSpec"), ('"Payload"', "Test Payload"), ('"EnvVersion"', "0.8"),
    ('"Hostname"', "example.com"), ('"Uuid"', "00010203-0405-0607-0809-0a0b0c0d0e0f"),
    ('"Timestamp"', "5123456789"), ('"Severity"', "6"), ('"Pid"', "7"),
    ('"Fields[foo]"', "bar"), ('"Fields[foo]", 1', "alternate"), ('"Fields[foo]", 2', "nil"),
    ('"Fields[bytes]"', "data"), ('"Fields[int]"', "999"), ('"Fields[int]", 0, 1', "1024"),
    ('"Fields[int]", 0, 2', "nil"), ('"Fields[double]"', "99.9"), ('"Fields[bool]"', "true"),
    ('"Fields[false]"', "false"), ('"Fields[empty_bytes]"', "nil"), ('"Fields[missing]"', "nil"),
    ('"framed"', "nil"), ('"Other"', "nil"),
]


@pytest.mark.parametrize(("args", "want"), READS)
def test_read_message(sandbox, test_message, args, want):
    h = sandbox(f"function process_message() inject_payload('txt', '', tostring(read_message({args}))) return 0 end")
    assert h.f.process_message(test_message) == 0
    assert h.last_payload() == want


def test_read_message_types_and_absent_severity(sandbox, test_message):
    h = sandbox("function process_message() inject_payload('txt', '', type(read_message('Timestamp')), ' ', "
                "type(read_message('Fields[int]')), ' ', tostring(read_message('Severity')), ' ', "
                "tostring(read_message('Pid'))) return 0 end")
    m = Message(uuid=bytes(16), timestamp=1, type="x")
    m.add_field("int", 5)
    h.f.process_message(m)
    assert h.last_payload() == "number number nil nil"


def test_read_raw_is_the_protobuf(sandbox, test_message):
    h = sandbox("function process_message() inject_payload('txt', '', read_message('raw')) return 0 end")
    h.f.process_message(test_message)
    raw = h.last_payload().encode("utf-8", "surrogateescape")
    assert raw == encode_message(test_message)
    assert decode_message(raw) == test_message


def test_read_message_nil_outside_process(sandbox):
    h = sandbox("t = tostring(read_message('Type'))\nfunction process_message() return 0 end\n"
                "function timer_event(ns) inject_payload('txt', '', t, ' ', tostring(read_message('Type'))) end")
    h.f.timer_event(0)
    assert h.last_payload() == "nil nil"


def test_read_next_field_sequence(sandbox, test_message):
    h = sandbox('''require "string"
function process_message()
  for i = 1, 9 do
    local t, n, v, r, c = read_next_field()
    add_to_payload(string.format("%s|%s|%s|%s|%s\\n", tostring(t), tostring(n), tostring(v), tostring(r), tostring(c)))
  end
  inject_payload()
  return 0
end''')
    h.f.process_message(test_message)
    assert h.last_payload().splitlines() == [
        "0|foo|bar||1", "1|bytes|data||1", "2|int|999||2", "3|double|99.9||1", "4|bool|true||1",
        "0|foo|alternate||1", "4|false|false||1", "1|empty_bytes|nil||0", "nil|nil|nil|nil|nil"]


def test_read_config(sandbox):
    cfg = {"string": "widget", "int64": 99, "double": 99.123, "bool": True, "array": [1, 2], "object": {"a": 1}}
    h = sandbox("function process_message() return 0 end\nfunction timer_event(ns) inject_payload('txt', '', "
                "read_config('string'), ' ', read_config('int64'), ' ', read_config('double'), ' ', "
                "read_config('bool'), ' ', tostring(read_config('array')), ' ', tostring(read_config('object')), "
                "' ', tostring(read_config('missing'))) end", config=cfg)
    h.f.timer_event(0)
    assert h.last_payload() == "widget 99 99.123 true nil nil nil"


@pytest.mark.parametrize(("call", "error"), [
    ("read_message()", "read_message() incorrect number of arguments"),
    ("read_message(nil)", "bad argument #1 to 'read_message' (string expected, got nil)"),
    ("read_message('Type', -1)", "bad argument #2 to 'read_message' (field index must be >= 0)"),
    ("read_message('Type', 0, -1)", "bad argument #3 to 'read_message' (array index must be >= 0)"),
    ("read_next_field(1)", "read_next_field() takes no arguments"),
    ("read_config()", "read_config() must have a single argument"),
    ("add_to_payload()", "bad argument #0 to 'add_to_payload' (must have at least one argument)"),
    ("write_message()", "test.lua:1: attempt to call global 'write_message' (a nil value)"),
    ("inject_payload(nil)", "bad argument #1 to 'inject_payload' (string expected, got nil)"),
    ("inject_message(1, 2)", "inject_message() takes a single string or table argument"),
    ("inject_message('garbage!')", "inject_message() protobuf unmarshal failed"),
    ("inject_message({Fields = {x = {1, 'a'}}})", "inject_message() could not encode protobuf - array has mixed types"),
    ("inject_message({Fields = {x = {{}}}})", "inject_message() could not encode protobuf - unsupported array type: table"),
    ("inject_message({Fields = {x = {value = 'a', value_type = 2}}})",
     "inject_message() could not encode protobuf - invalid string value_type: 2"),
    ("decode_message()", "bad argument #0 to 'decode_message' (must have one string argument)"),
    ("decode_message('short')", "invalid message, too short"),
    ("x = nil + 1", "test.lua:1: attempt to perform arithmetic on a nil value"),
])
def test_api_errors(sandbox, call, error):
    h = sandbox(f"function process_message() {call} return 0 end")
    assert h.f.process_message(Message.new(type="x")) == 1
    assert h.f.last_error == f"process_message() {error}"
    assert h.f.state == "terminated"


def test_inject_message_table(sandbox):
    h = sandbox('''require "circular_buffer"
cb = circular_buffer.new(2, 1, 1)
function process_message()
  inject_message({Type = "counter", Payload = "p", Severity = 3, Timestamp = 1e9, Hostname = "ignored",
    Fields = {{name = "n", value = 5}, {name = "i", value = {1, 2}, value_type = 2, representation = "count"},
              {name = "b", value = true}, {name = "s", value = {"a", "b"}}, {name = "cb", value = cb},
              {name = "raw", value = "xyz", value_type = 1}}})
  return 0
end''', hostname="myhost")
    assert h.f.process_message(Message.new(type="x")) == 0
    (m,) = h.injected
    assert (m.type, m.logger, m.hostname, m.payload, m.severity, m.timestamp) == (
        "heka.sandbox.counter", "test", "myhost", "p", 3, 10**9)
    got = [(f.name, f.value_type, f.representation, f.values) for f in m.fields]
    assert got[:4] == [("n", ValueType.DOUBLE, "", [5.0]), ("i", ValueType.INTEGER, "count", [1, 2]),
                       ("b", ValueType.BOOL, "", [True]), ("s", ValueType.STRING, "", ["a", "b"])]
    assert got[4][:2] == ("cb", ValueType.BYTES) and got[4][3][0].startswith(b'{"time":0,"rows":2')
    assert got[5] == ("raw", ValueType.BYTES, "", [b"xyz"])
    assert len(m.uuid) == 16


def test_inject_message_wipes_payload_buffer(sandbox):
    h = sandbox('function process_message() add_to_payload("pending") inject_message({Type = "t"}) return 0 end\n'
                'function timer_event(ns) inject_payload() end')
    h.f.process_message(Message.new(type="x"))
    h.f.timer_event(0)
    assert [m.type for m in h.injected] == ["heka.sandbox.t"]  # nothing left for inject_payload


def test_decode_message_round_trip_and_raw_injection(sandbox, test_message):
    h = sandbox('''require "string"
function process_message()
  local m = decode_message(read_message("raw"))
  add_to_payload(m.Type, " ", m.Logger, " ", m.Severity, " ", #m.Uuid, " ", m.Timestamp)
  for _, f in ipairs(m.Fields) do
    add_to_payload(" ", f.name, "=", f.value_type, ":", #f.value, ":", tostring(f.value[1]))
  end
  inject_payload()
  return 0
end
function timer_event(ns) inject_message(raw) end''')
    h.f.process_message(test_message)
    assert h.last_payload() == ("TEST GoSpec 6 16 5123456789 foo=0:1:bar bytes=1:1:data int=2:2:999 double=3:1:99.9 "
                                "bool=4:1:true foo=0:1:alternate false=4:1:false empty_bytes=1:0:nil")


def test_inject_raw_string(sandbox, test_message):
    raw = encode_message(test_message)
    h = sandbox("function process_message() return 0 end\nfunction timer_event(ns) inject_message(read_config('raw')) end",
                config={"raw": raw})
    h.f.timer_event(0)
    (m,) = h.injected
    assert m.type == "heka.sandbox.TEST" and m.logger == "test" and m.fields == test_message.fields


def test_inject_limits(sandbox):
    h = sandbox("function process_message() return 0 end\n"
                "function timer_event(ns) for i = 1, 11 do inject_payload('txt', '', i) end end")
    h.f.timer_event(0)
    assert h.f.last_error == "timer_event() inject_payload() exceeded InjectMessage count"
    assert len(h.payloads()) == 10 and h.terminated()[0].payload == h.f.last_error


def test_loops_and_circular_reference(sandbox):
    from hekacli.matcher import compile_matcher

    h = sandbox("function process_message() inject_message({Type = 'again'}) return 0 end",
                matcher=compile_matcher("Type =~ /^heka.sandbox/ || Type == 'x'"))
    assert h.f.process_message(Message.new(type="x"), loops=0) == 1
    assert h.f.last_error == ("process_message() inject_message() creates a circular reference "
                              "(matches this plugin's message_matcher)")
    h2 = sandbox("function process_message() inject_message({Type = 'again'}) return 0 end")
    assert h2.f.process_message(Message.new(type="x"), loops=4) == 1
    assert h2.f.last_error == "process_message() inject_message() exceeded MaxMsgLoops"


def test_injections_during_load_are_dropped(sandbox):
    h = sandbox("inject_payload('txt', '', 'hello')\nfunction process_message() return 0 end")
    assert h.injected == [] and h.f.state == "running"


def test_status_codes(sandbox):
    h = sandbox("function process_message() local t = read_message('Type') "
                "if t == 'fail' then return -1, 'soft' elseif t == 'stop' then return 1 end return 0 end")
    assert h.f.process_message(Message.new(type="ok")) == 0
    assert h.f.process_message(Message.new(type="fail")) == -1
    assert h.f.state == "running" and h.f.last_error == "soft" and h.f.stats()["failures"] == 1
    assert h.f.process_message(Message.new(type="ok")) == 0 and h.f.last_error == ""
    assert h.f.process_message(Message.new(type="stop")) == 1
    assert h.f.state == "terminated" and h.terminated()[0].payload == ""
    t = h.terminated()[0]
    assert (t.logger, t.get_field("plugin")) == ("hekad", "test")


def test_require_module_directory(sandbox, tmp_path):
    (tmp_path / "constant_module.lua").write_text("local M = {}\nsetfenv(1, M)\nvalue = 42\nreturn M\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.lua").write_text("return {v = 1}\n")
    h = sandbox('local c = require "constant_module"\nlocal s = require "sub.mod"\n'
                'function process_message() return 0 end\n'
                'function timer_event(ns) inject_payload("txt", "", c.value + s.v, " ", '
                'tostring(getmetatable(c) ~= nil), " ", tostring(constant_module)) end',
                module_dir=str(tmp_path))
    h.f.timer_event(0)
    assert h.last_payload() == "43 true nil"


def test_require_errors(sandbox, tmp_path):
    h = sandbox('function process_message() require "nope" return 0 end', module_dir=str(tmp_path))
    h.f.process_message(Message.new(type="x"))
    assert h.f.last_error == (f"process_message() module 'nope' not found:\n\tno file '{tmp_path}/nope.lua'"
                              f"\n\tno file '{tmp_path}/nope.so'")


def test_c_modules_register_globals(sandbox):
    h = sandbox('require "cjson"\nrequire "lpeg"\nfunction process_message() return 0 end\n'
                'function timer_event(ns) local l = lpeg\n'
                'inject_payload("txt", "", cjson.encode({value = 1}), " ", cjson.encode({"a/b"}), " ", '
                'l.match(l.C(l.R("09")^1), "42x"), " ", tostring(cjson.new), " ", '
                'cjson.encode(cjson.decode(\'{"a":null,"b":1}\'))) end')
    h.f.timer_event(0)
    assert h.last_payload() == '{"value":1} ["a\\/b"] 42 nil {"b":1}'
