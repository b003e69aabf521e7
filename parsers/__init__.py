"""Log decoders: each compiles a format string into a streaming and a bulk decoder.

>>> from hekacli.parsers import build_decoder
>>> d = build_decoder("nginx")                       # nginx combined
>>> d.decode('127.0.0.1 - - [10/Feb/2014:08:46:41 -0800] "GET / HTTP/1.1" 304 0 "-" "curl/8"')["status"]
304

Kinds: nginx, nginx-error, apache, rsyslog, syslog, json, regex (see docs/decoders.md).
"""

from __future__ import annotations

from typing import Any

from hekacli.errors import UsageError

from .core import Decoder, PatternDecoder

KINDS = ("nginx", "nginx-error", "apache", "rsyslog", "syslog", "json", "regex")

__all__ = ["KINDS", "Decoder", "PatternDecoder", "build_decoder"]


def build_decoder(kind: str, **options: Any) -> Decoder:
    """Compile a decoder.

    Options (each kind takes the ones that apply): ``log_format`` (nginx/apache format text or a
    built-in name), ``nginx_conf``, ``apache_conf``, ``log_format_name``, ``template`` (rsyslog
    template text or built-in name), ``rsyslog_conf``, ``template_name``, ``pattern`` (regex),
    ``raw_values`` (keep the server's escapes), ``tz`` (rsyslog: zone of dates without an offset),
    ``sub_decoders`` (rsyslog: programname -> Decoder for the message) and ``sub_decoder_mode``,
    ``user_agent`` (False, True/"keep", "drop",
    "conditional"), ``log_file`` (pick the format a config writes that file with), ``message_type``.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    raw = bool(opts.pop("raw_values", False))
    ua = opts.pop("user_agent", False)
    mtype = opts.pop("message_type", None)
    log_file = opts.pop("log_file", None)
    extra: dict[str, Any] = {"message_type": mtype} if mtype else {}
    if kind == "nginx":
        from . import nginx

        fmt = opts.pop("log_format", None)
        escape = "default"
        conf = opts.pop("nginx_conf", None)
        name = opts.pop("log_format_name", None)
        if conf is not None:
            if fmt is not None:
                raise UsageError("give either --log-format or --nginx-conf, not both")
            fmt, escape = nginx.format_from_conf(conf, name, log_file)
        elif name is not None:
            fmt = name
        _no_more(kind, opts)
        return nginx.build_access_decoder(fmt, raw_values=raw, escape=escape, user_agent=ua, **extra)
    if kind == "nginx-error":
        from . import nginx

        _no_more(kind, opts)
        return nginx.build_error_decoder(**extra)
    if kind == "apache":
        from . import apache

        fmt = opts.pop("log_format", None)
        conf = opts.pop("apache_conf", None)
        name = opts.pop("log_format_name", None)
        if conf is not None:
            if fmt is not None:
                raise UsageError("give either --log-format or --apache-conf, not both")
            fmt = apache.format_from_conf(conf, name, log_file)
        elif name is not None:
            fmt = name
        _no_more(kind, opts)
        return apache.build_access_decoder(fmt, raw_values=raw, user_agent=ua, **extra)
    if kind == "rsyslog":
        from . import rsyslog

        tpl = opts.pop("template", None) or opts.pop("log_format", None)
        conf = opts.pop("rsyslog_conf", None)
        name = opts.pop("template_name", None)
        if conf is not None:
            if tpl is not None:
                raise UsageError("give either --template or --rsyslog-conf, not both")
            tpl = rsyslog.template_from_conf(conf, name, log_file)
        elif name is not None:
            tpl = name
        tz = opts.pop("tz", None)
        subs = opts.pop("sub_decoders", None)
        mode = opts.pop("sub_decoder_mode", "replace")
        _no_more(kind, opts)
        return rsyslog.build_decoder(tpl, tz=tz, sub_decoders=subs, sub_decoder_mode=mode, **extra)
    if kind == "syslog":
        from . import syslog

        _no_more(kind, opts)
        return syslog.build_decoder(**extra)
    if kind == "json":
        from . import jsonlines

        _no_more(kind, opts)
        return jsonlines.JsonDecoder(**extra)
    if kind == "regex":
        from . import regexdec

        pattern = opts.pop("pattern", None)
        if not pattern:
            raise UsageError("the regex decoder needs --pattern with named groups")
        _no_more(kind, opts)
        return regexdec.build_decoder(pattern, **extra)
    raise UsageError(f"unknown decoder {kind!r} (choose from {', '.join(KINDS)})")


def _no_more(kind: str, opts: dict[str, Any]) -> None:
    if opts:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(opts))
        raise UsageError(f"{names} does not apply to the {kind} decoder")
