"""Memory search for the MCP server: the memory package's ranked search when present, else word matching.

`vault_agent.memory.search` (BM25 over the derived index) landed with the
memory issue; it is imported lazily so that a checkout or install without it
still answers, with the fallback: each note scored by how many query words its
name, description, tags and body contain (name counts most).
"""

from __future__ import annotations

import re
from typing import Any

from ..memory.catalog import Catalog
from ..vault.folder import AgentFolder

_WORD = re.compile(r"\w{2,}")
_BODY_BYTES = 65536


def search_memory(folder: AgentFolder, query: str, limit: int = 10) -> list[dict[str, Any]]:
    """Notes (and wiki pages, journal entries where the engine indexes them) matching `query`, best first."""
    try:
        from ..memory import search as engine
    except ImportError:
        return word_search(folder, query, limit)
    with Catalog(folder.paths) as catalog:
        catalog.sync()
        return [hit.as_dict() for hit in engine.search(catalog, query, limit=limit)]


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def word_search(folder: AgentFolder, query: str, limit: int = 10) -> list[dict[str, Any]]:
    """The fallback: path, type, name, description and a word-count score of each matching note."""
    wanted = _words(query)
    if not wanted:
        return []
    with Catalog(folder.paths) as catalog:
        catalog.sync()
        summaries = catalog.summaries()
    hits = []
    for s in summaries:
        name, description = _words(s.get("name") or ""), _words(s.get("description") or "")
        tags = _words(" ".join(str(t) for t in s.get("tags") or []))
        try:
            with open(folder.root / s["path"], "rb") as f:
                body = _words(f.read(_BODY_BYTES).decode("utf-8", "replace"))
        except OSError:
            body = set()
        score = sum(3 * (w in name) + 2 * (w in description) + 2 * (w in tags) + (w in body) for w in wanted)
        if score:
            hits.append({"path": s["path"], "type": s.get("type"), "name": s.get("name"),
                         "description": s.get("description"), "score": score})
    hits.sort(key=lambda h: (-h["score"], h["path"]))
    return hits[:limit]
