"""`heka flood file`: realistic, sequence-numbered log lines at a rate, with rotation.

Lines are rendered through the same format strings the decoders read: an nginx ``log_format``
(``$var`` / ``${var}``) or an rsyslog template (``%property%`` / ``%property:::option%``). Values are
generated per line; the sequence number goes into the request path (``/flood/<seq>``) for nginx and
into the message (``seq=<seq>``) for rsyslog, so a tailer's output can be checked for loss and
duplicates. Rotation (``create``: rename to OUT.1 and start a new file; ``copytruncate``: copy to
OUT.1 and truncate in place) happens between lines, as logrotate would see it.
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import OutputError, UsageError

NGINX_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                  '"$http_referer" "$http_user_agent"')
RSYSLOG_TRADITIONAL = "%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n"

_METHODS = ("GET",) * 8 + ("POST", "POST", "PUT", "DELETE", "HEAD")
_STATUSES = (200,) * 30 + (301, 302, 304, 304, 400, 403, 404, 404, 404, 500, 502, 503)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1",
    "curl/8.4.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
)
_REFERERS = ("-", "-", "-", "https://www.example.com/", "https://search.example.org/?q=heka")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PROGRAMS = ("sshd", "cron", "kernel", "systemd", "nginx", "postfix/smtpd")
_WORDS = ("accepted", "connection", "from", "session", "opened", "closed", "user", "request", "timeout",
          "retry", "disk", "queue", "flushed", "ok")


class LineContext:
    """The generated values of one line; computed lazily so only what the format uses is made."""

    __slots__ = ("seq", "now", "rng", "_cache")

    def __init__(self, seq: int, now: float, rng: random.Random) -> None:
        self.seq = seq
        self.now = now
        self.rng = rng
        self._cache: dict[str, Any] = {}

    def get(self, key: str, make: Callable[[LineContext], Any]) -> Any:
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = make(self)
        return v


@functools.lru_cache(maxsize=8)  # the writer stamps a whole batch with one time
def _time_local(t: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return f"{d.day:02d}/{_MONTHS[d.month - 1]}/{d.year}:{d:%H:%M:%S} +0000"


@functools.lru_cache(maxsize=8)
def _iso8601(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _addr(c: LineContext) -> str:
    def make(c: LineContext) -> str:
        n = c.rng.getrandbits(24)
        return f"10.{n >> 16}.{(n >> 8) & 255}.{(n & 255) or 1}"

    return c.get("addr", make)


def _method(c: LineContext) -> str:
    return c.get("method", lambda c: c.rng.choice(_METHODS))


def _status(c: LineContext) -> int:
    return c.get("status", lambda c: c.rng.choice(_STATUSES))


def _uri(c: LineContext) -> str:
    return f"/flood/{c.seq}"


_NGINX_VARS: dict[str, Callable[[LineContext], str]] = {
    "remote_addr": _addr,
    "remote_user": lambda c: "-",
    "remote_port": lambda c: str(c.rng.randrange(1024, 65536)),
    "time_local": lambda c: _time_local(c.now),
    "time_iso8601": lambda c: _iso8601(c.now),
    "msec": lambda c: f"{c.now:.3f}",
    "request": lambda c: f"{_method(c)} {_uri(c)} HTTP/1.1",
    "request_method": _method,
    "request_uri": _uri,
    "uri": _uri,
    "document_uri": _uri,
    "args": lambda c: "",
    "query_string": lambda c: "",
    "server_protocol": lambda c: "HTTP/1.1",
    "scheme": lambda c: "https",
    "status": lambda c: str(_status(c)),
    "body_bytes_sent": lambda c: str(0 if _status(c) == 304 else c.rng.randrange(200, 60000)),
    "bytes_sent": lambda c: str(c.rng.randrange(400, 60400)),
    "request_length": lambda c: str(c.rng.randrange(80, 900)),
    "request_time": lambda c: f"{c.rng.expovariate(40):.3f}",
    "upstream_response_time": lambda c: f"{c.rng.expovariate(50):.3f}",
    "upstream_addr": lambda c: "127.0.0.1:8080",
    "upstream_status": lambda c: str(_status(c)),
    "http_referer": lambda c: c.rng.choice(_REFERERS),
    "http_user_agent": lambda c: c.rng.choice(_AGENTS),
    "http_x_forwarded_for": lambda c: "-",
    "host": lambda c: "flood.example.com",
    "server_name": lambda c: "flood.example.com",
    "hostname": lambda c: socket.gethostname(),
    "connection": lambda c: str(c.seq),
    "connection_requests": lambda c: "1",
    "pipe": lambda c: ".",
    "pid": lambda c: str(os.getpid()),
    "request_id": lambda c: f"{c.seq:032x}",
    "ssl_protocol": lambda c: "TLSv1.3",
    "ssl_cipher": lambda c: "TLS_AES_128_GCM_SHA256",
    "gzip_ratio": lambda c: "-",
}
_SEQ_CARRIERS = ("request", "request_uri", "uri", "document_uri", "request_id", "connection")

_NGINX_VAR_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _nginx_value(name: str) -> Callable[[LineContext], str]:
    f = _NGINX_VARS.get(name)
    if f is not None:
        return f
    if name.startswith(("http_", "sent_http_", "upstream_http_", "cookie_", "arg_")):
        return lambda c: "-"
    raise UsageError(f"log_format: ${name} is not a variable flood can generate")


Part = str | Callable[[LineContext], str]


def compile_nginx(log_format: str) -> list[Part]:
    """An nginx log_format as a list of literal strings and value makers."""
    parts: list[Part] = []
    pos = 0
    names = []
    for m in _NGINX_VAR_RE.finditer(log_format):
        if m.start() > pos:
            parts.append(log_format[pos:m.start()])
        name = m.group(1) or m.group(2)
        names.append(name)
        parts.append(_nginx_value(name))
        pos = m.end()
    if pos < len(log_format):
        parts.append(log_format[pos:])
    if not any(n in _SEQ_CARRIERS for n in names):
        raise UsageError("log_format has no variable that can carry the sequence number "
                         "($request, $request_uri, $uri, $request_id or $connection)")
    return parts


# -- rsyslog ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _rfc3164(t: float) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return f"{_MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S}"


@functools.lru_cache(maxsize=8)
def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")


def _program(c: LineContext) -> str:
    return c.get("prog", lambda c: c.rng.choice(_PROGRAMS))


def _procid(c: LineContext) -> str:
    return c.get("procid", lambda c: str(c.rng.randrange(100, 40000)))


def _msg(c: LineContext) -> str:
    return c.get("msg", lambda c: f" seq={c.seq} " + " ".join(c.rng.choices(_WORDS, k=c.rng.randrange(3, 9))))


_RSYSLOG_PROPS: dict[str, Callable[[LineContext], str]] = {
    "msg": _msg,
    "rawmsg": lambda c: f"<{_pri(c)}>{_rfc3164(c.now)} flood {_program(c)}[{_procid(c)}]:{_msg(c)}",
    "hostname": lambda c: "flood",
    "fromhost": lambda c: "flood",
    "fromhost-ip": lambda c: "127.0.0.1",
    "source": lambda c: "flood",
    "syslogtag": lambda c: f"{_program(c)}[{_procid(c)}]:",
    "programname": _program,
    "app-name": _program,
    "procid": _procid,
    "msgid": lambda c: "-",
    "pri": lambda c: str(_pri(c)),
    "pri-text": lambda c: f"{_FACILITIES[_pri(c) >> 3]}.{_SEVERITIES[_pri(c) & 7]}",
    "syslogfacility": lambda c: str(_pri(c) >> 3),
    "syslogfacility-text": lambda c: _FACILITIES[_pri(c) >> 3],
    "syslogseverity": lambda c: str(_pri(c) & 7),
    "syslogseverity-text": lambda c: _SEVERITIES[_pri(c) & 7],
    "syslogpriority": lambda c: str(_pri(c) & 7),
    "syslogpriority-text": lambda c: _SEVERITIES[_pri(c) & 7],
    "protocol-version": lambda c: "1",
    "structured-data": lambda c: "-",
}
_FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
               "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3",
               "local4", "local5", "local6", "local7")
_SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def _pri(c: LineContext) -> int:
    return c.get("pri", lambda c: c.rng.choice((3, 4, 1, 10)) * 8 + c.rng.choice((6, 6, 6, 5, 4, 3)))


_TIME_PROPS = ("timestamp", "timegenerated", "timereported")
_PROP_RE = re.compile(r"%([^%]*)%")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def _extract_template(text: str) -> str:
    """A bare template string, `"…"`, `$template Name,"…"` or `template(... string="…")`."""
    s = text.strip()
    m = re.search(r'string\s*=\s*"((?:[^"\\]|\\.)*)"', s)
    if s.startswith("template(") and m:
        return m.group(1)
    m = re.match(r'\$template\s+[^,]+,\s*"((?:[^"\\]|\\.)*)"', s)
    if m:
        return m.group(1)
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return text


def _rsyslog_part(spec: str) -> Callable[[LineContext], str]:
    pieces = spec.split(":")
    name = pieces[0].lower()
    options = pieces[3].lower().split(",") if len(pieces) > 3 else []
    if name in _TIME_PROPS:
        if "date-rfc3339" in options:
            return lambda c: _rfc3339(c.now)
        if "date-unixtimestamp" in options:
            return lambda c: str(int(c.now))
        return lambda c: _rfc3164(c.now)
    base = _RSYSLOG_PROPS.get(name)
    if base is None:
        raise UsageError(f"rsyslog template: %{pieces[0]}% is not a property flood can generate")
    if "sp-if-no-1st-sp" in options:
        return lambda c: "" if base(c).startswith(" ") else " "
    if "drop-last-lf" in options:
        return lambda c: base(c).rstrip("\n")
    return base


def compile_rsyslog(template: str) -> list[Part]:
    """An rsyslog string template as a list of literal strings and value makers."""
    text = _extract_template(template)
    parts: list[Part] = []
    pos = 0
    has_msg = False
    for m in _PROP_RE.finditer(text):
        if m.start() > pos:
            parts.append(_unescape(text[pos:m.start()]))
        spec = m.group(1)
        has_msg |= spec.split(":")[0].lower() in ("msg", "rawmsg")
        parts.append(_rsyslog_part(spec))
        pos = m.end()
    if pos < len(text):
        parts.append(_unescape(text[pos:]))
    if not has_msg:
        raise UsageError("rsyslog template has no %msg% to carry the sequence number")
    return parts


class Renderer:
    """Renders line `seq` at time `now` (seconds) from compiled parts; lines end with one newline."""

    def __init__(self, parts: list[Part], seed: int | None = None) -> None:
        self.parts = parts
        self.rng = random.Random(seed)
        # literals go into a %-template once; only the value makers run per line
        template = "".join(p.replace("%", "%%") if isinstance(p, str) else "%s" for p in parts)
        self._template = template if template.endswith("\n") else template + "\n"
        self._makers = [p for p in parts if not isinstance(p, str)]

    def line(self, seq: int, now: float) -> str:
        ctx = LineContext(seq, now, self.rng)
        return self._template % tuple([m(ctx) for m in self._makers])


def make_renderer(kind: str, *, log_format: str | None = None, template: str | None = None,
                  seed: int | None = None) -> Renderer:
    """A Renderer for `kind` "nginx" (log_format) or "rsyslog" (template)."""
    if kind == "nginx":
        return Renderer(compile_nginx(log_format or NGINX_COMBINED), seed)
    if kind == "rsyslog":
        return Renderer(compile_rsyslog(template or RSYSLOG_TRADITIONAL), seed)
    raise UsageError(f"unknown log format kind {kind!r} (nginx or rsyslog)")


class LogFileWriter:
    """Writes lines to `path` at `rate` lines/s (open model), rotating as asked; `run()` blocks."""

    def __init__(self, path: str | Path, renderer: Renderer, *, rate: float = 1000.0, duration: float = 0.0,
                 num_lines: int = 0, rotate: str | None = None, every: float = 0.0, every_lines: int = 0,
                 keep: int = 5, start_seq: int = 0) -> None:
        self.path = Path(path)
        self.renderer = renderer
        self.rate = rate
        self.duration = duration
        self.num_lines = num_lines
        self.rotate = rotate
        self.every = every
        self.every_lines = every_lines
        self.keep = max(1, keep)
        self.seq = start_seq
        self.start_seq = start_seq
        self.rotations = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _open(self) -> Any:
        try:
            return open(self.path, "ab")  # noqa: SIM115 - kept open across batches
        except OSError as exc:
            raise OutputError(f"cannot open: {exc.strerror}", file=str(self.path)) from None

    def _shift(self) -> None:
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        oldest.unlink(missing_ok=True)
        for k in range(self.keep - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{k}")
            if src.exists():
                src.rename(self.path.with_name(f"{self.path.name}.{k + 1}"))

    def _do_rotate(self, fh: Any) -> Any:
        self._shift()
        first = self.path.with_name(f"{self.path.name}.1")
        if self.rotate == "create":
            fh.close()
            self.path.rename(first)
            fh = self._open()
        else:  # copytruncate: the file keeps its inode, readers see it shrink
            fh.flush()
            shutil.copyfile(self.path, first)
            fh.truncate(0)
        self.rotations += 1
        return fh

    def run(self) -> dict[str, Any]:
        """Write until duration / num_lines / stop(); returns a summary."""
        fh = self._open()
        t0 = time.monotonic()
        wall0 = time.time()
        end = t0 + self.duration if self.duration else 0.0
        next_rotation = t0 + self.every if self.rotate and self.every else 0.0
        lines_since_rotation = 0
        written = 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if end and now >= end:
                    break
                if self.num_lines and written >= self.num_lines:
                    break
                if self.rate > 0:
                    due = int((now - t0) * self.rate) + 1 - written
                    if due <= 0:
                        self._stop.wait(min(0.05, (written / self.rate) - (now - t0)))
                        continue
                    n = min(due, 5000)
                else:
                    n = 5000
                if self.num_lines:
                    n = min(n, self.num_lines - written)
                if self.rotate and self.every_lines:
                    n = min(n, self.every_lines - lines_since_rotation)
                stamp = wall0 + (now - t0)
                render = self.renderer.line
                seq = self.seq
                data = "".join([render(seq + i, stamp) for i in range(n)])
                fh.write(data.encode("utf-8", "surrogateescape"))
                fh.flush()
                self.seq += n
                written += n
                lines_since_rotation += n
                if self.rotate and ((self.every_lines and lines_since_rotation >= self.every_lines)
                                    or (next_rotation and time.monotonic() >= next_rotation)):
                    fh = self._do_rotate(fh)
                    lines_since_rotation = 0
                    if next_rotation:
                        next_rotation += self.every
        except OSError as exc:
            raise OutputError(f"write failed: {exc.strerror or exc}", file=str(self.path)) from None
        finally:
            fh.close()
        return {"path": str(self.path), "lines": written, "first_seq": self.start_seq,
                "last_seq": self.seq - 1, "rotations": self.rotations,
                "elapsed": round(time.monotonic() - t0, 6)}
