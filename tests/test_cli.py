"""The `heka` entry point itself: version, help, error policy, how the process ends."""

import subprocess
import sys

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


def _python(code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)


def test_the_process_ends_without_teardown_but_flushes_and_runs_atexit(tmp_path) -> None:
    """`end_process_now` (what `heka` does after a command): buffered output and atexit handlers
    are not lost, and the exit code is the command's."""
    mark = tmp_path / "atexit"
    res = _python(
        "import atexit, sys\n"
        "from hekacli.commands.main import end_process_now\n"
        f"atexit.register(lambda: open({str(mark)!r}, 'w').write('ran'))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "sys.stderr.write('to stderr')\n"
        "end_process_now(7)\n"
    )
    assert res.returncode == 7
    assert res.stdout == b"buffered, no newline" and res.stderr == b"to stderr"
    assert mark.read_text() == "ran"


def test_the_process_still_waits_for_a_running_thread(tmp_path) -> None:
    """Teardown would wait for a thread that is not a daemon: so does `end_process_now`."""
    mark = tmp_path / "thread"
    res = _python(
        "import threading, time\n"
        "from hekacli.commands.main import end_process_now\n"
        "def work():\n"
        "    time.sleep(0.3)\n"
        f"    open({str(mark)!r}, 'w').write('done')\n"
        "threading.Thread(target=work).start()\n"
        "end_process_now(3)\n"
    )
    assert res.returncode == 3, res.stderr
    assert mark.read_text() == "done"
