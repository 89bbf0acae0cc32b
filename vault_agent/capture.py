"""The capture grammar: what the agent chose to remember, from its answer or its `remember` tool.

Grammar (spec/capture.md): a fenced block whose info string is `capture`
(YAML or JSON: one mapping or a list of them) or `atomic_capture`
(atomic-agents-stack's JSON form) in the model's final answer, or a call of
the `remember` tool. Blocks are removed from the reply the user sees. Only the
model's own final answer is parsed: tool results and recalled notes never are,
and a block copied verbatim from such untrusted text is refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from .vault.layout import NOTE_TYPES
from .vault.notes import as_date, link_refs, unique_folded

CAPTURE_INFOS = ("capture", "atomic_capture")
# What the model is told `aliases` are for: words a later question may use that the note does not (doc2query).
ALIASES_HINT = ("other words a person might use when they ask for this later: synonyms, the everyday word for the "
                "thing, the person or place it involves, what it is for; 3 to 8 short words or phrases that the "
                "note itself does not use")
MAX_NAME = 200
MAX_DESCRIPTION = 400
MAX_BODY = 20_000
MAX_ALIASES = 12
MAX_ALIAS = 100
_FIELDS = ("type", "name", "description", "body", "tags", "aliases", "confidence", "sources", "pinned",
           "supersedes", "expires")
# atomic-agents-stack spellings accepted in captures.
_ALIASES = {"content": "body", "text": "body", "expires_at": "expires"}
_CONFIDENCE_WORDS = ("low", "medium", "high")


@dataclass
class Capture:
    """One note the agent wants remembered."""

    type: str
    name: str
    description: str
    body: str
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    confidence: float | str | None = None
    sources: list[str] = field(default_factory=list)
    pinned: bool | None = None
    supersedes: list[str] = field(default_factory=list)
    expires: _dt.date | None = None
    origin: str = "block"  # "block" | "atomic_block" | "tool"

    def meta(self) -> dict[str, Any]:
        """Frontmatter for the note (without dates, which the writer sets)."""
        meta: dict[str, Any] = {"type": self.type, "name": self.name, "description": self.description}
        if self.tags:
            meta["tags"] = self.tags
        if self.aliases:
            meta["aliases"] = self.aliases
        if self.confidence is not None:
            meta["confidence"] = self.confidence
        if self.sources:
            meta["sources"] = self.sources
        if self.pinned is not None:
            meta["pinned"] = self.pinned
        if self.supersedes:
            meta["supersedes"] = [f"[[{s}]]" for s in self.supersedes]
        if self.expires is not None:
            meta["expires"] = self.expires
        return meta


@dataclass
class CaptureProblem:
    """A capture that could not be used: reported, never silently dropped, never fatal."""

    origin: str
    message: str
    snippet: str = ""

    def one_line(self) -> str:
        snippet = f" [{self.snippet}]" if self.snippet else ""
        return f"capture ({self.origin}): {self.message}{snippet}"


def _snippet(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _str_list(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ValueError(f"'{key}' must be a list of strings")


def _aliases(value: Any) -> list[str]:
    """Other words for the note, each once (ignoring case), within the limits."""
    aliases = unique_folded(" ".join(alias.split()) for alias in _str_list(value, "aliases"))
    if len(aliases) > MAX_ALIASES:
        raise ValueError(f"'aliases' has more than {MAX_ALIASES} entries")
    if any(len(a) > MAX_ALIAS for a in aliases):
        raise ValueError(f"each of 'aliases' must be at most {MAX_ALIAS} characters")
    return aliases


def validate(data: Any, origin: str) -> Capture | CaptureProblem:
    """Check one capture mapping against the note format; never raises."""
    if not isinstance(data, dict):
        return CaptureProblem(origin, "a capture must be a mapping of note fields", _snippet(repr(data)))
    data = {_ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    try:
        note_type = str(data.get("type") or "").strip().lower()
        if note_type not in NOTE_TYPES:
            raise ValueError(f"'type' must be one of {', '.join(NOTE_TYPES)}, got {data.get('type')!r}")
        name = " ".join(str(data.get("name") or "").split())
        if not name:
            raise ValueError("'name' is required")
        if len(name) > MAX_NAME:
            raise ValueError(f"'name' is longer than {MAX_NAME} characters")
        body = str(data.get("body") or "").strip()
        if len(body) > MAX_BODY:
            raise ValueError(f"'body' is longer than {MAX_BODY} characters")
        description = " ".join(str(data.get("description") or "").split())
        if not description:
            first = next((line.strip().lstrip("#").strip() for line in body.splitlines() if line.strip()), "")
            description = first[:160]
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 1] + "…"
        confidence = data.get("confidence")
        if isinstance(confidence, bool) or (confidence is not None and not isinstance(confidence, (int, float, str))):
            raise ValueError("'confidence' must be a number from 0 to 1 or low/medium/high")
        if isinstance(confidence, (int, float)) and not 0 <= confidence <= 1:
            raise ValueError("'confidence' must be between 0 and 1")
        if isinstance(confidence, str):
            confidence = confidence.strip().lower()
            if confidence not in _CONFIDENCE_WORDS:
                raise ValueError("'confidence' must be a number from 0 to 1 or low/medium/high")
        pinned = data.get("pinned")
        if pinned is not None and not isinstance(pinned, bool):
            raise ValueError("'pinned' must be true or false")
        expires = data.get("expires")
        if expires is not None:
            expires = as_date(expires)
            if expires is None:
                raise ValueError("'expires' must be a date YYYY-MM-DD")
        supersedes = [r for s in _str_list(data.get("supersedes"), "supersedes") for r in link_refs(s)]
        return Capture(
            type=note_type, name=name, description=description, body=body,
            tags=[t.lstrip("#") for t in _str_list(data.get("tags"), "tags")], aliases=_aliases(data.get("aliases")),
            confidence=confidence, sources=_str_list(data.get("sources"), "sources"), pinned=pinned,
            supersedes=supersedes, expires=expires, origin=origin,
        )
    except ValueError as exc:
        return CaptureProblem(origin, str(exc), _snippet(str(data.get("name") or data)))


def _normalize(block: str) -> str:
    return re.sub(r"\s+", " ", block).strip()


def fenced_blocks(text: str) -> list[tuple[str, str, int, int]]:
    """(info, content, first line, line after) of each capture fence, by a real Markdown parser."""
    if "capture" not in text:
        return []
    from markdown_it import MarkdownIt  # lazy: only answers that mention a capture pay for it

    out = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "fence" and token.map is not None:
            info = token.info.strip().split(maxsplit=1)[0].lower() if token.info.strip() else ""
            if info in CAPTURE_INFOS:
                out.append((info, token.content, token.map[0], token.map[1]))
    return out


_LOOSE_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,})[ \t]*(?:atomic_capture|capture)\b[^\n]*\n(.*?)^[ \t>]*\1",
                          re.M | re.S)


def untrusted_fingerprints(texts: list[str]) -> set[str]:
    """Normalized bodies of capture-like fences in untrusted text (notes, tool output).

    Deliberately looser than Markdown (inside HTML, quotes or lists too): here a
    false match only refuses a copy, while a miss would let planted text through.
    """
    return {_normalize(m.group(2)) for text in texts for m in _LOOSE_FENCE.finditer(text)}


def extract(answer: str, untrusted: set[str] | None = None) -> tuple[str, list[Capture], list[CaptureProblem]]:
    """Split the final answer into (reply without capture blocks, captures, problems)."""
    blocks = fenced_blocks(answer)
    if not blocks:
        return answer, [], []
    lines = answer.splitlines(keepends=True)
    drop: set[int] = set()
    captures: list[Capture] = []
    problems: list[CaptureProblem] = []
    for info, content, start, end in blocks:
        drop.update(range(start, end))
        origin = "atomic_block" if info == "atomic_capture" else "block"
        if untrusted and _normalize(content) in untrusted:
            problems.append(CaptureProblem(origin, "refused: copied verbatim from a note or tool output, "
                                                   "not written by the agent", _snippet(content)))
            continue
        try:
            data = json.loads(content) if info == "atomic_capture" else yaml.safe_load(content)
        except (ValueError, yaml.YAMLError) as exc:
            kind = "JSON" if info == "atomic_capture" else "YAML/JSON"
            reason = str(exc).splitlines()[0]
            problems.append(CaptureProblem(origin, f"not valid {kind}: {reason}", _snippet(content)))
            continue
        for item in data if isinstance(data, list) else [data]:
            result = validate(item, origin)
            (captures if isinstance(result, Capture) else problems).append(result)  # type: ignore[arg-type]
    reply = "".join(line for i, line in enumerate(lines) if i not in drop)
    reply = re.sub(r"\n{3,}", "\n\n", reply).strip()
    return reply, captures, problems


REMEMBER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(NOTE_TYPES),
                 "description": "user: about the person; feedback: how they want you to work; project: ongoing "
                                "work; decision: a settled choice and why; reference: facts to look up later"},
        "name": {"type": "string", "description": "Short title; the same type and name updates that note"},
        "description": {"type": "string", "description": "One line: what this note is for (shown in INDEX)"},
        "body": {"type": "string", "description": "The note itself, in Markdown"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "aliases": {"type": "array", "items": {"type": "string", "maxLength": MAX_ALIAS}, "maxItems": MAX_ALIASES,
                    "description": ALIASES_HINT},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "sources": {"type": "array", "items": {"type": "string"}},
        "pinned": {"type": "boolean", "description": "Always recall this note"},
        "supersedes": {"type": "array", "items": {"type": "string"},
                       "description": "Names of notes this one replaces"},
        "expires": {"type": "string", "description": "YYYY-MM-DD after which the note no longer applies"},
    },
    "required": ["type", "name", "body"],
    "additionalProperties": False,
}


class StreamFilter:
    """Passes streamed answer text through, holding back capture blocks so the terminal never shows them."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._line = ""
        self._in_capture: str | None = None  # the closing fence while inside a capture block
        self._partial_shown = False  # the current line's start was already written

    def __call__(self, piece: str) -> None:
        self._line += piece
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            self._emit(line + "\n")
        # A partial line that cannot become a fence line is shown at once.
        stripped = self._line.lstrip(" ")
        if self._in_capture is None and stripped and not stripped.startswith(("`", "~")) \
                and len(self._line) - len(stripped) < 4:
            self._write(self._line)
            self._line = ""
            self._partial_shown = True

    def _emit(self, line: str) -> None:
        if self._partial_shown:
            # The start of this line was already shown; the rest cannot open a fence.
            self._partial_shown = False
            self._write(line)
            return
        fence = _FENCE_OPEN.match(line)
        if self._in_capture is None:
            if fence and fence.group(2).strip().split(maxsplit=1)[:1] in (["capture"], ["atomic_capture"]):
                self._in_capture = fence.group(1)
                return
            self._write(line)
        elif line.strip().startswith(self._in_capture) and not line.strip().strip(self._in_capture[0]):
            self._in_capture = None

    def close(self) -> None:
        if self._line and self._in_capture is None:
            self._write(self._line)
        self._line = ""


_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
