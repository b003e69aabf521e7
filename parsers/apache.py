"""Apache httpd: ``LogFormat`` compiler (mod_log_config directives mapped to nginx names, spec §5)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from hekacli.errors import ConfigError, InputError
from hekacli.message import ValueType

from . import grammar as g
from . import times
from .core import (
    Derived,
    Output,
    PatternDecoder,
    Piece,
    field_piece,
    int_output,
    literal_piece,
    string_output,
    string_piece,
    time_output,
    ws_piece,
)
from .derive import request_split, user_agent_derived
from .escapes import unescape_apache
from .strftime import compile_strftime, has_zone, zone_offset_seconds, zone_only

COMMON = '%h %l %u %t "%r" %>s %b'
COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'
VHOST_COMBINED = '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"'
BUILTIN_FORMATS = {
    "common": COMMON,
    "combined": COMBINED,
    "vhost_combined": VHOST_COMBINED,
    "referer": "%{Referer}i -> %U",
    "agent": "%{User-agent}i",
}

_DIRECTIVE = re.compile(
    r"%(?:(?P<mod>[<>])?(?P<letter>[A-Za-z%])"
    r"|(?:!?[0-9]{3}(?:,[0-9]{3})*)?[<>]?\{(?P<arg>[^}]*)\}(?P<aletter>[A-Za-z]))"
)
_WS = re.compile(r"[ \t\n\x0b\x0c\r]+")
_LIT_ESCAPE = re.compile(r"\\(?:([0-9]{1,3})|(.))", re.S)


def _unescape_literal(text: str) -> str:
    """Format literals: \\t \\n \\" \\\\ and \\ddd (a byte), so formats pasted from apache2.conf work."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return chr(int(m.group(1)) & 0xFF)
        c = m.group(2)
        return {"t": "\t", "n": "\n"}.get(c, c if c in '"\\' else "\\" + c)

    return _LIT_ESCAPE.sub(repl, text)


def _host(source: str, name: str) -> Piece:
    return field_piece(
        source,
        f"(?P<@>{g.HOST})",
        [Output(name, rep="host", exact_vec=True)],
        "an IPv4 or IPv6 address or a hostname",
        run=g.HOST_RUN,
        run_valid=g.valid_host_run,
    )


def _int(source: str, name: str, rep: str = "", desc: str = "an integer") -> Piece:
    return field_piece(source, f"(?P<@>{g.INT})", [int_output(name, rep)], desc)


def _dash_zero(s: str) -> int:
    return 0 if s == "-" else int(s)


def _header_name(arg: str) -> str:
    return arg.lower().replace("-", "_")


