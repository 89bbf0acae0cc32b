"""`vault-agent daemon`: every agent of a vault on its schedule, in one process.

Guarantees (spec/schedule.md): one run of an agent at a time; at most
`max_concurrent` runs over the vault; a slot missed while the machine slept
runs once, not once per missed slot; `pause_after` failed runs in a row write
the agent's PAUSED.md; SIGTERM stops scheduling, lets running runs finish
(each ends in its log record) and exits.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from ..errors import VaultAgentError
from ..runner import Agent, RunResult
from ..vault import runlog
from ..vault.folder import AgentFolder, Vault
from . import schedule as sched

DAEMON_LOCK = ".vault-agent/daemon.lock"


@dataclass
class DaemonOptions:
    max_concurrent: int = 2
    pause_after: int = sched.DEFAULT_PAUSE_AFTER
    lock_wait_s: float = 30.0  # how long a scheduled run waits for a manual run of the same agent
    grace_s: float = 30.0  # after SIGTERM, how long running runs may take before they are interrupted
    tz: _dt.tzinfo | None = None


def fire(agent: Agent, entry: sched.Entry, *, pause_after: int, lock_wait_s: float) -> tuple[RunResult, bool]:
    """Run one entry now, unless the agent is paused; count its outcome. (result, paused by this run)."""
    if entry.action == "dream":
        from .consolidate import run_dream

        result = run_dream(agent, trigger=entry.trigger, with_model=entry.with_model, lock_timeout_s=lock_wait_s)
    else:
        result = agent.run(entry.work_item, trigger=entry.trigger, lock_timeout_s=lock_wait_s)
    paused = sched.record_outcome(agent.folder, result.status, result.run_id, result.error, pause_after)
    return result, paused


@dataclass
class _AgentSlot:
    """The daemon's view of one agent: its entries, when each last ran, and whether it runs now."""

    folder: AgentFolder
    agent: Agent | None = None
    entries: list[sched.Entry] = field(default_factory=list)
    stamp: tuple[float, ...] = ()
    last: dict[str, _dt.datetime] = field(default_factory=dict)
    running: sched.Entry | None = None
    thread_id: int | None = None


