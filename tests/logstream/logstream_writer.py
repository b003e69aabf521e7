"""Test helper (not a test): append numbered lines to a log file at a steady rate, like a server would.

Usage: python logstream_writer.py LOGFILE CONTROL_DIR [--rate LINES_PER_S] [--batch N]

Each line is ``<seq:09d> <padding>\\n`` written with one os.write per batch (so a batch is never split).
The writer reopens LOGFILE when the path names a new file (rename+create rotation) and never creates
it itself. Control files in CONTROL_DIR: ``pause`` (the writer stops and answers with ``paused``),
``stop`` (the writer ends and writes the number of lines written to ``count``).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("control")
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=25)
    args = ap.parse_args()
    pause = os.path.join(args.control, "pause")
    paused = os.path.join(args.control, "paused")
    stop = os.path.join(args.control, "stop")
    fd = os.open(args.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seq = 0
    interval = args.batch / args.rate
    next_t = time.monotonic()
    while not os.path.exists(stop):
        if os.path.exists(pause):
            with open(paused, "w"):
                pass
            while os.path.exists(pause) and not os.path.exists(stop):
                time.sleep(0.005)
            os.remove(paused)
        try:  # reopen when the path is a new file (rename+create); never create it ourselves
            st = os.stat(args.path)
            if (st.st_dev, st.st_ino) != (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                os.close(fd)
                fd = os.open(args.path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            pass
        lines = "".join(f"{seq + i:09d} {'x' * ((seq + i) % 37)}\n" for i in range(args.batch))
        os.write(fd, lines.encode())
        seq += args.batch
        next_t += interval
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)
    with open(os.path.join(args.control, "count.tmp"), "w") as f:
        f.write(str(seq))
    os.replace(os.path.join(args.control, "count.tmp"), os.path.join(args.control, "count"))


if __name__ == "__main__":
    main()
