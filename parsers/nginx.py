"""nginx: ``log_format`` compiler (access log), the fixed error-log layout, and nginx.conf reading."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from hekacli.errors import ConfigError, InputError
from hekacli.message import ValueType

from . import grammar as g
from . import times
from .core import (
    Output,
    PatternDecoder,
    Piece,
    field_piece,
    float_output,
    int_output,
    literal_piece,
    string_output,
    string_piece,
    time_output,
    ws_piece,
)
from .derive import request_split, user_agent_derived
from .escapes import unescape_nginx, unescape_nginx_json

COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)
# The `main` format of nginx's stock nginx.conf.
MAIN = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
)
BUILTIN_FORMATS = {"combined": COMBINED, "main": MAIN}

_UPSTREAM_SEP = r"(?:, | : )"


def _list_piece(
    source: str,
    name: str,
    item: str,
    conv: Callable[[str], object],
    dtype: pl.DataType,
    vtype: ValueType,
    rep: str,
    description: str,
) -> Piece:
    """nginx upstream lists: items separated by ", " (same group) or " : " (next group), flattened.

    A whole value of "-" (no upstream was involved) gives no field; a "-" item inside a list gives 0
    (Heka's choice, kept so positions still line up with $upstream_addr).
    """

    def py(s: str) -> list | None:
        if s == "-":
            return None
        return [conv(x) for x in re.split(_UPSTREAM_SEP, s)]

    def vec(s: pl.Expr) -> pl.Expr:
        parts = s.str.replace_all(" : ", ", ", literal=True).str.split(", ")
        if dtype != pl.List(pl.String):
            parts = parts.list.eval(pl.element().replace("-", "0").cast(dtype.inner))  # type: ignore[attr-defined]
        return pl.when(s == "-").then(None).otherwise(parts)

    regex = f"(?P<@>{item}(?:{_UPSTREAM_SEP}{item})*)"
    return field_piece(
        source,
        regex,
        [Output(name, py=py, dtype=dtype, vtype=vtype, rep=rep, vec=vec, exact_vec=True)],
        description,
    )


def _dash_to_none(conv: Callable[[str], object]) -> Callable[[str], object]:
    def f(s: str) -> object:
        return None if s == "-" else conv(s)

    return f


def _upstream_addr_item(s: str) -> str:
    return s


def _upstream_time_item(s: str) -> float:
    return 0.0 if s == "-" else float(s)


def _upstream_int_item(s: str) -> int:
    return 0 if s == "-" else int(s)


def _typed_piece(name: str, source: str) -> Piece | None:
    """The piece for a typed nginx variable (spec §2.3), or None for a plain string variable."""
    if name == "time_local":
        return field_piece(
            source,
            f"(?P<@>{g.CLF_DATE})",
            [time_output("Timestamp", times.clf_to_ns, times.pl_clf)],
            "a date like 10/Feb/2014:08:46:41 -0800",
        )
    if name == "time_iso8601":
        return field_piece(
            source,
            f"(?P<@>{g.RFC3339_DATE})",
            [time_output("Timestamp", times.rfc3339_to_ns, times.pl_rfc3339)],
            "an RFC 3339 date like 2014-02-10T08:46:41-08:00",
        )
    if name == "msec":
        return field_piece(
            source,
            f"(?P<@>{g.DECIMAL})",
            [time_output("Timestamp", times.msec_to_ns, times.pl_msec)],
            "seconds with a fraction, like 1391794831.755",
        )
    if name == "status":
        return field_piece(source, "(?P<@>[0-9]{3})", [int_output(name)], "a 3-digit status")
    if name in ("body_bytes_sent", "bytes_sent", "content_length", "request_length"):
        return field_piece(source, f"(?P<@>{g.INT})", [int_output(name, "B")], "a byte count")
    if name in ("request_time", "gzip_ratio"):
        return field_piece(
            source,
            f"(?P<@>{g.DECIMAL})",
            [float_output(name, "s" if name == "request_time" else "")],
            "seconds with a fraction, like 0.123" if name == "request_time" else "a decimal",
        )
    if name in (
        "connection",
        "connection_requests",
        "pid",
        "remote_port",
        "server_port",
        "tcpinfo_rtt",
        "tcpinfo_rttvar",
        "tcpinfo_snd_cwnd",
        "tcpinfo_rcv_space",
        "proxy_protocol_port",
    ):
        return field_piece(source, f"(?P<@>{g.INT})", [int_output(name)], "an integer")
    if name in (
        "remote_addr",
        "server_addr",
        "proxy_protocol_addr",
        "host",
        "hostname",
        "server_name",
        "realip_remote_addr",
    ):
        return field_piece(
            source,
            f"(?P<@>{g.HOST})",
            [Output(name, rep="host", exact_vec=True)],
            "an IPv4 or IPv6 address or a hostname",
            run=g.HOST_RUN,
            run_valid=g.valid_host_run,
        )
    if name == "binary_remote_addr":
        return field_piece(source, "(?P<@>(?s:.){4})", [Output(name, exact_vec=True)], "4 bytes")
    simple = {
        "https": ("(?:on)?", "'on' or nothing"),
        "is_args": (r"\??", "'?' or nothing"),
        "request_completion": ("(?:OK)?", "'OK' or nothing"),
        "pipe": ("[p.]", "'p' or '.'"),
        "scheme": ("(?:https|http)", "http or https"),
        "server_protocol": (r"HTTP/[0-9]+\.[0-9]+", "a protocol like HTTP/1.1"),
        "nginx_version": (r"[0-9]+\.[0-9]+\.[0-9]+", "a version like 1.24.0"),
        "request_method": (g.TOKEN, "an HTTP method"),
        "upstream_cache_status": (
            "(?:HIT|MISS|EXPIRED|BYPASS|STALE|UPDATING|REVALIDATED|-)",
            "a cache status (HIT, MISS, ...) or -",
        ),
    }
    if name in simple:
        rx, desc = simple[name]
        return field_piece(source, f"(?P<@>{rx})", [Output(name, exact_vec=True)], desc)
    if name == "upstream_addr":
        return _list_piece(
            source,
            name,
            "[^, ]+",
            _upstream_addr_item,
            pl.List(pl.String),
            ValueType.STRING,
            "",
            "a list of upstream addresses",
        )
    if name in ("upstream_response_time", "upstream_connect_time", "upstream_header_time"):
        return _list_piece(
            source,
            name,
            f"(?:{g.DECIMAL}|-)",
            _upstream_time_item,
            pl.List(pl.Float64),
            ValueType.DOUBLE,
            "s",
            "a list of times in seconds",
        )
    if name in ("upstream_response_length", "upstream_bytes_received", "upstream_bytes_sent"):
        return _list_piece(
            source,
            name,
            "(?:[0-9]+|-)",
            _upstream_int_item,
            pl.List(pl.Int64),
            ValueType.DOUBLE,
            "B",
            "a list of byte counts",
        )
    if name == "upstream_status":
        return _list_piece(
            source,
            name,
            "(?:[0-9]{3}|-)",
            _upstream_int_item,
            pl.List(pl.Int64),
            ValueType.DOUBLE,
            "",
            "a list of statuses",
        )
    if name == "upstream_cache_last_modified":
        return field_piece(
            source,
            f"(?P<@>{g.RFC1123_DATE}|-)",
            [Output(name, py=_dash_to_none(times.rfc1123_to_ns), dtype=pl.Int64(), vtype=ValueType.INTEGER)],
            "an HTTP date or -",
        )
    return None


_TOKEN = re.compile(r"(?P<ws>[ \t\n\x0b\x0c\r]+)|\$\{(?P<bvar>[A-Za-z0-9_]+)\}|\$(?P<var>[A-Za-z0-9_]+)")


def compile_log_format(fmt: str, *, raw_values: bool = False, escape: str = "default") -> list[Piece]:
    """Split an nginx ``log_format`` (quote concatenation already undone) into pieces."""
    if not fmt:
        raise ConfigError("empty log_format")
    unescape = (
        None
        if raw_values or escape == "none"
        else (unescape_nginx_json if escape == "json" else unescape_nginx)
    )
    pieces: list[Piece] = []
    pos = 0
    literal = ""

    def flush() -> None:
        nonlocal literal
        if literal:
            pieces.append(literal_piece(literal))
            literal = ""

    for m in _TOKEN.finditer(fmt):
        literal += fmt[pos : m.start()]
        pos = m.end()
        if m.group("ws"):
            flush()
            pieces.append(ws_piece(m.group("ws")))
            continue
        name = m.group("var") or m.group("bvar")
        flush()
        typed = _typed_piece(name, m.group(0))
        pieces.append(
            typed if typed is not None else string_piece(m.group(0), [string_output(name, unescape)])
        )
    literal += fmt[pos:]
    flush()
    # Trailing whitespace in a format only pads the line end; lines are not anchored at the end anyway.
    while pieces and pieces[-1].kind == "ws":
        pieces.pop()
    if not pieces:
        raise ConfigError("could not parse the log_format configuration")
    return pieces


def build_access_decoder(
    log_format: str | None = None,
    *,
    raw_values: bool = False,
    escape: str = "default",
    user_agent: bool | str = False,
    message_type: str = "nginx.access",
) -> PatternDecoder:
    """A decoder for nginx access logs written with `log_format` (default: combined)."""
    fmt = log_format if log_format is not None else COMBINED
    fmt = BUILTIN_FORMATS.get(fmt, fmt)
    pieces = compile_log_format(fmt, raw_values=raw_values, escape=escape)
    names = {o.name for p in pieces for o in p.outputs}
    derived = []
    if "request" in names:
        d = request_split(names)
        if d is not None:
            derived.append(d)
    if user_agent and "http_user_agent" in names:
        derived.append(user_agent_derived("http_user_agent", user_agent))
    return PatternDecoder("nginx", message_type, pieces, source=fmt, derived=derived)


# -- nginx error log (spec §4) --------------------------------------------------------------------
_ERROR_LEVELS = {"debug": 7, "info": 6, "notice": 5, "warn": 4, "error": 3, "crit": 2, "alert": 1, "emerg": 0}


def build_error_decoder(*, message_type: str = "nginx.error") -> PatternDecoder:
    """``YYYY/MM/DD HH:MM:SS [level] PID#TID: [*CONN ]message``."""
    levels = "|".join(_ERROR_LEVELS)
    pieces = [
        field_piece(
            "YYYY/MM/DD HH:MM:SS",
            f"(?P<@>{g.NGINX_ERROR_DATE})",
            [time_output("Timestamp", times.nginx_error_to_ns)],
            "a date like 2014/03/01 11:29:39",
        ),
        literal_piece(" ["),
        field_piece(
            "level",
            f"(?P<@>{levels})",
            [
                Output(
                    "Severity",
                    py=_ERROR_LEVELS.__getitem__,
                    dtype=pl.Int64(),
                    vtype=ValueType.INTEGER,
                    vec=lambda s: s.replace_strict(_ERROR_LEVELS, default=None, return_dtype=pl.Int64),
                    exact_vec=True,
                )
            ],
            "a level (debug, info, notice, warn, error, crit, alert, emerg)",
        ),
        literal_piece("] "),
        field_piece("PID", "(?P<@>[0-9]+)", [int_output("Pid")], "a process id"),
        literal_piece("#"),
        field_piece("TID", "(?P<@>[0-9]+)", [int_output("tid")], "a thread id"),
        literal_piece(": "),
        field_piece(
            "[*CONN ]",
            r"(?:\*(?P<@>[0-9]+) )?",
            [int_output("connection")],
            "an optional connection number like *8878",
        ),
        Piece("rest", "message", "(?P<@>.*)", [Output("Payload", exact_vec=True)], "the message"),
    ]
    return PatternDecoder("nginx-error", message_type, pieces, source="nginx error log")


# -- nginx.conf -----------------------------------------------------------------------------------
_CONF_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}


