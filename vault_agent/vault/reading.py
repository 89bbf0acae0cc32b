"""Reading a file that could be anything: regular files only, never blocking, up to a size cap; opening
paths in the agent folder without following a link on the way; and which file a symlink there may stand for.

A folder a person or an agent can write to may hold a named pipe called
`note.md` (a plain open() of it blocks until some writer opens the pipe, and
the run, the index or the tool call hangs with it), a link to a file the
agent must not read, or a folder that a sandboxed command turns into a link
while a tool running beside it opens a path it has just checked.
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


class FolderLink(LinkOutside):
    """A folder on the way to a file is a symlink: never followed (Beneath)."""


class FileTooLarge(OSError):
    """The file is over the caller's size cap; `size` is its size in bytes."""

    def __init__(self, path: Path | str, size: int) -> None:
        super().__init__(errno.EFBIG, "file too large", str(path))
        self.size = size


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
# Opening a link with O_NOFOLLOW fails with ELOOP (Linux, macOS) or EMLINK (FreeBSD).
LINK_ERRNOS = (errno.ELOOP, errno.EMLINK)
# Where os.open takes a folder's fd (not on Windows), paths are opened one folder at a time.
_BY_DIR_FD = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of the regular file at `path`.

    Raises FileNotFoundError, IsADirectoryError, NotRegularFile, FileTooLarge
    (over `max_bytes`) or any other OSError of opening and reading. Reads the
    size the file had when opened: a file growing meanwhile is read short, and
    callers that keep its stat see it differ next time and read it again.
    """
    return _read_fd(os.open(path, _READ), path, max_bytes)


def _read_fd(fd: int, path: Path | str, max_bytes: int) -> bytes:
    """read_regular for a file already opened as `fd`, which it closes."""
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


def inode(path: Path | str) -> int | None:
    """The inode `path` names now (following links), None when there is none: how a process tells that a file
    or folder it holds open was deleted or replaced."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def utf8_name(name: str) -> bool:
    """Whether a name as os gives it is UTF-8 text. Other bytes come as lone surrogates ("caf\\udce9.md"),
    which SQLite, JSON and the UTF-8 files that list notes cannot hold."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(path: Path | str) -> str:
    """`path` printable, its bytes that are not UTF-8 written as \\xe9."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def read_inside(root: Path, path: Path, max_bytes: int, beneath: Beneath | None = None) -> bytes:
    """read_regular for `path`, a file in the agent folder `root`, opened through `beneath` (a Beneath of `root`;
    one of its own when None): no folder on the way may be a link, and a link as the file itself is followed
    only as far as link_inside allows (LinkOutside otherwise). A plain file costs one open: the link rule is
    consulted only when opening without following links fails."""
    # By string: Path.relative_to was most of the cost of reading a small note.
    base, full = os.fspath(root), os.fspath(path)
    if not (full.startswith(base) and full[len(base):len(base) + 1] == os.sep):
        raise LinkOutside(errno.EPERM, "not inside the agent folder", full)
    rel = full[len(base) + 1:].replace(os.sep, "/")
    own = beneath is None
    opener = Beneath(root) if beneath is None else beneath
    try:
        try:
            return opener.read(rel, max_bytes)
        except LinkOutside:
            raise
        except OSError as exc:
            if exc.errno not in LINK_ERRNOS:
                raise
        target = link_inside(root, path)
        if target is None:
            raise LinkOutside(errno.EPERM, "links outside the agent folder's Markdown files", str(path))
        return opener.read(target.relative_to(os.path.realpath(root)).as_posix(), max_bytes)
    finally:
        if own:
            opener.close()


def no_folder_link(root: Path, path: Path) -> None:
    """FolderLink when a folder between the agent folder `root` and `path` is a symlink (a missing one is not).

    For the runtime's own writes into the agent folder. They never run beside
    a sandboxed command (write tools and memory writes run alone or after the
    tool loop), so nothing can swap a folder between this check and the write;
    reads, which do run beside commands, open through Beneath instead.
    """
    folder = root
    for name in path.relative_to(root).parts[:-1]:
        folder = folder / name
        if os.path.islink(folder):
            raise FolderLink(errno.ELOOP, "a folder on the way is a link", str(folder))


