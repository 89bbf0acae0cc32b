"""The one pipeline every tool call passes, in order, with nothing to go around it.

grant check (the tool is listed in tools.md and its capability granted) ->
argument validation (JSON Schema; errors go back to the model) -> argument
policy (paths, URLs, commands, secret references; a person's approval where
the rules ask for it) -> secret injection (values handed to the tool, never
shown to the model) -> execution (shell and custom tools in the sandbox) ->
leak scan of the output -> cut of a large output into an artifact -> the
outcome, which becomes the tool-call audit record with its decision.
Independent calls of one turn run in parallel (executor.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import VaultAgentError
from ..models.base import ToolCall, ToolResult, ToolSpec
from ..security.approvals import APPROVED, ApprovalRequest, Approver, default_approver
from ..security.decision import APPROVE, REFUSE, Refused
from ..security.policy import Policy, parse_grants
from ..security.redact import Redactor, load_redactor
from ..vault.config import AgentConfig
from ..vault.folder import AgentFolder
from . import artifacts
from .base import Tool, ToolContext, ToolError
from .disclosure import CALL, SEARCH, THRESHOLD, Disclosure, ToolCallTool
from .executor import run_calls
from .registry import granted_tools

__all__ = ["ToolContext", "ToolError", "ToolOutcome", "ToolRuntime", "build_runtime"]
_SUMMARY_KEYS = ("command", "url", "path", "query", "name", "pattern", "run_id")

# Decisions recorded with each call: allowed and approved ran; the others did not.
ALLOWED, APPROVED_RUN, REFUSED, INVALID = "allowed", "approved", "refused", "invalid"


@dataclass
class ToolOutcome:
    call: ToolCall
    result: ToolResult
    status: str  # "ok" | "error" | "refused" | "invalid"
    latency_ms: int
    error: str | None = None
    decision: str = ALLOWED  # allowed | approved | refused | denied | expired | pending | invalid
    reason: str | None = None  # why refused, or why approval was asked
    tool: str = ""  # the tool that ran (for a tool_call, the one it named)
    via: str | None = None  # "tool_call" when called through progressive disclosure
    target: str | None = None  # the path, URL or command, for the audit record
    approval: str | None = None  # the approval file, when a person was asked through one
    secrets: list[str] = field(default_factory=list)  # names of secrets handed to the tool
    redacted: list[str] = field(default_factory=list)  # what the leak scan replaced in the output
    artifact: str | None = None  # where the full output went, when it was cut


def _validation_error(args: dict[str, Any], schema: dict[str, Any]) -> str | None:
    import jsonschema  # lazy: only runs that call tools pay for it

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "arguments"
    return f"invalid arguments ({where}): {first.message}"


def _target(args: dict[str, Any]) -> str | None:
    for key in _SUMMARY_KEYS:
        if isinstance(args.get(key), str):
            return args[key][:300]
    return None


class ToolRuntime:
    """The tools one run may use (those tools.md grants and that exist) behind the pipeline."""

    def __init__(self, ctx: ToolContext, tools: dict[str, Tool], *, redactor: Redactor,
                 secret_values: Mapping[str, str], approver: Approver, threshold: int = THRESHOLD) -> None:
        self.ctx = ctx
        self.granted = tools
        self.redactor = redactor
        self.secret_values = dict(secret_values)
        self.approver = approver
        self.disclosure = Disclosure(tools, threshold)
        self._count = 0
        self._count_lock = threading.Lock()

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    def specs(self) -> list[ToolSpec]:
        """What the model is shown now (grows as tool_search reveals tools)."""
        return self.disclosure.specs()

    def execute(self, calls: list[ToolCall]) -> list[ToolOutcome]:
        """Run one turn's calls: parallel where the tools allow it, outcomes in call order."""
        with self._count_lock:
            base = self._count
            self._count += len(calls)
        return run_calls(calls, lambda i, call: self._one(call, base + i + 1), self._parallel_safe)

    def _parallel_safe(self, call: ToolCall) -> bool:
        name = call.arguments.get("name") if call.name == CALL else call.name
        tool = self.granted.get(str(name))
        return tool is None or tool.parallel_safe

    def _one(self, call: ToolCall, n: int) -> ToolOutcome:
        started = time.perf_counter()
        name, args, via = call.name, call.arguments, None

        def done(status: str, content: str, decision: str, reason: str | None = None,
                 **extra: Any) -> ToolOutcome:
            content, found = self.redactor.scrub_found(content)
            artifact = None
            if status == "ok":
                content, artifact = artifacts.cut(content, self.ctx.folder.paths.state, self.ctx.folder.root,
                                                  self.ctx.run_id, n, name)
            latency = int((time.perf_counter() - started) * 1000)
            error = None if status == "ok" else " ".join(content.split())[:500]  # one line for the log
            return ToolOutcome(call, ToolResult(call.id, call.name, content, status != "ok"), status, latency,
                               error, decision, reason and self.redactor.scrub(reason), name, via,
                               _target(args), artifact=artifact, redacted=found, **extra)

        def refused(reason: str, decision: str = REFUSED, **extra: Any) -> ToolOutcome:
            return done("refused", f"refused: {reason}", decision, reason, **extra)

        if "_invalid_json" in args:
            message = "arguments were not valid JSON; send a JSON object matching the tool's schema"
            return done("invalid", message, INVALID, message)
        if name == CALL and self.disclosure.active:
            problem = _validation_error(args, ToolCallTool.input_schema)
            if problem:
                return done("invalid", problem, INVALID, problem)
            name, args, via = str(args["name"]), args["arguments"], CALL
        # 1. grant: listed in tools.md (or the disclosure's own tool_search), capability granted
        tool = self.granted.get(name) or (self.disclosure.tools.get(name) if name == SEARCH else None)
        if tool is None:
            return refused(f"tool {name!r} is not granted to this agent (granted: "
                           f"{', '.join(self.granted) or 'none'})")
        if not self.policy.grants.has(tool.capability):
            return refused(f"{name} needs capabilities.{tool.capability} in tools.md, which is not granted")
        # 2. validation
        problem = _validation_error(args, tool.input_schema)
        if problem:
            return done("invalid", problem, INVALID, problem)
        # 3. argument policy: paths, URLs, commands, secret references, approval
        refs = self.policy.secret_refs(args) | tool.secret_refs()
        if refs and not tool.takes_secrets:
            return refused(f"{name} does not take secrets; remove the {{{{secret:...}}}} reference")
        try:
            self.policy.check_secrets(refs)
        except Refused as exc:
            return refused(exc.reason)
        verdict = tool.check(args, self.ctx)
        decision, approval = ALLOWED, None
        if verdict.verdict == REFUSE:
            return refused(verdict.reason)
        if verdict.verdict == APPROVE:
            action = self.redactor.scrub(_target(args) or str(args)[:300])  # the request is written to a file
            answer = self.approver.ask(ApprovalRequest(self.ctx.folder.name, self.ctx.run_id, name, action,
                                                       verdict.reason))
            approval = answer.where
            if answer.outcome != APPROVED:
                return refused(f"{verdict.reason}: approval {answer.outcome}"
                               + (f" ({answer.where})" if answer.where else ""), answer.outcome,
                               approval=approval)
            decision = APPROVED_RUN
        # 4. secret injection: the values go to the tool, never into the model's view
        missing = sorted(refs - set(self.secret_values))
        if missing:
            return done("error", f"secret(s) {', '.join(missing)} are granted but not in the store "
                                 f"(vault-agent secret set {missing[0]})", decision, approval=approval)
        wanted = (refs | set(self.policy.grants.env.values())) if tool.takes_secrets else set()
        values = {s: self.secret_values[s] for s in wanted if s in self.secret_values}
        # 5. execution
        try:
            content = tool.run(args, self.ctx, values)
        except Refused as exc:
            return refused(exc.reason, approval=approval, secrets=sorted(values))
        except ToolError as exc:
            return done("error", str(exc), decision, verdict.reason or None, approval=approval, secrets=sorted(values))
        except VaultAgentError as exc:
            return done("error", exc.one_line(), decision, approval=approval, secrets=sorted(values))
        except Exception as exc:  # a broken tool must not end the run: the model hears what happened
            return done("error", f"{name} failed: {type(exc).__name__}: {exc}", decision, approval=approval,
                        secrets=sorted(values))
        # 6.-8. leak scan, cut, outcome (in done)
        return done("ok", content, decision, verdict.reason or None, approval=approval, secrets=sorted(values))


def build_runtime(folder: AgentFolder, config: AgentConfig, run_id: str, *, env: Mapping[str, str],
                  catalog: Any = None, approver: Approver | None = None,
                  secrets: tuple[Redactor, Mapping[str, str]] | None = None) -> tuple[ToolRuntime, list[str]]:
    """The runtime a run uses, and warnings for the run record (broken custom tools, an unopened store).

    Grants come from the tools.md parsed at run start (`config`), nothing else.
    """
    grants = parse_grants(config.tools)
    policy = Policy(folder.root, grants, tools_md=config.tools.path)
    tools, findings = granted_tools(folder.root, config.tools)
    warnings = [f.one_line() for f in findings]
    if secrets is None:
        redactor, values, warning = load_redactor(folder.root.parent, env)
        warnings += [warning] if warning else []
    else:
        redactor, values = secrets
    ctx = ToolContext(folder, config, run_id, policy, catalog=catalog)
    artifacts.prune(folder.paths.state)
    runtime = ToolRuntime(ctx, tools, redactor=redactor, secret_values=values,
                          approver=approver or default_approver(folder.root, grants.approval_timeout_s))
    return runtime, warnings
