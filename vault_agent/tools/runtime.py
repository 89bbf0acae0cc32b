"""The tool runtime a run talks to: granted tool specs in, validated calls out, one outcome per call.

Every call goes through `ToolRuntime.execute`: grant check, JSON Schema
validation (errors go back to the model, never crash the run), execution,
outcome record. Tools are small objects satisfying the `Tool` protocol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..capture import REMEMBER_SCHEMA, Capture, CaptureProblem, validate
from ..models.base import ToolCall, ToolResult, ToolSpec
from ..vault.config import AgentConfig
from ..vault.folder import AgentFolder


@dataclass
class ToolContext:
    folder: AgentFolder
    config: AgentConfig
    run_id: str
    captures: list[Capture] = field(default_factory=list)
    capture_problems: list[CaptureProblem] = field(default_factory=list)


class ToolError(Exception):
    """A tool failed in a way the model should hear about (the message goes back to it)."""


class Tool(Protocol):
    name: str
    description: str
    input_schema: dict[str, Any]

    def run(self, args: dict[str, Any], ctx: ToolContext) -> str: ...


@dataclass
class ToolOutcome:
    call: ToolCall
    result: ToolResult
    status: str  # "ok" | "error" | "refused" | "invalid"
    latency_ms: int
    error: str | None = None


class RememberTool:
    name = "remember"
    description = ("Save a memory note for later runs (a person can read and edit it). The same type and name "
                   "updates the existing note.")
    input_schema = REMEMBER_SCHEMA

    def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        result = validate(args, "tool")
        if isinstance(result, CaptureProblem):
            ctx.capture_problems.append(result)
            raise ToolError(result.message)
        ctx.captures.append(result)
        return f"Noted: {result.type} note {result.name!r} is saved when this run ends."


BUILTIN: dict[str, Tool] = {t.name: t for t in (RememberTool(),)}


def _validation_error(args: dict[str, Any], schema: dict[str, Any]) -> str | None:
    import jsonschema  # lazy: only runs that call tools pay for it

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "arguments"
    return f"invalid arguments ({where}): {first.message}"


class ToolRuntime:
    """The tools one run may use: those tools.md grants and that exist."""

    def __init__(self, ctx: ToolContext, tools: dict[str, Tool] | None = None) -> None:
        self.ctx = ctx
        available = tools if tools is not None else BUILTIN
        self.granted = {name: available[name] for name in ctx.config.tools.tools if name in available}

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(t.name, t.description, t.input_schema) for t in self.granted.values()]

    def execute(self, calls: list[ToolCall]) -> list[ToolOutcome]:
        return [self._one(call) for call in calls]

    def _one(self, call: ToolCall) -> ToolOutcome:
        started = time.perf_counter()

        def done(status: str, content: str, error: str | None = None) -> ToolOutcome:
            latency = int((time.perf_counter() - started) * 1000)
            return ToolOutcome(call, ToolResult(call.id, call.name, content, status != "ok"), status, latency, error)

        tool = self.granted.get(call.name)
        if tool is None:
            message = f"tool {call.name!r} is not granted to this agent (granted: {', '.join(self.granted) or 'none'})"
            return done("refused", message, message)
        if "_invalid_json" in call.arguments:
            message = "arguments were not valid JSON; send a JSON object matching the tool's schema"
            return done("invalid", message, message)
        problem = _validation_error(call.arguments, tool.input_schema)
        if problem:
            return done("invalid", problem, problem)
        try:
            return done("ok", tool.run(call.arguments, self.ctx))
        except ToolError as exc:
            return done("error", str(exc), str(exc))
