"""Progressive disclosure: past a few tools, the model sees the core ones plus tool_search and tool_call.

Tool definitions are sent with every request; 40 of them cost thousands of
prompt tokens on every call. Above THRESHOLD granted tools the model is
offered the CORE tools it needs on almost every run, `tool_search` (which
describes matching tools and makes them directly callable from the next
turn on) and `tool_call` (call any granted tool by name right away). Both go
through the same pipeline as a direct call: disclosure changes what the model
is shown, never what it is allowed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from ..models.base import ToolSpec
from .base import BaseTool, Tool, ToolContext, schema

THRESHOLD = 12
CORE = ("remember", "memory_search", "memory_read", "read_file", "list_dir")
SEARCH, CALL = "tool_search", "tool_call"


class Disclosure:
    """Which granted tools the model currently sees."""

    def __init__(self, granted: dict[str, Tool], threshold: int = THRESHOLD) -> None:
        self.granted = granted
        self.active = len(granted) > threshold
        self.visible: list[str] = [n for n in granted if n in CORE] if self.active else list(granted)
        self.tools: dict[str, Tool] = {SEARCH: ToolSearch(self), CALL: ToolCallTool(self)} if self.active else {}

    def hidden(self) -> list[str]:
        return [n for n in self.granted if n not in self.visible]

    def specs(self) -> list[ToolSpec]:
        shown = [self.granted[n] for n in self.visible] + list(self.tools.values())
        return [ToolSpec(t.name, t.description, t.input_schema) for t in shown]

    def reveal(self, names: list[str]) -> None:
        self.visible.extend(n for n in names if n in self.granted and n not in self.visible)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 1}


class ToolSearch(BaseTool):
    name = SEARCH
    input_schema = schema({"query": {"type": "string", "minLength": 1},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 20}}, ["query"])

    def __init__(self, disclosure: Disclosure) -> None:
        self.disclosure = disclosure

    @property
    def description(self) -> str:  # type: ignore[override]
        return ("Find more of your tools by what they do; the ones found become callable directly. Not shown yet: "
                + (", ".join(self.disclosure.hidden()) or "none") + ".")

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        query = _words(args["query"])
        scored = []
        for name in self.disclosure.hidden():
            tool = self.disclosure.granted[name]
            words = _words(name.replace("_", " ")) | _words(tool.description)
            score = len(query & words) + (3 if name in args["query"] else 0)
            if score:
                scored.append((-score, name))
        found = [name for _, name in sorted(scored)[: args.get("limit", 5)]]
        if not found:
            return f"no tool matches {args['query']!r}; not shown yet: {', '.join(self.disclosure.hidden()) or 'none'}"
        self.disclosure.reveal(found)
        return "\n\n".join(f"## {n}\n{self.disclosure.granted[n].description}\narguments (JSON Schema): "
                           f"{json.dumps(self.disclosure.granted[n].input_schema)}" for n in found)


class ToolCallTool(BaseTool):
    """Only its schema is used: the runtime unwraps a tool_call and runs the named tool through the pipeline."""

    name = CALL
    description = "Call any of your tools by name, e.g. one tool_search found: {name, arguments}."
    input_schema = schema({"name": {"type": "string", "minLength": 1}, "arguments": {"type": "object"}},
                          ["name", "arguments"])

    def __init__(self, disclosure: Disclosure) -> None:
        self.disclosure = disclosure
