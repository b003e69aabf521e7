"""Fixtures for the logstream tests: a real logrotate, a writer process, and a tailer we can kill."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"
LINE_RE = re.compile(rb"^(\d{9}) (x*)$")


# The tailer under torture is the real `heka logstream tail` command (same Typer command, same code),
# started through a launcher that registers only the logstream sub-app: the full `heka` entry point
# imports every area (polars...) and the tests restart the tailer many times. test_logstream_cli
# covers the `heka` entry point itself.
LAUNCHER = (
    "import sys, typer\n"
    "from hekacli.commands import logstream\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "logstream.register(app)\n"
    "app(args=sys.argv[1:], prog_name='heka')\n"
)


def heka_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, *map(str, args)]


@dataclass
class Run:
    """One tailer process: its output and how it ended."""

    output: bytes = b""
    killed: bool = False
    returncode: int | None = None
    stderr: bytes = b""

    def seqs(self) -> list[int]:
        out = []
        assert not self.output or self.output.endswith(b"\n"), f"half a line on stdout: {self.output[-80:]!r}"
        for line in self.output.split(b"\n")[:-1]:
            m = LINE_RE.match(line)
            assert m, f"garbled line {line[:100]!r}"
            seq = int(m.group(1))
            assert len(m.group(2)) == seq % 37, f"line {seq} altered: {line!r}"
            out.append(seq)
        return out


class Tailer:
    """`heka logstream tail CONFIG --follow` as a subprocess whose stdout is a pipe we drain."""

    def __init__(self, config: Path, *extra: str, follow: bool = True, env: dict | None = None) -> None:
        argv = heka_argv("logstream", "tail", config, "--format", "raw", *extra)
        if follow:
            argv.append("--follow")
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        self.chunks: list[bytes] = []
        self.err: list[bytes] = []
        self._t = threading.Thread(target=self._drain, args=(self.proc.stdout, self.chunks), daemon=True)
        self._e = threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True)
        self._t.start()
        self._e.start()

    @staticmethod
    def _drain(pipe, sink: list[bytes]) -> None:
        while True:
            b = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
            if not b:
                return
            sink.append(b)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait for the tailer's start note on stderr (interpreter start-up takes a while)."""
        deadline = time.monotonic() + timeout
        while b"stream(s)" not in b"".join(self.err) and self.proc.poll() is None:
            assert time.monotonic() < deadline, "the tailer did not start"
            time.sleep(0.01)

    def text(self) -> bytes:
        return b"".join(self.chunks)

    def finish(self, sig: int | None) -> Run:
        try:
            if sig is not None and self.proc.poll() is None:
                self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._t.join(10)
        self._e.join(10)
        return Run(self.text(), sig == signal.SIGKILL, self.proc.returncode, b"".join(self.err))


