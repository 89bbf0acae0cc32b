"""Placeholders for protected paths that do not exist yet: made, held while commands run, recorded, cleared.

A sandboxed command with write access to the agent folder must not create
schedule.md, PAUSED.md, tools/ or any other protected path. Where one does not
exist yet, `hold` makes it (an empty file when its name ends in .md, else an
empty folder) for the sandbox to mount read-only over, and the last command
holding it removes it again, but only while it is still that same empty file
or folder: nothing a person or the runtime wrote there meanwhile is lost.

Each placeholder is listed in .vault-agent/placeholders.json (relative path ->
[device, inode, mtime]) for as long as it exists. That keeps two promises when the
runtime is killed mid-command, or when another process looks while a command
runs:

- a placeholder is never taken for a person's file (`is_placeholder`): the
  empty PAUSED.md the runtime made does not pause the agent;
- one left behind is removed the next time the agent's run lock is taken
  (`clear_leftovers`), when no command of the agent can be running.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import StorageError
from .atomic import atomic_write, read_state
from .layout import AgentPaths

RECORD = "placeholders.json"
_Ident = tuple[int, int, int]  # device, inode, mtime_ns

# Placeholders this process made: path -> (commands holding it, (device, inode, mtime)). Commands of one turn run in
# parallel, and removing a placeholder lifts its mount inside every command still running, hence the count.
_HELD: dict[Path, tuple[int, _Ident]] = {}
_LOCK = threading.Lock()


def is_file(path: Path) -> bool:
    """Whether a placeholder for `path` is a file (its name ends in .md) rather than a folder."""
    return path.suffix == ".md"


@contextlib.contextmanager
def hold(root: Path | None, paths: Iterable[Path]) -> Iterator[list[Path]]:
    """Make each of `paths` (inside the agent folder `root`) that does not exist an empty placeholder, or share
    the one this process already holds there; yields them, and releases them when the block ends.

    `root` None: paths outside any agent folder, whose placeholders are not recorded.

    OSError or StorageError when one cannot be made or recorded: the command must not run then.
    """
    paths = list(paths)
    held: list[Path] = []
    temps: dict[Path, Path] = {}
    with _LOCK:
        try:
            if root is not None and any(p not in _HELD and not os.path.lexists(p) for p in paths):
                # The record's own folder is made for real first, or it would become a placeholder itself.
                AgentPaths(root).state.mkdir(exist_ok=True)
            made: dict[Path, _Ident] = {}
            for path in paths:
                if path in _HELD:
                    count, ident = _HELD[path]
                    _HELD[path] = (count + 1, ident)
                    held.append(path)
                elif not os.path.lexists(path):
                    if is_file(path):
                        temps[path], ident = _make_file(path)
                    else:
                        ident = _make_folder(path)
                        if ident is None:  # someone made it meanwhile: it is theirs, mounted as it is
                            continue
                    _HELD[path] = (1, ident)
                    held.append(path)
                    made[path] = ident
            if made and root is not None:
                # Before a file takes its name: a kill from here on leaves it listed. (An empty folder left
                # unlisted by a kill just before this does no harm; an empty PAUSED.md would pause the agent.)
                _record(root, made, ())
            for path, tmp in temps.items():
                if not _place(tmp, path):  # someone made it meanwhile; its entry names another inode
                    del _HELD[path]
                    held.remove(path)
        except BaseException:
            _release(root, held)
            raise
        finally:
            for tmp in temps.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
    try:
        yield held
    finally:
        with _LOCK:
            _release(root, held)


def is_placeholder(root: Path, path: Path) -> bool:
    """Whether `path` is a placeholder the runtime made (and nobody has written to since), held or left over."""
    ident = read_state(_record_path(root)).get(_rel(root, path))
    return isinstance(ident, list) and _still_empty(path, tuple(ident))


def clear_leftovers(root: Path) -> None:
    """Remove the placeholders a killed runtime left in the agent folder `root`.

    Call it holding the agent's run lock: only then is no command that could
    hold one running. Those this process holds itself are kept.
    """
    with _LOCK:
        gone = []
        for rel, ident in read_state(_record_path(root)).items():
            path = root / rel
            if path in _HELD:
                continue
            # A person may edit the record too: nothing outside the folder is ever removed.
            inside = not Path(rel).is_absolute() and ".." not in Path(rel).parts
            if not inside or not isinstance(ident, list) or not _still_empty(path, tuple(ident)) or _remove(path):
                gone.append(rel)
        if gone:
            with contextlib.suppress(OSError, StorageError):
                _record(root, {}, gone)


def _make_file(path: Path) -> tuple[Path, _Ident]:
    """An empty file beside `path` under a dot-named temporary name (which nothing indexes or watches)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return tmp, (st.st_dev, st.st_ino, st.st_mtime_ns)


def _place(tmp: Path, path: Path) -> bool:
    """Give the file `tmp` the name `path` unless something has taken it (a link never replaces a file)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links (FAT): a rename, after a look
        if os.path.lexists(path):
            return False
        os.rename(tmp, path)
    return True


def _make_folder(path: Path) -> _Ident | None:
    try:
        os.mkdir(path)
    except FileExistsError:
        return None
    st = os.lstat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _release(root: Path | None, held: list[Path]) -> None:
    done = []
    for path in held:
        count, ident = _HELD[path]
        if count > 1:
            _HELD[path] = (count - 1, ident)
            continue
        del _HELD[path]
        if not _still_empty(path, ident) or _remove(path):
            done.append(path)
    if done and root is not None:
        with contextlib.suppress(OSError, StorageError):  # still listed: the next run lock clears it
            _record(root, {}, [_rel(root, p) for p in done])


def _still_empty(path: Path, ident: tuple[int, ...]) -> bool:
    """Whether `path` is still the placeholder `ident` and nothing was written into it (the mtime tells it from
    a file a person made since that got the same inode number)."""
    try:
        st = os.lstat(path)
        if (st.st_dev, st.st_ino, st.st_mtime_ns) != ident:
            return False
        if stat.S_ISREG(st.st_mode):
            return st.st_size == 0
        return stat.S_ISDIR(st.st_mode) and not os.listdir(path)
    except OSError:
        return False


def _remove(path: Path) -> bool:
    try:
        if is_file(path):
            os.unlink(path)
        else:
            os.rmdir(path)  # only while empty
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _record(root: Path, add: dict[Path, _Ident], drop: Iterable[str]) -> None:
    path = _record_path(root)
    recorded = read_state(path)
    recorded.update({_rel(root, p): list(ident) for p, ident in add.items()})
    for rel in drop:
        recorded.pop(rel, None)
    if recorded:
        atomic_write(path, json.dumps(recorded, indent=1, sort_keys=True))
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _record_path(root: Path) -> Path:
    return AgentPaths(root).state / RECORD


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
