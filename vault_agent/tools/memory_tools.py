"""The memory tools: remember (a note saved when the run ends), memory_search and memory_read over the index."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Mapping

from ..capture import REMEMBER_SCHEMA, CaptureProblem, validate
from ..context.data import inert
from ..memory.catalog import Catalog
from ..memory.sources import KINDS
from ..vault.layout import NOTE_TYPES
from .base import BaseTool, ToolContext, ToolError, schema
from .files import page

if TYPE_CHECKING:
    from ..memory.search import NoteText

# One page of memory_read: with its wrapper, under the runtime's cut (artifacts.MAX_RESULT_CHARS), so a
# long note pages on with this tool's own offset rather than with read_file, which the agent may lack.
PAGE_CHARS = 16_000


class RememberTool(BaseTool):
    name = "remember"
    description = ("Save a memory note for later runs (a person can read and edit it). The same type and name "
                   "updates the existing note.")
    input_schema = REMEMBER_SCHEMA
    parallel_safe = False  # captures are kept in call order

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        result = validate(args, "tool")
        if isinstance(result, CaptureProblem):
            ctx.capture_problems.append(result)
            raise ToolError(result.message)
        ctx.captures.append(result)
        return f"Noted: {result.type} note {result.name!r} is saved when this run ends."


def _catalog(ctx: ToolContext) -> Catalog:
    """The run's synced catalog; a one-off call (vault-agent tools call) opens and syncs its own."""
    if ctx.catalog is None:
        ctx.catalog = Catalog(ctx.folder.paths)
        ctx.catalog.sync()
    return ctx.catalog


def _readable(ctx: ToolContext, rel: str) -> bool:
    return ctx.policy.paths.allows(rel, "read")


# Which other words to search with when a keyword search finds nothing that fits: the same advice
# everywhere a model is told about memory search (this tool, the prompt, the MCP server).
OTHER_WORDS = "the everyday name, the person or place involved"
# What a search's `type` may be, told the same way to the agent (memory_search) and to MCP clients.
TYPE_CHOICES = (f"a note type ({', '.join(NOTE_TYPES)}), or memory (every note), "
                + ", ".join(k for k in KINDS if k != "memory"))


class MemorySearch(BaseTool):
    name = "memory_search"
    description = ("Search your notes, wiki, journal and skills by keyword; best matches first, each with its "
                   "[[link]] for memory_read. A note is found by words it or its aliases contain (and close "
                   f"relatives of them), so when nothing fits, search again in other words: {OTHER_WORDS}. "
                   f"`type`: {TYPE_CHOICES}.")
    input_schema = schema({"query": {"type": "string", "minLength": 1},
                           "type": {"type": "string"},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 50}}, ["query"])
    parallel_safe = False  # one SQLite connection per run

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        from ..memory.search import outdated, search  # lazy: the search engine loads only when asked

        catalog = _catalog(ctx)
        hits = search(catalog, args["query"], type=args.get("type"), limit=args.get("limit", 8),
                      readable=lambda rel: _readable(ctx, rel))
        if not hits:
            return f"no matches for {args['query']!r}: try other words for the same thing"
        past = outdated(catalog, [(h.path, h.stem, h.name) for h in hits], today=_dt.date.today().isoformat())
        lines = []
        for h in hits:
            anchor = f" (run {h.anchor})" if h.anchor else ""
            status = f" ({past[h.path]})" if h.path in past else ""
            lines.append(f"- {h.link} {h.name} [{h.type or h.kind}]{anchor}{status} — {h.description}"
                         + (f"\n  {h.snippet}" if h.snippet else ""))
        return "\n".join(lines)


def not_current(catalog: Catalog, found: NoteText, ref: str) -> str:
    """The line that goes before a note read by `ref` when it is not current, else ""."""
    from ..memory.search import outdated

    if found.superseded_by:
        return f"(superseded: {ref} was replaced by [[{found.superseded_by}]])\n"
    past = outdated(catalog, [(found.path, found.stem, found.name)], today=_dt.date.today().isoformat())
    return f"(this note is {past[found.path]}: not current)\n" if found.path in past else ""


class MemoryRead(BaseTool):
    name = "memory_read"
    description = ("Read a note (or wiki page, skill, journal day) by [[wikilink]], stem, name or path. A long "
                   "one comes in pages: `offset` is the first line (from 1).")
    input_schema = schema({"name": {"type": "string", "minLength": 1,
                                    "description": "e.g. [[day-rate-2026]] or Day rate 2026"},
                           "offset": {"type": "integer", "minimum": 1}}, ["name"])
    parallel_safe = False  # one SQLite connection per run

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        from ..memory.search import read_note_by_ref

        catalog = _catalog(ctx)
        found = read_note_by_ref(ctx.folder.paths, catalog, args["name"])
        if found is None:
            raise ToolError(f"no note {args['name']!r}; find it with memory_search")
        if not _readable(ctx, found.path):
            raise ToolError(f"{found.path} is outside the read grant in tools.md")
        note = not_current(catalog, found, args["name"])
        text = page(found.text.strip(), found.path, args.get("offset", 1), 5000, PAGE_CHARS)
        return f"{note}<note path=\"{found.path}\">\n{inert(text)}\n</note>"
