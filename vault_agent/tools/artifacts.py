"""Large tool outputs: the model sees the head and a pointer; the whole (scrubbed) text goes to .vault-agent/artifacts/.

Artifacts are derived state like the rest of `.vault-agent/` (safe to
delete); read_file may always read them, so the model can page on with
`offset`. Run folders older than KEEP_DAYS are pruned when a runtime starts.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from ..vault.atomic import atomic_write

MAX_RESULT_CHARS = 20_000  # a result longer than this is cut for the model
HEAD_CHARS = 12_000  # what the model sees of a cut result
KEEP_DAYS = 7


def folder(state: Path) -> Path:
    return state / "artifacts"


def cut(text: str, state: Path, agent_root: Path, run_id: str, n: int, tool: str) -> tuple[str, str | None]:
    """(what the model sees, artifact path relative to the agent folder or None when nothing was cut)."""
    if len(text) <= MAX_RESULT_CHARS:
        return text, None
    path = folder(state) / re.sub(r"[^\w.-]", "_", run_id) / f"{n:03d}-{tool}.txt"
    atomic_write(path, text)
    rel = path.relative_to(agent_root).as_posix()
    head = text[:HEAD_CHARS]
    line = head.count("\n") + 1
    return (f"{head}\n[output cut: showing {len(head):,} of {len(text):,} characters. The full output is in {rel}; "
            f"read on with read_file path={rel} offset={line}]"), rel


def prune(state: Path, keep_days: float = KEEP_DAYS) -> None:
    root = folder(state)
    if not root.is_dir():
        return
    cutoff = time.time() - keep_days * 86400
    for run in root.iterdir():
        try:
            if run.is_dir() and run.stat().st_mtime < cutoff:
                shutil.rmtree(run, ignore_errors=True)
        except OSError:
            continue
