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


def test_closed_pipe_ends_quietly_with_exit_0(tmp_path) -> None:
    """`heka decode ... | head -1`: the reader goes away early; no traceback, exit 0."""
    import subprocess

    from conftest import SAMPLE_LOGS, heka_cmd

    argv = heka_cmd("decode", "nginx", "--allow-rejects", SAMPLE_LOGS / "nginx" / "access.log")
    proc = subprocess.Popen(argv,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"{")
    assert proc.returncode == 0, err
    assert b"Traceback" not in err


def test_broken_pipe_policy_for_a_command_without_its_own_handler() -> None:
    """`heka agg ... | head -1` goes through the shared stdout guard (commands/main.py)."""
    import subprocess

    from conftest import SAMPLE_LOGS, heka_cmd

    proc = subprocess.Popen(heka_cmd("agg", SAMPLE_LOGS / "nginx" / "access.log", "--by", "remote_addr",
                                     "--by", "request_uri", "--count", "--format", "jsonl"),  # ~700 KB
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"{")
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
