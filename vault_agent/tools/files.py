"""The file tools: read_file, write_file, edit_file, list_dir, search_files, confined to the path grants."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from ..errors import VaultAgentError
from ..security.decision import ALLOWED, Decision, Refused, refuse
from ..security.paths import PathRules, sensitive_reason
from ..vault.atomic import atomic_write, content_hash
from ..vault.reading import Beneath, FileTooLarge, NotRegularFile, is_link_error
from .base import BaseTool, ToolContext, ToolError, schema

READ_CHARS = 20_000  # one read_file answer, at most; page with offset
MAX_FILE_BYTES = 20_000_000
SEARCH_FILE_BYTES = 2_000_000
PATH = {"type": "string", "description": "Path relative to the agent folder, e.g. memory/INDEX.md"}


# A checked path is opened with Beneath: a folder on its way that a command turned into a link since the check
# (a sandboxed command may run beside a read tool) makes the open fail instead of leading out of the folder.
# Write tools run alone, never beside a command, so nothing can swap a folder between their check and write.
def _swapped(name: str) -> ToolError:
    return ToolError(f"{name}: it or a folder on its way became a link after it was checked; not followed")


def _read_text(root: Path, path: Path) -> str:
    try:
        with Beneath(root) as beneath:
            data = beneath.read(path.relative_to(root).as_posix(), MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ToolError(f"no such file: {path.name}") from None
    except IsADirectoryError:
        raise ToolError(f"{path.name} is a folder; use list_dir") from None
    except FileTooLarge:
        raise ToolError(f"{path.name} is larger than {MAX_FILE_BYTES // 1_000_000} MB") from None
    except NotRegularFile:
        raise ToolError(f"{path.name} is not a regular file (a pipe, socket or device)") from None
    except OSError as exc:
        if is_link_error(exc):
            raise _swapped(path.name) from None
        raise ToolError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise ToolError(f"{path.name} is a binary file")
    return data.decode("utf-8", errors="replace")


class _PathTool(BaseTool):
    mode = "read"

    def check(self, args: dict[str, Any], ctx: ToolContext) -> Decision:
        try:
            ctx.policy.paths.check(str(args.get("path", ".")), self.mode)
        except Refused as exc:
            return refuse(exc.reason)
        return ALLOWED

    def resolve(self, args: dict[str, Any], ctx: ToolContext) -> tuple[Path, str]:
        path = ctx.policy.paths.check(str(args.get("path", ".")), self.mode)
        return path, ctx.policy.paths.rel(path).as_posix() or "."


class ReadFile(_PathTool):
    name = "read_file"
    description = ("Read a text file in your folder. Long files come in pages: `offset` is the first line "
                   "(from 1), `limit` the number of lines.")
    input_schema = schema({"path": PATH, "offset": {"type": "integer", "minimum": 1},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 5000}}, ["path"])

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        path, rel = self.resolve(args, ctx)
        return page(_read_text(ctx.policy.paths.root, path), rel, args.get("offset", 1), args.get("limit", 2000))


def page(text: str, label: str, first: int, limit: int, max_chars: int = READ_CHARS) -> str:
    """Lines `first`.. of `text`, at most `limit` of them and about `max_chars`, saying where to read on."""
    lines = text.splitlines(keepends=True)
    if first > max(1, len(lines)):
        raise ToolError(f"{label} has {len(lines)} lines; offset {first} is past its end")
    chunk, size = [], 0
    for line in lines[first - 1:first - 1 + limit]:
        if size + len(line) > max_chars and chunk:
            break
        chunk.append(line)
        size += len(line)
    last = first - 1 + len(chunk)
    out = "".join(chunk)
    if last < len(lines):
        out += f"\n[lines {first}-{last} of {len(lines)}; read on with offset={last + 1}]"
    return out


class WriteFile(_PathTool):
    name = "write_file"
    description = "Create or replace a text file under a path tools.md lets you write (written atomically)."
    input_schema = schema({"path": PATH, "content": {"type": "string"}}, ["path", "content"])
    mode = "write"
    parallel_safe = False

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        path, rel = self.resolve(args, ctx)
        existed = path.exists()
        try:
            changed = atomic_write(path, args["content"], inside=ctx.policy.paths.root)
        except VaultAgentError as exc:
            raise ToolError(exc.message) from None
        action = "unchanged" if not changed else "replaced" if existed else "created"
        return f"{rel}: {action} ({len(args['content'].encode('utf-8')):,} bytes)"


class EditFile(_PathTool):
    name = "edit_file"
    description = ("Replace an exact piece of text in a file you may write. `old_text` must occur exactly once "
                   "unless `replace_all` is true.")
    input_schema = schema({"path": PATH, "old_text": {"type": "string", "minLength": 1},
                           "new_text": {"type": "string"}, "replace_all": {"type": "boolean"}},
                          ["path", "old_text", "new_text"])
    mode = "write"
    parallel_safe = False

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        path, rel = self.resolve(args, ctx)
        text = _read_text(ctx.policy.paths.root, path)
        count = text.count(args["old_text"])
        if count == 0:
            raise ToolError(f"old_text not found in {rel}; read the file and copy the text exactly")
        if count > 1 and not args.get("replace_all"):
            raise ToolError(f"old_text occurs {count} times in {rel}; add context to make it unique or set "
                            "replace_all")
        new = text.replace(args["old_text"], args["new_text"])
        try:
            # A person who saved the file since it was read keeps their edit: the write fails instead.
            atomic_write(path, new, expected_hash=content_hash(text.encode("utf-8")), inside=ctx.policy.paths.root)
        except VaultAgentError as exc:
            raise ToolError(f"{rel}: {exc.message}; read it again and retry") from None
        return f"{rel}: replaced {count if args.get('replace_all') else 1} occurrence(s)"


class ListDir(_PathTool):
    name = "list_dir"
    description = "List a folder in your agent folder (folders end in /). `recursive` lists the whole tree."
    input_schema = schema({"path": PATH, "recursive": {"type": "boolean"},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 5000}}, [])

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        path, rel = self.resolve(args, ctx)
        if not path.is_dir():
            raise ToolError(f"{rel} is not a folder")
        limit = args.get("limit", 500)
        out: list[str] = []
        with Beneath(ctx.policy.paths.root) as beneath:
            walked = _walk(ctx.policy.paths, beneath, path, recursive=bool(args.get("recursive")))
        for entry_rel, is_dir, _ in walked:
            out.append(entry_rel + ("/" if is_dir else ""))
            if len(out) >= limit:
                out.append(f"[… stopped at {limit} entries; list a subfolder]")
                break
        return "\n".join(out) or f"{rel} is empty"


class SearchFiles(_PathTool):
    name = "search_files"
    description = ("Search file contents under a folder (default: your whole folder) for a regular expression; "
                   "answers path:line: text.")
    input_schema = schema({"pattern": {"type": "string", "minLength": 1}, "path": PATH,
                           "glob": {"type": "string", "description": "only files matching this, e.g. *.md"},
                           "ignore_case": {"type": "boolean"},
                           "max_results": {"type": "integer", "minimum": 1, "maximum": 1000}}, ["pattern"])

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        path, _ = self.resolve(args, ctx)
        try:
            regex = re.compile(args["pattern"], re.I if args.get("ignore_case") else 0)
        except re.error as exc:
            raise ToolError(f"invalid regular expression: {exc}") from None
        limit = args.get("max_results", 100)
        glob = args.get("glob")
        hits: list[str] = []
        rules = ctx.policy.paths
        with Beneath(rules.root) as beneath:
            start = rules.rel(path).as_posix()
            files = [(start, False, start)] if path.is_file() else _walk(rules, beneath, path, True)
            for rel, is_dir, target in files:
                if is_dir or (glob and not fnmatch.fnmatch(PurePosixPath(rel).name, glob)
                              and not fnmatch.fnmatch(rel, glob)):
                    continue
                try:
                    data = beneath.read(target, SEARCH_FILE_BYTES)
                except OSError:  # unreadable, too large, a pipe, or a folder on its way became a link: skipped
                    continue
                if b"\x00" in data[:8192]:
                    continue
                for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                    if regex.search(line[:4000]):
                        hits.append(f"{rel}:{n}: {line.strip()[:300]}")
                        if len(hits) >= limit:
                            return "\n".join(hits) + f"\n[… stopped at {limit} matches]"
        return "\n".join(hits) or "no matches"


def _walk(rules: PathRules, beneath: Beneath, folder: Path, recursive: bool) -> list[tuple[str, bool, str]]:
    """(path relative to the agent folder, is folder, the checked path to read for it), sorted; credential
    files and links that lead out of the grant left out.

    Folders are listed through `beneath`: a subfolder that became a link
    after it was checked is left out; for `folder` itself, ToolError.
    """
    start = rules.rel(folder).as_posix()
    out: list[tuple[str, bool, str]] = []
    stack = [start]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(beneath.scandir(current), key=lambda e: e.name)
        except OSError as exc:
            if current == start and is_link_error(exc):
                raise _swapped(start) from None
            continue
        subdirs = []
        for entry in entries:
            rel = entry.name if current == "." else f"{current}/{entry.name}"
            try:
                target = rules.check(rel, "read")
            except (Refused, ValueError):
                continue  # a credential file, or a link that leads out of the grant
            if sensitive_reason(PurePosixPath(rel)):
                continue
            is_dir = target.is_dir()
            out.append((rel, is_dir, rules.rel(target).as_posix()))
            if is_dir and recursive and not entry.is_symlink():
                subdirs.append(rel)
        stack.extend(subdirs)
    return sorted(out)
