"""A progress bar on stderr while inputs are read, only for big inputs on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hekacli.output import stderr_console

PROGRESS_MIN_BYTES = 4 * 1024 * 1024


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def reading_progress(total_bytes: int, label: str = "reading") -> Iterator[Callable[[int], None] | None]:
    """Yield an `on_progress(bytes_done)` callback (or None when no bar should be shown)."""
    if total_bytes < PROGRESS_MIN_BYTES or not _stderr_is_terminal():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total_bytes)
        yield lambda n: bar.advance(task, n)