def _directive_piece(m: re.Match[str], unescape) -> Piece:  # noqa: ANN001 - a str -> str function or None
    src = m.group(0)
    letter = m.group("letter")
    if letter is not None:
        if letter == "%":
            return literal_piece("%", src)
        simple_strings = {
            "f": "request_filename",
            "H": "server_protocol",
            "l": "remote_user",
            "u": "remote_user",
            "L": "request_log_id",
            "q": "query_string",
            "r": "request",
            "R": "request_handler",
            "U": "uri",
        }
        if letter in simple_strings:
            return string_piece(src, [string_output(simple_strings[letter], unescape)])
        if letter in ("a", "h"):
            return _host(src, "remote_addr")
        if letter == "A":
            return _host(src, "server_addr")
        if letter in ("v", "V"):
            return _host(src, "server_name")
        if letter == "B":
            return _int(src, "body_bytes_sent", "B", "a byte count")
        if letter == "b":
            return field_piece(
                src,
                f"(?P<@>{g.INT}|-)",
                [
                    Output(
                        "body_bytes_sent",
                        py=_dash_zero,
                        dtype=pl.Int64(),
                        vtype=ValueType.DOUBLE,
                        rep="B",
                        vec=lambda s: s.replace("-", "0").cast(pl.Int64, strict=False),
                    )
                ],
                "a byte count or -",
            )
        if letter == "D":
            return _int(src, "request_time", "us", "microseconds")
        if letter == "T":
            return _int(src, "request_time", "s", "whole seconds")
        if letter in ("I", "O", "S"):
            name = {"I": "request_length", "O": "response_length", "S": "total_length"}[letter]
            return _int(src, name, "B", "a byte count")
        if letter == "k":
            return _int(src, "connection_requests")
        if letter == "p":
            return _int(src, "server_port")
        if letter == "P":
            return _int(src, "pid")
        if letter == "m":
            return field_piece(
                src, f"(?P<@>{g.TOKEN})", [Output("request_method", exact_vec=True)], "an HTTP method"
            )
        if letter == "s":
            return field_piece(src, "(?P<@>[0-9]{3})", [int_output("status")], "a 3-digit status")
        if letter == "t":
            return field_piece(
                src,
                rf"\[(?P<@>{g.CLF_DATE})\]",
                [time_output("Timestamp", times.clf_to_ns, times.pl_clf)],
                "a date like [10/Feb/2014:08:46:41 -0800]",
            )
        if letter == "X":
            return field_piece(
                src, "(?P<@>[X+-])", [Output("connection_status", exact_vec=True)], "X, + or -"
            )
        raise ConfigError(f"unknown variable: {letter}")
    arg, letter = m.group("arg"), m.group("aletter")
    if letter == "a":
        return _host(src, "remote_addr")
    if letter == "C":
        return string_piece(src, [string_output(f"cookie_{arg}", unescape)])
    if letter == "e":
        return string_piece(src, [string_output(f"env_{arg}", unescape)])
    if letter == "n":
        return string_piece(src, [string_output(f"module_{arg}", unescape)])
    if letter == "i":
        return string_piece(src, [string_output(f"http_{_header_name(arg)}", unescape)])
    if letter == "o":
        return string_piece(src, [string_output(f"sent_http_{_header_name(arg)}", unescape)])
    if letter == "x":
        return string_piece(src, [string_output(_header_name(arg), unescape)])
    if letter == "p":
        if arg in ("canonical", "local"):
            return _int(src, "server_port")
        if arg == "remote":
            return _int(src, "remote_port")
        raise ConfigError(f"unknown %{{{arg}}}p argument (canonical, local, remote)")
    if letter == "P":
        if arg == "pid":
            return _int(src, "pid")
        if arg == "tid":
            return _int(src, "tid")
        if arg == "hextid":
            return field_piece(
                src,
                "(?P<@>[0-9A-Fa-f]+)",
                [Output("tid", py=lambda s: int(s, 16), dtype=pl.Int64(), vtype=ValueType.DOUBLE)],
                "a hexadecimal thread id",
            )
        raise ConfigError(f"unknown %{{{arg}}}P argument (pid, tid, hextid)")
    if letter == "T":
        units = {"s": ("s", 1), "ms": ("ms", 1), "us": ("us", 1)}
        if arg not in units:
            raise ConfigError(f"unknown %{{{arg}}}T unit (s, ms, us)")
        return _int(src, "request_time", arg, f"a duration in {arg}")
    if letter == "t":
        return _time_piece(src, arg)
    raise ConfigError(f"unknown variable: {letter}")


def _time_piece(src: str, arg: str) -> Piece:
    spec = arg
    for prefix in ("begin:", "end:"):
        if spec.startswith(prefix):
            spec = spec[len(prefix) :]
    scales = {"sec": times.NS, "msec": 1_000_000, "usec": 1_000}
    if spec in scales:
        scale = scales[spec]
        return field_piece(
            src,
            "(?P<@>[0-9]+)",
            [
                time_output(
                    "Timestamp",
                    lambda s, k=scale: int(s) * k,
                    lambda s, k=scale: s.cast(pl.Int64, strict=False) * k,
                )
            ],
            f"epoch {spec}",
        )
    if spec in ("msec_frac", "usec_frac"):
        width = 3 if spec == "msec_frac" else 6
        return field_piece(
            src,
            f"(?P<@>[0-9]{{{width}}})",
            [
                Output(
                    "sec_frac",
                    py=lambda s: float("0." + s),
                    dtype=pl.Float64(),
                    vtype=ValueType.DOUBLE,
                    vec=lambda s: pl.concat_str([pl.lit("0."), s]).cast(pl.Float64, strict=False),
                )
            ],
            f"{width} digits of fraction",
        )
    if zone_only(spec):
        rx = "[+-][0-9]{4}" if "%z" in spec else "[A-Za-z]{1,5}"
        return field_piece(
            src,
            f"(?P<@>{rx})",
            [Output("utc_offset", py=zone_offset_seconds, dtype=pl.Int64(), vtype=ValueType.DOUBLE, rep="s")],
            "a UTC offset like -0800",
        )
    rx, conv = compile_strftime(spec)
    out = time_output("Timestamp", conv)
    out.rep = "" if has_zone(spec) else "local"  # marks a wall clock that a later %{%z}t corrects
    return field_piece(src, f"(?P<@>{rx})", [out], f"a date like strftime {spec!r}")


