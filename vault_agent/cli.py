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


EXIT_FOR_STATUS = {"ok": 0, "error": 1, "refused": 3, "busy": 75, "interrupted": 130}


def _agent(ctx: click.Context, name: str, *, watch: bool = False):
    from .runner import Agent

    return Agent(_vault(ctx).agent(name).root, watch=watch)


def _work_item(message: str | None) -> str:
    if message is not None:
        return message
    if sys.stdin.isatty():
        raise click.UsageError("give the work item with -m TEXT, or pipe it on standard input")
    text = sys.stdin.read()
    if not text.strip():
        raise click.UsageError("the work item read from standard input is empty")
    return text


def _print_result(result: Any, streamed: bool) -> None:
    for notice in result.notices:
        click.echo(f"note: {notice}", err=True)
    if result.text and not streamed:
        click.echo(result.text)
    elif streamed:
        click.echo()
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in result.capture_problems:
        click.echo(f"warning: {problem}", err=True)
    if result.error:
        click.echo(f"error: {result.error}", err=True)
    cost = "price unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    u = result.usage
    replay = " · replay (recorded transcript, not a live model)" if result.replay else ""
    click.echo(f"— run {result.run_id} · {result.status} · {cost} · {u.input_tokens + u.cache_read_tokens:,} in / "
               f"{u.output_tokens:,} out · {result.model or 'no model call'}{replay}", err=True)
    for c in result.captures:
        click.echo(f"  saved   {c.path} ({c.action}, via {c.origin})", err=True)


@main.command()
@click.argument("name")
@click.option("-m", "--message", help="The work item (default: read from standard input).")
@click.option("--model", "model_override", metavar="PROVIDER:MODEL", help="Use this model for this run.")
@click.option("--json", "as_json", is_flag=True, help="Print the RunResult as JSON.")
@click.option("--critical", is_flag=True, help="Go past cost caps for this run (logged as critical).")
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
              help="Seconds to wait for another run of this agent to finish.")
@click.option("--trigger", default="cli", show_default=True, help="Recorded as the run's trigger.")
@click.pass_context
def run(ctx: click.Context, name: str, message: str | None, model_override: str | None, as_json: bool,
        critical: bool, wait_s: float, trigger: str) -> None:
    """Run agent NAME on one work item."""
    from .capture import StreamFilter

    agent = _agent(ctx, name)
    work_item = _work_item(message)
    stream = None
    if not as_json and sys.stdout.isatty():
        stream = StreamFilter(lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    try:
        result = agent.run(work_item, trigger=trigger, model=model_override, critical=critical, on_text=stream,
                           lock_timeout_s=wait_s)
    except KeyboardInterrupt:
        click.echo("\ninterrupted (the run was logged as interrupted)", err=True)
        sys.exit(EXIT_FOR_STATUS["interrupted"])
    if stream is not None:
        stream.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        _print_result(result, streamed=stream is not None and bool(result.text))
    sys.exit(EXIT_FOR_STATUS.get(result.status, 1))


@main.command()
@click.argument("name")
@click.option("-m", "--message", help="The work item (default: read from standard input).")
@click.option("--json", "as_json", is_flag=True, help="Print parts, budgets and text as JSON.")
@click.pass_context
def context(ctx: click.Context, name: str, message: str | None, as_json: bool) -> None:
    """Print exactly what the model would see for a work item (no model call)."""
    built = _agent(ctx, name).context(_work_item(message))
    if as_json:
        click.echo(json.dumps(built.as_dict(), ensure_ascii=False))
        return
    for part in built.parts:
        flag = " (cut)" if part.truncated else ""
        click.echo(f"===== {part.name}: {part.tokens:,} / {part.budget:,} tokens{flag} =====")
        if part.text:
            click.echo(part.text)
    click.echo(f"===== total: {built.tokens:,} of {built.budget:,} tokens "
               f"(incl. {built.tool_tokens:,} for tool definitions) =====")
    for warning in built.warnings:
        click.echo(f"warning: {warning}", err=True)


CHAT_HELP = """commands: /new (start a new conversation), /cost (spend so far), /model [PROVIDER:MODEL] (show or
switch the model), /help, /exit (or Ctrl-D). Everything else is sent to the agent."""


@main.command()
@click.argument("name")
@click.option("--resume", "resume", default=None, metavar="latest|CHAT_ID",
              help="Continue a saved conversation from the agent's chats/ folder.")
@click.option("--model", "model_override", metavar="PROVIDER:MODEL", help="Use this model.")
@click.pass_context
def chat(ctx: click.Context, name: str, resume: str | None, model_override: str | None) -> None:
    """Talk with agent NAME; the conversation is saved under chats/ and can be resumed."""
    import datetime as dt

    from .capture import StreamFilter
    from .models.base import Message
    from .vault import chats, runlog

    agent = _agent(ctx, name, watch=True)
    chats_dir = agent.folder.root / "chats"

    def fresh() -> tuple[str, Any, list]:
        started = runlog.now_ts()
        return runlog.new_run_id(started), started, []

    chat_id, started, turns = fresh()
    if resume:
        path = chats.latest(chats_dir) if resume == "latest" else chats.chat_path(chats_dir, resume)
        if path is None or not path.is_file():
            raise click.UsageError(f"no saved chat {resume!r} in {chats_dir}")
        meta, turns = chats.load(path)
        chat_id = str(meta.get("chat_id", path.stem))
        started = dt.datetime.fromisoformat(str(meta.get("started"))) if meta.get("started") else started
        click.echo(f"resumed chat {chat_id} ({len(turns)} turns)")
    interactive = sys.stdin.isatty()
    click.echo(f"chatting with {name}. {CHAT_HELP}")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            click.echo()
            break
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            command, _, arg = text.partition(" ")
            if command in ("/exit", "/quit"):
                break
            if command == "/help":
                click.echo(CHAT_HELP)
            elif command == "/new":
                chat_id, started, turns = fresh()
                click.echo(f"new chat {chat_id}")
            elif command == "/cost":
                spent = sum(t.cost_usd or 0.0 for t in turns if t.role == "assistant")
                unknown = any(t.role == "assistant" and t.cost_usd is None for t in turns)
                click.echo(f"this chat: ${spent:.4f}{' (+ unpriced turns)' if unknown else ''} over "
                           f"{sum(t.role == 'assistant' for t in turns)} turn(s)")
            elif command == "/model":
                if arg.strip():
                    model_override = arg.strip()
                click.echo(f"model: {model_override or 'as in model.md'}")
            else:
                click.echo(f"unknown command {command}; {CHAT_HELP}")
            continue
        history = [Message(t.role, t.text) for t in turns]
        stream = StreamFilter(lambda p: (sys.stdout.write(p), sys.stdout.flush())) if interactive else None
        try:
            result = agent.run(text, trigger="chat", model=model_override, history=history, on_text=stream)
        except KeyboardInterrupt:
            click.echo("\n(interrupted; the run was logged)")
            continue
        if stream is not None:
            stream.close()
            click.echo()
        elif result.text:
            click.echo(f"{name}> {result.text}")
        if not result.ok:
            click.echo(f"({result.status}: {result.error})")
            continue
        turns += [chats.ChatTurn("user", text, result.run_id),
                  chats.ChatTurn("assistant", result.text, result.run_id, result.cost_usd)]
        chats.save(chats.chat_path(chats_dir, chat_id), chat_id, name, started, turns)
    click.echo(f"chat saved as {chat_id} (resume: vault-agent chat {name} --resume {chat_id})" if turns else "bye")


if __name__ == "__main__":
    main()
