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


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    # Obsidian does not understand YAML anchors: write a shared date object twice instead of "&id001".
    def ignore_aliases(self, data: Any) -> bool:
        return True


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
    except Exception as exc:
        # PyYAML lets Python's own error out of a value it parsed but cannot build: ValueError for 2026-02-30 or
        # `!!int abc`, AttributeError for a malformed `!!timestamp` ... One bad note must not stop a listing.
        raise _bad_value(fm, exc) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontmatterError("frontmatter is not a list of 'key: value' properties",
                               fix="write the properties as 'key: value' lines")
    return {str(k): v for k, v in data.items()}


def _bad_value(fm: str, exc: Exception) -> FrontmatterError:
    """The error for a value PyYAML parsed but could not build, named by its line when building the values one
    at a time tells which."""
    where = ""
    try:
        node = yaml.compose(fm, Loader=_Loader)
        for _, value in node.value if isinstance(node, yaml.MappingNode) else ():
            try:
                yaml.constructor.SafeConstructor().construct_object(value, deep=True)
            except Exception:  # the same errors as parse's
                line = value.start_mark.line
                where = f" at line {line + 2} ({fm.splitlines()[line].strip()!r})"
                break
    except yaml.YAMLError:
        pass
    # A ValueError says what is wrong ("day is out of range for month"); the rest only how PyYAML failed.
    reason = f": {exc}" if isinstance(exc, ValueError) else ""
    return FrontmatterError(f"invalid value in frontmatter{where}{reason}",
                            fix="correct the value (dates are YYYY-MM-DD, with a real day)")


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

_KEY_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").fullmatch
_PLAIN_START_BAD = set("-?:,[]{}#&*!|>'\"%@`<=~+.")
# YAML 1.1 words PyYAML resolves to null/bool (y/n are not among them in PyYAML).
_WORDS: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL")),
    **dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"), False),
}
_INT = re.compile(r"^(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[0-9]+\.[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NO = object()
# Plain scalars that YAML could read otherwise (comments, mappings, flow collections).
_BLOCK_BAD = re.compile(r"[\t\[\]{}]| #|: |:$")
_FLOW_BAD = re.compile(r"[\t\[\]{},:]| #")


def _scalar(raw: str, in_flow: bool = False) -> Any:
    """Resolve one scalar as PyYAML's SafeLoader would, or _NO when unsure."""
    word = _WORDS.get(raw, _NO)
    if word is not _NO:
        return word
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
    if first in _PLAIN_START_BAD or (_FLOW_BAD if in_flow else _BLOCK_BAD).search(raw):
        return _NO
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
        if not line or line.isspace():
            continue
        if pending is not None:
            stripped = line.lstrip(" ")
            if stripped.startswith("- "):
                raw = stripped[2:].strip(" ")
                value = _scalar(raw) if raw else _NO
                if value is _NO:
                    return None
                out[pending].append(value)
                continue
            if line[0] in " \t":
                return None
            if not out[pending]:
                out[pending] = None
            pending = None
        key, sep, rest = line.partition(":")
        if not sep or not _KEY_OK(key) or (rest and rest[0] != " ") or key in out or key in _WORDS:
            return None
        raw = rest.strip(" ")
        if raw == "":
            out[key] = []
            pending = key
            continue
        if raw[0] == "[":
            if raw[-1] != "]":
                return None
            inner = raw[1:-1].strip(" ")
            items: list[Any] = []
            if inner:
                for part in inner.split(","):
                    part = part.strip(" ")
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
