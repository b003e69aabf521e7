"""The manager's gates, run in-process: signer, skew, max_filters, bad configs, settings."""

from __future__ import annotations

import asyncio
import re
import stat
import time

import pytest

from hekacli.errors import ConfigError
from hekacli.sbmgr import build_control_message
from hekacli.serve.manager import SandboxManager, build_serve_plugins, parse_settings
from hekacli.serve.plugin import Delivery

GOOD_CONFIG = '[Example]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\n'


def _drive(ctx, manager, deliveries):
    async def scenario():
        await manager.start(ctx)
        for d in deliveries:
            manager.process(d)
        await asyncio.sleep(0)
        for _ in range(50):  # let the worker drain its queue
            if manager._queue.empty():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await manager.stop()

    asyncio.run(scenario())


def _load(signer="ops", **kw):
    msg = build_control_message(
        "load", script="function process_message() return 0 end", config=GOOD_CONFIG, **kw
    )
    return Delivery(msg, b"", signer=signer, listener="tls://127.0.0.1:1")


def test_settings_validation():
    s = parse_settings({"message_signer": "ops", "max_filters": 2, "name": "PlatformDevs"})
    assert (s.name, s.max_filters, s.memory_limit, s.output_limit) == ("PlatformDevs", 2, 8388608, 64512)
    with pytest.raises(ConfigError, match="message_signer is required"):
        parse_settings({"max_filters": 1})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_settings({"message_signer": "ops", "max_filter": 1})
    with pytest.raises(ConfigError, match="expects a int"):
        parse_settings({"message_signer": "ops", "max_filters": "1"})
    with pytest.raises(ConfigError, match="share a name"):
        build_serve_plugins([{"message_signer": "a"}, {"message_signer": "b"}], None)


def test_wrong_signer_unsigned_and_stale_messages_are_rejected_and_counted(local_ctx):
    manager = SandboxManager(parse_settings({"message_signer": "ops", "max_filters": 5}))
    stale = _load(timestamp=time.time_ns() - 5 * 10**9)
    future = _load(timestamp=time.time_ns() + 30 * 10**9)
    _drive(local_ctx, manager, [_load(signer="dev"), _load(signer=None), stale, future])
    assert manager.rejected == {"signer": 2, "skew": 2}
    assert manager.filters == {} and local_ctx.plugins() == []
    reasons = [e["reason"] for e in manager.recent_events()]
    assert "refused (message_signer is 'ops')" in reasons[0] and "unsigned" in reasons[1]
    assert reasons[2] == "Discarded control message: 5 seconds skew"
    assert re.fullmatch(r"Discarded control message: (29|30) seconds skew", reasons[3])
    assert all(e["uuid"] and e["outcome"] == "rejected" for e in manager.recent_events())
    assert list((local_ctx.state_dir / "sbxmgrs").iterdir()) == []


def test_max_filters_zero_refuses_every_load_with_the_reason(local_ctx):
    manager = SandboxManager(parse_settings({"message_signer": "ops", "name": "Mgr"}))  # Heka's default 0
    _drive(local_ctx, manager, [_load()])
    event = manager.recent_events()[-1]
    assert (event["outcome"], event["reason"]) == ("rejected", "Mgr attempted to load more than 0 filters")
    assert manager.rejected["max_filters"] == 1


def test_bad_config_injects_terminated_and_leaves_no_files(local_ctx):
    manager = SandboxManager(parse_settings({"message_signer": "ops", "max_filters": 3, "name": "Mgr"}))
    bad = build_control_message(
        "load", script="x", config='[Ex]\ntype = "SandboxOutput"\nmessage_matcher="TRUE"\n'
    )
    no_config = build_control_message("load", script="x")
    no_config.fields = [f for f in no_config.fields if f.name != "config"]
    _drive(
        local_ctx,
        manager,
        [
            Delivery(bad, b"", signer="ops"),
            Delivery(no_config, b"", signer="ops"),
            Delivery(build_control_message("reload"), b"", signer="ops"),
            Delivery(build_control_message("unload", name="Nope"), b"", signer="ops"),
        ],
    )
    outcomes = [(e["outcome"], e["reason"]) for e in manager.recent_events()]
    assert outcomes[0] == (
        "failed",
        "loadSandbox failed: config: Plugin must be a SandboxFilter, received SandboxOutput",
    )
    assert outcomes[1] == ("ignored", "load message without a config field")
    assert outcomes[2] == ("ignored", "Invalid action: reload")
    assert outcomes[3] == ("failed", "unload failed: Mgr-Nope is not running")
    ((term, origin),) = local_ctx.injected
    assert (term.type, term.logger, term.get_field("plugin"), origin) == (
        "heka.sandbox-terminated",
        "hekad",
        "Mgr",
        "Mgr",
    )
    assert "Plugin must be a SandboxFilter" in term.payload
    workdir = local_ctx.state_dir / "sbxmgrs"
    assert list(workdir.iterdir()) == []
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
