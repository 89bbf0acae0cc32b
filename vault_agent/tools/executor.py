"""Runs the tool calls of one model turn: independent ones in parallel (bounded), results in call order.

Calls are taken in order in waves: a run of parallel-safe calls goes to a
thread pool together; a call whose tool is not parallel-safe (it writes
files, or keeps order-sensitive state) waits for the wave before it and runs
alone. So side effects keep their relative order, and reads overlap.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

C = TypeVar("C")
R = TypeVar("R")
MAX_PARALLEL = 8


def run_calls(calls: list[C], run_one: Callable[[int, C], R], parallel_safe: Callable[[C], bool], *,
              max_parallel: int = MAX_PARALLEL) -> list[R]:
    """`run_one(index, call)` for every call; the results in the order of `calls`."""
    results: list[R | None] = [None] * len(calls)
    wave: list[int] = []

    def flush(pool: ThreadPoolExecutor | None) -> None:
        if len(wave) == 1 or pool is None:
            for i in wave:
                results[i] = run_one(i, calls[i])
        else:
            for i, result in zip(wave, pool.map(lambda i: run_one(i, calls[i]), wave)):
                results[i] = result
        wave.clear()

    workers = min(max_parallel, len(calls))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tool") if workers > 1 else _NoPool() as pool:
        for i, call in enumerate(calls):
            if parallel_safe(call):
                wave.append(i)
                continue
            flush(pool)
            wave.append(i)
            flush(None)
        flush(pool)
    return results  # type: ignore[return-value]


class _NoPool:
    """Stands in for a pool when there is one call: no thread is started."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
