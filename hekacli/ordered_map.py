"""`ordered_map`: a function over a stream of items on a few threads, results in input order, with
bounded look-ahead (the bulk decoders' chunks: polars and the line scanner release the GIL, so two
threads keep two cores busy)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`fn(item)` for each of `items`, `workers` at a time, yielded in the order of `items`.

    Unlike `Executor.map`, which takes every item at once, this takes an item only when a worker
    is free for it: at most `workers` + 1 items and results are held at a time, so memory stays
    bounded however long `items` is (it may read a file as it goes, in the consumer's thread).
    The first exception raised by `fn` is raised here, in order; items not started are dropped.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(workers) as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