class Daemon:
    def __init__(self, vault: Vault, options: DaemonOptions | None = None, *,
                 now: Callable[[], _dt.datetime] = runlog.now_ts,
                 say: Callable[[str], None] | None = None) -> None:
        self.vault = vault
        self.options = options or DaemonOptions()
        self.now = now
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._slots: dict[str, _AgentSlot] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.options.max_concurrent),
                                        thread_name_prefix="vault-agent-run")

    # --- what is due ------------------------------------------------------
    def _refresh(self) -> None:
        """Pick up new agents and edited schedules; a schedule file's mtime says when to re-read it."""
        names = set(self.vault.agent_names())
        for name in list(self._slots):
            if name not in names and self._slots[name].running is None:
                self._close(self._slots.pop(name))
        for name in names:
            slot = self._slots.get(name)
            if slot is None:
                slot = self._slots[name] = _AgentSlot(AgentFolder(self.vault.agent_path(name)))
            stamp = _stamp(slot.folder)
            if stamp == slot.stamp:
                continue
            slot.stamp = stamp
            entries, findings = sched.load_entries(slot.folder)
            for f in findings:
                self.say(f"[{name}] {f.one_line()}")
            slot.entries = entries
            known = {e.id for e in entries}
            missing = known - set(slot.last)
            if missing:
                slot.last.update(sched.last_runs(slot.folder, missing))

    def due(self) -> list[tuple[_dt.datetime, sched.Entry]]:
        """(due time, entry) of every entry due now, one per idle, unpaused agent, earliest first."""
        now = self.now()
        out = []
        for slot in self._slots.values():
            if slot.running is not None or not slot.entries or sched.pause_info(slot.folder) is not None:
                continue
            best: tuple[_dt.datetime, sched.Entry] | None = None
            for entry in slot.entries:
                at = entry.when.next_run(slot.last.get(entry.id), entry.anchor, self.options.tz)
                if at is not None and at <= now and (best is None or at < best[0]):
                    best = (at, entry)
            if best is not None:
                out.append(best)
        return sorted(out, key=lambda pair: pair[0])

    def _next_wake(self) -> float:
        """Seconds until an idle agent's entry comes due; at most 1 s, so edits and new agents are seen.

        Entries already due are waiting for a free slot or for their agent's
        run to end, and a run that ends wakes the loop.
        """
        now = self.now()
        soonest = 1.0
        for slot in self._slots.values():
            if slot.running is not None:
                continue
            for entry in slot.entries:
                at = entry.when.next_run(slot.last.get(entry.id), entry.anchor, self.options.tz)
                if at is not None and at > now:
                    soonest = min(soonest, (at - now).total_seconds())
        return max(0.01, soonest)

    # --- running ----------------------------------------------------------
    def _start(self, entry: sched.Entry) -> None:
        slot = self._slots[entry.agent]
        slot.running = entry
        # Counted from the start, so a slot missed while asleep, or a long run, fires once.
        slot.last[entry.id] = self.now()
        if slot.agent is None:
            slot.agent = Agent(slot.folder.root)
        self._pool.submit(self._run, slot, entry)

    def _run(self, slot: _AgentSlot, entry: sched.Entry) -> None:
        slot.thread_id = threading.get_ident()
        try:
            assert slot.agent is not None
            result, paused = fire(slot.agent, entry, pause_after=self.options.pause_after,
                                  lock_wait_s=self.options.lock_wait_s)
            cost = "price unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
            self.say(f"[{entry.agent}] {entry.id}: {result.status} · run {result.run_id} · {cost}"
                     + (f" · {result.error}" if result.error else ""))
            if paused:
                self.say(f"[{entry.agent}] paused after {self.options.pause_after} failed runs in a row: "
                         f"see {sched.pause_path(slot.folder)}")
        except KeyboardInterrupt:
            self.say(f"[{entry.agent}] {entry.id}: interrupted at shutdown (logged as interrupted)")
        except (VaultAgentError, OSError) as exc:
            self.say(f"[{entry.agent}] {entry.id}: could not record the outcome: {exc}")
        except Exception as exc:  # an internal error: the runner logged it; keep scheduling the others
            self.say(f"[{entry.agent}] {entry.id}: internal error: {exc!r}")
            sched.record_outcome(slot.folder, "error", "", repr(exc), self.options.pause_after)
        finally:
            slot.thread_id = None
            slot.running = None
            self._wake.set()

    def _in_flight(self) -> int:
        return sum(1 for s in self._slots.values() if s.running is not None)

    def tick(self) -> None:
        """One pass: re-read what changed, start what is due while there are free slots."""
        self._refresh()
        for _, entry in self.due():
            if self._in_flight() >= self.options.max_concurrent:
                break
            self._start(entry)

    def run(self) -> None:
        """Schedule until `stop` is set, then drain."""
        self.say(f"daemon: watching {self.vault.root} ({self.options.max_concurrent} run(s) at a time)")
        while not self.stop.is_set():
            self.tick()
            self._wake.clear()
            self._wait(self._next_wake())
        self._drain()

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and not self._wake.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 0.25))

    def _drain(self) -> None:
        running = [s for s in self._slots.values() if s.running is not None]
        if running:
            self.say(f"daemon: stopping; waiting up to {self.options.grace_s:g} s for "
                     f"{', '.join(s.folder.name for s in running)}")
        deadline = time.monotonic() + self.options.grace_s
        while self._in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._in_flight():
            # Past the grace period: interrupt the runs so each still writes its "interrupted" record.
            # The exception lands when the thread next runs Python code: a model call in flight ends first.
            for slot in self._slots.values():
                if slot.thread_id is not None:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(slot.thread_id),
                                                               ctypes.py_object(KeyboardInterrupt))
        self._pool.shutdown(wait=True)
        for slot in self._slots.values():
            self._close(slot)
        self.say("daemon: stopped")

    def _close(self, slot: _AgentSlot) -> None:
        if slot.agent is not None:
            slot.agent.close()
            slot.agent = None


def _stamp(folder: AgentFolder) -> tuple[float, ...]:
    out = []
    for path in (folder.root / sched.SCHEDULE_FILE, folder.paths.model_md):
        try:
            out.append(path.stat().st_mtime)
        except OSError:
            out.append(0.0)
    return tuple(out)


@contextmanager
def daemon_lock(vault_root: Path) -> Iterator[None]:
    """One daemon per vault: two would run every entry twice."""
    path = vault_root / DAEMON_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise VaultAgentError("another vault-agent daemon is running for this vault", path=path,
                              fix="stop it first; one daemon runs all agents of a vault") from None
    try:
        yield
    finally:
        lock.release()
