"""What a tool is (the Tool protocol and BaseTool defaults) and what it gets to work with (ToolContext)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

from ..capture import Capture, CaptureProblem
from ..security.decision import ALLOWED, Decision
from ..vault.config import AgentConfig
from ..vault.folder import AgentFolder

if TYPE_CHECKING:
    from ..memory.catalog import Catalog
    from ..security.policy import Policy


@dataclass
class ToolContext:
    """One run's (or one `tools call`'s) view for tools: the folder, its config and the frozen policy."""

    folder: AgentFolder
    config: AgentConfig
    run_id: str
    policy: Policy
    catalog: Catalog | None = None
    captures: list[Capture] = field(default_factory=list)
    capture_problems: list[CaptureProblem] = field(default_factory=list)


class ToolError(Exception):
    """A tool failed in a way the model should hear about (the message goes back to it)."""


class Tool(Protocol):
    name: str
    description: str
    input_schema: dict[str, Any]
    capability: str | None  # the tools.md capability it needs besides being listed: "shell", "network" or None
    parallel_safe: bool  # False: runs alone, never beside another call of the same turn
    takes_secrets: bool  # False: a {{secret:...}} in its arguments is refused

    def check(self, args: dict[str, Any], ctx: ToolContext) -> Decision:
        """The policy's verdict on these (valid) arguments, before anything runs."""
        ...

    def secret_refs(self) -> set[str]:
        """Secrets the tool's own configuration refers to (a custom tool's env), besides its arguments."""
        ...

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        """Do the work; `secrets` holds the values of the granted secrets these arguments reference."""
        ...


class BaseTool:
    """Defaults for the Tool protocol: no capability, parallel-safe, no secrets, allowed arguments."""

    name = ""
    description = ""
    input_schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    capability: str | None = None
    parallel_safe = True
    takes_secrets = False

    def check(self, args: dict[str, Any], ctx: ToolContext) -> Decision:
        return ALLOWED

    def secret_refs(self) -> set[str]:
        return set()

    def run(self, args: dict[str, Any], ctx: ToolContext, secrets: Mapping[str, str]) -> str:
        raise NotImplementedError


def schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A closed JSON Schema object: unknown arguments are an error the model hears about."""
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
