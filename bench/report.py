#!/usr/bin/env python3
"""Benchmark: `heka report` against GoAccess, `heka agg` against lnav, on one generated access log.

    python bench/report.py                 # 1,000,000 lines (generated once, cached in $TMPDIR)
    python bench/report.py --lines 200000  # quicker
    python bench/report.py --baseline HEAD # also hekacli as committed, run in turn with the working tree

Each command runs as its own process; wall time and the peak RSS of that process (from wait4) are
measured, best of `--repeat` runs. hekacli is measured cold (`--no-cache`: the text is decoded) and warm
(a repeated query answered from the decoded-log cache, kept in the benchmark's own directory).
The answers are cross-checked (total requests against GoAccess,
status counts and top URLs against lnav) so the tools are known to have done the same work.
Start-up is measured too: `heka agg` over a 20-line log.

With `--baseline REV`, hekacli as of that git revision (exported with `git archive` and run from its
own directory, with its own cache) is measured in turn with the working tree, run for run, and a second
table gives the old/new ratios: a fair before/after on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEKA = [sys.executable, "-m", "hekacli.commands"]
STATUS_SQL = ";SELECT sc_status, count(*) AS n FROM access_log GROUP BY sc_status ORDER BY n DESC"
TOP_URL_SQL = (
    ";SELECT cs_uri_stem, count(*) AS n FROM access_log GROUP BY cs_uri_stem "
    "ORDER BY n DESC, cs_uri_stem LIMIT 10"
)


def generate(lines: int, path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "sample_logs" / "generate_access_log.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in gen.generate(lines, seed=7, days=14, n_visitors=max(1500, lines // 50)):
            f.write(gen.format_line(rec) + "\n")
    tmp.rename(path)


@dataclass
class Run:
    """One measured process: wall seconds, CPU seconds (user + system), peak RSS MiB, stdout."""

    wall: float
    cpu: float
    rss: float
    out: bytes


def measure(cmd: list[str], *, env: dict | None = None, repeat: int = 1, cwd: Path | None = None) -> Run:
    """The fastest (wall time) of `repeat` runs of a command, with that run's CPU time and peak RSS."""
    best: Run | None = None
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
            wall = time.perf_counter() - start
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
            out.seek(0)
            run = Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read())
        if best is None or run.wall < best.wall:
            best = run
    assert best is not None
    return best


@dataclass
class Tree:
    """A hekacli to measure: the working tree, or a baseline revision exported to a directory."""

    name: str
    env: dict
    cwd: Path | None = None

    def run(self, argv: list[str]) -> Run:
        """One run of `heka ARGV`."""
        return measure([*HEKA, *argv], env=self.env, cwd=self.cwd)


