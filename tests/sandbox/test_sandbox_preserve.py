# ruff: noqa: E501  (Lua snippets and exact vectors read better unwrapped)
"""Data preservation (spec section 5): the file format, restore, version skip, failures."""

from __future__ import annotations

from hekacli.message import Message

COUNTER = '''require "circular_buffer"
count = 0
nested = {cb = circular_buffer.new(2, 6, 1), s = "a\\nb\\0c", inf = 1/0, nan = 0/0, t = {1, 2}}
nested.alias = nested.t
local hidden = 5
function process_message() count = count + 1 return 0 end
function timer_event(ns) inject_payload("txt", "", count) end
'''


def test_round_trip(sandbox, tmp_data):
    h = sandbox(COUNTER, preserve_path=tmp_data)
    for _ in range(11):
        h.f.process_message(Message.new(type="x"))
    h.f.stop()
    text = tmp_data.read_bytes().decode("utf-8", "surrogateescape")
    lines = text.splitlines()
    assert lines[0] == "if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= 0 then return end"
    assert '_G["count"] = 11' in lines
    assert '_G["nested"]["cb"]:fromstring("1 1 nan nan nan nan nan nan nan nan nan nan nan nan")' in lines
    assert 'if _G["nested"]["cb"] == nil then _G["nested"]["cb"] = circular_buffer.new(2, 6, 1) end' in lines
    assert '_G["nested"]["inf"] = 1/0' in lines and '_G["nested"]["nan"] = 0/0' in lines
    assert '_G["nested"]["s"] = "a\\\nb\\000c"' in text
    alias = [ln for ln in lines if ln.startswith('_G["nested"]["alias"]') or ln.startswith('_G["nested"]["t"] =')]
    assert len(alias) == 2 and any(ln.endswith('= _G["nested"]["t"]') or ln.endswith('= _G["nested"]["alias"]')
                                   for ln in alias)
    assert "hidden" not in text and "process_message" not in text
    h2 = sandbox(COUNTER, preserve_path=tmp_data)
    h2.f.timer_event(0)
    assert h2.last_payload() == "11"  # Heka's simple_count vector


def test_version_change_starts_clean(sandbox, tmp_data):
    h = sandbox("_PRESERVATION_VERSION = 1\n" + COUNTER, preserve_path=tmp_data)
    h.f.process_message(Message.new(type="x"))
    h.f.stop()
    assert tmp_data.read_text().startswith("if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= 1 then")
    h2 = sandbox("_PRESERVATION_VERSION = 2\n" + COUNTER, preserve_path=tmp_data)
    h2.f.timer_event(0)
    assert h2.last_payload() == "0"


def test_cbuf_with_deltas_and_hll_round_trip(sandbox, tmp_data):
    src = '''require "circular_buffer"; require "hyperloglog"
cb = circular_buffer.new(3, 2, 60, true)
cb:set_header(2, "Max Size", "KiB", "max")
hll = hyperloglog.new()
function process_message() cb:add(read_message("Timestamp"), 1, 2) cb:set(read_message("Timestamp"), 2, 9.5)
  hll:add(read_message("Payload")) return 0 end
function timer_event(ns) inject_payload("cbuf", "c", cb) inject_payload("cbufd", "d", cb:format("cbufd"))
  cb:format("cbuf") inject_payload("txt", "n", hll:count()) end
'''
    h = sandbox(src, preserve_path=tmp_data)
    for i in range(5):
        h.f.process_message(Message.new(type="x", timestamp=1379660460 * 10**9, payload=f"p{i}"))
    h.f.stop()
    h2 = sandbox(src, preserve_path=tmp_data)
    h2.f.timer_event(0)
    cbuf, cbufd, n = h2.payloads()
    assert cbuf.splitlines()[1:] == ["nan\tnan", "nan\tnan", "10\t9.5"]
    assert cbufd.splitlines()[1:] == ["1379660460\t10\t9.5"]
    assert n == "5"
    assert '"name":"Max_Size","unit":"KiB","aggregation":"max"' in cbuf


def test_no_preservation_after_lua_error(sandbox, tmp_data):
    tmp_data.write_text("_G[\"count\"] = 3\n")
    h = sandbox(COUNTER.replace("count = count + 1", "count = count + nil"), preserve_path=tmp_data)
    h.f.process_message(Message.new(type="x"))
    assert h.f.state == "terminated"
    h.f.stop()
    assert tmp_data.read_text() == "_G[\"count\"] = 3\n"  # the older file stays


def test_fatal_status_preserves(sandbox, tmp_data):
    h = sandbox("count = 7\nfunction process_message() return 1, 'done' end", preserve_path=tmp_data)
    assert h.f.process_message(Message.new(type="x")) == 1
    assert '_G["count"] = 7' in tmp_data.read_text()


def test_serialize_failure_removes_file(sandbox, tmp_data):
    tmp_data.write_text("-- old\n")
    h = sandbox("t = {}\nfunction process_message() t[function() end] = 1 return 0 end", preserve_path=tmp_data)
    h.f.process_message(Message.new(type="x"))
    h.f.stop()
    assert not tmp_data.exists()
    assert h.f.last_error == "Destroy() serialize_data cannot preserve type 'function'"


def test_restore_mismatch_fails_load(sandbox, tmp_data):
    from hekacli.errors import SandboxError

    tmp_data.write_text('if _G["cb"] == nil then _G["cb"] = circular_buffer.new(2, 1, 1) end\n'
                        '_G["cb"]:fromstring("1 1 nan nan nan")\n')
    import pytest

    with pytest.raises(SandboxError, match="Init\\(\\) lsb_restore_global_data fromstring\\(\\) too many values"):
        sandbox('require "circular_buffer"\ncb = circular_buffer.new(2, 1, 1)\nfunction process_message() return 0 end',
                preserve_path=tmp_data)


def test_preserved_state_is_readable_by_the_owner_only(sandbox, tmp_data):
    import stat

    h = sandbox("count = 1\nfunction process_message() return 0 end", preserve_path=tmp_data)
    h.f.stop()
    assert stat.S_IMODE(tmp_data.stat().st_mode) == 0o600
