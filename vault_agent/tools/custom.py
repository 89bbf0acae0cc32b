"""Custom tools declared in the vault: `tools/<name>/TOOL.md` manifests, each run as a sandboxed subprocess.

Format: spec/custom-tool.md. The manifest's frontmatter names the command,
its JSON Schema and what it needs; the runtime never imports code from the
vault (a synced folder anyone with write access to the vault can change), it
only starts the command, sends `{"tool", "arguments", "agent", "run_id"}` as
JSON on stdin and reads `{"content": ...}` or `{"error": ...}` from stdout.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError, Finding
from ..security import sandbox
from ..security.policy import SECRET_REF, substitute
from ..vault import frontmatter
from .base import BaseTool, ToolContext, ToolError
from .shell import granted_env, sandbox_spec

MANIFEST = "TOOL.md"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_KEYS = {"name", "description", "command", "input_schema", "timeout_s", "network", "parallel_safe", "env"}


@dataclass
class CustomTool(BaseTool):
    """A tool whose work is a command in its own folder, run in the sandbox with the agent's grants."""

    name: str = ""
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    folder: Path = Path()
    command: list[str] = field(default_factory=list)
    timeout_s: float | None = None
    network: bool = False
    parallel_safe: bool = True
    env: dict[str, str] = field(default_factory=dict)  # variable -> text with {{secret:NAME}} references
    takes_secrets = True

    def __post_init__(self) -> None:
        self.capability = "network" if self.network else None

    def secret_refs(self) -> set[str]:
        return {n for v in self.env.values() for n in SECRET_REF.findall(v)}

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        values = dict(secrets)
        env = {**granted_env(ctx, secrets), **{k: substitute(v, values) for k, v in self.env.items()},
               "VAULT_AGENT_ROOT": str(ctx.policy.paths.root)}
        spec = sandbox_spec(ctx, network=self.network, env=env, timeout_s=self.timeout_s, extra_read=(self.folder,))
        payload = {"tool": self.name, "arguments": substitute(args, values), "agent": ctx.folder.name,
                   "run_id": ctx.run_id}
        spec = dataclasses.replace(spec, cwd=self.folder)
        result = sandbox.run(self.argv(), spec, stdin=json.dumps(payload).encode("utf-8"))
        err = result.stderr.decode("utf-8", errors="replace").strip()[-800:]
        if result.timed_out:
            raise ToolError(f"{self.name} timed out after {spec.limits.timeout_s:g} s and was killed")
        if result.exit_code != 0:
            raise ToolError(f"{self.name} exited with {result.exit_code}" + (f": {err}" if err else ""))
        try:
            answer = json.loads(result.stdout.decode("utf-8", errors="replace"))
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("content", answer.get("error")), str):
            raise ToolError(f"{self.name} must print one JSON object with 'content' or 'error' (text); it printed: "
                            f"{result.stdout[:200].decode('utf-8', errors='replace')!r}")
        if "error" in answer:
            raise ToolError(answer["error"])
        return answer["content"]

    def argv(self) -> list[str]:
        """The command with its first word resolved: a file in the tool's folder, else a program on PATH."""
        first, rest = self.command[0], self.command[1:]
        local = self.folder / first
        if "/" in first or local.is_file():
            return [str(local.resolve()), *rest]
        found = shutil.which(first, path=sandbox.SAFE_PATH)
        if found is None:
            raise ToolError(f"{self.name}: program {first!r} not found (the sandbox PATH is {sandbox.SAFE_PATH})")
        return [found, *rest]


def load_manifest(folder: Path) -> CustomTool:
    """Parse tools/<name>/TOOL.md; raises ConfigError naming the file and the fix."""
    path = folder / MANIFEST
    try:
        fm, body = frontmatter.split(path.read_text(encoding="utf-8"))
        meta = frontmatter.parse(fm) if fm is not None else {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the manifest ({exc})", path=path, fix="see spec/custom-tool.md") from None
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path, fix=exc.fix) from None

    def bad(message: str, fix: str) -> ConfigError:
        return ConfigError(message, path=path, fix=f"{fix} (see spec/custom-tool.md)")

    name = meta.get("name", folder.name)
    if name != folder.name or not NAME.match(str(name)):
        raise bad(f"name must be the folder's name in lowercase letters, digits and _, got {name!r}",
                  f"name: {folder.name}")
    command = meta.get("command")
    if isinstance(command, str):
        command = command.split()
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        raise bad("command must be a list of words, e.g. [python3, run.py]", "command: [python3, run.py]")
    schema = meta.get("input_schema", {"type": "object", "properties": {}})
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise bad("input_schema must be a JSON Schema object (type: object)", "input_schema: {type: object, ...}")
    try:
        import jsonschema

        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise bad(f"input_schema is not valid JSON Schema: {exc.message}", "correct input_schema") from None
    description = meta.get("description") or body.strip().split("\n\n")[0]
    env = meta.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise bad("env must map variable names to text", "env: {API_KEY: \"{{secret:WEATHER_KEY}}\"}")
    timeout = meta.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise bad(f"timeout_s must be a positive number, got {timeout!r}", "timeout_s: 20")
    for key in ("network", "parallel_safe"):
        if not isinstance(meta.get(key, False), bool):
            raise bad(f"{key} must be true or false", f"{key}: false")
    if set(meta) - _KEYS:
        raise bad(f"unknown key(s) {', '.join(sorted(set(meta) - _KEYS))}", f"use only {', '.join(sorted(_KEYS))}")
    return CustomTool(name=str(name), description=str(description).strip(), input_schema=schema, folder=folder,
                      command=command, timeout_s=timeout, network=bool(meta.get("network", False)),
                      parallel_safe=bool(meta.get("parallel_safe", True)), env={str(k): v for k, v in env.items()})


def load_custom_tools(agent_root: Path, names: list[str]) -> tuple[dict[str, CustomTool], list[Finding]]:
    """The custom tools among `names` (those tools.md lists); a broken manifest is a finding, not a crash."""
    tools: dict[str, CustomTool] = {}
    findings: list[Finding] = []
    for name in names:
        folder = agent_root / "tools" / name
        if not (folder / MANIFEST).is_file():
            continue
        try:
            tools[name] = load_manifest(folder)
        except ConfigError as exc:
            findings.append(Finding("error", exc.path, exc.message, exc.fix))
    return tools, findings
