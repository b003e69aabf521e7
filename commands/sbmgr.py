"""`heka sbmgr`: load, unload, list and inspect sandboxes on a running `heka serve` (heka-sbmgr)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import typer

from hekacli.errors import InputError, UsageError
from hekacli.output import RecordWriter, default_format
from hekacli.sbmgr import (
    DashboardClient,
    ManagerLimits,
    Outcome,
    SbmgrConfig,
    build_control_message,
    dry_run_compile,
    full_filter_name,
    limits_from_dashboard,
    load_sbmgr_config,
    parse_filter_config,
    require_outcome,
    send_control,
    wait_for_outcome,
)

HELP = """Load and unload Lua sandbox filters on a running `heka serve` over TLS (Heka's heka-sbmgr).

Control messages are always signed with the \\[signer] of the config (sbmgr.toml).

After a load or an unload the command waits (bounded by --wait) on the daemon's dashboard until the
manager has handled the message, and exits 5 with the reason if the filter did not start.
"""

CONFIG_OPT = typer.Option(None, "--config", "-c", help="sbmgr.toml: ip_address, use_tls, "
                          "\\[signer], \\[tls], dashboard, manager.")
DASHBOARD_OPT = typer.Option(None, "--dashboard", help="Dashboard URL (overrides `dashboard` in the config).")
WAIT_OPT = typer.Option(10.0, "--wait", min=0, help="Seconds to wait for the outcome (0: send and return).")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text: {exc.reason}", file=str(path)) from None


def _say(text: str) -> None:
    sys.stderr.write(f"heka sbmgr: {text}\n")


def _setup(ctx: typer.Context, config: Path | None, dashboard: str | None) -> tuple[SbmgrConfig, str | None]:
    """The sbmgr.toml and dashboard URL from the subcommand's options, else the group's, else defaults."""
    group = ctx.obj if isinstance(ctx.obj, dict) else {}
    cfg = load_sbmgr_config(config or group.get("config") or Path("sbmgr.toml"))
    return cfg, dashboard or group.get("dashboard")


def _group(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPT,
    dashboard: str | None = DASHBOARD_OPT,
) -> None:
    """Options given before the subcommand (`heka sbmgr --config sbmgr.toml load ...`)."""
    ctx.obj = {"config": config, "dashboard": dashboard}


def _client(cfg: SbmgrConfig, dashboard: str | None, *, required: bool) -> DashboardClient | None:
    url = dashboard or cfg.dashboard
    if url is None:
        if required:
            raise UsageError(f"no dashboard URL: set `dashboard = \"http://HOST:PORT\"` in {cfg.path} "
                             "or pass --dashboard")
        return None
    return DashboardClient(url)


def _report(outcome: Outcome, verb: str) -> None:
    require_outcome(outcome)
    _say(f"{verb} {outcome.name}: {outcome.state}")


def send_and_wait(cfg: SbmgrConfig, messages: list, client: DashboardClient | None,
                  wait: float) -> list[Outcome]:
    """Send control messages and wait for each outcome (when a dashboard is known and wait > 0)."""
    send_control(cfg, messages)
    if client is None or wait <= 0:
        why = "--wait 0" if wait <= 0 else "no dashboard configured"
        _say(f"sent {len(messages)} control message(s) ({why}: outcome not checked)")
        return []
    return [wait_for_outcome(client, m.uuid_string, wait) for m in messages]


def load_command(
    ctx: typer.Context,
    script: Path = typer.Argument(..., help="The Lua filter script."),
    scriptconfig: Path = typer.Option(..., "--scriptconfig", "-s",
                                      help="TOML with one SandboxFilter section."),
    config: Path | None = CONFIG_OPT,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only compile the script locally in a sandbox with "
                                 "the manager's limits; send nothing."),
    wait: float = WAIT_OPT,
    dashboard: str | None = DASHBOARD_OPT,
) -> None:
    """Load a filter: send SCRIPT and its TOML section to the daemon's sandbox manager."""
    cfg, dashboard = _setup(ctx, config, dashboard)
    script_text = _read(script, "script")
    config_text = _read(scriptconfig, "script config")
    spec = parse_filter_config(config_text, source=str(scriptconfig))
    client = _client(cfg, dashboard, required=False)
    if dry_run:
        limits = None
        if client is not None:
            try:
                limits = limits_from_dashboard(client, cfg.manager)
            except Exception:  # noqa: BLE001 - the daemon may be down; fall back to the defaults
                limits = None
        limits = limits or ManagerLimits()
        stats = dry_run_compile(script_text, spec, limits, filename=str(script))
        target = full_filter_name(cfg.manager, spec.section) if cfg.manager else f"<manager>-{spec.section}"
        _say(f"dry run: {script} loads in a sandbox (memory {limits.memory}, instructions "
             f"{limits.instructions}, output {limits.output}: {limits.source}); "
             f"memory after load {stats.get('memory', '?')} bytes; would run as {target}")
        if spec.ignored:
            _say(f"dry run: the manager overrides {', '.join(spec.ignored)}")
        return
    msg = build_control_message("load", script=script_text, config=config_text)
    for outcome in send_and_wait(cfg, [msg], client, wait):
        _report(outcome, "loaded")


def unload_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The filter's section name (without the manager prefix)."),
    config: Path | None = CONFIG_OPT,
    wait: float = WAIT_OPT,
    dashboard: str | None = DASHBOARD_OPT,
) -> None:
    """Unload a filter by its unprefixed section name."""
    cfg, dashboard = _setup(ctx, config, dashboard)
    client = _client(cfg, dashboard, required=False)
    msg = build_control_message("unload", name=name)
    for outcome in send_and_wait(cfg, [msg], client, wait):
        _report(outcome, "unloaded")


