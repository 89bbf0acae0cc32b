"""Chat transcripts: chats/<chat_id>.md, readable in Obsidian and parsed back to resume a conversation.

Each turn starts with an HTML comment marker (invisible in Obsidian's reading
view) so the text of a turn can contain any Markdown, headings included.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import frontmatter
from .atomic import atomic_write

_MARKER = re.compile(r"^<!-- vault-agent:turn (user|assistant)(?: run=(\S+))?(?: cost=(\S+))? -->\n", re.M)
_PREFIX = {"user": "**You:** ", "assistant": "**Agent:** "}


@dataclass
class ChatTurn:
    role: str  # "user" | "assistant"
    text: str
    run_id: str | None = None
    cost_usd: float | None = None


def chat_path(chats_dir: Path, chat_id: str) -> Path:
    return chats_dir / f"{chat_id}.md"


def render(chat_id: str, agent: str, started: _dt.datetime, turns: list[ChatTurn]) -> str:
    meta = {"chat_id": chat_id, "agent": agent, "started": started.isoformat(timespec="seconds")}
    parts = [f"# Chat {started:%Y-%m-%d %H:%M}\n"]
    for turn in turns:
        attrs = (f" run={turn.run_id}" if turn.run_id else "") + (
            f" cost={turn.cost_usd:.6f}" if turn.cost_usd is not None else "")
        parts.append(f"<!-- vault-agent:turn {turn.role}{attrs} -->\n{_PREFIX[turn.role]}{turn.text.strip()}\n")
    return frontmatter.render(meta, "\n".join(parts))


def save(path: Path, chat_id: str, agent: str, started: _dt.datetime, turns: list[ChatTurn],
         redact: Callable[[str], str] | None = None) -> None:
    """Write the transcript; `redact` (the agent folder's leak scan) runs over all of it first."""
    text = render(chat_id, agent, started, turns)
    atomic_write(path, redact(text) if redact is not None else text)


def load(path: Path) -> tuple[dict, list[ChatTurn]]:
    text = path.read_text(encoding="utf-8")
    fm, body = frontmatter.split(text)
    meta = frontmatter.parse(fm) if fm else {}
    turns: list[ChatTurn] = []
    marks = list(_MARKER.finditer(body))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        chunk = body[m.end():end].strip()
        prefix = _PREFIX[m.group(1)]
        if chunk.startswith(prefix):
            chunk = chunk[len(prefix):]
        turns.append(ChatTurn(m.group(1), chunk, m.group(2), float(m.group(3)) if m.group(3) else None))
    return meta, turns


def latest(chats_dir: Path) -> Path | None:
    files = sorted(p for p in chats_dir.glob("*.md") if not p.name.startswith("."))
    return files[-1] if files else None
