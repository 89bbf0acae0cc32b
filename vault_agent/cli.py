"""The `vault-agent` command: parse arguments, call the API, print. Nothing else lives here.

Commands import what they need inside their bodies so that `vault-agent
--help` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from .errors import VaultAgentError

EXIT_ERROR = 2  # a user error explained in one line


def _fail(exc: VaultAgentError) -> NoReturn:
    click.echo(f"error: {exc.one_line()}", err=True)
    sys.exit(EXIT_ERROR)


class _Group(click.Group):
    """Turns every VaultAgentError into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VaultAgentError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--vault", "vault_path", envvar="VAULT_AGENT_HOME", type=click.Path(file_okay=False),
              help="Vault folder (default: $VAULT_AGENT_HOME, else ~/vault-agents).")
@click.version_option(package_name="vault-agent")
@click.pass_context
def main(ctx: click.Context, vault_path: str | None) -> None:
    """Run AI agents that live in a folder of Markdown."""
    ctx.obj = vault_path


def _vault(ctx: click.Context):
    from .vault import Vault

    return Vault(ctx.obj)


@main.command()
@click.argument("name")
@click.option("--template", "-t", default="assistant", show_default=True,
              help="A template from templates/ or a sample agent from samples/.")
@click.pass_context
def init(ctx: click.Context, name: str, template: str) -> None:
    """Create agent NAME in the vault from a template."""
    from .vault import templates

    vault = _vault(ctx)
    vault.root.mkdir(parents=True, exist_ok=True)
    path = templates.create_agent(vault.root, name, template)
    click.echo(f"created {path} from template {template!r}")
    click.echo(f"next: edit {path / 'persona'} and {path / 'model.md'}, then: vault-agent doctor {name}")


@main.command("templates")
def list_templates() -> None:
    """List the templates `init` can use."""
    from .vault import templates

    for name, path in templates.available().items():
        click.echo(f"{name:<14} {path.parent.name}/{name}")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_agents(ctx: click.Context, as_json: bool) -> None:
    """List the agents in the vault."""
    vault = _vault(ctx)
    names = vault.agent_names()
    if as_json:
        click.echo(json.dumps({"vault": str(vault.root), "agents": names}))
        return
    if not names:
        click.echo(f"no agents in {vault.root} (create one: vault-agent init NAME)")
    for name in names:
        click.echo(name)


@main.command()
@click.argument("name")
@click.option("--type", "note_type", help="Only notes of this type.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def notes(ctx: click.Context, name: str, note_type: str | None, as_json: bool) -> None:
    """List agent NAME's memory notes by type."""
    from .memory.catalog import Catalog

    folder = _vault(ctx).agent(name)
    with Catalog(folder.paths) as catalog:
        catalog.sync()
        for finding in catalog.findings():
            click.echo(finding.one_line(), err=True)
        if as_json:
            click.echo(catalog.summaries_json(note_type))
            return
        found = catalog.summaries(note_type)
    from .vault.index_md import OTHER, SECTION_TITLES
    from .vault.layout import NOTE_TYPES

    by_type: dict[str, list] = {}
    for n in found:
        by_type.setdefault(n["type"] if n["type"] in NOTE_TYPES else OTHER, []).append(n)
    for key in (*NOTE_TYPES, OTHER):
        group = sorted(by_type.get(key, []), key=lambda n: n["name"].casefold())
        if not group:
            continue
        click.echo(f"{SECTION_TITLES.get(key, OTHER)} ({len(group)})")
        for n in group:
            pin = " [pinned]" if n["pinned"] else ""
            click.echo(f"  {n['link'][2:-2]}{pin} — {n['description']}")
    if not found:
        click.echo("no notes yet")


@main.command()
@click.argument("name", required=False)
@click.option("--fix", is_flag=True, help="Also make the safe repairs (rewrite INDEX's managed block).")
@click.option("--verbose", "-v", is_flag=True, help="Also print what is fine.")
@click.pass_context
def doctor(ctx: click.Context, name: str | None, fix: bool, verbose: bool) -> None:
    """Check the vault (or agent NAME): layout, formats, lock, log, keys, sandbox."""
    from .ops.doctor import fix_agent, relative, run_doctor

    vault = _vault(ctx)
    if fix:
        for agent_name in [name] if name else vault.agent_names():
            for line in fix_agent(vault.agent(agent_name)):
                click.echo(f"fixed: {line}")
    results = run_doctor(vault, name)
    errors = warnings = 0
    for agent_name, f in results:
        errors += f.level == "error"
        warnings += f.level == "warning"
        if f.level == "info" and not verbose:
            continue
        where = relative(f.path, vault.root / agent_name if agent_name else vault.root)
        prefix = f"[{agent_name}] " if agent_name else ""
        fix_text = f" — fix: {f.fix}" if f.fix else ""
        click.echo(f"{f.level.upper():7} {prefix}{where + ': ' if where else ''}{f.message}{fix_text}")
    scope = f"agent {name}" if name else f"vault {vault.root}"
    click.echo(f"doctor: {scope}: {errors} error(s), {warnings} warning(s)")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
