"""The per-agent locks: a run lock held for a whole run, a write lock held per write.

Two locks, because a run that cannot get the run lock must still append its
"busy" record, and appends need the write lock, which a running run only holds
for milliseconds at a time. Both are OS file locks (filelock), so a killed
process releases them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock, Timeout

from ..errors import AgentBusy, StorageError, VaultAgentError
from .atomic import atomic_write, read_state
from .layout import state_not_a_folder

WRITE_LOCK_TIMEOUT_S = 60.0
LOGGED = "logged"  # the owner file's key once its holder has written its record (mark_logged)
SPENT = "spent"  # and for what it has spent so far, a call in flight too (note_spent)


@contextmanager
def run_lock(path: Path, *, timeout: float, owner: dict[str, Any],
             on_killed: Callable[[dict[str, Any]], None]) -> Iterator[bool]:
    """Hold the run lock; AgentBusy after `timeout` seconds (0 = try once).

    Yields whether the previous holder was killed holding it (its owner file, removed on release, is still there).
    `on_killed` gets that holder's owner file ({} when unreadable) before this holder's replaces it, unless the
    holder had marked itself logged (mark_logged): only one taker at a time sees it, and if this one dies in
    between, the next sees it again.
    """
    lock = _lock(path, timeout)
    try:
        lock.acquire()
    except Timeout:  # an OSError too: caught first
        holder = read_owner(path)
        who = f" (run {holder.get('run_id')} by pid {holder.get('pid')})" if holder else ""
        raise AgentBusy(f"agent busy: another run holds the lock{who}", path=path,
                        fix="wait for it to finish, or raise the lock timeout (--wait)") from None
    except OSError as exc:
        raise _unlockable(path, exc) from None
    owner_file = owner_path(path)
    killed = owner_file.exists()
    try:
        left = read_owner(path) if killed else {}
        if killed and not left.get(LOGGED):
            on_killed(left)
        atomic_write(owner_file, json.dumps({**owner, "pid": os.getpid()}, default=str))
    except BaseException:
        lock.release()  # the stale owner file stays: the next taker logs the killed run
        raise
    try:
        yield killed
    finally:
        try:
            owner_file.unlink()
        except OSError:
            pass
        lock.release()


def mark_logged(path: Path) -> None:
    """Say in the owner file that its holder, which holds the run lock, has written its record: killed before
    releasing the lock, it is not logged again. Best effort: if this fails, such a run is logged killed too."""
    _add_to_owner(path, {LOGGED: True})


def note_spent(path: Path, spent: dict[str, Any]) -> None:
    """Keep in the owner file what its holder has spent so far (model calls, tokens, cost) and the model call it
    has in flight: killed, its record says so and the cost caps count it. Best effort: if this fails, the record
    has the spend noted before."""
    _add_to_owner(path, {SPENT: spent})


def _add_to_owner(path: Path, fields: dict[str, Any]) -> None:
    try:
        atomic_write(owner_path(path), json.dumps({**read_owner(path), **fields}, default=str))
    except (OSError, VaultAgentError):
        pass


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    lock = _lock(path, WRITE_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:  # an OSError too: caught first
        raise StorageError(f"could not get the write lock in {WRITE_LOCK_TIMEOUT_S:.0f} s", path=path,
                           fix="a stuck vault-agent process may hold it; stop it and retry") from None
    except OSError as exc:
        raise _unlockable(path, exc) from None
    try:
        yield
    finally:
        lock.release()


def _lock(path: Path, timeout: float) -> FileLock:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unlockable(path, exc) from None
    return FileLock(str(path), timeout=timeout)


def _unlockable(path: Path, exc: OSError) -> StorageError:
    return state_not_a_folder(path.parent) or \
        StorageError(f"cannot create the lock file ({exc.strerror or exc})", path=path,
                     fix="make the agent's .vault-agent/ folder writable (and free disk space if it is full)")


def is_locked(path: Path) -> bool:
    if not path.exists():
        return False
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def owner_started(owner: dict[str, Any]) -> _dt.datetime | None:
    """When the run that wrote this owner file started (`since`), None when it does not say."""
    try:
        return _dt.datetime.fromisoformat(str(owner.get("since")))
    except ValueError:
        return None


def owner_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.owner.json")


def read_owner(path: Path) -> dict[str, Any]:
    return read_state(owner_path(path))
