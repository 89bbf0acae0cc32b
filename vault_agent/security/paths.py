"""Path rules: a tool's path argument becomes a resolved path inside the agent's grants, or a refusal.

Symlinks are resolved (for a file that does not exist yet, its deepest
existing parent), so a link cannot point a grant elsewhere; null bytes, `..`
escapes and well-known credential files are refused whatever the grant says.
Some paths are never writable by a tool, because writing them would widen the
agent's own grant or rewrite its history: tools.md, model.md, approvals/,
tools/, log/, journal/ and .vault-agent/. wiki/ is writable only through a
write grant that names it (or a path inside it).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .decision import Refused

# File names that hold credentials in the wild: refused for reading and writing.
SENSITIVE_NAMES = frozenset({
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk",
    "credentials.json", "credentials", ".netrc", "_netrc", ".npmrc", ".pypirc", ".git-credentials", ".pgpass",
    ".htpasswd", ".envrc", ".secrets.enc", "master.key", "service-account.json",
})
SENSITIVE_SUFFIXES = (".pem", ".p12", ".pfx", ".kdbx", ".keystore", ".jks")
SENSITIVE_DIRS = frozenset({".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store"})
# Relative to the agent folder; a tool never writes these (see the module docstring).
# schedule.md and PAUSED.md too: an agent that could write them would give itself work the daemon runs.
PROTECTED = ("tools.md", "model.md", "schedule.md", "PAUSED.md", "approvals", "tools", "log", "journal", "chats",
             ".vault-agent")
WIKI = "wiki"
ARTIFACTS = ".vault-agent/artifacts"


def sensitive_reason(rel: PurePosixPath) -> str | None:
    """Why a path (relative to the agent folder) is a credential file, or None."""
    for part in rel.parts[:-1]:
        if part in SENSITIVE_DIRS:
            return f"{part}/ holds credentials"
    name = rel.name
    if name in SENSITIVE_NAMES or name == ".env" or name.startswith(".env.") or name.endswith(SENSITIVE_SUFFIXES):
        return f"{name} is a credentials file"
    if name in SENSITIVE_DIRS:
        return f"{name}/ holds credentials"
    return None


def resolve_beneath(root: Path, raw: str) -> Path:
    """`raw` (relative to `root`, or absolute) with every symlink resolved; refused when it leaves `root`.

    `root` must already be resolved. For a path that does not exist yet, the
    deepest existing parent is resolved and the rest appended, so a symlinked
    folder cannot smuggle a new file outside.
    """
    if "\x00" in raw:
        raise Refused("the path contains a null byte")
    if not raw.strip():
        raise Refused("the path is empty")
    path = Path(raw).expanduser() if raw.startswith("~") else Path(raw)
    if not path.is_absolute():
        path = root / path
    existing, rest = path, []
    while not os.path.lexists(existing):
        rest.append(existing.name)
        if existing.parent == existing:
            break
        existing = existing.parent
    if any(part in ("..", "") for part in rest):
        raise Refused(f"{raw!r} uses '..' below a folder that does not exist")
    resolved = Path(os.path.realpath(existing)).joinpath(*reversed(rest))
    if resolved != root and root not in resolved.parents:
        via = "a symlink" if Path(os.path.normpath(path)).is_relative_to(root) else "'..' or an absolute path"
        raise Refused(f"{raw!r} leads outside the agent folder (through {via})")
    return resolved


class PathRules:
    """Read and write grants of one agent, as resolved folders."""

    def __init__(self, root: Path, read: list[str], write: list[str]) -> None:
        self.root = Path(os.path.realpath(root))
        self.read = [self._grant(p) for p in read]
        self.write = [self._grant(p) for p in write]
        self.wiki_writable = any(self._within(g, self.root / WIKI) for g in self.write)
        # Cut tool output saved by the runtime: readable whenever read_file is, to page through it.
        self.read.append(self.root / ARTIFACTS)

    def _grant(self, raw: str) -> Path:
        try:
            return resolve_beneath(self.root, raw)
        except Refused as exc:
            raise ValueError(exc.reason) from None

    @staticmethod
    def _within(path: Path, folder: Path) -> bool:
        return path == folder or folder in path.parents

    def rel(self, path: Path) -> PurePosixPath:
        return PurePosixPath(path.relative_to(self.root).as_posix())

    def check(self, raw: str, mode: str) -> Path:
        """The resolved path for reading (mode "read") or writing ("write"); raises Refused otherwise."""
        path = resolve_beneath(self.root, raw)
        rel = self.rel(path)
        reason = sensitive_reason(rel)
        if reason:
            raise Refused(f"{raw!r} is refused: {reason}")
        grants = self.read + self.write if mode == "read" else self.write
        if not any(self._within(path, g) for g in grants):
            shown = ", ".join(self.rel(g).as_posix() or "." for g in (self.read[:-1] if mode == "read" else grants))
            raise Refused(f"{rel.as_posix() or '.'} is outside the {mode} grant in tools.md "
                          f"(granted: {shown or 'nothing'})")
        if mode == "write":
            top = rel.parts[0] if rel.parts else ""
            if rel.as_posix() in PROTECTED or top in PROTECTED:
                raise Refused(f"{rel.as_posix()} is never writable by a tool: it holds the agent's grants, "
                              "history or derived state")
            if top == WIKI and not self.wiki_writable:
                raise Refused("wiki/ is read-only unless tools.md's write grant names it")
        return path

    def allows(self, raw: str, mode: str) -> bool:
        """Whether `check` would pass: for what the runtime itself shows the model (recall, INDEX, MCP)."""
        try:
            self.check(raw, mode)
        except Refused:
            return False
        return True

    def readable_roots(self) -> list[Path]:
        return list(self.read)

    def writable_roots(self) -> list[Path]:
        return list(self.write)

    def read_only_inside_writable(self) -> list[Path]:
        """Paths under a write grant that must stay read-only, whether they exist yet or not (the sandbox
        re-mounts them so, and holds the place of those that do not exist)."""
        out = [self.root / p for p in PROTECTED]
        if not self.wiki_writable:
            out.append(self.root / WIKI)
        return [p for p in out if any(self._within(p, g) for g in self.write)]
