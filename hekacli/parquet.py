"""Write a stream of DataFrames to one Parquet file while they are still being made.

`heka decode -f parquet` decodes a log chunk by chunk; polars' streaming Parquet sink encodes and
writes each chunk while the next ones are decoded, so the writer's time overlaps the decoder's and
only a few chunks are held in memory, not the whole file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from .errors import OutputError


def write_parquet_frames(frames: Iterable[pl.DataFrame], path: str) -> int:
    """Write `frames`, in order, as one Parquet file at `path`; return the number of rows.

    Every frame must have the columns of the first (dtypes are cast to the first's); with no frames
    at all the file holds no columns and no rows. Exceptions raised while `frames` is consumed
    reach the caller unchanged. A regular file is written beside `path` and renamed over it at the
    end, so a failure midway leaves what was at `path` untouched (a pipe or device is written in
    place; through a symlink, its target is replaced; a file replaced keeps its permissions).
    Settings are polars' defaults, as `DataFrame.write_parquet`: zstd, statistics on.
    """
    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        first = pl.DataFrame()
    rows = [0]
    conformed = _conformed(first, stream, rows)
    display = path
    if os.path.isfile(path):
        path = os.path.realpath(path)  # (through a symlink: the link stays, its target is replaced)
    target = _staging_path(path)
    try:
        try:
            from polars.io.plugins import register_io_source
        except ImportError:  # an older polars: no streaming sink, so join the frames first
            pl.concat(list(conformed), how="vertical").write_parquet(target)
        else:

            def source(
                with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, _batch: Any
            ) -> Iterator[pl.DataFrame]:
                # (a plain sink asks for every column and row; honour the arguments all the same)
                left = n_rows
                for frame in conformed:
                    if with_columns is not None:
                        frame = frame.select(with_columns)
                    if predicate is not None:
                        frame = frame.filter(predicate)
                    if left is not None:
                        frame, left = frame.head(left), max(left - frame.height, 0)
                    yield frame
                    if left == 0:
                        return

            sink = register_io_source(source, schema=first.schema)
            if target != path:
                sink.sink_parquet(target)
            else:
                # a pipe or device: opened once, here (polars opens a path twice, and a reader
                # of a pipe takes the first close for the end)
                with open(target, "wb") as out:
                    sink.sink_parquet(out)
        if target != path:
            if os.path.exists(path):
                shutil.copymode(path, target)  # (a file replaced keeps its permissions)
            os.replace(target, path)
    except OSError as exc:
        raise OutputError(f"cannot write: {_reason(exc, target, display)}", file=display) from None
    finally:
        if target != path and os.path.exists(target):
            os.unlink(target)
    return rows[0]


def _conformed(first: pl.DataFrame, rest: Iterator[pl.DataFrame], rows: list[int]) -> Iterator[pl.DataFrame]:
    """`first`, then `rest` cast to its schema; the rows seen are counted in `rows[0]`."""
    schema = first.schema
    rows[0] += first.height
    yield first
    for frame in rest:
        if frame.schema != schema:
            if frame.columns != first.columns:
                raise ValueError(f"a chunk has the columns {frame.columns}, not {first.columns}")
            frame = frame.cast(dict(schema))
        rows[0] += frame.height
        yield frame


def _staging_path(path: str) -> str:
    """Where to write before the rename: beside `path` when that is (or will be) a regular file."""
    try:
        if not os.path.isfile(path) and os.path.exists(path):
            return path  # a pipe, a device (/dev/stdout): no rename possible
    except OSError:
        return path
    head, name = os.path.split(path)
    return os.path.join(head, f".{name}.{os.getpid()}.part")


def _reason(exc: OSError, target: str, path: str) -> str:
    """Why writing failed, without the staging file's name (polars' errors carry no strerror:
    "No such file or directory (os error 2): PATH (set POLARS_VERBOSE=1 ...)")."""
    if exc.strerror:
        return exc.strerror
    text = str(exc)
    if " (os error " in text:
        return text.split(" (os error ", 1)[0]
    return text.replace(target, path)