@dataclass
class RotationRig:
    """A log directory, a logrotate config in one mode, a writer, and helpers to drive them."""

    root: Path
    mode: str
    batch_lines: int = 200
    runs: list[Run] = field(default_factory=list)
    writer: subprocess.Popen | None = None

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def config(self) -> Path:
        return self.root / "logstream.yaml"

    def setup(self) -> None:
        self.logs.mkdir()
        self.control.mkdir()
        (self.logs / "app.log").touch()
        directives = {
            "create": ["create"],
            "copytruncate": ["copytruncate"],
            "delaycompress": ["create", "compress", "delaycompress"],
            "compress": ["create", "compress"],
            "dateext": ["create", "dateext", "dateformat -%Y%m%d%H%M%S"],
            "copytruncate-compress": ["copytruncate", "compress"],
        }[self.mode]
        body = "\n".join(f"    {d}" for d in [*directives, "rotate 200", "missingok", "nomail"])
        (self.root / "logrotate.conf").write_text(f"{self.logs}/app.log {{\n{body}\n}}\n")
        if self.mode == "dateext":
            stream = (
                "    file_match: 'app\\.log(-(?P<Date>\\d+))?(\\.gz)?'\n    priority: [Date]\n"
                "    translation: {Date: {missing: 99999999999999}}\n"
            )
        else:
            stream = "    file_match: 'app\\.log(\\.(?P<Seq>\\d+))?(\\.gz)?'\n    priority: ['^Seq']\n"
        self.config.write_text(
            "journal_directory: journals\n"
            "streams:\n  app:\n    log_directory: logs\n"
            + stream
            + "    oldest_duration: '0'\n    rotate_wait: 300ms\n    check_data_interval: 50ms\n"
            "    rescan_interval: 1s\n"
        )

    def start_writer(self, rate: int = 4000) -> None:
        self.writer = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "logstream_writer.py"),
                str(self.logs / "app.log"),
                str(self.control),
                "--rate",
                str(rate),
            ]
        )

    def stop_writer(self) -> int:
        (self.control / "stop").touch()
        assert self.writer is not None
        self.writer.wait(timeout=30)
        return int((self.control / "count").read_text())

    def pause_needed(self) -> bool:
        # logrotate itself loses lines written between its copy and its truncate (copytruncate), and
        # lines written to the old file after it compressed it (compress without delaycompress).
        return self.mode in ("copytruncate", "compress", "copytruncate-compress")

    def rotate(self) -> None:
        paused = self.pause_needed()
        if paused:
            (self.control / "pause").touch()
            deadline = time.monotonic() + 10
            while not (self.control / "paused").exists():
                assert time.monotonic() < deadline, "writer did not pause"
                time.sleep(0.002)
            if self.mode == "compress":
                time.sleep(0.05)  # the writer has reopened nothing yet; logrotate renames + compresses now
        try:
            r = subprocess.run(
                [
                    LOGROTATE,
                    "-f",
                    "-s",
                    str(self.root / "logrotate.state"),
                    str(self.root / "logrotate.conf"),
                ],
                capture_output=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr.decode(errors="replace")
        finally:
            if paused:
                (self.control / "pause").unlink()
        if paused:
            # Wait for the writer to take back `paused`: otherwise a rotation soon after this one could
            # see the old `paused` and run logrotate while the writer is still writing.
            deadline = time.monotonic() + 10
            while (self.control / "paused").exists():
                assert time.monotonic() < deadline, "writer did not resume"
                time.sleep(0.002)
        if self.mode == "dateext":
            time.sleep(1.05)  # dated names have a one-second resolution

    crash_window: float = 0.0

    def tailer(self, *extra: str, follow: bool = True) -> Tailer:
        env = {"HEKA_LOGSTREAM_CRASH_WINDOW": str(self.crash_window)} if self.crash_window else None
        return Tailer(self.config, "--batch-lines", str(self.batch_lines), *extra, follow=follow, env=env)

    def close(self) -> None:
        if self.writer is not None and self.writer.poll() is None:
            (self.control / "stop").touch()
            try:
                self.writer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.writer.kill()
                self.writer.wait()


def check_runs(runs: list[Run], total: int, batch_lines: int) -> dict[str, int]:
    """Sequence-number accounting over a series of tailer runs (see the rules in the issue)."""
    seen: set[int] = set()
    last_tail: list[int] = []  # the last batch of the last run that wrote something
    last_killed = False
    dups_total = 0
    for i, run in enumerate(runs):
        seqs = run.seqs()
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (
            f"run {i}: out of order or repeated within a run"
        )
        dups = [s for s in seqs if s in seen]
        if dups:
            assert last_killed, f"run {i}: {len(dups)} line(s) repeated after a clean stop, e.g. {dups[:5]}"
            assert len(dups) <= batch_lines, (
                f"run {i}: {len(dups)} repeated lines > one batch ({batch_lines})"
            )
            assert set(dups) <= set(last_tail[-batch_lines:]), (
                f"run {i}: repeated lines not from the last batch"
            )
            assert seqs[: len(dups)] == dups, f"run {i}: repeats are not the first lines of the restart"
        dups_total += len(dups)
        seen.update(seqs)
        if seqs:
            last_tail = seqs
            last_killed = run.killed
        elif not run.killed:
            last_killed = False
    missing = sorted(set(range(total)) - seen)
    assert not missing, f"{len(missing)} line(s) lost, first ones: {missing[:10]}"
    extra = sorted(seen - set(range(total)))
    assert not extra, f"lines that were never written: {extra[:10]}"
    return {"runs": len(runs), "kills": sum(r.killed for r in runs), "duplicates": dups_total}


def torture(rig: RotationRig, *, kills: int, seed: int) -> dict[str, int]:
    """Writer at full rate, logrotate at random moments, the tailer SIGKILLed and restarted at random."""
    rng = random.Random(seed)
    rig.setup()
    rig.start_writer()
    runs: list[Run] = []
    try:
        for _ in range(kills):
            t = rig.tailer()
            t.wait_ready()
            time.sleep(rng.uniform(0.0, 0.5))
            if rng.random() < 0.7:
                rig.rotate()
                time.sleep(rng.uniform(0.0, 0.5))
            runs.append(t.finish(signal.SIGKILL))
            if rng.random() < 0.3:
                rig.rotate()  # rotation while the tailer is stopped
        total = rig.stop_writer()
        # Catch up, stop cleanly, then a last run must find nothing new.
        t = rig.tailer()
        deadline = time.monotonic() + 60
        last = f"{total - 1:09d} ".encode()
        while last not in t.text() and time.monotonic() < deadline and t.proc.poll() is None:
            time.sleep(0.05)
        run = t.finish(signal.SIGTERM)
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        runs.append(run)
        run = rig.tailer(follow=False).finish(None)
        assert run.returncode == 0, run.stderr.decode(errors="replace")
        assert run.output == b"", "a restart after a clean stop repeated lines"
        runs.append(run)
    finally:
        rig.close()
    stats = check_runs(runs, total, rig.batch_lines)
    stats["lines"] = total
    stats["files"] = len(os.listdir(rig.logs))
    return stats


@pytest.fixture
def rig(tmp_path):
    def make(mode: str) -> RotationRig:
        if not os.path.exists(LOGROTATE):
            pytest.skip("logrotate is not installed (Debian package logrotate)")
        return RotationRig(tmp_path, mode)

    return make


@pytest.fixture
def torture_run():
    return torture
