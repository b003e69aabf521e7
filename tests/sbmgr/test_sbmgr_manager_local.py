"""The manager with real sandboxes, in-process: restore at start, forced limits, terminated filters."""

from __future__ import annotations

import asyncio

from hekacli.message import Field, Message, ValueType
from hekacli.sbmgr import build_control_message
from hekacli.serve.manager import SandboxManager, parse_settings
from hekacli.serve.plugin import Delivery

OK_SCRIPT = "function process_message() return 0 end\n"
FAILING_SCRIPT = "function process_message() error('bad message') end\n"


def section(name: str, extra: str = "") -> str:
    return f'[{name}]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\n{extra}'


async def settle(manager: SandboxManager) -> None:
    for _ in range(100):
        await asyncio.sleep(0.01)
        if manager._queue.empty():
            break
    await asyncio.sleep(0.02)


def control(action: str, **kw) -> Delivery:
    return Delivery(build_control_message(action, **kw), b"", signer="ops", listener="tls://x")


def test_restore_at_start_reloads_only_this_managers_valid_files(local_ctx):
    wd = local_ctx.state_dir / "sbxmgrs"
    wd.mkdir(parents=True)
    (wd / "Mgr-A.toml").write_text(section("A"))
    (wd / "Mgr-A.lua").write_text(OK_SCRIPT)
    (wd / "Mgr-B.toml").write_text("[B\n")  # corrupt: its files are removed
    (wd / "Mgr-B.lua").write_text(OK_SCRIPT)
    (wd / "Mgr-C.toml").write_text(section("C"))
    (wd / "Mgr-C.lua").write_text("this is not lua")  # does not compile: removed too
    (wd / "Other-D.toml").write_text(section("D"))  # another manager's: untouched
    manager = SandboxManager(parse_settings({"message_signer": "ops", "name": "Mgr", "max_filters": 1}))

    async def scenario():
        await manager.start(local_ctx)
        names = [p.name for p in local_ctx.plugins()]
        await manager.stop()
        for p in local_ctx.plugins():
            await p.stop()
        return names

    assert asyncio.run(scenario()) == ["Mgr-A"]
    assert sorted(p.name for p in wd.iterdir()) == ["Mgr-A.lua", "Mgr-A.toml", "Other-D.toml"]
    assert any("restoring Mgr-B failed" in line for line in local_ctx.lines)


def test_limits_are_forced_and_terminated_filters_can_be_replaced(local_ctx):
    manager = SandboxManager(parse_settings({"message_signer": "ops", "name": "Mgr", "max_filters": 1,
                                             "memory_limit": 1048576, "output_limit": 2048}))
    greedy = section("F", "memory_limit = 999999999\noutput_limit = 999999\n")

    async def scenario():
        await manager.start(local_ctx)
        manager.process(control("load", script=FAILING_SCRIPT, config=greedy))
        await settle(manager)
        plugin = local_ctx.plugins()[0]
        stats = plugin.stats()
        limits = (stats["memory_limit"], stats["output_limit"])
        # a message kills it (Lua error): terminated, no longer counted against max_filters
        plugin.process(Delivery(Message.new(type="x", fields=[Field("a", ValueType.STRING, "", ["b"])]), b""))
        state = plugin.stats()["state"]
        running_after = manager.running_count()
        manager.process(control("load", script=OK_SCRIPT, config=section("F")))  # same name again
        await settle(manager)
        final = [(p.name, p.stats()["state"]) for p in local_ctx.plugins()]
        await manager.stop()
        for p in local_ctx.plugins():
            await p.stop()
        return limits, state, running_after, final

    limits, state, running_after, final = asyncio.run(scenario())
    assert limits == (1048576, 2048)
    assert (state, running_after) == ("terminated", 0)
    assert final == [("Mgr-F", "running")]
    events = manager.recent_events()
    assert events[0]["reason"] == "loaded (ignored settings the manager forces: memory_limit, output_limit)"
    assert [e["outcome"] for e in events] == ["ok", "ok"]
    terminated = [m for m, _ in local_ctx.injected if m.type == "heka.sandbox-terminated"]
    assert len(terminated) == 1 and "bad message" in terminated[0].payload
