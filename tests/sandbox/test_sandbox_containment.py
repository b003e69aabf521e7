# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""Containment: escapes and resource bombs are refused or terminated with the right reason."""

from __future__ import annotations

import os

import pytest

from hekacli.message import Message

CASES = [
    ("os_execute", 'require "os"\nfunction process_message() os.execute("touch {marker}") return 0 end',
     "process_message() test.lua:2: attempt to call field 'execute' (a nil value)"),
    ("os_global", 'function process_message() os.execute("touch {marker}") return 0 end',
     "process_message() test.lua:1: attempt to index global 'os' (a nil value)"),
    ("io_open", 'function process_message() io.open("{marker}", "w") return 0 end',
     "process_message() test.lua:1: attempt to index global 'io' (a nil value)"),
    ("require_io", 'function process_message() require "io" return 0 end', "process_message() module 'io' disabled"),
    ("require_ffi", 'function process_message() require "ffi" return 0 end', "process_message() module 'ffi' disabled"),
    ("require_debug", 'function process_message() require "debug" return 0 end',
     "process_message() module 'debug' disabled"),
    ("require_path", 'function process_message() require "../../etc/passwd" return 0 end',
     "process_message() invalid module name '../../etc/passwd'"),
    ("loadlib", 'function process_message() package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "system") return 0 end',
     "process_message() test.lua:1: attempt to index global 'package' (a nil value)"),
    ("bytecode", 'function process_message() loadstring("\\27LuaQ\\0") return 0 end',
     "process_message() test.lua:1: attempt to call global 'loadstring' (a nil value)"),
    ("dump", 'require "string"\nfunction process_message() string.dump(process_message) return 0 end',
     "process_message() test.lua:2: attempt to call field 'dump' (a nil value)"),
    ("python", 'function process_message() python.eval("1") return 0 end',
     "process_message() test.lua:1: attempt to index global 'python' (a nil value)"),
    ("memory_bomb", 'require "string"\nfunction process_message() local s = string.rep("x", 64 * 1024 * 1024) return 0 end',
     "process_message() not enough memory"),
    ("memory_growth", 'require "string"\nt = {}\nfunction process_message() for i = 1, 100 do '
     't[i] = string.rep("x", 1024 * 1024) .. i end return 0 end', "process_message() not enough memory"),
    ("infinite_loop", "function process_message() while true do end return 0 end",
     "process_message() instruction_limit exceeded"),
    ("loop_in_pcall", "function process_message() while true do pcall(function() while true do end end) end end",
     "process_message() instruction_limit exceeded"),
    ("deep_recursion", "local function f(n) return 1 + f(n + 1) end\nfunction process_message() f(1) return 0 end",
     "process_message() test.lua:1: stack overflow"),
]


@pytest.mark.parametrize(("name", "src", "reason"), CASES, ids=[c[0] for c in CASES])
def test_contained(sandbox, tmp_path, name, src, reason):
    marker = tmp_path / "pwned"
    h = sandbox(src.replace("{marker}", str(marker)))
    assert h.f.process_message(Message.new(type="x")) == 1
    assert h.f.state == "terminated"
    assert h.f.last_error == reason
    (t,) = h.terminated()
    assert (t.type, t.logger, t.payload, t.get_field("plugin")) == ("heka.sandbox-terminated", "hekad", reason, "test")
    assert not marker.exists()


def test_environment_has_only_heka_globals(sandbox):
    h = sandbox('''local names = {}
for k in pairs(_G) do names[#names + 1] = k end
function process_message() return 0 end
function timer_event(ns) require "table"; table.sort(names); inject_payload("txt", "", table.concat(names, " ")) end''')
    h.f.timer_event(0)
    assert h.last_payload().split() == sorted([
        "_G", "_VERSION", "add_to_payload", "assert", "decode_message", "error", "gcinfo", "getfenv",
        "getmetatable", "inject_message", "inject_payload", "ipairs", "module", "next", "pairs", "pcall",
        "rawequal", "rawget", "rawset", "read_config", "read_message", "read_next_field", "require",
        "select", "setfenv", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall"])


def test_getfenv_reaches_nothing_more(sandbox):
    h = sandbox('''function process_message() return 0 end
function timer_event(ns)
  local seen = {}
  for _, f in ipairs({read_message, inject_payload, require, add_to_payload}) do
    local env = getfenv(f)
    seen[#seen + 1] = tostring(env == _G or env == nil)
  end
  local g = getfenv(0)
  inject_payload("txt", "", table and "t" or "-", tostring(g == _G), " ", unpack(seen))
end''')
    h.f.timer_event(0)
    assert h.last_payload() == "-true truetruetruetrue"


def test_script_cannot_reach_python_objects(sandbox):
    # the values the bridge hands back are plain Lua values, never Python objects
    h = sandbox('''function process_message()
  local v = read_message("Fields[x]")
  inject_payload("txt", "", type(v), " ", type(read_message("raw")), " ", type(read_message("Uuid")))
  return 0
end''')
    m = Message.new(type="x")
    m.add_field("x", b"bytes")
    h.f.process_message(m)
    assert h.last_payload() == "string string string"


def test_load_time_limits(sandbox):
    from hekacli.errors import SandboxError

    with pytest.raises(SandboxError, match=r"^Init\(\) instruction_limit exceeded$"):
        sandbox("while true do end")
    with pytest.raises(SandboxError, match=r"^Init\(\) not enough memory$"):
        sandbox('require "string"\nx = string.rep("x", 32 * 1024 * 1024)')
    with pytest.raises(SandboxError, match=r"^Init\(\) bytecode is not allowed$"):
        sandbox("\x1bLuaQ\x00")
    assert not os.path.exists("/tmp/pwned-by-sandbox-test")
