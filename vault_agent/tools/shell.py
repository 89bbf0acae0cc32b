"""The shell tool: one command through the shell rules, then run in the sandbox with the agent's path grants."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from ..security import sandbox
from ..security.decision import Decision, Refused, refuse
from ..security.policy import SECRET_REF
from .base import BaseTool, ToolContext, ToolError, schema

SECRET_VAR = "VAULT_SECRET_"


def sandbox_spec(ctx: ToolContext, *, network: bool, env: dict[str, str], timeout_s: float | None = None,
                 cwd: str | None = None, extra_read: tuple[Path, ...] = ()) -> sandbox.Spec:
    """The sandbox a shell command or custom tool gets: the agent's path grants, its limits, nothing else."""
    rules = ctx.policy.paths
    limits = ctx.policy.grants.limits
    if timeout_s is not None:
        limits = dataclasses.replace(limits, timeout_s=min(timeout_s, limits.timeout_s))
    workdir = rules.check(cwd, "read") if cwd else rules.root
    return sandbox.Spec(read=(*rules.readable_roots(), *extra_read), write=tuple(rules.writable_roots()),
                        read_only_inside=tuple(rules.read_only_inside_writable()), agent=rules.root, cwd=workdir,
                        network=network, env=env, limits=limits)


def granted_env(ctx: ToolContext, secrets: Mapping[str, str]) -> dict[str, str]:
    """Variables tools.md's `env` grant sets from secrets (the values come from the store, never the model)."""
    return {var: secrets[name] for var, name in ctx.policy.grants.env.items() if name in secrets}


def format_result(result: sandbox.SandboxResult) -> str:
    where = "sandboxed" if result.isolated else "not sandboxed (no bubblewrap)"
    head = f"[exit {result.exit_code} · {result.seconds:.2f} s · {where}]"
    if result.truncated:
        head += " [output beyond the cap was dropped]"
    out = result.stdout.decode("utf-8", errors="replace")
    err = result.stderr.decode("utf-8", errors="replace")
    return head + ("\n" + out if out else "") + (f"\n[stderr]\n{err}" if err else "")


class ShellTool(BaseTool):
    name = "shell"
    description = ("Run a shell command (sh -c) in a sandbox that sees only your granted folders. Refer to a "
                   "granted secret as {{secret:NAME}}; its value is passed as an environment variable.")
    input_schema = schema({"command": {"type": "string", "minLength": 1},
                           "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                           "cwd": {"type": "string", "description": "working folder, relative to your folder"}},
                          ["command"])
    capability = "shell"
    takes_secrets = True

    def check(self, args: dict[str, Any], ctx: ToolContext) -> Decision:
        if args.get("cwd"):
            try:
                ctx.policy.paths.check(args["cwd"], "read")
            except Refused as exc:
                return refuse(exc.reason)
        return ctx.policy.shell.check(args["command"])

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        # The value goes in through the environment, so it is never part of the command line (ps, logs).
        command = SECRET_REF.sub(lambda m: "${" + SECRET_VAR + m.group(1) + "}", args["command"])
        env = {**granted_env(ctx, secrets), **{SECRET_VAR + n: v for n, v in secrets.items()
                                                 if SECRET_VAR + n in command}}
        spec = sandbox_spec(ctx, network=bool(ctx.policy.grants.shell and ctx.policy.grants.shell.network),
                            env=env, timeout_s=args.get("timeout_s"), cwd=args.get("cwd"))
        result = sandbox.run(["/bin/sh", "-c", command], spec)
        if result.timed_out:
            raise ToolError(f"timed out after {spec.limits.timeout_s:g} s; the command and its children were "
                            f"killed. Output so far:\n{format_result(result)}")
        return format_result(result)
