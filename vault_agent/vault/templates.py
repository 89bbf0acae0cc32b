"""Creating an agent folder from a template (templates/) or a copy of a sample agent (samples/)."""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path

from ..errors import ConfigError, VaultAgentError
from .atomic import atomic_write
from .layout import check_agent_name


def _data_dir(kind: str) -> Path:
    """Installed wheels carry the folders as package data; a source checkout has them at the top."""
    packaged = Path(__file__).resolve().parent.parent / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / kind


def available() -> dict[str, Path]:
    """Template name -> folder, templates first, then samples."""
    found: dict[str, Path] = {}
    for kind in ("templates", "samples"):
        folder = _data_dir(kind)
        if folder.is_dir():
            for sub in sorted(folder.iterdir()):
                if sub.is_dir() and not sub.name.startswith((".", "_")):
                    found.setdefault(sub.name, sub)
    return found


def create_agent(vault_root: Path, name: str, template: str = "assistant") -> Path:
    """Copy `template` into vault_root/name. Templates are rendered with Jinja2; samples are copied as-is."""
    check_agent_name(name)
    choices = available()
    source = choices.get(template)
    if source is None:
        raise ConfigError(f"unknown template {template!r}", fix=f"choose one of: {', '.join(choices) or 'none'}")
    target = vault_root / name
    if target.exists():
        raise VaultAgentError("an agent folder with that name already exists", path=target,
                              fix="choose another name, or remove the folder first")
    render = source.parent.name == "templates"
    env = None
    if render:
        import jinja2  # lazy: only init pays for it

        # Only {{ variables }}: block and comment delimiters are moved out of the
        # way so Markdown such as "## Heading {#id}" passes through untouched.
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 autoescape=False, block_start_string="<%vault-agent", block_end_string="%>",
                                 comment_start_string="<#vault-agent", comment_end_string="#>")
    values = {"name": name, "title": name.replace("-", " ").replace("_", " ").title(),
              "today": _dt.date.today().isoformat()}
    staging = vault_root / f".{name}.init-tmp"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        for src in sorted(source.rglob("*")):
            rel = src.relative_to(source)
            if src.is_dir() or any(part in ("__pycache__",) for part in rel.parts):
                continue
            data = src.read_bytes()
            if env is not None and src.suffix in (".md", ".yaml", ".yml", ".json", ".jsonl"):
                data = env.from_string(data.decode("utf-8")).render(values).encode("utf-8")
            atomic_write(staging / rel, data)
        for sub in ("memory", "journal", "log", "wiki", ".vault-agent"):
            (staging / sub).mkdir(parents=True, exist_ok=True)
        # One rename makes the agent appear whole: never a half-copied folder.
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
