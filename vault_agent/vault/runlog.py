"""The audit trail: one JSON line per run in log/YYYY-MM/YYYY-MM-DD.jsonl, child lines per tool call.

Format: spec/log-record.md. Keys follow OpenTelemetry GenAI attribute names
where one fits; records are written with sorted keys so `git diff` of a day
reads well. Readers skip a torn line (a crash mid-append) and report it.
"""

from __future__ import annotations

import datetime as _dt
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..statuses import STATUSES as STATUSES, STOPPED as STOPPED  # one list, kept where --help reads it
from .atomic import append_line

# OpenTelemetry GenAI semantic-convention attribute names.
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
ERROR_TYPE = "error.type"

WORK_ITEM_CHARS = 200  # a record's work_item: the request as one line, cut to this


def new_run_id(now: _dt.datetime | None = None) -> str:
    """Sortable and readable: 20261121T080512-a3f09c."""
    now = now or _dt.datetime.now().astimezone()
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def now_ts() -> _dt.datetime:
    return _dt.datetime.now().astimezone()


def ts_string(ts: _dt.datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record; the caller holds the agent's write lock."""
    append_line(path, encode(record))


@dataclass
class TornLine:
    path: Path
    line_no: int
    text: str
    is_last: bool


@dataclass
class LogRead:
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: list[TornLine] = field(default_factory=list)


def read_day(path: Path, into: LogRead | None = None) -> LogRead:
    out = into if into is not None else LogRead()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return out
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            out.torn.append(TornLine(path, i, line[:120].decode("utf-8", "replace"), i == len(lines)))
            continue
        out.records.append(record)
    return out


def day_files(log_root: Path) -> list[Path]:
    """All day files, oldest first."""
    if not log_root.is_dir():
        return []
    return sorted(p for p in log_root.glob("*/*.jsonl") if not p.name.startswith("."))


def read_since(log_root: Path, since: _dt.date | None = None) -> LogRead:
    out = LogRead()
    for path in day_files(log_root):
        if since is not None:
            try:
                if _dt.date.fromisoformat(path.stem) < since:
                    continue
            except ValueError:
                pass
        read_day(path, out)
    return out


def find_record(log_root: Path, run_id: str, since: _dt.date) -> dict[str, Any] | None:
    """The record (a run's, or a tools call's) of `run_id` in the day files from `since`, None when there is
    none: the day its run started, whose file its record goes to or, past midnight, a later one."""
    return next((r for r in read_since(log_root, since).records if r.get("run_id") == run_id), None)


def iter_runs(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Run records only (not tool-call children); atomic-agents-stack records count as runs."""
    for r in records:
        if r.get("kind", "run") == "run" and "parent_run_id" not in r:
            yield r


# Accessors that read both our keys and atomic-agents-stack's (spec/compat-atomic-agents-stack.md).

def record_model(r: dict[str, Any]) -> str | None:
    return r.get(RESPONSE_MODEL) or r.get(REQUEST_MODEL) or r.get("model")


def record_tokens(r: dict[str, Any]) -> dict[str, int]:
    def num(*keys: str) -> int:
        for k in keys:
            v = r.get(k)
            if isinstance(v, (int, float)):
                return int(v)
        return 0
    return {
        "input": num(INPUT_TOKENS, "input_tokens"),
        "output": num(OUTPUT_TOKENS, "output_tokens"),
        "cache_read": num(CACHE_READ_TOKENS, "cache_hit_tokens"),
        "cache_write": num(CACHE_WRITE_TOKENS),
    }


def record_cost(r: dict[str, Any]) -> float:
    v = r.get("cost_usd")
    return float(v) if isinstance(v, (int, float)) else 0.0
