"""The `heka` entry point itself: version, help, error policy, how the process ends."""

import os
import subprocess
import sys

import pytest
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



def test_closed_pipe_under_rich_output_ends_quietly_with_exit_0() -> None:
    """`heka report ... | head -1`: rich's own console exits with 1 on a closed pipe; ours ends
    the way every other output does (exit 0, nothing on stderr)."""
    from conftest import SAMPLE_LOGS, heka_cmd

    argv = heka_cmd("report", SAMPLE_LOGS / "nginx" / "access.log", "--width", "120")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "NO_COLOR": "1"})
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert first.strip()
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"error" not in err

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


def _damaged_gzips(tmp_path) -> dict[str, bytes]:
    import gzip

    from conftest import SAMPLE_LOGS

    packed = gzip.compress((SAMPLE_LOGS / "nginx" / "access.log").read_bytes(), compresslevel=1)
    garbled = bytearray(packed)
    for i in range(200, 260):  # the middle of the deflate stream
        garbled[i] ^= 0x5A
    return {
        "garbled": bytes(garbled),  # zlib.error
        "truncated": packed[: len(packed) // 2],  # EOFError
        "not deflate": b"\x1f\x8b" + b"x" * 30,  # gzip.BadGzipFile
    }


@pytest.mark.parametrize(
    "command",
    [
        ["decode", "nginx"],
        ["decode", "nginx", "-f", "csv"],
        ["decode", "nginx", "-f", "parquet", "-o", "{tmp}/out.parquet"],
        ["agg", "--by", "status", "--count", "--no-cache"],
        ["report", "--json", "--no-cache"],
    ],
    ids=["decode", "decode-csv", "decode-parquet", "agg", "report"],
)
def test_damaged_gzip_input_is_a_one_line_error_naming_the_file(tmp_path, command) -> None:
    """Damaged gzip data reaches Python as zlib.error, EOFError or BadGzipFile: every command
    reports it as bad input (exit 3) naming the file, never as an internal error."""
    argv = [arg.format(tmp=tmp_path) for arg in command]
    damaged = _damaged_gzips(tmp_path)
    if argv[0] != "decode" or len(argv) > 2:  # (each kind once per reader: decode jsonl, agg)
        damaged = {"garbled": damaged["garbled"]} if argv[0] != "agg" else damaged
    for kind, data in damaged.items():
        log = tmp_path / "access.log.gz"
        log.write_bytes(data)
        for where, stdin in ((str(log), None), ("-", data)):
            args = [*argv[:2], where, *argv[2:]] if argv[0] == "decode" else [argv[0], where, *argv[1:]]
            res = run_heka(*args, input=stdin)
            name = "<stdin>" if where == "-" else str(log)
            err = res.stderr.decode()
            assert res.returncode == 3, (kind, where, err)
            assert err.startswith(f"heka: error: {name}: bad gzip data: "), (kind, where, err)
            assert len(err.splitlines()) == 1 and "internal error" not in err
