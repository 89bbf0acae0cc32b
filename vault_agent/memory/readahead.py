"""Read a long sync's batches of files in forked helper processes while the caller writes the index.

Reading and parsing notes is Python work that holds the GIL, so a thread
cannot overlap it with SQLite's writes; a process can. A first index of 10k
notes spends some 60% of its time reading and parsing.

Helpers are forked (no interpreter start-up, no re-import of the caller's
script) and only where that is safe and useful: on Linux, with at least two
cores, for at least HELP_AFTER batches. There is one helper per core (up to
MAX_HELPERS): the caller spends much of its time waiting, on the helpers or
on the disk, so this keeps the cores busiest (10k notes on two cores here:
2.2-2.4 s with one helper, 1.6-2.0 s with two, 2.9-3.2 s with none).

A helper gets one batch at a time and sends back what `read` returned for
it; results come out in batch order, so the index is written exactly as a
single process would write it. A helper that dies, fails or cannot start
costs nothing but time: its batch, and every batch after it, is read in the
calling process. A helper never outlives its caller: it ignores Ctrl-C (the
caller handles it and stops the helpers) and stops when its pipe closes,
which the kernel does when the caller is killed.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

B = TypeVar("B")
R = TypeVar("R")

HELP_AFTER = 4  # batches: below that, forking costs more than it saves
MAX_HELPERS = 4  # beyond that, the single writer is the bottleneck anyway
_STOP_WAIT_S = 5.0


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_in_order(batches: Sequence[B], read: Callable[[B], R]) -> Iterator[R]:
    """`read(batch)` for each batch, in order; read ahead by helper processes when it pays (see the module doc).

    An exception `read` raises reaches the caller from its own process, as it
    would without helpers: a batch a helper failed on is read again here.
    """
    cores = usable_cores()
    count = min(cores, MAX_HELPERS, len(batches)) if cores > 1 and len(batches) >= HELP_AFTER else 0
    if sys.platform != "linux" or count < 1:
        yield from (read(batch) for batch in batches)
        return
    helpers: list[_Helper] = []
    try:
        for _ in range(count):
            helper = _Helper.start(read)
            if helper is None:
                break
            helpers.append(helper)
        if not helpers:
            yield from (read(batch) for batch in batches)
            return
        # Batch k goes to helper k mod n, one outstanding batch per helper; the next is sent as soon as
        # a helper's result is taken, so that it reads while the caller writes.
        for helper, batch in zip(helpers, batches):
            helper.send(batch)
        for k in range(len(batches)):
            helper = helpers[k % len(helpers)]
            ok, result = helper.receive()
            if not ok:  # the helpers stop here; what is left is read in this process
                _stop(helpers)
                helpers = []
                yield from (read(b) for b in batches[k:])
                return
            if k + len(helpers) < len(batches):
                helper.send(batches[k + len(helpers)])  # if this fails, receiving the batch will say so
            yield result
    finally:
        _stop(helpers)


class _Helper:
    """One forked helper process and the caller's end of its pipe."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.alive = True

    @classmethod
    def start(cls, read: Callable[[Any], Any]) -> _Helper | None:
        import multiprocessing  # here, not at the top: every run imports this module, few ever fork

        try:
            ours, theirs = multiprocessing.Pipe()
        except OSError:  # out of file descriptors
            return None
        try:
            process = multiprocessing.get_context("fork").Process(
                target=_serve, args=(theirs, ours, read), name="vault-agent-index-reader", daemon=True)
            process.start()
        except (OSError, ValueError):  # no more processes allowed, or fork refused
            ours.close()
            return None
        finally:
            theirs.close()
        return cls(process, ours)

    def send(self, batch: Any) -> None:
        try:
            self.conn.send(batch)
        except (OSError, ValueError):
            self.alive = False

    def receive(self) -> tuple[bool, Any]:
        """(True, result), or (False, None) when the helper died or its `read` raised."""
        try:
            ok, result = self.conn.recv()
        except Exception:  # a closed pipe, or a reply cut off or not unpickled here
            self.alive = False
            return False, None
        return ok, result


def _stop(helpers: list[_Helper]) -> None:
    for helper in helpers:
        if helper.alive:
            helper.send(None)
        helper.conn.close()
    for helper in helpers:
        helper.process.join(_STOP_WAIT_S)
        if helper.process.is_alive():  # busy with a batch nobody will take: not worth waiting for
            helper.process.kill()
            helper.process.join()


def _serve(conn: Connection, callers_end: Connection, read: Callable[[Any], Any]) -> None:
    """The helper's loop: a batch in, (True, read(batch)) or (False, why) out, until None or a closed pipe."""
    # The caller's end is closed here, so that the pipe reports the caller's death instead of staying open.
    callers_end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # What another thread of the caller had buffered for stdout (an MCP reply, say) is the caller's to
    # write: the helper's own stdout and stderr lead nowhere, so its flush on exit cannot send it twice.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        if batch is None:
            return
        try:
            reply = (True, read(batch))
        except Exception as exc:  # told back; the caller reads the batch again and gets the error there
            reply = (False, repr(exc))
        try:
            conn.send(reply)
        except Exception:  # the caller has gone, or the result does not pickle: the caller reads it itself
            return
