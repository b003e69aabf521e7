"""Syslog lines without a template: RFC 5424, else RFC 3164 (BSD) with or without ``<PRI>``.

RFC 3164 lines may carry an RFC 3339 timestamp instead of ``Mmm dd hh:mm:ss`` (rsyslog's
RSYSLOG_FileFormat / ForwardFormat), so files written with rsyslog's standard templates decode too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from hekacli.message import ValueType

from . import grammar as g
from . import times
from .core import Decoder, Output, PatternDecoder, Piece, field_piece, literal_piece, time_output, ws_piece
from .rsyslog import _PROPERTY, _TAG_CHARS, _pri_outputs, _property_piece


def _prop(text: str) -> Piece:
    m = _PROPERTY.fullmatch(text)
    assert m is not None
    p = _property_piece(m, None, None)
    assert p is not None
    return p


def _pid_or_none(s: str) -> int | None:
    return int(s) if s.isdigit() else None


def rfc5424_decoder(message_type: str = "syslog") -> PatternDecoder:
    """``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]``."""
    app = field_piece(
        "%APP-NAME%",
        f"(?P<@>-|{'[!-~]'}{{1,48}})",
        [
            Output(
                "programname",
                py=lambda s: None if s == "-" else s,
                vec=lambda s: pl.when(s == "-").then(None).otherwise(s),
                exact_vec=True,
            )
        ],
        "an app name or -",
    )
    procid = field_piece(
        "%PROCID%",
        "(?P<@>-|[!-~]{1,128})",
        [
            Output(
                "Pid",
                py=_pid_or_none,
                dtype=pl.Int64(),
                vtype=ValueType.INTEGER,
                vec=lambda s: s.cast(pl.Int64, strict=False),
            )
        ],
        "a process id or -",
    )
    msgid = field_piece(
        "%MSGID%",
        "(?P<@>-|[!-~]{1,32})",
        [
            Output(
                "msgid",
                py=lambda s: None if s == "-" else s,
                vec=lambda s: pl.when(s == "-").then(None).otherwise(s),
                exact_vec=True,
            )
        ],
        "a message id or -",
    )
    ts = field_piece(
        "%TIMESTAMP:::date-rfc3339%",
        f"(?:-|(?P<@>{g.RFC3339_DATE}))",
        [time_output("Timestamp", times.rfc3339_to_ns, times.pl_rfc3339)],
        "an RFC 3339 date or -",
    )
    pieces = [
        literal_piece("<"),
        field_piece("%PRI%", "(?P<@>[0-9]{1,3})", _pri_outputs(), "a priority number"),
        literal_piece(">"),
        field_piece(
            "1",
            "(?P<@>[1-9][0-9]{0,2})",
            [Output("protocol-version", exact_vec=True)],
            "the protocol version",
        ),
        ws_piece(" ", False),
        ts,
        ws_piece(" ", False),
        _prop("%HOSTNAME%"),
        ws_piece(" ", False),
        app,
        ws_piece(" ", False),
        procid,
        ws_piece(" ", False),
        msgid,
        ws_piece(" ", False),
        _prop("%STRUCTURED-DATA%"),
        Piece(
            "rest",
            "[ %msg%]",
            "(?: (?:\ufeff)?(?P<@>.*))?",
            [Output("Payload", exact_vec=True)],
            "an optional message",
        ),
    ]
    return PatternDecoder("syslog", message_type, pieces, source="RFC 5424")


def rfc3164_decoder(message_type: str = "syslog") -> PatternDecoder:
    """``[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG`` (an RFC 3339 date is accepted too)."""
    pieces = [
        field_piece("[<PRI>]", "(?:<(?P<@>[0-9]{1,3})>)?", _pri_outputs(), "an optional <priority>"),
        field_piece(
            "TIMESTAMP",
            f"(?:(?P<@>{g.RFC3164_DATE})|(?P<@>{g.RFC3339_DATE}))",
            [
                time_output("Timestamp", times.rfc3164_to_ns),
                Output(
                    "Timestamp", group=1, py=times.rfc3339_to_ns, dtype=pl.Int64(), vtype=ValueType.INTEGER
                ),
            ],
            "a date like 'Feb  9 14:17:01' or an RFC 3339 date",
        ),
        ws_piece(" "),
        _prop("%HOSTNAME%"),
        ws_piece(" "),
        field_piece(
            "TAG[PID]:",
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
        ),
        Piece("rest", " MSG", " *(?P<@>.*)", [Output("Payload", exact_vec=True)], "the message"),
    ]
    return PatternDecoder("syslog", message_type, pieces, source="RFC 3164")


class FirstMatchDecoder(Decoder):
    """Tries several decoders in order; the first that accepts a line wins (both paths)."""

    fixed_schema = True

    def __init__(self, kind: str, message_type: str, decoders: list[PatternDecoder]) -> None:
        self.kind = kind
        self.message_type = message_type
        self.decoders = decoders
        self.schema = {}
        for d in decoders:
            for k, v in d.schema.items():
                self.schema.setdefault(k, v)
        self.rejects = None

    def decode(self, line: str) -> dict[str, Any] | None:
        for d in self.decoders:
            rec = d.decode(line)
            if rec is not None:
                return rec
        return None

    def explain_failure(self, line: str) -> str:
        return "; ".join(f"as {d.source}: {d.explain_failure(line)}" for d in self.decoders)

    def explain(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for d in self.decoders:
            rows.append({"piece": "", "format": f"-- {d.source} --", "kind": "", "accepts": "", "fields": ""})
            rows.extend(d.explain())
        return rows

    def explain_line(self, line: str) -> list[dict[str, str]]:
        for d in self.decoders:
            if d.decode(line) is not None:
                return d.explain_line(line)
        return []

    def polars_schema(self) -> dict[str, pl.DataType]:
        schema: dict[str, pl.DataType] = {}
        for d in self.decoders:
            for k, v in d.polars_schema().items():
                schema.setdefault(k, v)
        order = [h for h in ("Timestamp", "Type", "Hostname", "Severity", "Pid", "Payload") if h in schema]
        return {k: schema[k] for k in order + [k for k in schema if k not in order]}

    def frame(self, lines: Iterable[str] | pl.Series, columns: Any = None) -> pl.DataFrame:
        """Each line by the first sub-decoder that takes it (`columns` is a hint; all are returned)."""
        series = lines if isinstance(lines, pl.Series) else pl.Series("line", list(lines), dtype=pl.String)
        numbers = pl.Series("__lineno", range(1, len(series) + 1), dtype=pl.Int64)
        frames: list[pl.DataFrame] = []
        remaining, remaining_no = series, numbers
        schema = self.polars_schema()
        for d in self.decoders:
            if len(remaining) == 0:
                break
            df = d.frame(remaining)
            rej = d.rejects if d.rejects is not None else pl.DataFrame({"lineno": []})
            ok_mask = ~pl.Series(range(1, len(remaining) + 1)).is_in(rej["lineno"].to_list())
            df = df.with_columns(remaining_no.filter(ok_mask).alias("__lineno"))
            frames.append(df)
            keep = ~ok_mask
            remaining, remaining_no = remaining.filter(keep), remaining_no.filter(keep)
        self.rejects = pl.DataFrame(
            {
                "lineno": remaining_no,
                "line": remaining,
                "reason": pl.Series([self.explain_failure(x) for x in remaining.to_list()], dtype=pl.String),
            }
        )
        aligned = [
            f.with_columns(
                [pl.lit(None, dtype=t).alias(k) for k, t in schema.items() if k not in f.columns]
            ).select([*schema, "__lineno"])
            for f in frames
        ]
        if not aligned:
            return pl.DataFrame(schema=schema)
        return pl.concat(aligned, how="vertical").sort("__lineno").drop("__lineno")


def build_decoder(message_type: str = "syslog") -> FirstMatchDecoder:
    """RFC 5424 first, then RFC 3164."""
    return FirstMatchDecoder(
        "syslog", message_type, [rfc5424_decoder(message_type), rfc3164_decoder(message_type)]
    )
