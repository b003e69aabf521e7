#!/usr/bin/env python3
"""Benchmark `heka decode` on a generated nginx combined log, against GoAccess in the same run.

    python bench/decode.py                 # 1,000,000 lines
    python bench/decode.py --lines 200000  # quicker

Measured, each as its own process (wall time including start-up; peak RSS of that process):
  * streaming: `heka decode nginx FILE -f jsonl -o /dev/null` (line in, JSON out: the generated
    per-format function of parsers/jsonout.py; a big file is split between 2 worker processes);
  * streaming, 1 process: the same with HEKA_DECODE_JOBS=1;
  * bulk: `heka decode nginx FILE -f parquet -o out.parquet` (`Decoder.frame_file`, polars);
  * GoAccess: `goaccess FILE --log-format=COMBINED -o report.json` parsing the same file.
Prints lines/s, wall seconds and peak RSS, and the ratios against GoAccess.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _child_rss(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    # wait4 gives this child's own rusage (peak RSS in KiB on Linux)
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    out = out + err  # heka prints its summary on stderr
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss * 1024, out.decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--file", help="use this combined log instead of generating one")
    ap.add_argument("--only", choices=("streaming", "bulk"), help="measure only this path (and GoAccess)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="heka-bench-decode-"))
    try:
        if args.file:
            log = Path(args.file)
        else:
            from gen_access_log import generate_lines

            log = tmp / "access.log"
            with open(log, "w") as f:
                buf = []
                for line in generate_lines(args.lines, seed=1):
                    buf.append(line)
                    if len(buf) == 20000:
                        f.write("\n".join(buf) + "\n")
                        buf.clear()
                if buf:
                    f.write("\n".join(buf) + "\n")
        size = log.stat().st_size
        # the log was just written: flush it now, or its writeback overlaps (and slows) the first run
        os.sync()
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"input: {log} ({size / 1e6:.0f} MB)")
        rows = []
        heka = [sys.executable, "-m", "hekacli.commands", "decode", "nginx", str(log), "--no-progress"]
        runs = [
            (["-f", "jsonl", "-o", os.devnull], "heka decode -f jsonl (streaming)", {}, "streaming"),
            (
                ["-f", "jsonl", "-o", os.devnull],
                "heka decode -f jsonl (streaming, 1 proc)",
                {"HEKA_DECODE_JOBS": "1"},
                "streaming",
            ),
            (["-f", "parquet", "-o", str(tmp / "out.parquet")], "heka decode -f parquet (bulk)", {}, "bulk"),
        ]
        for extra, label, env, path in runs:
            if args.only and path != args.only:
                continue
            wall, rss, err = _child_rss(heka + extra, env)
            n, bad = (int(x) for x in re.findall(r"(\d+) decoded, (\d+) rejected", err)[0])
            rows.append((label, n + bad, bad, wall, rss))
        goaccess = shutil.which("goaccess")
        if goaccess:
            wall, rss, _ = _child_rss(
                [goaccess, str(log), "--log-format=COMBINED", "--no-progress", "-o", str(tmp / "report.json")]
            )
            n = rows[0][1]
            rows.append(("goaccess --log-format=COMBINED -o json", n, 0, wall, rss))
        else:
            print("goaccess not installed: no peer figures (apt-get install goaccess)")
        print(f"\n{'path':40} {'lines':>9} {'rejected':>8} {'seconds':>8} {'lines/s':>10} {'peak RSS':>9}")
        for label, n, bad, secs, rss in rows:
            print(f"{label:40} {n:9d} {bad:8d} {secs:8.2f} {n / secs:10,.0f} {rss / 2**20:7.0f}MB")
        if goaccess:
            peer = rows[-1][1] / rows[-1][3]
            for label, n, _bad, secs, _ in rows[:-1]:
                print(f"{label}: {n / secs / peer:.2f}x GoAccess")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
