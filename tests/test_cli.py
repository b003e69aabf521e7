"""The `heka` entry point itself: version, help, error policy."""

from conftest import run_heka


def test_version() -> None:
    res = run_heka("--version")
    assert res.returncode == 0
    assert res.stdout.decode().startswith("heka ")


def test_unknown_command_is_usage_error() -> None:
    res = run_heka("no-such-command")
    assert res.returncode == 2
    assert b"Traceback" not in res.stderr