def list_command(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPT,
    dashboard: str | None = DASHBOARD_OPT,
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl, json, csv, tsv or table."),
) -> None:
    """List the daemon's sandboxes (from its dashboard API)."""
    cfg, dashboard = _setup(ctx, config, dashboard)
    client = _client(cfg, dashboard, required=True)
    assert client is not None
    writer = RecordWriter(fmt or default_format(), title="sandboxes")
    for sb in client.sandboxes():
        writer.write({"name": sb.get("name"), "state": sb.get("state"), "processed": sb.get("processed"),
                      "memory": sb.get("memory"), "last_error": sb.get("last_error"),
                      "managed_by": sb.get("managed_by"),
                      "outputs": ",".join(f"{o.get('name')}.{o.get('type')}" for o in sb.get("outputs", []))})
    writer.close()


def status_command(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="A sandbox's full name (as `list` shows it); "
                                      "without it, the managers' counters."),
    config: Path | None = CONFIG_OPT,
    dashboard: str | None = DASHBOARD_OPT,
    fmt: str | None = typer.Option(None, "--format", "-f", help="jsonl, json, csv, tsv or table."),
) -> None:
    """Show one sandbox (stats and outputs) or the sandbox managers' counters and recent events."""
    cfg, dashboard = _setup(ctx, config, dashboard)
    client = _client(cfg, dashboard, required=True)
    assert client is not None
    status = client.status()
    writer = RecordWriter(fmt or default_format(), title=name or "sandbox managers")
    if name is not None:
        matches = [sb for sb in status.get("sandboxes", []) if sb.get("name") == name]
        if not matches:
            known = ", ".join(sb.get("name", "") for sb in status.get("sandboxes", [])) or "none"
            raise UsageError(f"no sandbox named {name!r} (running: {known})")
        writer.write(matches[0])
    else:
        for m in status.get("managers", []):
            keys = ("name", "running_filters", "max_filters", "processed", "loaded", "unloaded", "rejected",
                    "filters")
            record: dict[str, Any] = {k: m.get(k) for k in keys}
            events = m.get("events", [])
            record["last_event"] = events[-1] if events else None
            writer.write(record)
    writer.close()


def register(app: typer.Typer) -> None:
    """Add `heka sbmgr load|unload|list|status`."""
    sub = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode="rich")
    sub.callback()(_group)
    sub.command("load")(load_command)
    sub.command("unload")(unload_command)
    sub.command("list")(list_command)
    sub.command("status")(status_command)
    app.add_typer(sub, name="sbmgr")


def alias_argv(argv: list[str]) -> list[str]:
    """Translate heka-sbmgr's Go flags (-config -action -script -scriptconfig -filtername) to `heka sbmgr`."""
    parser = argparse.ArgumentParser(prog="heka-sbmgr", add_help=True)
    for flag, default in (("config", "sbmgr.toml"), ("action", "load"), ("script", "xyz.lua"),
                          ("scriptconfig", "xyz.toml"), ("filtername", "filter")):
        parser.add_argument(f"-{flag}", f"--{flag}", default=default)
    parser.add_argument("-wait", "--wait", default=None)
    parser.add_argument("-dry-run", "--dry-run", action="store_true")
    args = parser.parse_args(argv)
    extra = ["--wait", args.wait] if args.wait is not None else []
    if args.action == "load":
        return ["sbmgr", "load", args.script, "--scriptconfig", args.scriptconfig, "--config", args.config,
                *extra, *(["--dry-run"] if args.dry_run else [])]
    if args.action == "unload":
        return ["sbmgr", "unload", args.filtername, "--config", args.config, *extra]
    sys.stderr.write(f"heka-sbmgr: error: Invalid action: {args.action} (load or unload)\n")
    raise SystemExit(2)


def alias_main() -> None:
    """Console-script entry point for `heka-sbmgr`."""
    from .main import main

    main(alias_argv(sys.argv[1:]))