def _conf_tokens(text: str, path: str) -> list[tuple[list[str], int]]:
    """nginx.conf as a list of (directive words, line number); blocks are flattened."""
    out: list[tuple[list[str], int]] = []
    words: list[str] = []
    start_line = 1
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";{}":
            if words:
                out.append((words, start_line))
            words = []
            i += 1
        elif c in "\"'":
            quote, i, buf = c, i + 1, []
            if not words:
                start_line = line
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    buf.append(_CONF_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                    i += 2
                    continue
                if text[i] == "\n":
                    line += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise ConfigError("unterminated quoted string", file=path, line=start_line)
            words.append("".join(buf))
            i += 1
        else:
            if not words:
                start_line = line
            j = i
            while j < n and text[j] not in " \t\r\n;{}\"'":
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                j += 1
            words.append(text[i:j])
            i = j
    return out


def read_nginx_conf(path: str | Path) -> dict[str, tuple[str, str]]:
    """All ``log_format`` s in an nginx config: name -> (format, escape), plus built-in combined.

    Files pulled in with ``include`` (relative to the config's directory, globs allowed) are read too.
    """
    formats: dict[str, tuple[str, str]] = {"combined": (COMBINED, "default")}
    _read_conf_into(Path(path), formats, set())
    return formats


def _read_conf_into(path: Path, formats: dict[str, tuple[str, str]], seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    for words, line in _conf_tokens(text, str(path)):
        if words[0] == "include" and len(words) == 2:
            base = Path(words[1]) if Path(words[1]).is_absolute() else path.parent / words[1]
            for inc in sorted(base.parent.glob(base.name)):
                _read_conf_into(inc, formats, seen)
        if words[0] != "log_format":
            continue
        if len(words) < 3:
            raise ConfigError("log_format needs a name and a format", file=str(path), line=line)
        name, rest = words[1], words[2:]
        escape = "default"
        if rest and rest[0].startswith("escape="):
            escape = rest[0].split("=", 1)[1]
            if escape not in ("default", "json", "none"):
                raise ConfigError(f"log_format {name}: unknown escape={escape}", file=str(path), line=line)
            rest = rest[1:]
        formats[name] = ("".join(rest), escape)


def access_log_formats(path: str | Path) -> dict[str, str]:
    """``access_log`` paths in the config -> the log_format name each uses (default combined)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    out: dict[str, str] = {}
    for words, _ in _conf_tokens(text, str(path)):
        if words[0] == "access_log" and len(words) >= 2 and words[1] != "off":
            fmt = words[2] if len(words) >= 3 and "=" not in words[2] else "combined"
            out[words[1]] = fmt
    return out


def format_from_conf(path: str | Path, name: str | None, log_file: str | None = None) -> tuple[str, str]:
    """The (format, escape) to use from an nginx.conf: by name, else the one `log_file` is written with,
    else the only custom format, else combined."""
    formats = read_nginx_conf(path)
    if name is None and log_file is not None:
        try:
            for logged, fmt_name in access_log_formats(path).items():
                if Path(logged).name == Path(log_file).name or str(Path(log_file).resolve()) == logged:
                    name = fmt_name
                    break
        except OSError:
            pass
    if name is None:
        custom = [k for k in formats if k != "combined"]
        name = custom[0] if len(custom) == 1 else "combined"
    if name not in formats:
        raise ConfigError(
            f"no log_format named {name!r} (found: {', '.join(sorted(formats))})", file=str(path)
        )
    return formats[name]
