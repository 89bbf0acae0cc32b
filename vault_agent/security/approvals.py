"""Approvals: a person says yes or no before a risky tool call, at the terminal or in a Markdown file.

On a terminal the runtime asks there. Otherwise it writes
`approvals/<id>.md` in the agent folder (spec/approval.md) with
`status: pending`; a person answers by changing it to `approve` or `deny`
(in Obsidian, an editor, anything). No answer before `expires` denies the
call. The runtime then records the outcome in the file, and every decision
also lands in the tool-call log record. Tools can never write approvals/.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError
from ..vault import frontmatter
from ..vault.atomic import atomic_write

APPROVED, DENIED, EXPIRED, PENDING = "approved", "denied", "expired", "pending"
YES = frozenset({"approve", "approved", "yes", "y", "allow", "allowed", "ok", "true"})  # YAML reads yes as true
NO = frozenset({"deny", "denied", "no", "n", "refuse", "refused", "reject", "rejected", "false"})


@dataclass(frozen=True)
class ApprovalRequest:
    agent: str
    run_id: str
    tool: str
    action: str  # what would run: the command, the URL, the arguments
    reason: str  # why the policy asks

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.run_id}\x00{self.tool}\x00{self.action}".encode()).hexdigest()[:8]
        return f"{self.run_id}-{self.tool}-{digest}"


@dataclass(frozen=True)
class ApprovalAnswer:
    outcome: str  # approved | denied | expired | pending
    by: str  # terminal | file
    where: str | None = None  # the approval file, relative to the agent folder


class Approver(Protocol):
    def ask(self, request: ApprovalRequest) -> ApprovalAnswer: ...


_PROMPT_LOCK = threading.Lock()  # parallel tool calls ask one at a time


class TerminalApprover:
    """Asks on the terminal the runtime was started from."""

    def ask(self, request: ApprovalRequest) -> ApprovalAnswer:
        with _PROMPT_LOCK:
            sys.stderr.write(f"\n[{request.agent}] {request.tool} needs your approval: {request.reason}\n"
                             f"    {request.action}\nallow? [y/N] ")
            sys.stderr.flush()
            try:
                answer = sys.stdin.readline().strip().lower()
            except OSError:
                return ApprovalAnswer(PENDING, "terminal")
        return ApprovalAnswer(APPROVED if answer in YES else DENIED, "terminal")


class FileApprover:
    """Writes a pending-approval note and waits (polling) until a person edits it, or until it expires."""

    def __init__(self, agent_root: Path, timeout_s: float, poll_s: float = 0.5) -> None:
        self.folder = agent_root / "approvals"
        self.agent_root = agent_root
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def ask(self, request: ApprovalRequest) -> ApprovalAnswer:
        path = self.folder / f"{request.id}.md"
        where = path.relative_to(self.agent_root).as_posix()
        now = _dt.datetime.now().astimezone().replace(microsecond=0)
        expires = now + _dt.timedelta(seconds=self.timeout_s)
        meta = {"approval": request.id, "agent": request.agent, "run_id": request.run_id, "tool": request.tool,
                "status": PENDING, "requested": now.isoformat(), "expires": expires.isoformat(),
                "reason": request.reason}
        atomic_write(path, frontmatter.render(meta, render_body(request)))
        deadline = time.monotonic() + self.timeout_s
        while True:
            status = read_status(path)
            if status in (APPROVED, DENIED):
                self._close(path, status)
                return ApprovalAnswer(status, "file", where)
            if time.monotonic() >= deadline:
                self._close(path, EXPIRED)
                return ApprovalAnswer(EXPIRED, "file", where)
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def _close(self, path: Path, outcome: str) -> None:
        """Record the outcome in the file, keeping whatever the person wrote."""
        try:
            fm, body = frontmatter.split(path.read_text(encoding="utf-8"))
            meta = frontmatter.parse(fm) if fm is not None else {}
        except (OSError, UnicodeDecodeError, ConfigError):
            return
        meta["status"] = outcome
        meta["decided"] = _dt.datetime.now().astimezone().replace(microsecond=0).isoformat()
        atomic_write(path, frontmatter.render(meta, body))


def read_status(path: Path) -> str:
    """approved | denied | pending, from the file's `status:` (a missing or unreadable file is pending)."""
    try:
        fm, _ = frontmatter.split(path.read_text(encoding="utf-8"))
        value = str((frontmatter.parse(fm) if fm is not None else {}).get("status", "")).strip().lower()
    except (OSError, UnicodeDecodeError, ConfigError):
        return PENDING
    if value in YES:
        return APPROVED
    if value in NO:
        return DENIED
    return PENDING


def render_body(request: ApprovalRequest) -> str:
    fence = "~~~~" if "```" in request.action else "```"
    return (f"# Approve a {request.tool} call?\n\n"
            f"Agent `{request.agent}` (run {request.run_id}) wants to use `{request.tool}`:\n\n"
            f"{fence}text\n{request.action}\n{fence}\n\n"
            f"It needs a person's approval because it {request.reason.removeprefix('it ')}.\n\n"
            "To answer, change `status: pending` above to `status: approve` or `status: deny` and save.\n"
            "No answer before `expires` counts as deny.\n")


def default_approver(agent_root: Path, timeout_s: float) -> Approver:
    """The terminal when the runtime has one, otherwise an approval file in the vault."""
    if sys.stdin.isatty() and sys.stderr.isatty():
        return TerminalApprover()
    return FileApprover(agent_root, timeout_s)
