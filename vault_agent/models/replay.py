"""Recorded transcripts: ReplayModel plays one back turn by turn; record_transcript writes one.

Format (YAML, or JSON when the file ends in .json): spec/replay.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..vault.atomic import atomic_write
from .base import Completion, CompletionRequest, ModelResponseError, OnText, ToolCall, Usage

PROVIDER = "replay"
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_FORMAT_FIX = "see spec/replay.md for the transcript format"


class ReplayModel:
    """Answers each complete() with the transcript's next turn, whatever was asked; no network, no key."""

    provider = PROVIDER

    def __init__(self, path: Path, model_name: str = "replay") -> None:
        self.path = Path(path)
        data = _load(self.path)
        self.model = data.get("model") or model_name
        self.description = str(data.get("description") or "")
        self._turns = [_turn(self.path, n, raw) for n, raw in enumerate(data["turns"], start=1)]
        self._next = 0

    def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        if self._next >= len(self._turns):
            raise ModelResponseError(f"replay transcript {self.path} has no more turns",
                                     provider=self.provider, model=self.model,
                                     fix="record a longer transcript, or ask something the recording covers")
        text, calls, usage = self._turns[self._next]
        self._next += 1
        if on_text is not None and text:
            on_text(text)
        return Completion(text, list(calls), Usage(**usage.as_dict()), self.model, self.provider,
                          "tool_use" if calls else "end_turn", replay=True)


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("replay transcript not found", path=path,
                          fix="check replay: in model.md (relative to the agent folder)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read replay transcript ({exc})", path=path, fix="save it as UTF-8 text") from None
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"replay transcript does not parse{line}", path=path, fix=_FORMAT_FIX) from None
    if not isinstance(data, dict):
        raise ConfigError("replay transcript must be a mapping with model and turns", path=path, fix=_FORMAT_FIX)
    if data.get("model") is not None and not isinstance(data["model"], str):
        raise ConfigError("replay transcript 'model' must be text", path=path, fix="e.g. model: claude-sonnet-4-5")
    if not isinstance(data.get("turns"), list):
        raise ConfigError("replay transcript has no 'turns' list", path=path,
                          fix="add turns: with one entry per model answer (see spec/replay.md)")
    return data


def _turn(path: Path, n: int, raw: Any) -> tuple[str, list[ToolCall], Usage]:
    def bad(what: str, fix: str) -> ConfigError:
        return ConfigError(f"replay turn {n}: {what}", path=path, fix=fix)

    if not isinstance(raw, dict):
        raise bad("must be a mapping with text and/or tool_calls", "write '- text: ...' for each turn")
    text = raw.get("text", "")
    if not isinstance(text, str):
        raise bad("'text' must be text", "quote the answer")
    raw_calls = raw.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise bad("'tool_calls' must be a list", "write tool_calls: [{name: ..., arguments: {...}}]")
    calls: list[ToolCall] = []
    for i, call in enumerate(raw_calls, start=1):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise bad(f"tool call {i} has no name", "give each tool call a name: and arguments:")
        args = call.get("arguments", {})
        if not isinstance(args, Mapping):
            raise bad(f"tool call {i} ({call['name']}): 'arguments' must be a mapping", "e.g. arguments: {path: a.md}")
        calls.append(ToolCall(str(call.get("id") or f"replay_{n}_{i}"), call["name"], dict(args)))
    raw_usage = raw.get("usage") or {}
    if not isinstance(raw_usage, dict):
        raise bad("'usage' must be a mapping", f"use the keys {', '.join(_USAGE_KEYS)}")
    unknown = set(raw_usage) - set(_USAGE_KEYS)
    if unknown:
        raise bad(f"unknown usage key {sorted(unknown)[0]!r}", f"use the keys {', '.join(_USAGE_KEYS)}")
    for key, value in raw_usage.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"usage.{key} must be a whole number >= 0, got {value!r}", "write a token count")
    return text, calls, Usage(**raw_usage)


def record_transcript(completions: list[Completion], path: Path, model: str) -> None:
    """Write completions as a transcript ReplayModel can play (YAML, or JSON for a .json path)."""
    turns: list[dict[str, Any]] = []
    for c in completions:
        turn: dict[str, Any] = {"text": c.text}
        if c.tool_calls:
            turn["tool_calls"] = [{"name": t.name, "arguments": t.arguments, "id": t.id} for t in c.tool_calls]
        usage = {k: v for k, v in c.usage.as_dict().items() if v}
        if usage:
            turn["usage"] = usage
        turns.append(turn)
    data = {"model": model, "turns": turns}
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    atomic_write(path, text)
