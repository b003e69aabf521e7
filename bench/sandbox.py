"""Messages/s through Lua sandbox filters vs the same logic as a Python function, in one run.

    python bench/sandbox.py [N]

1. counting: `count = count + 1` per message.
2. fields + cbuf: read Fields[status], Fields[bytes] and Fields[request_time] plus Timestamp, and add
   to a 60 x 3 circular buffer (status class count, bytes sum, max request time).
The Python reference does the same work on the same `Message` objects with a dict-of-lists buffer.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hekacli.message import Message  # noqa: E402
from hekacli.sandbox.host import Limits, SandboxFilter  # noqa: E402

COUNT_LUA = "count = 0\nfunction process_message() count = count + 1 return 0 end\n"
FIELDS_LUA = """require "circular_buffer"
cb = circular_buffer.new(60, 3, 1)
cb:set_header(2, "Bytes", "B"); cb:set_header(3, "Max_Time", "s", "max")
function process_message()
  local ts = read_message("Timestamp")
  local status = read_message("Fields[status]")
  local bytes = read_message("Fields[bytes]")
  local rt = read_message("Fields[request_time]")
  if status >= 500 then cb:add(ts, 1, 1) end
  cb:add(ts, 2, bytes)
  cb:set(ts, 3, rt)
  return 0
end
"""


def messages(n: int) -> list[Message]:
    base = 1_700_000_000 * 10**9
    out = []
    for i in range(n):
        m = Message.new(type="nginx.access", timestamp=base + (i // 1000) * 10**9)
        m.add_field("status", (200, 404, 500, 200)[i % 4])
        m.add_field("bytes", 100 + i % 900)
        m.add_field("request_time", (i % 37) / 10.0)
        out.append(m)
    return out


class PyCounter:
    def __init__(self) -> None:
        self.count = 0

    def process(self, msg: Message) -> int:
        self.count += 1
        return 0


class PyFieldsCbuf:
    """The same logic in Python: a 60 x 3 ring of rows keyed by second."""

    def __init__(self, rows: int = 60) -> None:
        self.rows = rows
        self.data = [[math.nan] * 3 for _ in range(rows)]
        self.current = None

    def _row(self, ts: int) -> list[float]:
        t = ts // 10**9
        if self.current is None or t > self.current:
            start = t if self.current is None else max(self.current + 1, t - self.rows + 1)
            for s in range(start, t + 1):
                self.data[s % self.rows] = [math.nan] * 3
            self.current = t
        return self.data[t % self.rows]

    def process(self, msg: Message) -> int:
        ts = msg.timestamp
        status = msg.get_field("status")
        nbytes = msg.get_field("bytes")
        rt = msg.get_field("request_time")
        row = self._row(ts)
        if status >= 500:
            row[0] = 1 if math.isnan(row[0]) else row[0] + 1
        row[1] = nbytes if math.isnan(row[1]) else row[1] + nbytes
        if math.isnan(row[2]) or rt > row[2]:
            row[2] = rt
        return 0


def rate(fn, msgs: list[Message]) -> float:
    t0 = time.perf_counter()
    for m in msgs:
        fn(m)
    return len(msgs) / (time.perf_counter() - t0)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    msgs = messages(n)
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"load average {load:.1f}; {n} messages, one run", flush=True)
    cases = (("counting", COUNT_LUA, PyCounter()), ("3 fields + cbuf", FIELDS_LUA, PyFieldsCbuf()))
    for label, src, py in cases:
        f = SandboxFilter("bench", src, limits=Limits())
        f.load()
        lua = rate(f.process_message, msgs)
        assert f.state == "running", f.last_error
        ref = rate(py.process, msgs)
        print(f"{label:16} lua sandbox {lua:>10,.0f} msg/s   python function {ref:>10,.0f} msg/s   "
              f"lua/python {lua / ref:5.2f}", flush=True)


if __name__ == "__main__":
    main()
