"""Which tools exist for an agent: the built-ins, plus the custom tools its tools.md lists from tools/<name>/."""

from __future__ import annotations

from pathlib import Path

from ..errors import Finding
from ..vault.config import ToolsConfig
from .base import Tool
from .custom import load_custom_tools
from .files import EditFile, ListDir, ReadFile, SearchFiles, WriteFile
from .logs import LogRead
from .memory_tools import MemoryRead, MemorySearch, RememberTool
from .shell import ShellTool
from .web import WebFetch

_BUILTIN = (ReadFile, WriteFile, EditFile, ListDir, SearchFiles, ShellTool, WebFetch, RememberTool, MemorySearch,
            MemoryRead, LogRead)
BUILTIN_NAMES = tuple(cls.name for cls in _BUILTIN)


def builtin_tools() -> dict[str, Tool]:
    return {cls.name: cls() for cls in _BUILTIN}


def granted_tools(root: Path, config: ToolsConfig) -> tuple[dict[str, Tool], list[Finding]]:
    """The tools tools.md lists that exist, in its order; a name that is neither built in nor custom is a finding."""
    builtins = builtin_tools()
    custom, findings = load_custom_tools(root, [n for n in config.tools if n not in builtins])
    granted: dict[str, Tool] = {}
    for name in config.tools:
        tool = builtins.get(name) or custom.get(name)
        if tool is not None:
            granted[name] = tool
        elif not any(f.path and f.path.parent.name == name for f in findings):
            findings.append(Finding("warning", config.path, f"tools.md lists {name!r}, which is neither built in nor "
                                    f"a custom tool", f"remove it, or add tools/{name}/TOOL.md (spec/custom-tool.md)"))
    return granted, findings