def baseline_tree(rev: str, work: Path, env: dict) -> Tree:
    """hekacli as of git revision `rev`, laid out as an importable package (its commands/ and parsers/
    placed where the install puts them), with a cache of its own."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    home = work / f"baseline-{sha[:12]}"
    pkg = home / "pkg"
    if not (pkg / "hekacli" / "commands").is_dir():
        shutil.rmtree(home, ignore_errors=True)
        src = home / "src"
        src.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], capture_output=True, check=True)
        with tempfile.TemporaryFile() as f:
            f.write(archive.stdout)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(src, filter="data")
        shutil.copytree(src / "hekacli", pkg / "hekacli")
        for sub in ("commands", "parsers"):  # package-dir mapping of pyproject.toml
            shutil.copytree(src / sub, pkg / "hekacli" / sub)
    cache = work / f"cache-{sha[:12]}"
    shutil.rmtree(cache, ignore_errors=True)
    # Run from its own directory: `python -m` puts the current directory first on sys.path.
    return Tree(f"{rev} ({sha[:12]})", {**env, "PYTHONPATH": str(pkg), "HEKA_CACHE_DIR": str(cache)}, pkg)


def lnav_rows(text: bytes) -> list[list[str]]:
    rows = [line.split() for line in text.decode().splitlines() if line.strip()]
    return rows[1:]  # header


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per command; the best is kept")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hekacli-bench"))
    ap.add_argument(
        "--baseline", metavar="REV", help="also measure hekacli as of this git revision (e.g. HEAD), in turn"
    )
    args = ap.parse_args()
    for tool in ("goaccess", "lnav"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install goaccess lnav)")
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"access-{args.lines}.log"
    if not log.exists():
        t = time.perf_counter()
        generate(args.lines, log)
        print(f"generated {log} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    size_mb = log.stat().st_size / 1e6
    home = work / "home"  # lnav keeps its config and index under $HOME
    home.mkdir(exist_ok=True)
    lnav_env = {**os.environ, "HOME": str(home)}
    env = {**os.environ, "NO_COLOR": "1"}

    cache = work / "cache"  # the decoded-log cache, private to this benchmark
    shutil.rmtree(cache, ignore_errors=True)
    env = {**env, "HEKA_CACHE_DIR": str(cache)}
    results: list[tuple[str, str, Run, str, Run]] = []
    current = Tree("working tree", env)
    baseline = baseline_tree(args.baseline, work, env) if args.baseline else None
    trees = [current] + ([baseline] if baseline else [])
    versus: list[tuple[str, Run, Run]] = []  # (query, working tree, baseline)

    def in_turn(argv: list[str]) -> list[Run]:
        """The best of `--repeat` runs per tree, the trees taking turns run for run."""
        runs: list[list[Run]] = [[] for _ in trees]
        for _ in range(args.repeat):
            for i, tree in enumerate(trees):
                runs[i].append(tree.run(argv))
        return [min(rs, key=lambda r: r.wall) for rs in runs]

    def heka_runs(label: str, argv: list[str]) -> tuple[Run, Run]:
        """(cold: decoding the text, --no-cache) and (warm: a later run, from the decoded-log cache)."""
        colds = in_turn([*argv, "--no-cache"])
        for tree in trees:
            tree.run(argv)  # first cached run: decodes and fills the cache
        warms = in_turn(argv)
        for cold, warm in zip(colds, warms, strict=True):
            assert warm.out == cold.out or argv[0] == "report", "the cache changed the answer"
        if baseline:
            versus.extend([(f"{label}, cold", colds[0], colds[1]), (f"{label}, warm", warms[0], warms[1])])
        return colds[0], warms[0]

    # 1. Full report: heka report --json vs GoAccess JSON.
    tiny = work / "access-20.log"  # start-up: a query over a log too small to take any time
    with log.open(encoding="utf-8") as f:
        tiny.write_text("".join(next(f) for _ in range(20)), encoding="utf-8")
    startup = in_turn(["agg", str(tiny), "--by", "status", "--count", "--format", "jsonl"])
    if baseline:
        versus.append(("start-up (agg over 20 lines)", startup[0], startup[1]))

    cold, warm = heka_runs("full report", ["report", str(log), "--json"])
    g_json = work / "goaccess.json"
    peer = measure(
        ["goaccess", str(log), "--log-format=COMBINED", "--no-global-config", "-o", str(g_json)],
        repeat=args.repeat,
    )
    goaccess = json.loads(g_json.read_text())
    for run in (cold, warm):
        ov = json.loads(run.out)["overview"]
        assert ov["total_requests"] == goaccess["general"]["total_requests"] == args.lines
        assert ov["bandwidth"] == goaccess["general"]["bandwidth"]
    for label, run in (("cold", cold), ("warm", warm)):
        results.append((f"full report, {label}", "heka report --json", run, "goaccess -o x.json", peer))

    # 2. Count by status: heka agg vs lnav SQL.
    cold, warm = heka_runs(
        "count by status", ["agg", str(log), "--by", "status", "--count", "--format", "jsonl"]
    )
    peer = measure(["lnav", "-n", "-c", STATUS_SQL, str(log)], env=lnav_env, repeat=args.repeat)
    heka_status = {json.loads(x)["status"]: json.loads(x)["count"] for x in cold.out.splitlines()}
    lnav_status = {int(r[0]): int(r[1]) for r in lnav_rows(peer.out)}
    assert heka_status == lnav_status, (heka_status, lnav_status)
    for label, run in (("cold", cold), ("warm", warm)):
        results.append(
            (
                f"count by status, {label}",
                "heka agg --by status --count",
                run,
                "lnav -n -c ';SELECT sc_status, count(*) …'",
                peer,
            )
        )

    # 3. Top-10 URLs (path without query).
    cold, warm = heka_runs(
        "top-10 URLs", ["agg", str(log), "--by", "uri", "--top", "10", "--format", "jsonl"]
    )
    peer = measure(["lnav", "-n", "-c", TOP_URL_SQL, str(log)], env=lnav_env, repeat=args.repeat)
    heka_top = [(json.loads(x)["uri"], json.loads(x)["count"]) for x in cold.out.splitlines()]
    lnav_top = [(r[0], int(r[1])) for r in lnav_rows(peer.out)]
    assert heka_top == lnav_top, (heka_top, lnav_top)
    for label, run in (("cold", cold), ("warm", warm)):
        results.append(
            (
                f"top-10 URLs, {label}",
                "heka agg --by uri --top 10",
                run,
                "lnav -n -c ';SELECT cs_uri_stem, count(*) … LIMIT 10'",
                peer,
            )
        )
    cache_mb = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e6
    shutil.rmtree(cache, ignore_errors=True)
    if baseline:
        shutil.rmtree(baseline.env["HEKA_CACHE_DIR"], ignore_errors=True)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"input: {args.lines:,} lines, {size_mb:.0f} MB nginx combined ({log}); best of {args.repeat}\n")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(
        "| query | hekacli | wall s | CPU s | peak RSS MiB | peer | wall s | CPU s | peak RSS MiB "
        "| wall: peer / heka | CPU: peer / heka | RSS: peer / heka |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, hcmd, h, pcmd, p in results:
        print(
            f"| {name} | `{hcmd}` | {h.wall:.2f} | {h.cpu:.2f} | {h.rss:.0f} | `{pcmd}` | {p.wall:.2f} | "
            f"{p.cpu:.2f} | {p.rss:.0f} | {p.wall / h.wall:.1f}× | {p.cpu / h.cpu:.1f}× "
            f"| {p.rss / h.rss:.2f}× |"
        )
    print(
        f"\ncold = `--no-cache` (the text is decoded); warm = a later run of the same command, served by "
        f"the decoded-log cache ({cache_mb:.0f} MB for this log)"
    )
    print(f"throughput (heka report, cold): {args.lines / results[0][2].wall:,.0f} lines/s")
    s = startup[0]
    print(f"start-up (heka agg over 20 lines): {s.wall:.2f} s wall, {s.cpu:.2f} s CPU, {s.rss:.0f} MiB RSS")
    if baseline:
        print(f"\nworking tree against {baseline.name}, run in turn:\n")
        print(
            "| query | new wall s | new CPU s | new RSS MiB | old wall s | old CPU s | old RSS MiB "
            "| wall: old / new | CPU: old / new | RSS: old / new |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, new, old in versus:
            print(
                f"| {name} | {new.wall:.2f} | {new.cpu:.2f} | {new.rss:.0f} | {old.wall:.2f} | {old.cpu:.2f} "
                f"| {old.rss:.0f} | {old.wall / new.wall:.2f}× | {old.cpu / new.cpu:.2f}× "
                f"| {old.rss / new.rss:.2f}× |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