def compile_log_format(fmt: str, *, raw_values: bool = False) -> list[Piece]:
    """Split an Apache ``LogFormat`` string into pieces."""
    if not fmt:
        raise ConfigError("empty LogFormat")
    unescape = None if raw_values else unescape_apache
    pieces: list[Piece] = []
    pos = 0
    literal = ""
    token = re.compile(f"{_WS.pattern}|{_DIRECTIVE.pattern}")

    def flush() -> None:
        nonlocal literal
        if literal:
            text = _unescape_literal(literal)
            # an escaped \n or \t in the format stands for whitespace in the line
            for part in re.split(f"({_WS.pattern})", text):
                if not part:
                    continue
                pieces.append(ws_piece(part) if _WS.fullmatch(part) else literal_piece(part, part))
            literal = ""

    for m in token.finditer(fmt):
        literal += fmt[pos : m.start()]
        pos = m.end()
        if m.group(0)[0] != "%":
            flush()
            pieces.append(ws_piece(m.group(0)))
            continue
        flush()
        pieces.append(_directive_piece(m, unescape))
    literal += fmt[pos:]
    flush()
    while pieces and pieces[-1].kind == "ws":
        pieces.pop()
    for i in range(len(pieces) - 1):
        # "%U%q": the path ends where the query ("?...") starts
        a, b = pieces[i], pieces[i + 1]
        if a.kind == "string" and b.kind == "string" and b.outputs and b.outputs[0].name == "query_string":
            pieces[i] = field_piece(a.source, f"(?P<@>[^?{g.WS_CHARS}]*)", a.outputs, "a path (up to '?')")
    # merge adjacent literals (e.g. "%%" next to text)
    merged: list[Piece] = []
    for p in pieces:
        if merged and p.kind == "literal" and merged[-1].kind == "literal":
            text = merged[-1].literal + p.literal  # type: ignore[attr-defined]
            merged[-1] = literal_piece(text, merged[-1].source + p.source)
        else:
            merged.append(p)
    if not merged:
        raise ConfigError("could not parse the log_format configuration")
    return merged


def _offset_fold() -> Derived:
    """``%{%z}t`` after a zone-less ``%{...}t`` date: the date was local time, make it UTC."""

    def py(rec: dict) -> None:
        if "Timestamp" in rec and "utc_offset" in rec:
            rec["Timestamp"] -= rec["utc_offset"] * times.NS

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        if "Timestamp" not in df.collect_schema().names() or "utc_offset" not in df.collect_schema().names():
            return df
        return df.with_columns(
            (pl.col("Timestamp") - pl.col("utc_offset") * times.NS)
            .fill_null(pl.col("Timestamp"))
            .alias("Timestamp")
        )

    return Derived((), (), (), py, frame)


def _sec_frac_fold() -> Derived:
    """``%{msec_frac}t`` / ``%{usec_frac}t`` next to a date: add the fraction to Timestamp too."""

    def py(rec: dict) -> None:
        if "Timestamp" in rec and "sec_frac" in rec:
            rec["Timestamp"] += round(rec["sec_frac"] * 1e9)

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        if "Timestamp" not in df.collect_schema().names() or "sec_frac" not in df.collect_schema().names():
            return df
        return df.with_columns(
            (pl.col("Timestamp") + (pl.col("sec_frac") * 1e9).round().cast(pl.Int64))
            .fill_null(pl.col("Timestamp"))
            .alias("Timestamp")
        )

    return Derived((), (), (), py, frame)


