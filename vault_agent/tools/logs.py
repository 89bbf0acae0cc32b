"""The log_read tool: the agent's own recent run records, newest first, or one run with its tool calls."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Mapping

from ..vault import runlog
from .base import BaseTool, ToolContext, ToolError, schema

RUN_KEYS = ("ts", "run_id", "status", "trigger", "work_item", "cost_usd", "tool_calls", "notes_written", "error")
TOOL_KEYS = ("run_id", runlog.TOOL_NAME, "status", "decision", "reason", "latency_ms", "error")


class LogRead(BaseTool):
    name = "log_read"
    description = ("Read your own run log: recent runs newest first (`days` back, at most `limit`), or one run "
                   "and its tool calls by `run_id`.")
    input_schema = schema({"days": {"type": "integer", "minimum": 1, "maximum": 366},
                           "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                           "run_id": {"type": "string"}}, [])

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        since = _dt.date.today() - _dt.timedelta(days=args.get("days", 7) - 1)
        records = ctx.folder.read_log(since=since).records
        wanted = args.get("run_id")
        if wanted:
            mine = [r for r in records if wanted in (r.get("run_id"), r.get("parent_run_id"))]
            if not mine:
                raise ToolError(f"no run {wanted!r} in the last {args.get('days', 7)} day(s); try a larger `days`")
            return "\n".join(_line(r) for r in mine)
        runs = list(runlog.iter_runs(records))[::-1][: args.get("limit", 20)]
        return "\n".join(_line(r) for r in runs) or f"no runs in the last {args.get('days', 7)} day(s)"


def _line(record: dict[str, Any]) -> str:
    keys = TOOL_KEYS if record.get("kind") == "tool_call" else RUN_KEYS
    return json.dumps({k: record[k] for k in keys if k in record}, ensure_ascii=False, default=str)
