"""`heka sbmgr`, `heka-sbmgr`, `heka sbmgrload` against a real daemon over TLS.

A few runs are real subprocesses (the console script path, exit codes, the Go-flag alias); the rest
call the same Typer app in-process (`heka_here`) to keep the suite fast on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, SAMPLE_LOGS, run_heka

SCRIPT_DIR = SAMPLE_LOGS / "sandbox"
OPS_KEY = "ops-secret"  # conftest's signer key


def write_sbmgr_toml(path, pki, url: str, dash_url: str, key: str = OPS_KEY) -> str:
    path.write_text(
        f'ip_address = "{url.split("://", 1)[1]}"\nuse_tls = true\ndashboard = "{dash_url}"\n'
        'manager = "SandboxManager"\n'
        f'[signer]\nname = "ops"\nhmac_hash = "sha1"\nhmac_key = "{key}"\nversion = 1\n'
        f'[tls]\ncert_file = "{pki.client_cert}"\nkey_file = "{pki.client_key}"\n'
        f'root_cafile = "{pki.ca_cert}"\n')
    return str(path)


def err(proc) -> str:
    return proc.stderr.decode()


@pytest.fixture
def daemon_and_config(tmp_path, pki, start_daemon):
    with start_daemon(tmp_path / "state", max_filters=3, memory_limit=2 * 1024 * 1024) as (d, dash, dash_url):
        cfg = write_sbmgr_toml(tmp_path / "sbmgr.toml", pki, d.urls[0], dash_url)
        yield d, dash, cfg


def test_load_list_status_unload(daemon_and_config, tmp_path, heka_here):
    d, dash, cfg = daemon_and_config
    script, conf = SCRIPT_DIR / "status_counter.lua", SCRIPT_DIR / "status_counter.toml"
    p = run_heka("sbmgr", "load", script, "--scriptconfig", conf, "--config", cfg)  # a real process
    assert p.returncode == 0, err(p)
    assert "loaded SandboxManager-StatusCounter: running" in err(p) and p.stdout == b""

    p = heka_here("sbmgr", "list", "--config", cfg, "--format", "jsonl")
    rows = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert p.returncode == 0 and [(r["name"], r["state"], r["managed_by"]) for r in rows] == [
        ("SandboxManager-StatusCounter", "running", "SandboxManager")]

    p = heka_here("sbmgr", "status", "SandboxManager-StatusCounter", "--config", cfg, "--format", "jsonl")
    record = json.loads(p.stdout)
    assert (record["name"], record["state"]) == ("SandboxManager-StatusCounter", "running")
    assert record["memory"] > 0

    p = heka_here("sbmgr", "status", "--config", cfg, "--format", "jsonl")
    manager = json.loads(p.stdout)
    assert (manager["name"], manager["running_filters"], manager["max_filters"], manager["loaded"]) == (
        "SandboxManager", 1, 3, 1)

    p = heka_here("sbmgr", "status", "Nope", "--config", cfg)
    assert p.returncode == 2 and "no sandbox named 'Nope'" in err(p)

    p = heka_here("sbmgr", "unload", "StatusCounter", "--config", cfg)
    assert p.returncode == 0 and "unloaded SandboxManager-StatusCounter: ok" in err(p)
    assert dash.sandboxes() == []
    p = heka_here("sbmgr", "unload", "StatusCounter", "--config", cfg)
    assert p.returncode == 5 and "unload failed: SandboxManager-StatusCounter is not running" in err(p)


def test_a_script_that_fails_to_start_exits_5_with_the_reason(daemon_and_config, tmp_path, heka_here):
    d, dash, cfg = daemon_and_config
    bad = tmp_path / "bad.lua"
    bad.write_text("function process_message() return 0 end\nerror('boom at load')\n")
    p = heka_here("sbmgr", "load", bad, "--scriptconfig", SCRIPT_DIR / "status_counter.toml", "--config", cfg)
    assert p.returncode == 5
    assert "boom at load" in err(p) and err(p).count("\n") == 1  # one line: the reason
    assert not list((tmp_path / "state" / "sbxmgrs").iterdir())  # its files were deleted


def test_dry_run_compiles_locally_with_the_managers_limits(daemon_and_config, tmp_path, heka_here):
    d, dash, cfg = daemon_and_config
    conf = SCRIPT_DIR / "status_counter.toml"
    p = heka_here("sbmgr", "load", SCRIPT_DIR / "status_counter.lua", "--scriptconfig", conf, "--config", cfg,
                 "--dry-run")
    assert p.returncode == 0, err(p)
    assert "memory 2097152" in err(p) and "manager SandboxManager" in err(p)
    assert "would run as SandboxManager-StatusCounter" in err(p)
    # 3 MB at load fits Heka's default 8 MiB, not this manager's 2 MiB: the dry run finds out
    hog = tmp_path / "hog.lua"
    hog.write_text('require "string"\nbig = string.rep("x", 3 * 1024 * 1024)\n'
                   "function process_message() return 0 end\n")
    p = heka_here("sbmgr", "load", hog, "--scriptconfig", conf, "--config", cfg, "--dry-run")
    assert p.returncode == 5 and "not enough memory" in err(p)
    syntax = tmp_path / "syntax.lua"
    syntax.write_text("function process_message( return 0 end\n")
    p = heka_here("sbmgr", "load", syntax, "--scriptconfig", conf, "--config", cfg, "--dry-run")
    assert p.returncode == 5 and "syntax.lua" in err(p)
    # nothing was ever sent
    assert dash.status()["managers"][0]["processed"] == 0


def test_local_config_errors_are_reported_before_sending(daemon_and_config, tmp_path, heka_here):
    d, dash, cfg = daemon_and_config
    two = tmp_path / "two.toml"
    two.write_text('[A]\ntype = "SandboxFilter"\nmessage_matcher = "TRUE"\n[B]\ntype = "SandboxFilter"\n')
    p = heka_here("sbmgr", "load", SCRIPT_DIR / "status_counter.lua", "--scriptconfig", two, "--config", cfg)
    assert p.returncode == 2 and f"{two}: the config must hold exactly one section, found 2" in err(p)
    p = heka_here("sbmgr", "load", SCRIPT_DIR / "status_counter.lua", "--scriptconfig", two, "--config",
                 tmp_path / "missing.toml")
    assert p.returncode == 3 and "missing.toml" in err(p)
    assert dash.status()["managers"][0]["processed"] == 0


def test_a_message_the_daemon_drops_is_reported_as_not_started(daemon_and_config, tmp_path, pki):
    d, dash, _ = daemon_and_config
    wrong = write_sbmgr_toml(tmp_path / "wrong.toml", pki, d.urls[0], dash.url, key="guessed")
    p = run_heka("sbmgr", "load", SCRIPT_DIR / "status_counter.lua", "--scriptconfig",
                 SCRIPT_DIR / "status_counter.toml", "--config", wrong, "--wait", "1")
    assert p.returncode == 5 and "timeout: no outcome within 1s" in err(p)
    assert d.summary()["dropped"] == {"bad_signature": 1}


def test_heka_sbmgr_alias_and_sbmgrload(daemon_and_config, tmp_path, heka_here):
    d, dash, cfg = daemon_and_config
    alias = [sys.executable, "-c", "from hekacli.commands.sbmgr import alias_main; alias_main()"]
    script, conf = str(SCRIPT_DIR / "status_counter.lua"), str(SCRIPT_DIR / "status_counter.toml")
    p = subprocess.run([*alias, "-config", cfg, "-action", "load", "-script", script, "-scriptconfig", conf],
                       capture_output=True, timeout=60, cwd=PROJECT_ROOT)
    assert p.returncode == 0, err(p)
    p = subprocess.run([*alias, "-config", cfg, "-action", "unload", "-filtername", "StatusCounter"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, err(p)

    p = heka_here("sbmgrload", "--config", cfg, "--action", "load", "--num", "4")
    # max_filters is 3: three load, the fourth is refused with the reason
    assert p.returncode == 5
    assert "loaded 3 of 4 counter sandboxes" in err(p)
    assert "CounterSandbox3: rejected: SandboxManager attempted to load more than 3 filters" in err(p)
    expected = [f"SandboxManager-CounterSandbox{i}" for i in range(3)]
    assert sorted(sb["name"] for sb in dash.sandboxes()) == expected
    p = heka_here("sbmgrload", "--config", cfg, "--action", "unload", "--num", "3")
    assert p.returncode == 0 and "unloaded 3 of 3" in err(p)
    assert dash.sandboxes() == []
    p = heka_here("sbmgrload", "--config", cfg, "--action", "reload")
    assert p.returncode == 2 and "Invalid action: reload" in err(p)
