"""YAML frontmatter: split a Markdown file, parse its properties fast, render them back.

Parsing is on the hot path (listing 10k notes), and even libyaml costs ~85 µs
a note here. Most frontmatter is flat `key: value` lines and simple lists, so
those are parsed by a strict fast path that yields exactly what PyYAML's
SafeLoader would; anything else goes to libyaml (or pure-Python PyYAML).
tests/test_frontmatter.py checks the fast path against PyYAML property by
property.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import yaml

from ..errors import ConfigError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.M)


class FrontmatterError(ConfigError):
    """The frontmatter block is not valid YAML mapping."""


def split(text: str) -> tuple[str | None, str]:
    """Return (frontmatter text or None, body). Raises FrontmatterError on an unclosed block."""
    m = _OPEN.match(text)
    if not m:
        return None, text
    close = _CLOSE.search(text, m.end())
    if close is None:
        raise FrontmatterError("frontmatter starts with '---' but is never closed",
                               fix="add a line '---' after the properties")
    fm = text[m.end():close.start()]
    body = text[close.end():]
    if body.startswith("\r\n"):
        body = body[2:]
    elif body.startswith("\n"):
        body = body[1:]
    return fm, body


def parse(fm: str) -> dict[str, Any]:
    """Parse frontmatter text into a dict (key order kept)."""
    fast = _fast_parse(fm)
    if fast is not None:
        return fast
    try:
        data = yaml.load(fm, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontmatterError(f"invalid YAML in frontmatter{where}: {problem}",
                               fix="correct the YAML between the '---' lines") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontmatterError("frontmatter is not a list of 'key: value' properties",
                               fix="write the properties as 'key: value' lines")
    return {str(k): v for k, v in data.items()}


def dump(data: dict[str, Any]) -> str:
    """Render properties the way Obsidian writes them (block lists, ISO dates)."""
    if not data:
        return ""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=10_000)


def render(data: dict[str, Any], body: str) -> str:
    """A whole Markdown file: the frontmatter block (if any) followed by the body."""
    if not data:
        return body
    return f"---\n{dump(data)}---\n{body}"


# --- fast path -------------------------------------------------------------

_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):(?: +(.*?))? *$")
_ITEM_LINE = re.compile(r"^ *- +(.*?) *$")
_PLAIN_START_BAD = set("-?:,[]{}#&*!|>'\"%@`<=~+.")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}
_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}
_INT = re.compile(r"^(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[0-9]+\.[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NO = object()


def _scalar(raw: str, in_flow: bool = False) -> Any:
    """Resolve one scalar as PyYAML's SafeLoader would, or _NO when unsure."""
    if raw in _NULLS:
        return None
    first = raw[0]
    if first == '"':
        inner = raw[1:-1]
        if len(raw) >= 2 and raw[-1] == '"' and '"' not in inner and "\\" not in inner:
            return inner
        return _NO
    if first == "'":
        inner = raw[1:-1]
        if len(raw) >= 2 and raw[-1] == "'" and "'" not in inner:
            return inner
        return _NO
    if first in _PLAIN_START_BAD or "\t" in raw or " #" in raw or ": " in raw or raw.endswith(":"):
        return _NO
    if in_flow and any(c in raw for c in ",:[]{}"):
        return _NO
    if not in_flow and any(c in raw for c in "[]{}"):
        return _NO
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if first.isdigit():
        if _INT.match(raw):
            return int(raw)
        if _FLOAT.match(raw):
            return float(raw)
        if _DATE.match(raw):
            try:
                return _dt.date.fromisoformat(raw)
            except ValueError:
                return _NO
        return _NO
    return raw


def _fast_parse(fm: str) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    pending: str | None = None  # key whose value is a block list being read
    for line in fm.splitlines():
        if not line.strip():
            continue
        if pending is not None:
            item = _ITEM_LINE.match(line)
            if item:
                value = _scalar(item.group(1))
                if value is _NO or item.group(1) == "":
                    return None
                out[pending].append(value)
                continue
            if line[0] in " \t":
                return None
            if not out[pending]:
                out[pending] = None
            pending = None
        m = _KEY_LINE.match(line)
        if not m:
            return None
        key, raw = m.group(1), m.group(2) or ""
        if key in out or key in _TRUE or key in _FALSE or key in _NULLS:
            return None
        if raw == "":
            out[key] = []
            pending = key
            continue
        if raw.startswith("["):
            if not raw.endswith("]"):
                return None
            inner = raw[1:-1].strip()
            items: list[Any] = []
            if inner:
                for part in inner.split(","):
                    part = part.strip()
                    value = _scalar(part, in_flow=True) if part else _NO
                    if value is _NO:
                        return None
                    items.append(value)
            out[key] = items
            continue
        value = _scalar(raw)
        if value is _NO:
            return None
        out[key] = value
    if pending is not None and not out[pending]:
        out[pending] = None
    return out
