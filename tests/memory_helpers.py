"""Helpers for tests: minimal agent folders, and notes, wiki pages, journal days and skills written into them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

from vault_agent.memory.search import COMMON_SHARE
from vault_agent.vault.folder import AgentFolder
from vault_agent.vault.journal import JournalEntry, append_entry
from vault_agent.vault.layout import AgentPaths


def agent(tmp_path: Path, name: str = "a") -> AgentPaths:
    root = tmp_path / name
    (root / "memory").mkdir(parents=True)
    (root / "persona").mkdir()
    (root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\n---\n")
    return AgentPaths(root)


def bare_folder(tmp_path: Path, name: str) -> AgentFolder:
    """An agent folder at tmp_path/vault/NAME with only persona/ and a model.md."""
    root = tmp_path / "vault" / name
    (root / "persona").mkdir(parents=True)
    (root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-sonnet-5\n---\n")
    return AgentFolder(root)


def note(paths: AgentPaths, stem: str, name: str, body: str, *, type: str = "reference", description: str = "",
         extra: str = "") -> Path:
    path = paths.memory / f"{stem}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON strings are YAML strings: names with colons or quotes stay one value.
    desc = f"description: {json.dumps(description, ensure_ascii=False)}\n" if description else ""
    path.write_text(f"---\ntype: {type}\nname: {json.dumps(name, ensure_ascii=False)}\n{desc}{extra}---\n{body}\n",
                    encoding="utf-8")
    return path


def page(paths: AgentPaths, rel: str, text: str) -> Path:
    path = paths.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def journal_entry(paths: AgentPaths, when: dt.datetime, run_id: str, asked: str, did: str = "",
                  notes: list[str] | None = None, status: str = "ok", cost: str = "") -> Path:
    path = paths.journal_day(when.date())
    path.parent.mkdir(parents=True, exist_ok=True)
    append_entry(path, JournalEntry(ts=when, run_id=run_id, status=status, asked=asked, did=did,
                                    notes=notes or [], cost=cost), paths.name)
    return path


def files_snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root (dot-folders included) with its bytes and mtime: to prove nothing changed."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def damage(db: Path, table: str) -> None:
    """Overwrite the first page of `table` in the (closed) index file `db` with zeros, as a bad disk would."""
    with closing(sqlite3.connect(db)) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(bytes(size))


def outranked_notes(paths: AgentPaths, *, above: str, count: int = 70, notes: int = 4) -> list[str]:
    """`notes` notes that mention a kayak in passing, below `count` documents all about kayaks in `above`
    ("journal": journal entries; else a folder of notes or pages, such as "wiki" or "memory/private"), which
    are also the most recently updated. Returns the notes' paths, best first. Notes about other things keep
    "kayak" in under search.COMMON_SHARE of the documents, where search ranks it (search._affordable)."""
    for i in range(count):
        if above == "journal":
            journal_entry(paths, dt.datetime(2026, 10, 1 + i % 28, 9, i % 60), f"20261001T09{i:04d}-abcdef",
                          f"Kayak trip {i}: book the kayak and the kayak rack", did="Booked a kayak.")
        else:
            page(paths, f"{above}/kayak-{i:02d}.md", f"---\ntype: reference\nname: Kayak trip {i}\n"
                 f"description: The kayak trip {i}\nupdated: 2026-10-01\n---\nKayak, kayak rack and kayak rental.\n")
    found = []
    for i in range(notes):
        found.append(note(paths, f"lake-{i}", f"Saturday at the lake {i}", "We leave at nine from the station. "
                          "Bring sandwiches, fruit, water, a towel, sun cream, a hat, dry clothes for the ride home, "
                          "the first aid kit, the picnic blanket, a book for the afternoon and the kayak. "
                          "Back by six for dinner with the neighbours.",
                          extra="updated: 2024-01-01\n").relative_to(paths.root).as_posix())
    for i in range(int((count + notes) / COMMON_SHARE)):
        note(paths, f"other-{i:03d}", f"Other {i}", f"Gardening chores for week {i}.",
             extra=f"updated: 2025-{1 + i % 12:02d}-15\n")
    return found
