"""The agent's grants, parsed once from tools.md at run start, and the policy object tools consult.

Grammar: spec/tools-md.md. Nothing granted means nothing allowed: a tool
runs only when tools.md lists it, and shell, network and secrets need their
capability too. Grants are frozen when the run starts; nothing a note, file,
tool result or web page says can change them (only a person editing
tools.md, for the next run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..vault.config import ToolsConfig
from .decision import Refused
from .paths import PathRules
from .sandbox import Limits
from .shellrules import ShellGrant, ShellRules
from .urls import UrlRules

SECRET_REF = re.compile(r"\{\{\s*secret:([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
DEFAULT_APPROVAL_TIMEOUT_S = 300.0
_LIMIT_KEYS = {"timeout_s": "timeout_s", "cpu_s": "cpu_s", "memory_mb": "memory_mb", "processes": "processes",
               "file_size_mb": "file_size_mb", "open_files": "open_files", "output_kb": "output_bytes"}


@dataclass(frozen=True)
class Grants:
    """What tools.md grants, checked for shape; paths are still as written (relative to the agent folder)."""

    tools: tuple[str, ...] = ()
    read: tuple[str, ...] = (".",)
    write: tuple[str, ...] = (".",)
    network: bool = False
    allow_domains: tuple[str, ...] | None = None  # None with network: any public host
    shell: ShellGrant | None = None  # None: no shell
    secrets: frozenset[str] = frozenset()
    env: dict[str, str] = field(default_factory=dict)  # variable -> secret name, for shell and custom tools
    approval_timeout_s: float = DEFAULT_APPROVAL_TIMEOUT_S
    limits: Limits = Limits()

    def has(self, capability: str | None) -> bool:
        return capability is None or (capability == "shell" and self.shell is not None) or \
            (capability == "network" and self.network)


def _fail(path: Path | None, message: str, fix: str) -> ConfigError:
    return ConfigError(message, path=path, fix=f"{fix} (see spec/tools-md.md)")


def _str_list(path: Path | None, key: str, value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if value is False:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(path, f"capabilities.{key} must be a list of text", f"e.g. {key}: [\"memory/\"]")
    return tuple(v.strip() for v in value)


def _number(path: Path | None, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _fail(path, f"capabilities.{key} must be a number of at least 0, got {value!r}", f"e.g. {key}: 30")
    return value


def parse_grants(config: ToolsConfig) -> Grants:
    """Grants from a parsed tools.md; raises ConfigError naming the file and the fix."""
    path = config.path
    caps = config.capabilities
    network, domains = caps.get("network", False), None
    if isinstance(network, dict):
        domains = tuple(d.lower().lstrip(".") for d in _str_list(path, "network.allow_domains",
                                                                   network.get("allow_domains"), ()))
        network = True
    elif not isinstance(network, bool):
        raise _fail(path, "capabilities.network must be true, false or {allow_domains: [...]}",
                    "e.g. network: {allow_domains: [arxiv.org]}")
    shell_raw, shell = caps.get("shell", False), None
    if shell_raw is True:
        shell = ShellGrant(allow=("*",))
    elif isinstance(shell_raw, dict):
        net = shell_raw.get("network", False)
        if not isinstance(net, bool):
            raise _fail(path, "capabilities.shell.network must be true or false", "e.g. network: false")
        shell = ShellGrant(_str_list(path, "shell.allow", shell_raw.get("allow"), ()),
                           _str_list(path, "shell.approve", shell_raw.get("approve"), ()), net)
    elif shell_raw not in (False, None):
        raise _fail(path, "capabilities.shell must be true, false or {allow: [...], approve: [...]}",
                    "e.g. shell: {allow: [ls, cat, git]}")
    secrets = frozenset(_str_list(path, "secrets", caps.get("secrets"), ()))
    env_raw = caps.get("env") or {}
    if not isinstance(env_raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env_raw.items()):
        raise _fail(path, "capabilities.env must map variable names to secret names", "e.g. env: {GH_TOKEN: GITHUB}")
    for var, secret in env_raw.items():
        if secret not in secrets:
            raise _fail(path, f"capabilities.env.{var} names secret {secret!r}, which capabilities.secrets does not "
                        "grant", f"add {secret} to secrets")
    limits_raw = caps.get("limits") or {}
    if not isinstance(limits_raw, dict) or set(limits_raw) - set(_LIMIT_KEYS):
        raise _fail(path, f"capabilities.limits takes {', '.join(_LIMIT_KEYS)}", "e.g. limits: {timeout_s: 60}")
    base = Limits()
    limits = Limits(**{_LIMIT_KEYS[k]: type(getattr(base, _LIMIT_KEYS[k]))(
        _number(path, f"limits.{k}", v) * (1000 if k == "output_kb" else 1)) for k, v in limits_raw.items()})
    return Grants(
        tools=tuple(config.tools),
        read=_str_list(path, "read", caps.get("read"), (".",)),
        write=_str_list(path, "write", caps.get("write"), (".",)),
        network=bool(network), allow_domains=domains, shell=shell, secrets=secrets, env=dict(env_raw),
        approval_timeout_s=_number(path, "approval_timeout_s",
                                   caps.get("approval_timeout_s", DEFAULT_APPROVAL_TIMEOUT_S)),
        limits=limits,
    )


class Policy:
    """One run's rules: grants plus the agent folder they apply to. Read-only once built."""

    def __init__(self, root: Path, grants: Grants, *, urls: UrlRules | None = None,
                 tools_md: Path | None = None) -> None:
        self.grants = grants
        try:
            self.paths = PathRules(root, list(grants.read), list(grants.write))
        except ValueError as exc:
            raise ConfigError(f"a path grant is unusable: {exc}", path=tools_md,
                              fix="grant paths inside the agent folder, e.g. read: [\".\"]") from None
        self.urls = urls or UrlRules(grants.allow_domains if grants.network else ())
        self.shell = ShellRules(grants.shell or ShellGrant(), [*self.paths.read, *self.paths.write])

    def secret_refs(self, value: Any) -> set[str]:
        """Names referenced as {{secret:NAME}} anywhere in a tool's arguments."""
        if isinstance(value, str):
            return set(SECRET_REF.findall(value))
        if isinstance(value, dict):
            return set().union(*(self.secret_refs(v) for v in value.values())) if value else set()
        if isinstance(value, list):
            return set().union(*(self.secret_refs(v) for v in value)) if value else set()
        return set()

    def check_secrets(self, names: set[str]) -> None:
        missing = sorted(names - self.grants.secrets)
        if missing:
            raise Refused(f"secret(s) {', '.join(missing)} not granted to this agent (capabilities.secrets in "
                          "tools.md)")


def substitute(value: Any, secrets: dict[str, str]) -> Any:
    """`value` with every {{secret:NAME}} replaced by its value (only ever on the way into a tool)."""
    if isinstance(value, str):
        return SECRET_REF.sub(lambda m: secrets[m.group(1)], value)
    if isinstance(value, dict):
        return {k: substitute(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, secrets) for v in value]
    return value
