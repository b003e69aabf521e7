"""Benchmark `heka logstream tail` against `tail -n +1` on the same file, in the same run.

Usage (from the repository root):

    python bench/tail.py                 # 256 MB raw file, 32 MB for the decoded run
    python bench/tail.py --size-mb 1024  # the issue's 1 GB (takes longer)

Measures, each as a separate process with stdout to /dev/null:
- `tail -n +1 FILE` (the peer);
- `heka logstream tail --format raw` with checkpoints (default batches), without checkpoints
  (--no-checkpoint), and with a checkpoint every 1000 lines (the cost of checkpointing);
- `heka logstream tail` with the nginx decoder and `--format jsonl` (decoded) on a smaller file.
Figures: wall seconds, MB/s, lines/s, peak RSS (from wait4), and ratios to `tail`. The interpreter
start-up of `heka` (measured on an empty stream) is reported and subtracted for the rates.
Fluent Bit and Vector are not installable from this machine's registries, so they are not measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEKA = [sys.executable, "-m", "hekacli.commands"]
AGENTS = [
    "curl/8.5.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
]
PATHS = ["/", "/index.html", "/api/v1/items?page=2", "/login", "/static/app.js", "/img/logo.png"]


def make_log(path: Path, size: int, seed: int = 1) -> int:
    """Write nginx combined lines until `size` bytes; returns the number of lines."""
    rng = random.Random(seed)
    block = []
    for i in range(20000):
        block.append(
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} - - "
            f"[27/Nov/2026:{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
            f'"GET {rng.choice(PATHS)} HTTP/1.1" {rng.choice([200, 200, 200, 304, 404, 500])} '
            f'{rng.randint(0, 90000)} "-" "{rng.choice(AGENTS)}"\n'
        )
    chunk = "".join(block).encode()
    lines_per_chunk = len(block)
    written = lines = 0
    with open(path, "wb") as f:
        while written + len(chunk) <= size:
            f.write(chunk)
            written += len(chunk)
            lines += lines_per_chunk
    return lines


def run(argv: list[str], cwd: Path | None = None) -> tuple[float, int, int]:
    """Run with stdout to /dev/null; (wall seconds, peak RSS in KiB, exit code)."""
    with open(os.devnull, "wb") as null:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def config(dirpath: Path, logs: Path, decoder: bool) -> Path:
    conf = dirpath / ("decoded.yaml" if decoder else "raw.yaml")
    text = (
        f"journal_directory: {dirpath / 'journals'}\nstreams:\n  bench:\n    log_directory: {logs}\n"
        "    file_match: 'access\\.log'\n    oldest_duration: '0'\n"
    )
    if decoder:
        text += "    decoder: {kind: nginx, log_format: combined}\n"
    conf.write_text(text)
    return conf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=256, help="raw file size (default 256)")
    ap.add_argument("--decoded-mb", type=int, default=32, help="file size for the decoded run (default 32)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="heka-bench-tail-"))
    try:
        raw_logs, dec_logs, empty_logs = work / "raw", work / "dec", work / "empty"
        for d in (raw_logs, dec_logs, empty_logs):
            d.mkdir()
        print(f"machine: {os.cpu_count()} cpu(s), Python {platform.python_version()}, {platform.platform()}")
        print(f"writing {args.size_mb} MB and {args.decoded_mb} MB of nginx combined lines to {work} ...")
        lines = make_log(raw_logs / "access.log", args.size_mb << 20)
        dec_lines = make_log(dec_logs / "access.log", args.decoded_mb << 20, seed=2)
        (empty_logs / "access.log").write_bytes(b"")
        size = (raw_logs / "access.log").stat().st_size
        dec_size = (dec_logs / "access.log").stat().st_size
        os.sync()  # so the first journal fsync does not pay for writing the generated files
        # warm the page cache so every contender reads from memory
        run(["cat", str(raw_logs / "access.log")])
        run(["cat", str(dec_logs / "access.log")])

        def heka_tail(logs: Path, *extra: str, decoder: bool = False) -> tuple[float, int, int]:
            shutil.rmtree(work / "journals", ignore_errors=True)
            return run([*HEKA, "logstream", "tail", str(config(work, logs, decoder)), "-q", *extra])

        # interpreter start-up of `heka` (best of 3), subtracted from the heka runs for the rates
        startup = min(heka_tail(empty_logs, "--format", "raw")[0] for _ in range(3))
        rows = []  # (label, wall, net, rss KiB, bytes, lines, peer wall)
        t_tail, rss_tail, _ = run(["tail", "-n", "+1", str(raw_logs / "access.log")])
        rows.append(("tail -n +1 (peer)", t_tail, t_tail, rss_tail, size, lines, t_tail))
        for label, extra in [
            ("heka raw, checkpoints (default batches)", ["--format", "raw"]),
            ("heka raw, --no-checkpoint", ["--format", "raw", "--no-checkpoint"]),
            ("heka raw, checkpoint every 1000 lines", ["--format", "raw", "--batch-lines", "1000"]),
        ]:
            wall, rss, code = heka_tail(raw_logs, *extra)
            assert code == 0, f"{label}: exit {code}"
            rows.append((label, wall, max(wall - startup, 1e-3), rss, size, lines, t_tail))
        t_dec, rss_dec, _ = run(["tail", "-n", "+1", str(dec_logs / "access.log")])
        rows.append(
            (f"tail -n +1, {args.decoded_mb} MB (peer)", t_dec, t_dec, rss_dec, dec_size, dec_lines, t_dec)
        )
        wall, rss, code = heka_tail(dec_logs, "--format", "jsonl", decoder=True)
        assert code == 0, f"decoded: exit {code}"
        rows.append(
            (
                f"heka nginx decoded -> jsonl, {args.decoded_mb} MB",
                wall,
                max(wall - startup, 1e-3),
                rss,
                dec_size,
                dec_lines,
                t_dec,
            )
        )

        print(f"\nheka start-up (empty stream, best of 3): {startup:.2f} s; 'net' = wall - start-up")
        head = ("run", "wall s", "net s", "MB/s", "lines/s", "peak MB", "tail/net")
        print(f"{head[0]:<44} {head[1]:>7} {head[2]:>7} {head[3]:>8} {head[4]:>11} {head[5]:>8} {head[6]:>9}")
        for label, wall, net, rss, nbytes, nlines, peer in rows:
            print(
                f"{label:<44} {wall:7.2f} {net:7.2f} {nbytes / net / 1e6:8.1f} {nlines / net:11,.0f} "
                f"{rss / 1024:8.1f} {peer / net:9.3f}"
            )
        default, nockpt, every1000 = rows[1], rows[2], rows[3]
        n_default = max(1, size // (8 << 20), lines // 50000)
        per_ms = (every1000[1] - nockpt[1]) / max(1, lines // 1000) * 1000
        print(
            f"\ncheckpoint cost (wall vs --no-checkpoint): default batches (~{n_default} checkpoints) "
            f"{default[1] - nockpt[1]:+.2f} s; every 1000 lines ({lines // 1000:,} checkpoints) "
            f"{every1000[1] - nockpt[1]:+.2f} s = {per_ms:.2f} ms each"
        )
        print("Fluent Bit / Vector: not installed and not available from the registries here; not measured.")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