def build_access_decoder(
    log_format: str | None = None,
    *,
    raw_values: bool = False,
    user_agent: bool | str = False,
    message_type: str = "apache.access",
) -> PatternDecoder:
    """A decoder for Apache access logs written with `log_format` (default: combined)."""
    fmt = log_format if log_format is not None else COMBINED
    fmt = BUILTIN_FORMATS.get(fmt, fmt)
    pieces = compile_log_format(fmt, raw_values=raw_values)
    names = {o.name for p in pieces for o in p.outputs}
    derived = []
    if "Timestamp" in names and "sec_frac" in names:
        derived.append(_sec_frac_fold())
    times_out = [o for p in pieces for o in p.outputs if o.name == "Timestamp"]
    if "utc_offset" in names and times_out and times_out[-1].rep == "local":
        derived.append(_offset_fold())
    for o in times_out:
        o.rep = ""
    if "request" in names:
        d = request_split(names)
        if d is not None:
            derived.append(d)
    if user_agent and "http_user_agent" in names:
        derived.append(user_agent_derived("http_user_agent", user_agent))
    return PatternDecoder("apache", message_type, pieces, source=fmt, derived=derived)


# -- apache2.conf ---------------------------------------------------------------------------------
def _conf_words(line: str) -> list[str]:
    """Apache directive arguments: whitespace separated, "quoted" or 'quoted' (\\" keeps a quote)."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            quote, i, buf = c, i + 1, []
            while i < n and line[i] != quote:
                if line[i] == "\\" and i + 1 < n and line[i + 1] == quote:
                    buf.append("\\" + quote)  # the LogFormat compiler turns \" into "
                    i += 2
                    continue
                buf.append(line[i])
                i += 1
            words.append("".join(buf))
            i += 1
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            words.append(line[i:j])
            i = j
    return words


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\") and not raw.rstrip().endswith("\\\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        out.append(buf + raw)
        buf = ""
    if buf:
        out.append(buf)
    return out


def read_apache_conf(path: str | Path) -> tuple[dict[str, str], dict[str, str]]:
    """(LogFormat nicknames -> format, CustomLog file -> format) from an Apache config (with Include)."""
    formats: dict[str, str] = {}
    custom: dict[str, str] = {}
    _read_into(Path(path), formats, custom, set())
    return formats, custom


def _read_into(path: Path, formats: dict[str, str], custom: dict[str, str], seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    for line in _logical_lines(text):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = _conf_words(stripped)
        key = words[0].lower()
        if key in ("include", "includeoptional") and len(words) == 2:
            base = Path(words[1]) if Path(words[1]).is_absolute() else path.parent / words[1]
            for inc in sorted(base.parent.glob(base.name)):
                _read_into(inc, formats, custom, seen)
        elif key == "logformat" and len(words) >= 2:
            nick = words[2] if len(words) >= 3 else "\0default"
            formats[nick] = words[1]
        elif key == "customlog" and len(words) >= 3:
            fmt = words[2]
            custom[words[1]] = formats.get(fmt, fmt)


def format_from_conf(path: str | Path, name: str | None, log_file: str | None = None) -> str:
    """The LogFormat to use from an Apache config: by nickname, else the one `log_file` is written with,
    else the only one defined."""
    formats, custom = read_apache_conf(path)
    if name is None and log_file is not None:
        for logged, fmt in custom.items():
            if Path(logged).name == Path(log_file).name:
                return fmt
    if name is None:
        if len(formats) == 1:
            return next(iter(formats.values()))
        if "combined" in formats:
            return formats["combined"]
        raise ConfigError(
            f"several LogFormats ({', '.join(sorted(formats))}); choose one with --log-format-name",
            file=str(path),
        )
    if name in formats:
        return formats[name]
    if name in BUILTIN_FORMATS:
        return BUILTIN_FORMATS[name]
    raise ConfigError(
        f"no LogFormat named {name!r} (found: {', '.join(sorted(formats)) or 'none'})", file=str(path)
    )
