"""Crash-safe file writes: temp file + fsync + os.replace + folder fsync, and whole-line appends.

A power loss or SIGKILL at any moment leaves either the old or the new file,
never a torn one. Temp files are dot-named so Obsidian and sync tools ignore
them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import EditConflict, StorageError
from .reading import FolderLink, NotRegularFile, no_folder_link, read_regular


# The temp file atomic_write writes first: .<name>.<8 hex digits>.tmp beside the file it replaces.
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")
# Older than this, a temp file is no writer's any more: a write takes milliseconds.
STALE_TEMP_S = 60.0


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_state(path: Path) -> dict[str, Any]:
    """A JSON object kept as derived state; {} when the file is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_hash(path: Path) -> str | None:
    """The sha256 of the file's bytes, or None when it does not exist."""
    try:
        return content_hash(path.read_bytes())
    except FileNotFoundError:
        return None


def fsync_dir(folder: Path) -> None:
    # Without this, the rename itself may not survive a power loss.
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _storage_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError("disk full while writing; the previous version is intact", path=path,
                            fix="free some disk space and run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"cannot write ({exc.strerror})", path=path,
                            fix="check the folder's permissions")
    return StorageError(f"cannot write ({exc.strerror or exc})", path=path)


def atomic_write(path: Path, data: bytes | str, *, expected_hash: str | None | bool = False,
                 inside: Path | None = None) -> bool:
    """Replace `path` with `data` atomically. Returns False when nothing had to be written.

    `expected_hash`: when given (a hash, or None meaning "must not exist yet"),
    the file's current content must still have that hash, otherwise a person
    edited it since it was read and EditConflict is raised instead of
    overwriting their edit. The default False skips the check.
    `inside`: the agent folder, when `path` is in a folder of it that a
    sandboxed command may write: no folder on the way may be a link
    (StorageError), or a command could have pointed the write at a host folder.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    path = Path(path)
    if inside is not None:
        try:
            no_folder_link(inside, path)
        except FolderLink as exc:
            raise StorageError("is inside a linked folder, and the runtime never writes through one", path=path,
                               fix=f"replace the link {exc.filename} with a real folder") from None
    try:
        current = read_regular(path, sys.maxsize)
    except FileNotFoundError:
        current = None
    except IsADirectoryError as exc:
        raise StorageError("is a folder, expected a file", path=path) from exc
    except NotRegularFile as exc:
        raise StorageError("is a pipe, socket or device, expected a file", path=path,
                           fix="remove it, or write to another path") from exc
    if current == data:
        return False
    if expected_hash is not False:
        current_hash = content_hash(current) if current is not None else None
        if current_hash != expected_hash:
            raise EditConflict("changed on disk since it was read", path=path)
    folder = path.parent
    tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if current is not None:
            try:
                os.chmod(tmp, path.stat().st_mode & 0o7777)
            except OSError:
                pass
        os.replace(tmp, path)
    except BaseException as exc:  # Ctrl-C mid-write too: no temp file is left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _storage_error(path, exc) from exc
        raise
    fsync_dir(folder)
    return True


def remove_stale_temps(folders: Iterable[Path], *, older_than_s: float = STALE_TEMP_S) -> list[Path]:
    """Remove the temp files atomic_write left under `folders` (recursively) when its process was killed.

    Only files named as it names them, and only ones older than `older_than_s`: a command that writes
    without the run lock (a busy run's journal entry, doctor --fix) may be writing one right now.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for top in folders:
        for folder, _, files in os.walk(top):
            for name in files:
                if not TEMP_NAME.fullmatch(name):
                    continue
                path = Path(folder) / name
                with contextlib.suppress(OSError):
                    st = path.lstat()
                    if st.st_mtime < cutoff and stat.S_ISREG(st.st_mode):  # never a link or anything else
                        path.unlink()
                        removed.append(path)
    return removed


def append_line(path: Path, line: str) -> None:
    """Append one whole line (no newline inside) and fsync it.

    The caller holds the agent's write lock. If the file ends in a torn line
    (a crash mid-append), the new line starts on a fresh line so it is never
    glued to the torn one; readers skip the torn fragment.
    """
    if "\n" in line or "\r" in line:
        raise ValueError("a log line must not contain a newline")
    path = Path(path)
    payload = (line + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise _storage_error(path, exc) from exc
    created = False
    try:
        size = os.fstat(fd).st_size
        created = size == 0
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        # One write call per line: with O_APPEND concurrent appenders never interleave.
        try:
            written = os.write(fd, payload)
        except OSError:
            os.ftruncate(fd, size)
            raise
        if written != len(payload):
            os.ftruncate(fd, size)
            raise StorageError("short write while appending; the line was rolled back", path=path,
                               fix="free some disk space and run again")
        os.fsync(fd)
    except OSError as exc:
        raise _storage_error(path, exc) from exc
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)
