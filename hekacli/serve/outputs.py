"""The built-in output of `heka serve`: accepted messages as JSONL or framed records, to stdout or a file."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import IO, Any

from ..errors import OutputError
from ..framing import CAT_MAX_MESSAGE_SIZE, frame
from ..message import to_flat
from ..output import dumps_jsonl
from .config import OutputConfig
from .plugin import Delivery, ServeContext


class OutputPlugin:
    """Writes every delivery it is offered: ``jsonl`` (flat records) or ``heka`` (framed, unsigned).

    A closed stdout (``heka serve | head``) calls `on_broken` so the daemon can stop quietly.
    """

    def __init__(self, config: OutputConfig, *, on_broken: Callable[[], None] | None = None,
                 stdout: IO[bytes] | None = None) -> None:
        self.name = config.name
        self.message_matcher = config.message_matcher
        self.message_signer = config.message_signer
        self.config = config
        self.format = config.resolved_format
        self.on_broken = on_broken
        self._stdout = stdout
        self._fh: IO[bytes] | None = None
        self._own = False
        self._flush_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.written = 0
        self.bytes = 0
        self.broken = False

    async def start(self, ctx: ServeContext) -> None:
        self._loop = asyncio.get_running_loop()
        path = self.config.path
        if path == "none":
            return
        if path == "-":
            self._fh = self._stdout if self._stdout is not None else sys.stdout.buffer
            return
        try:
            self._fh = open(path, "wb")  # noqa: SIM115 - closed in stop()
        except OSError as exc:
            raise OutputError(f"cannot open output: {exc.strerror or exc}", file=path) from None
        self._own = True

    def process(self, delivery: Delivery) -> None:
        if self._fh is None or self.broken:
            return
        if self.format == "heka":
            data = frame(delivery.raw, max_message_size=CAT_MAX_MESSAGE_SIZE)
        else:
            data = (dumps_jsonl(to_flat(delivery.message)) + "\n").encode("utf-8", "surrogateescape")
        try:
            self._fh.write(data)
        except BrokenPipeError:
            self._broken()
            return
        except OSError as exc:
            raise OutputError(f"cannot write output: {exc.strerror or exc}", file=self.config.path) from None
        self.written += 1
        self.bytes += len(data)
        if not self._flush_pending and self._loop is not None:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._fh is None or self.broken:
            return
        try:
            self._fh.flush()
        except BrokenPipeError:
            self._broken()
        except OSError:
            pass

    def _broken(self) -> None:
        self.broken = True
        if self.on_broken is not None:
            self.on_broken()

    async def stop(self) -> None:
        self._flush()
        if self._own and self._fh is not None:
            self._fh.close()
        self._fh = None

    def stats(self) -> dict[str, Any]:
        return {"processed": self.written, "bytes": self.bytes, "format": self.format,
                "path": self.config.path}