def is_link_error(exc: OSError) -> bool:
    """Whether opening through Beneath failed on a link: a folder on the way, or the file itself."""
    return isinstance(exc, LinkOutside) or exc.errno in LINK_ERRNOS


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def rel_parts(rel: str) -> tuple[str, ...]:
    """The names in `rel`, a path relative to the agent folder with "/" between names ("." for the folder);
    LinkOutside for an absolute path or one with "..", "." or an empty name in it."""
    if rel == ".":
        return ()
    parts = tuple(rel.split("/"))
    if any(p in ("", ".", "..") for p in parts):
        raise LinkOutside(errno.EPERM, "not a plain path inside the agent folder", rel)
    return parts


class Beneath:
    """The agent folder, for opening paths inside it without following a link on any folder on the way.

    A tool checks a path (security.paths resolves its links and refuses one
    that leads out) and then opens it. A sandboxed command running beside the
    tool can turn a checked folder into a link to a host folder in between,
    and a plain open would follow it. Here every folder on the way is opened
    inside the one before it with O_NOFOLLOW, so that open fails with
    FolderLink instead. The file itself is opened with O_NOFOLLOW too: a link
    there fails with an errno in LINK_ERRNOS, for the caller's own rule.

    The folders of the last path opened stay open until the next open or
    close(): files opened in path order cost one open each.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = os.fspath(root)
        self._chain: list[tuple[str, int]] = []  # (name, fd) from the agent folder ("") down

    def __enter__(self) -> Beneath:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._chain:
            os.close(self._chain.pop()[1])

    def _folder(self, parts: tuple[str, ...]) -> int:
        """An fd of the folder at `parts`, valid until this Beneath opens another."""
        if not self._chain:
            self._chain.append(("", os.open(self.root, os.O_RDONLY | _DIRECTORY)))
        kept = 0  # how many of the open folders below the agent folder lead to this one too
        while kept < len(parts) and kept + 1 < len(self._chain) and self._chain[kept + 1][0] == parts[kept]:
            kept += 1
        while len(self._chain) > kept + 1:
            os.close(self._chain.pop()[1])
        for name in parts[kept:]:
            try:
                fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=self._chain[-1][1])
            except OSError as exc:
                # With O_DIRECTORY, Linux reports a link as ENOTDIR.
                if exc.errno in LINK_ERRNOS or (exc.errno == errno.ENOTDIR and _is_link(name, self._chain[-1][1])):
                    raise FolderLink(exc.errno, "a folder on the way is a link",
                                     os.path.join(self.root, *parts)) from None
                raise
            self._chain.append((name, fd))
        return self._chain[-1][1]

    def open(self, rel: str, flags: int) -> int:
        """An fd of `rel` opened with `flags` (plus O_NOFOLLOW); the caller closes it."""
        if not _BY_DIR_FD:
            return os.open(os.path.join(self.root, rel), flags)
        parts = rel_parts(rel)
        if not parts:
            return os.open(self.root, flags)
        return os.open(parts[-1], flags | _NOFOLLOW, dir_fd=self._folder(parts[:-1]))

    def scandir(self, rel: str) -> list[os.DirEntry[str]]:
        """The entries of the folder `rel`; FolderLink when it or a folder on its way is a link."""
        if not _BY_DIR_FD:
            with os.scandir(os.path.join(self.root, rel)) as found:
                return list(found)
        with os.scandir(self._folder(rel_parts(rel))) as found:
            return list(found)

    def read(self, rel: str, max_bytes: int) -> bytes:
        """read_regular for `rel`, opened as `open` does."""
        return _read_fd(self.open(rel, _READ), f"{self.root}{os.sep}{rel}", max_bytes)
