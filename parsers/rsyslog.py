"""rsyslog string templates (spec §6): compiler, built-in templates and rsyslog.conf reading.

Captures are mapped to the message as Heka's rsyslog decoder did: ``timestamp`` -> Timestamp,
``pri`` -> Severity + ``syslogfacility``, ``syslogtag`` -> ``programname`` + Pid, ``hostname`` (or
``source``) -> Hostname, ``msg`` -> Payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from hekacli.errors import ConfigError, InputError
from hekacli.message import ValueType

from . import grammar as g
from . import times
from .core import (
    Decoder,
    Output,
    PatternDecoder,
    Piece,
    field_piece,
    int_output,
    literal_piece,
    time_output,
    ws_piece,
)

_TRADITIONAL_BODY = "%HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\\n"
_FORWARD_BODY = "%HOSTNAME% %syslogtag:1:32%%msg:::sp-if-no-1st-sp%%msg%"
BUILTIN_TEMPLATES = {
    "RSYSLOG_TraditionalFileFormat": "%TIMESTAMP% " + _TRADITIONAL_BODY,
    "RSYSLOG_FileFormat": "%TIMESTAMP:::date-rfc3339% " + _TRADITIONAL_BODY,
    "RSYSLOG_TraditionalForwardFormat": "<%PRI%>%TIMESTAMP% " + _FORWARD_BODY,
    "RSYSLOG_ForwardFormat": "<%PRI%>%TIMESTAMP:::date-rfc3339% " + _FORWARD_BODY,
    "RSYSLOG_SyslogProtocol23Format": "<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% %PROCID% "
    "%MSGID% %STRUCTURED-DATA% %msg%\\n",
}

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "security": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "audit": 13,
    "alert": 14,
    "clock": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}
SEVERITIES = {
    "debug": 7,
    "info": 6,
    "notice": 5,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "err": 3,
    "crit": 2,
    "alert": 1,
    "emerg": 0,
    "panic": 0,
}

_PROPERTY = re.compile(
    r"%(?P<name>[A-Za-z0-9$-]+)(?::(?P<from>[^:%]*):(?P<to>[^:%]*)(?::(?P<opts>[^%]*))?)?%"
)
_LIT_ESCAPES = {
    "t": "\t",
    "n": "\n",
    "r": "\r",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "%": "%",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}
_PRINT = "[!-~]"
_TAG_CHARS = r"[!-9;-Z\\^-~]"  # printable, not ':' '[' or space  (']' and '\' allowed)


def _unescape_template(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            d = re.match(r"[0-9]{1,3}", text[i + 1 :])
            if d:
                out.append(chr(int(d.group()) & 0xFF))
                i += 1 + len(d.group())
                continue
            e = text[i + 1]
            if e not in _LIT_ESCAPES:
                raise ConfigError(f"invalid escape \\{e} in rsyslog template")
            out.append(_LIT_ESCAPES[e])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _zone_converter(conv: Callable[[str], int], tz: ZoneInfo | None) -> Callable[[str], int]:
    """Dates without an offset are wall clocks: read them in `tz` (Heka's ``tz`` option) when given."""
    if tz is None:
        return conv
    from datetime import UTC, datetime

    def f(s: str) -> int:
        ns = conv(s)
        sec, frac = divmod(ns, times.NS)
        wall = datetime.fromtimestamp(sec, UTC).replace(tzinfo=tz)
        return int(wall.timestamp()) * times.NS + frac

    return f


def _date_piece(src: str, name: str, option: str, tz: ZoneInfo | None) -> Piece:
    opt = option.lower()
    if opt == "date-rfc3339":
        return field_piece(
            src,
            f"(?P<@>{g.RFC3339_DATE})",
            [time_output(name, times.rfc3339_to_ns, times.pl_rfc3339)],
            "an RFC 3339 date",
        )
    if opt == "date-mysql":
        return field_piece(
            src,
            f"(?P<@>{g.MYSQL_DATE})",
            [time_output(name, _zone_converter(times.mysql_to_ns, tz))],
            "yyyymmddHHMMSS",
        )
    if opt == "date-pgsql":
        return field_piece(
            src,
            f"(?P<@>{g.PGSQL_DATE})",
            [time_output(name, _zone_converter(times.pgsql_to_ns, tz))],
            "yyyy-mm-dd HH:MM:SS",
        )
    if opt in ("date-unixtimestamp", "date-subseconds"):
        # Heka's scoping bug made these unusable; here they are what rsyslog writes.
        if opt == "date-unixtimestamp":
            return field_piece(
                src, "(?P<@>[0-9]+)", [time_output(name, lambda s: int(s) * times.NS)], "epoch seconds"
            )
        return field_piece(
            src,
            "(?P<@>[0-9]+)",
            [Output(f"{name}_subseconds", py=int, dtype=pl.Int64(), vtype=ValueType.DOUBLE)],
            "sub-second digits",
        )
    return field_piece(
        src,
        f"(?P<@>{g.RFC3164_DATE})",
        [time_output(name, _zone_converter(times.rfc3164_to_ns, tz))],
        "a date like 'Feb  9 14:17:01'",
    )


def _pri_outputs() -> list[Output]:
    return [
        Output(
            "Severity",
            py=lambda s: int(s) % 8,
            dtype=pl.Int64(),
            vtype=ValueType.INTEGER,
            vec=lambda s: s.cast(pl.Int64, strict=False) % 8,
        ),
        Output(
            "syslogfacility",
            py=lambda s: int(s) // 8,
            dtype=pl.Int64(),
            vtype=ValueType.DOUBLE,
            vec=lambda s: s.cast(pl.Int64, strict=False) // 8,
        ),
    ]


def _lookup(name: str, table: dict[str, int], vtype: ValueType) -> Output:
    full = {**table, **{k.upper(): v for k, v in table.items()}}
    return Output(
        name,
        py=full.__getitem__,
        dtype=pl.Int64(),
        vtype=vtype,
        vec=lambda s: s.replace_strict(full, default=None, return_dtype=pl.Int64),
        exact_vec=True,
    )


def _words(table: dict[str, int]) -> str:
    keys = sorted(table, key=len, reverse=True)
    return "(?:" + "|".join(keys + [k.upper() for k in keys]) + ")"


def _property_piece(m: re.Match[str], prev: Piece | None, tz: ZoneInfo | None) -> Piece | None:
    src = m.group(0)
    name = m.group("name").lower()
    opts = (m.group("opts") or "").strip()
    if opts.lower() == "sp-if-no-1st-sp":
        return Piece("ws", src, " +", description="one or more spaces")
    if name in ("hostname", "source"):
        return field_piece(
            src, f"(?P<@>-|{_PRINT}{{1,255}})", [Output("Hostname", exact_vec=True)], "a hostname"
        )
    if name == "fromhost":
        return field_piece(
            src, f"(?P<@>-|{_PRINT}{{1,255}})", [Output("fromhost", exact_vec=True)], "a hostname"
        )
    if name == "fromhost-ip":
        return field_piece(
            src, f"(?P<@>{g.IPV4}|{g.IPV6})", [Output("fromhost-ip", exact_vec=True)], "an IP address"
        )
    if name == "syslogtag":
        return field_piece(
            src,
            rf"(?P<@>{_TAG_CHARS}*)(?:\[(?P<@>[0-9]+)\])?:?",
            [
                Output("programname", exact_vec=True),
                Output(
                    "Pid",
                    group=1,
                    py=int,
                    dtype=pl.Int64(),
                    vtype=ValueType.INTEGER,
                    vec=lambda s: s.cast(pl.Int64, strict=False),
                ),
            ],
            "a tag like sshd[123]:",
        )
    if name == "programname":
        return field_piece(
            src, f"(?P<@>{_TAG_CHARS}*)", [Output("programname", exact_vec=True)], "a program name"
        )
    if name == "pri":
        return field_piece(src, "(?P<@>[0-9]{1,3})", _pri_outputs(), "a priority number")
    if name == "pri-text":
        # rsyslog 8 writes "user.notice"; older versions and Heka's tests add "<13>"
        fac = _lookup("syslogfacility", FACILITIES, ValueType.DOUBLE)
        sev = _lookup("Severity", SEVERITIES, ValueType.INTEGER)
        sev.group = 1
        return field_piece(
            src,
            rf"(?P<@>{_words(FACILITIES)})\.(?P<@>{_words(SEVERITIES)})(?:<[0-9]{{1,3}}>)?",
            [fac, sev],
            "facility.severity",
        )
    if name == "syslogfacility":
        return field_piece(src, "(?P<@>[0-9]{1,3})", [int_output("syslogfacility")], "a facility number")
    if name == "syslogfacility-text":
        return field_piece(
            src,
            f"(?P<@>{_words(FACILITIES)})",
            [_lookup("syslogfacility", FACILITIES, ValueType.DOUBLE)],
            "a facility name",
        )
    if name in ("syslogseverity", "syslogpriority"):
        return field_piece(
            src,
            "(?P<@>[0-7])",
            [
                Output(
                    "Severity",
                    py=int,
                    dtype=pl.Int64(),
                    vtype=ValueType.INTEGER,
                    vec=lambda s: s.cast(pl.Int64, strict=False),
                )
            ],
            "a severity digit",
        )
    if name in ("syslogseverity-text", "syslogpriority-text"):
        return field_piece(
            src,
            f"(?P<@>{_words(SEVERITIES)})",
            [_lookup("Severity", SEVERITIES, ValueType.INTEGER)],
            "a severity name",
        )
    if name in ("timestamp", "timereported"):
        return _date_piece(src, "Timestamp", opts, tz)
    if name == "timegenerated":
        return _date_piece(src, "timegenerated", opts, tz)
    if name in ("iut", "protocol-version"):
        return field_piece(src, "(?P<@>[0-9]+)", [Output(name, exact_vec=True)], "digits")
    if name in ("app-name", "procid", "msgid"):
        width = {"app-name": 48, "procid": 128, "msgid": 32}[name]
        return field_piece(
            src,
            f"(?P<@>-|{_PRINT}{{0,{width}}})",
            [Output(name, exact_vec=True)],
            f"up to {width} printable characters or -",
        )
    if name == "structured-data":
        sd = r'\[[^\]" ]+(?: [^=\] ]+="(?:[^"\\]|\\.)*")*\]'
        return field_piece(
            src,
            f"(?P<@>-|(?:{sd})+)",
            [
                Output(
                    name,
                    py=lambda s: None if s == "-" else s,
                    vec=lambda s: pl.when(s == "-").then(None).otherwise(s),
                    exact_vec=True,
                )
            ],
            '- or [id name="value" ...] elements',
        )
    if name in ("msg", "rawmsg"):
        return None  # resolved by the caller: depends on the next piece
    if name == "inputname":
        return field_piece(src, f"(?P<@>{_PRINT}*)", [Output(name, exact_vec=True)], "an input name")
    if name == "$bom":
        return field_piece(src, "(?P<@>\ufeff)", [Output(name, exact_vec=True)], "a UTF-8 BOM")
    if name == "$now":
        return field_piece(
            src, "(?P<@>[0-9]{4}-[0-9]{2}-[0-9]{2})", [Output(name, exact_vec=True)], "yyyy-mm-dd"
        )
    fixed = {
        "$year": "[0-9]{4}",
        "$month": "[0-9]{2}",
        "$day": "[0-9]{2}",
        "$hour": "[0-9]{2}",
        "$minute": "[0-9]{2}",
        "$hhour": "0[01]",
        "$qhour": "0[0-3]",
    }
    if name in fixed:
        return field_piece(src, f"(?P<@>{fixed[name]})", [Output(name, exact_vec=True)], "digits")
    raise ConfigError(f"invalid rsyslog property: {m.group('name')}")


def parse_structured_data(text: str) -> list[dict[str, str]]:
    """RFC 5424 SD elements -> [{"id": ..., "_name": value, ...}, ...] (\\" \\\\ \\] unescaped)."""
    out: list[dict[str, str]] = []
    for elem in re.finditer(r'\[([^\]" ]+)((?: [^=\] ]+="(?:[^"\\]|\\.)*")*)\]', text):
        d = {"id": elem.group(1)}
        for p in re.finditer(r' ([^=\] ]+)="((?:[^"\\]|\\.)*)"', elem.group(2)):
            d["_" + p.group(1)] = re.sub(r'\\(["\\\]])', r"\1", p.group(2))
        out.append(d)
    return out


def compile_template(template: str, tz: ZoneInfo | None = None) -> list[Piece]:
    """Split an rsyslog string template into pieces."""
    if not template:
        raise ConfigError("could not parse the rsyslog template")
    items: list[tuple[str, object]] = []  # ("lit", text) | ("prop", match)
    pos = 0
    for m in _PROPERTY.finditer(template):
        if m.start() > pos:
            items.append(("lit", _unescape_template(template[pos : m.start()])))
        items.append(("prop", m))
        pos = m.end()
    if pos < len(template):
        items.append(("lit", _unescape_template(template[pos:])))
    pieces: list[Piece] = []
    pending_msg: list[tuple[int, re.Match[str]]] = []
    for kind, val in items:
        if kind == "lit":
            assert isinstance(val, str)
            # each whitespace character matches exactly one whitespace character
            for part in re.split(r"([ \t\n\x0b\x0c\r])", val):
                if not part:
                    continue
                if part in g.WS_CHARS:
                    pieces.append(ws_piece(part, one_or_more=False))
                else:
                    pieces.append(literal_piece(part))
            continue
        assert isinstance(val, re.Match)
        piece = _property_piece(val, pieces[-1] if pieces else None, tz)
        if piece is None:
            pending_msg.append((len(pieces), val))
            pieces.append(Piece("string", val.group(0), "", [], description="the message"))
        else:
            pieces.append(piece)
    # Trailing whitespace (the \n that ends a file line) is not part of the line we see.
    while pieces and pieces[-1].kind == "ws":
        pieces.pop()
    for idx, m in pending_msg:
        name = m.group("name").lower()
        out_name = "Payload" if name == "msg" else name
        rest = idx == len(pieces) - 1 or all(p.kind == "ws" for p in pieces[idx + 1 :])
        if rest:
            pieces[idx] = Piece(
                "rest", m.group(0), "(?P<@>.*)", [Output(out_name, exact_vec=True)], "the rest of the line"
            )
        else:
            pieces[idx].outputs = [Output(out_name, exact_vec=True)]
            pieces[idx].quote_aware = False
    return pieces


def build_decoder(
    template: str | None = None,
    *,
    tz: str | None = None,
    message_type: str = "rsyslog",
    sub_decoders: dict[str, Decoder] | None = None,
    sub_decoder_mode: str = "replace",
) -> Decoder:
    """A decoder for files written by rsyslog with `template` (text or a built-in name)."""
    tpl = template if template is not None else "RSYSLOG_TraditionalFileFormat"
    tpl = BUILTIN_TEMPLATES.get(tpl, tpl)
    zone = None
    if tz and tz.upper() != "UTC":
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {tz!r}") from exc
    pieces = compile_template(tpl, zone)
    base = PatternDecoder("rsyslog", message_type, pieces, source=tpl)
    if sub_decoders:
        return SubDecodingDecoder(base, sub_decoders, sub_decoder_mode)
    return base


# -- rsyslog.conf ---------------------------------------------------------------------------------
_LEGACY = re.compile(r'^\s*\$template\s+([^,\s]+)\s*,\s*"((?:[^"\\]|\\.)*)"', re.M)
_MODERN = re.compile(r"template\s*\((?P<body>(?:[^()\"']|\"(?:[^\"\\]|\\.)*\"|'[^']*')*)\)", re.S)
_PARAM = re.compile(r"([A-Za-z.]+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s\"')]+)")
_ACTION_FILE = re.compile(r"action\s*\((?P<body>(?:[^()\"']|\"(?:[^\"\\]|\\.)*\"|'[^']*')*)\)", re.S)
_LEGACY_ACTION = re.compile(r"^\s*[^#$\s][^\s]*\s+-?(/[^;\s]+)(?:;(\S+))?\s*$", re.M)


def read_rsyslog_conf(path: str | Path) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(template name -> template text, file -> template name, default file template) from a config."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    text = re.sub(r"(?m)^\s*#.*$", "", text)
    templates: dict[str, str] = dict(BUILTIN_TEMPLATES)
    for m in _LEGACY.finditer(text):
        templates[m.group(1)] = m.group(2)
    for m in _MODERN.finditer(text):
        params = {k.lower(): _unquote(v) for k, v in _PARAM.findall(m.group("body"))}
        if "name" in params and "string" in params and params.get("type", "string") == "string":
            templates[params["name"]] = params["string"]
    files: dict[str, str] = {}
    default = None
    dm = re.search(r"(?m)^\s*\$ActionFileDefaultTemplate\s+(\S+)", text)
    if dm:
        default = dm.group(1)
    mm = re.search(r'module\s*\(\s*load\s*=\s*"builtin:omfile"[^)]*template\s*=\s*"([^"]+)"', text)
    if mm:
        default = mm.group(1)
    for m in _ACTION_FILE.finditer(text):
        params = {k.lower(): _unquote(v) for k, v in _PARAM.findall(m.group("body"))}
        if params.get("type") == "omfile" and "file" in params:
            files[params["file"]] = params.get("template") or default or "RSYSLOG_FileFormat"
    for m in _LEGACY_ACTION.finditer(text):
        files.setdefault(m.group(1), m.group(2) or default or "RSYSLOG_TraditionalFileFormat")
    return templates, files, default


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def template_from_conf(path: str | Path, name: str | None, log_file: str | None = None) -> str:
    """The template text to use from an rsyslog config: by name, else the one `log_file` is written with."""
    templates, files, default = read_rsyslog_conf(path)
    if name is None and log_file is not None:
        for written, tname in files.items():
            if Path(written).name == Path(log_file).name:
                name = tname
                break
    if name is None:
        custom = [k for k in templates if k not in BUILTIN_TEMPLATES]
        if len(custom) == 1:
            name = custom[0]
        elif default:
            name = default
        else:
            raise ConfigError(
                "choose a template with --template-name (found: "
                f"{', '.join(custom) or 'only built-in ones'})",
                file=str(path),
            )
    if name not in templates:
        raise ConfigError(
            f"no template named {name!r} (found: {', '.join(sorted(templates))})", file=str(path)
        )
    return templates[name]


class SubDecodingDecoder(Decoder):
    """Hindsight's ``sub_decoders``: re-decode the message of chosen programs with another decoder.

    `mode` "replace" merges the sub-decoder's record (its Timestamp wins, the Payload it consumed is
    dropped), as Hindsight's decoder modules did; "fields" only adds its captures as fields (a time
    becomes the field ``time``), as a bare grammar did.
    """

    def __init__(self, base: PatternDecoder, subs: dict[str, Decoder], mode: str = "replace") -> None:
        if mode not in ("replace", "fields"):
            raise ConfigError(f"unknown sub-decoder mode {mode!r} (replace, fields)")
        self.base, self.subs, self.mode = base, subs, mode
        self.kind, self.message_type = base.kind, base.message_type
        self.schema = dict(base.schema)
        for d in subs.values():
            for k, v in d.schema.items():
                self.schema.setdefault(k, v)
        if mode == "fields":
            self.schema["time"] = (ValueType.INTEGER, "")
        self.rejects = None

    def decode(self, line: str) -> dict | None:
        rec = self.base.decode(line)
        if rec is None:
            return None
        sub = self.subs.get(rec.get("programname", ""))
        if sub is None or rec.get("Payload") is None:
            return rec
        inner = sub.decode(rec["Payload"])
        if inner is None:
            return rec
        inner.pop("Type", None)
        if self.mode == "replace":
            rec.pop("Payload", None)
            rec.update(inner)
        else:
            if "Timestamp" in inner:
                inner["time"] = inner.pop("Timestamp")
            for k, v in inner.items():
                rec.setdefault(k, v) if k in ("Hostname", "Pid", "Severity") else rec.__setitem__(k, v)
        return rec

    def explain_failure(self, line: str) -> str:
        return self.base.explain_failure(line)

    def explain(self) -> list[dict[str, str]]:
        return self.base.explain()

    def explain_line(self, line: str) -> list[dict[str, str]]:
        return self.base.explain_line(line)

    def polars_schema(self) -> dict[str, pl.DataType]:
        schema = dict(self.base.polars_schema())
        for d in self.subs.values():
            for k, v in d.polars_schema().items():
                schema.setdefault(k, v)
        return schema
