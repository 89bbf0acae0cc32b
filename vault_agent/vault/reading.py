"""Reading a file that could be anything: regular files only, never blocking, up to a size cap; and which
file a symlink in the agent folder may stand for.

A folder a person or an agent can write to may hold a named pipe called
`note.md` (a plain open() of it blocks until some writer opens the pipe, and
the run, the index or the tool call hangs with it) or a link to a file the
agent must not read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """A pipe, socket or device where a file was expected."""


class LinkOutside(OSError):
    """A symlink that leads somewhere link_inside does not allow."""


class FileTooLarge(OSError):
    """The file is over the caller's size cap; `size` is its size in bytes."""

    def __init__(self, path: Path | str, size: int) -> None:
        super().__init__(errno.EFBIG, "file too large", str(path))
        self.size = size


def read_regular(path: Path | str, max_bytes: int, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file at `path`.

    Raises FileNotFoundError, IsADirectoryError, NotRegularFile, FileTooLarge
    (over `max_bytes`) or any other OSError of opening and reading. Reads the
    size the file had when opened: a file growing meanwhile is read short, and
    callers that keep its stat see it differ next time and read it again.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > max_bytes:
            raise FileTooLarge(path, st.st_size)
        chunks, left = [], st.st_size
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 30))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def link_inside(root: Path, path: Path) -> Path | None:
    """What to read for `path`, a file in the agent folder `root`: `path` itself when it is not a symlink; when it
    is, the file it leads to if that is a Markdown file inside `root` and outside its dot-folders; else None.

    A link must not make visible what the agent could not read anyway: a
    sandboxed command that may write in wiki/ could otherwise link
    wiki/key.md to ~/.ssh/id_ed25519 and have the index, unsandboxed, read it
    into search results and prompts. read_inside applies it when reading.
    """
    if not os.path.islink(path):
        return path
    target = Path(os.path.realpath(path))
    try:
        rel = target.relative_to(os.path.realpath(root))
    except ValueError:
        return None
    if target.suffix != ".md" or any(part.startswith(".") for part in rel.parts):
        return None
    return target


def read_inside(root: Path, path: Path, max_bytes: int) -> bytes:
    """read_regular for `path`, a file in the agent folder `root`, where a link is followed only as far as
    link_inside allows (LinkOutside otherwise). A plain file costs no more than read_regular: the link rule is
    consulted only when opening without following links fails."""
    try:
        return read_regular(path, max_bytes, follow_symlinks=False)
    except OSError:
        if not os.path.islink(path):
            raise
    target = link_inside(root, path)
    if target is None:
        raise LinkOutside(errno.EPERM, "links outside the agent folder's Markdown files", str(path))
    return read_regular(target, max_bytes, follow_symlinks=False)
