"""`heka sbmgrload`: load or unload N counter sandboxes on a running `heka serve` (heka-sbmgrload)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import typer

from hekacli.errors import SandboxError, UsageError
from hekacli.sbmgr import (
    COUNTER_LUA,
    build_control_message,
    counter_config,
    counter_section,
    load_sbmgr_config,
)

from .sbmgr import _client, _say, send_and_wait


def sbmgrload_command(
    action: str = typer.Option("load", "--action", "-a", help="load or unload."),
    num: int = typer.Option(1, "--num", "-n", min=0,
                            help="How many counter sandboxes (CounterSandbox0..N-1)."),
    config: Path = typer.Option(Path("sbmgrload.toml"), "--config", "-c", help="Same format as sbmgr.toml."),
    wait: float = typer.Option(10.0, "--wait", min=0, help="Seconds to wait for each outcome (0: don't)."),
    dashboard: str | None = typer.Option(None, "--dashboard", help="Dashboard URL (overrides the config)."),
) -> None:
    """Load or unload NUM counter sandboxes (matching Type 'hekabench'), as Heka's heka-sbmgrload did.

    Each counter reports its message rate every second (output `rate`) and a min/max/mean summary every
    10 seconds (output `summary`). Exits 5 if any of them did not load (or unload), naming each reason.
    """
    if action not in ("load", "unload"):
        raise UsageError(f"Invalid action: {action} (load or unload)")
    cfg = load_sbmgr_config(config)
    client = _client(cfg, dashboard, required=False)
    if action == "load":
        messages = [build_control_message("load", script=COUNTER_LUA, config=counter_config(i))
                    for i in range(num)]
    else:
        messages = [build_control_message("unload", name=counter_section(i)) for i in range(num)]
    outcomes = send_and_wait(cfg, messages, client, wait)
    if not outcomes:
        return
    failed = [o for o in outcomes if not o.ok]
    verb = "loaded" if action == "load" else "unloaded"
    _say(f"{verb} {len(outcomes) - len(failed)} of {len(outcomes)} counter sandboxes")
    for i, o in enumerate(outcomes):
        if not o.ok:
            _say(f"{counter_section(i)}: {o.state}: {o.reason}")
    if failed:
        raise SandboxError(f"{len(failed)} of {len(outcomes)} counter sandboxes not {verb}")


def register(app: typer.Typer) -> None:
    """Add `heka sbmgrload`."""
    app.command("sbmgrload")(sbmgrload_command)


def alias_argv(argv: list[str]) -> list[str]:
    """Translate heka-sbmgrload's Go flags (-config -action -num) to `heka sbmgrload`."""
    parser = argparse.ArgumentParser(prog="heka-sbmgrload")
    parser.add_argument("-config", "--config", default="sbmgrload.toml")
    parser.add_argument("-action", "--action", default="load")
    parser.add_argument("-num", "--num", default="1")
    parser.add_argument("-wait", "--wait", default=None)
    args = parser.parse_args(argv)
    return ["sbmgrload", "--config", args.config, "--action", args.action, "--num", args.num,
            *(["--wait", args.wait] if args.wait is not None else [])]


def alias_main() -> None:
    """Console-script entry point for `heka-sbmgrload`."""
    from .main import main

    main(alias_argv(sys.argv[1:]))
