"""The `vault-agent` command: parse arguments, call the API, print. Nothing else lives here.

Commands import what they need inside their bodies so that `vault-agent
--help` stays fast.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, NoReturn

import click

from .errors import AgentBusy, VaultAgentError
from .statuses import STATUSES

EXIT_ERROR = 2  # a user error explained in one line
EXIT_BUSY = 75  # EX_TEMPFAIL: another run held the agent's lock; trying again later can work


def _fail(exc: VaultAgentError) -> NoReturn:
    click.echo(f"error: {exc.one_line()}", err=True)
    sys.exit(EXIT_BUSY if isinstance(exc, AgentBusy) else EXIT_ERROR)


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
    for finding in vault.misnamed():
        click.echo(finding.one_line(), err=True)
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
    with Catalog(folder.paths, progress=_IndexProgress(name)) as catalog:
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


# Every status a run can end with (all STATUSES but "killed", which only the next run logs for a killed one).
EXIT_FOR_STATUS = {"ok": 0, "error": 1, "refused": 3, "busy": EXIT_BUSY, "interrupted": 130}


class _Terminated(KeyboardInterrupt):
    """SIGTERM as Ctrl-C's exception: whatever logs an interrupted run logs it, and chat, which goes on after
    Ctrl-C, can tell that it must stop."""


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """Inside, SIGTERM stops the command as Ctrl-C does (KeyboardInterrupt), so it leaves what Ctrl-C leaves.
    Used by _interruptible, and on its own by chat, which goes on after Ctrl-C but stops on SIGTERM."""
    def interrupt(*_: Any) -> NoReturn:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _interruptible(what: str | None) -> Iterator[None]:
    """Inside, Ctrl-C and SIGTERM (cron, launchd, systemd, `kill`) stop the command alike; outside, they leave
    one line on stderr, "interrupted (WHAT)", and exit 130, never a traceback or click's "Aborted!".
    With `what` None the command just ends there, quietly and with exit 0 (`watch`: stopping is how it ends)."""
    try:
        with _sigterm_as_ctrl_c():
            yield
    except KeyboardInterrupt:
        if what is None:
            return
        click.echo(f"\ninterrupted ({what})", err=True)
        sys.exit(EXIT_FOR_STATUS["interrupted"])


RUN_INTERRUPTED = "the run was logged as interrupted"


def _agent(ctx: click.Context, name: str, *, watch: bool = False):
    from .runner import Agent

    return Agent(_vault(ctx).agent(name).root, watch=watch, index_progress=_IndexProgress(name))


class _IndexProgress:
    """Says on stderr that a long sync of the index is under way (a first index, a checkout of many files):
    when it starts and ends, and on a terminal (unless not `in_place`) how far it got, on one line rewritten."""

    def __init__(self, name: str, *, in_place: bool = True) -> None:
        self.name = name
        self.live = in_place and sys.stderr.isatty()
        self.started = 0.0
        self.shown = ""

    def __call__(self, done: int, total: int) -> None:
        if done == 0:
            self.started = time.monotonic()
        if done < total:
            self._show(f"{self.name}: indexing {total:,} new or changed files ({done:,} done)", last=False)
        else:
            self._show(f"{self.name}: indexed {total:,} files in {time.monotonic() - self.started:.1f} s", last=True)

    def _show(self, text: str, *, last: bool) -> None:
        if self.live:  # one line, rewritten in place
            click.echo("\r" + text.ljust(len(self.shown)), err=True, nl=last)
        elif last or not self.shown:
            click.echo(text, err=True)
        self.shown = text


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
    # The same token words as the journal entry: uncached input, output, cache reads.
    click.echo(f"— run {result.run_id} · {result.status} · {cost} · {u.input_tokens:,} in · {u.output_tokens:,} out · "
               f"{u.cache_read_tokens:,} cache read · {result.model or 'no model call'}{replay}", err=True)
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
    with _interruptible(RUN_INTERRUPTED):
        result = agent.run(work_item, trigger=trigger, model=model_override, critical=critical, on_text=stream,
                           lock_timeout_s=wait_s)
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
    """Print exactly what the model would see for a work item (no model call; with recall_words in model.md a
    run recalls by its model's words, this by the work item's)."""
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
            # At the prompt SIGTERM may end the process as it likes: every finished turn is saved.
            with _sigterm_as_ctrl_c():
                result = agent.run(text, trigger="chat", model=model_override, history=history, on_text=stream)
        except KeyboardInterrupt as exc:
            click.echo("\n(interrupted; the run was logged)")
            if isinstance(exc, _Terminated):
                break
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
        chats.save(chats.chat_path(chats_dir, chat_id), chat_id, name, started, turns, redact=agent.folder.redact)
    click.echo(f"chat saved as {chat_id} (resume: vault-agent chat {name} --resume {chat_id})" if turns else "bye")


# --- scheduler, audit review, dashboard, MCP (ops/) ------------------------------


@main.group()
def schedule() -> None:
    """Agents' schedules: list next runs, install them for cron or launchd, resume a paused agent."""


def _schedule_entries(ctx: click.Context, name: str | None) -> tuple[Any, list]:
    from .ops import schedule as sched

    vault = _vault(ctx)
    entries = []
    for agent_name in [name] if name else vault.agent_names():
        found, findings = sched.load_entries(vault.agent(agent_name))
        for f in findings:
            click.echo(f"[{agent_name}] {f.one_line()}", err=True)
        entries.extend(found)
    return vault, entries


@schedule.command("list")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def schedule_list(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Each schedule entry with its last and next run (all agents, or agent NAME)."""
    from .ops import schedule as sched
    from .vault import runlog

    vault, entries = _schedule_entries(ctx, name)
    now = runlog.now_ts()
    rows = []
    for agent_name in dict.fromkeys(e.agent for e in entries):
        folder = vault.agent(agent_name)
        mine = [e for e in entries if e.agent == agent_name]
        last = sched.last_runs(folder, {e.id for e in mine})
        paused = sched.pause_info(folder) is not None
        for e in mine:
            nxt = e.when.next_run(last.get(e.id), e.anchor)
            rows.append({"agent": e.agent, "id": e.id, "when": e.when_text, "work_item": e.work_item,
                         "file": e.source.relative_to(vault.root).as_posix(),
                         "last_run": runlog.ts_string(last[e.id]) if e.id in last else None,
                         "next_run": None if paused or nxt is None else runlog.ts_string(max(nxt, now)),
                         "missed": bool(nxt and nxt < now and not paused), "paused": paused})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("no schedules (add schedule.md to an agent folder: see spec/schedule.md)")
    for r in rows:
        nxt = "paused (delete PAUSED.md to resume)" if r["paused"] else (
            "none (a one-shot that ran, or a date that never comes)" if r["next_run"] is None else
            r["next_run"][:16].replace("T", " ") + (" (missed: runs at once)" if r["missed"] else ""))
        click.echo(f"{r['agent']:<16} {r['id']:<24} {r['when']:<22} next: {nxt}")


@schedule.command("install")
@click.argument("name", required=False)
@click.option("--cron", "target", flag_value="cron", help="Crontab lines (printed; --write installs them).")
@click.option("--launchd", "target", flag_value="launchd", help="LaunchAgent plists, one per entry.")
@click.option("--write", is_flag=True, help="cron: replace this vault's block in your crontab.")
@click.option("--dir", "out_dir", type=click.Path(file_okay=False), default="~/Library/LaunchAgents",
              show_default=True, help="launchd: where to write the plists.")
@click.pass_context
def schedule_install(ctx: click.Context, name: str | None, target: str | None, write: bool, out_dir: str) -> None:
    """Run the schedule from cron or launchd instead of `vault-agent daemon`."""
    import subprocess
    from pathlib import Path

    from .ops import install

    if target is None:
        raise click.UsageError("choose --cron or --launchd")
    vault, entries = _schedule_entries(ctx, name)
    launch = install.Launch.here(vault.root)
    if target == "cron":
        block = install.crontab_block(entries, launch)
        if not write:
            click.echo(block, nl=False)
            return
        current = subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
        subprocess.run(["crontab", "-"], input=install.merge_crontab(current, block, vault.root), text=True,
                       check=True)
        click.echo(f"installed {sum(1 for line in block.splitlines() if line and line[0] != '#')} crontab line(s)")
        return
    written, skipped = install.write_plists(entries, launch, Path(out_dir).expanduser())
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    for path in written:
        click.echo(f"wrote {path}")
    for line in install.load_commands(written):
        click.echo(f"load: {line}")


@schedule.command("fire")
@click.argument("name")
@click.argument("entry_id")
@click.option("--pause-after", type=int, default=3, show_default=True,
              help="Pause the agent after this many failed scheduled runs in a row.")
@click.pass_context
def schedule_fire(ctx: click.Context, name: str, entry_id: str, pause_after: int) -> None:
    """Run one schedule entry now (what cron and launchd call); skipped while the agent is paused."""
    from .ops import schedule as sched
    from .ops.daemon import fire

    folder = _vault(ctx).agent(name)
    if sched.pause_info(folder) is not None:
        click.echo(f"{name} is paused: see {sched.pause_path(folder)} (delete it to resume)", err=True)
        return
    entry = sched.find_entry(folder, entry_id)
    # launchd and systemd stop a job with SIGTERM: the run or dream is logged as interrupted, as on Ctrl-C.
    with _interruptible(RUN_INTERRUPTED):
        result, paused = fire(_agent(ctx, name), entry, pause_after=pause_after, lock_wait_s=30.0)
    _print_result(result, streamed=False)
    if paused:
        click.echo(f"paused {name}: {pause_after} scheduled runs in a row failed; see {sched.pause_path(folder)}",
                   err=True)
    sys.exit(EXIT_FOR_STATUS.get(result.status, 1))


@schedule.command("resume")
@click.argument("name")
@click.pass_context
def schedule_resume(ctx: click.Context, name: str) -> None:
    """Resume a paused agent's scheduled runs (deletes its PAUSED.md)."""
    from .ops import schedule as sched

    folder = _vault(ctx).agent(name)
    click.echo(f"resumed {name}" if sched.resume(folder) else f"{name} was not paused")


@main.command()
@click.option("--max-concurrent", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Runs at the same time over the whole vault.")
@click.option("--pause-after", type=click.IntRange(1), default=3, show_default=True,
              help="Pause an agent after this many failed scheduled runs in a row (writes its PAUSED.md).")
@click.option("--grace", "grace_s", type=float, default=30.0, show_default=True,
              help="On SIGTERM, seconds running runs may take before they are interrupted.")
@click.pass_context
def daemon(ctx: click.Context, max_concurrent: int, pause_after: int, grace_s: float) -> None:
    """Run every agent of the vault on its schedule until SIGTERM or Ctrl-C."""
    from .ops.daemon import Daemon, DaemonOptions, daemon_lock

    vault = _vault(ctx)
    runner = Daemon(vault, DaemonOptions(max_concurrent=max_concurrent, pause_after=pause_after, grace_s=grace_s))

    def stop(signum: int, frame: Any) -> None:
        runner.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with daemon_lock(vault.root):
        runner.run()


@main.command()
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default="dashboard.html", show_default=True,
              help="Where to write the page.")
@click.option("--days", type=click.IntRange(7, 3660), default=90, show_default=True, help="Days the charts show.")
@click.pass_context
def dashboard(ctx: click.Context, out_file: str, days: int) -> None:
    """Write one self-contained HTML page about the vault: spend, runs, tokens, tools, latest runs."""
    from pathlib import Path

    from .ops.dashboard import build

    path, size = build(_vault(ctx), Path(out_file).resolve(), days=days)
    click.echo(f"wrote {path} ({size / 1024:.0f} KiB)")


@main.command("log")
@click.argument("name", required=False)
@click.option("--since", help="First day: YYYY-MM-DD, 7d, 2w, today, yesterday.")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="The newest N runs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per line.")
@click.pass_context
def log_cmd(ctx: click.Context, name: str | None, since: str | None, status: str | None, limit: int,
            as_json: bool) -> None:
    """The run log of agent NAME (or of all agents), oldest first."""
    from .ops import review
    from .vault import runlog

    vault = _vault(ctx)
    names = [vault.agent(name).name] if name else vault.agent_names()
    records = review.runs(vault, names, since=review.parse_since(since) if since else None, status=status,
                          limit=limit)
    for r in records:
        if as_json:
            click.echo(runlog.encode({k: v for k, v in r.items() if k not in review.CHAIN_KEYS}))
        else:
            click.echo(review.one_line(r))
    if not records and not as_json:
        click.echo("no runs")


@main.command()
@click.argument("run_id")
@click.option("--agent", "name", help="Look only in this agent's log.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, run_id: str, name: str | None, as_json: bool) -> None:
    """One run: its record, its tool calls and its journal entry."""
    from .ops import review

    detail = review.find_run(_vault(ctx), run_id, [name] if name else None)
    if as_json:
        click.echo(json.dumps({"agent": detail.agent, "record": detail.record, "tool_calls": detail.tool_calls,
                               "journal": detail.journal, "log_file": str(detail.log_file)}, ensure_ascii=False))
        return
    click.echo(f"run {run_id} of {detail.agent} ({detail.log_file})")
    for key, value in sorted(detail.record.items()):
        click.echo(f"  {key}: {value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}")
    for call in detail.tool_calls:
        error = f" — {call.get('error')}" if call.get("error") else ""
        click.echo(f"  tool {call.get('gen_ai.tool.name')}: {call.get('status')} in {call.get('latency_ms')} ms{error}")
    click.echo("")
    click.echo(detail.journal.rstrip() if detail.journal else "(no journal entry found)")


@main.group()
def audit() -> None:
    """Check the logs' hash chain."""


@audit.command("verify")
@click.argument("name", required=False)
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
@click.pass_context
def audit_verify(ctx: click.Context, name: str | None, quiet: bool) -> None:
    """Report every edited, removed or reordered log line of agent NAME (or all agents); exit 1 if any."""
    from .vault import chain, runlog

    vault = _vault(ctx)
    failed = False
    for agent_name in [vault.agent(name).name] if name else vault.agent_names():
        folder = vault.agent(agent_name)
        verdict = chain.verify(runlog.day_files(folder.paths.log))
        for problem in verdict.problems:
            if problem.level != "info" or not quiet:
                click.echo(f"[{agent_name}] {problem.one_line(folder.root)}")
        failed = failed or not verdict.ok
        if not quiet:
            state = "ok" if verdict.ok else "TAMPERED"
            click.echo(f"[{agent_name}] {state}: {verdict.lines:,} lines, {verdict.chained:,} chained; "
                       f"tip seq {verdict.tip.seq} sha256 {verdict.tip.hash}")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("name", required=False)
@click.option("--month", help="YYYY-MM (default: this month).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def cost(ctx: click.Context, name: str | None, month: str | None, as_json: bool) -> None:
    """Spend of agent NAME (or every agent) against its daily, monthly and per-run caps."""
    import dataclasses

    from .ops import review

    vault = _vault(ctx)
    reports = [review.cost_report(vault.agent(n), month) for n in ([name] if name else vault.agent_names())]
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in reports], ensure_ascii=False, default=str))
        return
    for r in reports:
        caps = r.caps
        click.echo(f"{r.agent} — {r.month}: {r.runs} run(s)"
                   + (f", {r.unknown_runs} unpriced" if r.unknown_runs else ""))
        if caps is None:
            click.echo("  caps: model.md cannot be read (vault-agent doctor says why)")
        click.echo(f"  month  {review.cap_text(r.month_usd, caps.monthly_usd if caps else None)}")
        if r.day_usd is not None:
            click.echo(f"  today  {review.cap_text(r.day_usd, caps.daily_usd if caps else None)}")
        if caps is not None and caps.per_run_usd is not None:
            click.echo(f"  per run: at most ${caps.per_run_usd:.2f}")
        for model, spent in sorted(r.by_model.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {model:<28} ${spent:.4f}")


@main.command()
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """Serve the vault over MCP on stdin/stdout (list_agents, run_agent, search_memory, read_note)."""
    from .ops.mcp_server import serve

    serve(_vault(ctx))


# --- tools and secrets (tools/, security/) ------------------------------------

EXIT_TOOL = {"refused": 3, "denied": 4, "expired": 4, "pending": 4, "invalid": EXIT_ERROR}


@main.group("tools")
def tools_group() -> None:
    """An agent's tools: list what it is granted, call one exactly as the agent would."""


@tools_group.command("list")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def tools_list(ctx: click.Context, name: str, as_json: bool) -> None:
    """The tools agent NAME is granted, with the capability each needs and whether tools.md grants it."""
    from .security.policy import parse_grants
    from .tools.disclosure import Disclosure
    from .tools.registry import BUILTIN_NAMES, granted_tools

    folder = _vault(ctx).agent(name)
    config = folder.load_config()
    grants = parse_grants(config.tools)
    tools, findings = granted_tools(folder.root, config.tools)
    shown = {s.name for s in Disclosure(tools).specs()}
    rows = [{"name": t.name, "kind": "built-in" if t.name in BUILTIN_NAMES else "custom",
             "capability": t.capability, "usable": grants.has(t.capability), "parallel_safe": t.parallel_safe,
             "shown_to_model": t.name in shown, "description": t.description} for t in tools.values()]
    if as_json:
        click.echo(json.dumps({"tools": rows, "findings": [f.one_line() for f in findings]}, ensure_ascii=False))
        return
    for f in findings:
        click.echo(f.one_line(), err=True)
    for r in rows:
        needs = f" needs {r['capability']}{'' if r['usable'] else ' (NOT granted: the call is refused)'}" \
            if r["capability"] else ""
        hidden = "" if r["shown_to_model"] else " [via tool_search]"
        click.echo(f"{r['name']:<16} {r['kind']:<8}{needs}{hidden} — {r['description'].splitlines()[0][:90]}")
    if not rows:
        click.echo("no tools granted (list them under tools: in tools.md)")


@tools_group.command("call")
@click.argument("name")
@click.argument("tool")
@click.option("--json", "args_json", default="{}", show_default=True, metavar="ARGS",
              help="The tool's arguments as a JSON object.")
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
              help="Seconds to wait for a run of this agent to finish.")
@click.pass_context
def tools_call(ctx: click.Context, name: str, tool: str, args_json: str, wait_s: float) -> None:
    """Call TOOL of agent NAME through the full pipeline; prints the result or the refusal as JSON.

    Exit status: 0 the tool ran, 3 the policy refused it, 4 approval denied or pending, 2 bad arguments,
    75 a run of the agent held its lock past --wait.
    """
    try:
        arguments = json.loads(args_json)
    except ValueError as exc:
        raise click.UsageError(f"--json is not valid JSON: {exc}") from None
    if not isinstance(arguments, dict):
        raise click.UsageError("--json must be a JSON object, e.g. '{\"path\": \"memory/INDEX.md\"}'")
    outcome = _agent(ctx, name).call_tool(tool, arguments, lock_timeout_s=wait_s)
    click.echo(json.dumps({"tool": tool, "status": outcome.status, "decision": outcome.decision,
                           "reason": outcome.reason, "content": outcome.result.content, "latency_ms": outcome.latency_ms,
                           "approval": outcome.approval, "artifact": outcome.artifact, "redacted": outcome.redacted},
                          ensure_ascii=False))
    sys.exit(EXIT_TOOL.get(outcome.decision, 0))


@main.group("secret")
def secret_group() -> None:
    """The vault's encrypted secret store (tools get secrets by reference: {{secret:NAME}})."""


def _store(ctx: click.Context):
    import os

    from .security.secrets import SecretStore

    return SecretStore.open(_vault(ctx).root, os.environ)


@secret_group.command("init")
@click.pass_context
def secret_init(ctx: click.Context) -> None:
    """Create the master key (unless $VAULT_AGENT_MASTER_KEY is set) and an empty store."""
    import os

    from .security.secrets import init_store

    path, key_file, created = init_store(_vault(ctx).root, os.environ)
    click.echo(f"secret store: {path}" + ("" if created else " (already there; the key opens it)"))
    if key_file is not None:
        click.echo(f"master key: {key_file} (mode 600; back it up outside the vault: without it the store is lost)")


@secret_group.command("set")
@click.argument("secret_name")
@click.option("--value", help="The value (default: prompt, or read standard input). Beware shell history.")
@click.pass_context
def secret_set(ctx: click.Context, secret_name: str, value: str | None) -> None:
    """Store SECRET_NAME (replacing any value it had)."""
    if value is None:
        value = sys.stdin.read().rstrip("\r\n") if not sys.stdin.isatty() else \
            click.prompt(f"value for {secret_name}", hide_input=True, confirmation_prompt=True)
    _store(ctx).set(secret_name, value)
    click.echo(f"stored {secret_name}")


@secret_group.command("get")
@click.argument("secret_name")
@click.option("--reveal", is_flag=True, help="Print the value (required: values are never printed by accident).")
@click.pass_context
def secret_get(ctx: click.Context, secret_name: str, reveal: bool) -> None:
    """Print the value of SECRET_NAME (with --reveal)."""
    value = _store(ctx).get(secret_name)
    if not reveal:
        raise click.UsageError(f"{secret_name} is set ({len(value)} characters); add --reveal to print it")
    click.echo(value)


@secret_group.command("list")
@click.pass_context
def secret_list(ctx: click.Context) -> None:
    """The names of the stored secrets (never their values)."""
    names = _store(ctx).names()
    for n in names:
        click.echo(n)
    if not names:
        click.echo("no secrets yet (add one: vault-agent secret set NAME)", err=True)


@secret_group.command("rm")
@click.argument("secret_name")
@click.pass_context
def secret_rm(ctx: click.Context, secret_name: str) -> None:
    """Delete SECRET_NAME from the store."""
    _store(ctx).remove(secret_name)
    click.echo(f"removed {secret_name}")


# --- memory: index, search, watch, dream --------------------------------------

@main.command("index")
@click.argument("name")
@click.option("--rebuild", is_flag=True, help="Delete the index and build it again from the files.")
@click.option("--embed", is_flag=True, help="Also embed new and changed documents (model.md `embeddings:`).")
@click.pass_context
def index_cmd(ctx: click.Context, name: str, rebuild: bool, embed: bool) -> None:
    """Bring agent NAME's search index in step with its files (incremental; --rebuild starts over)."""
    from .memory.catalog import Catalog

    folder = _vault(ctx).agent(name)
    started = time.perf_counter()
    with Catalog(folder.paths, progress=_IndexProgress(name)) as catalog:
        s = catalog.rebuild() if rebuild else catalog.sync()
        for finding in catalog.findings():
            click.echo(finding.one_line(), err=True)
        skipped = f", {s.skipped:,} left out (see above)" if s.skipped else ""
        click.echo(f"{name}: {s.added:,} added, {s.changed:,} changed, {s.removed:,} removed, "
                   f"{s.unchanged:,} unchanged, {s.touched:,} touched without a change{skipped} · "
                   f"{catalog.document_count():,} documents · "
                   f"{time.perf_counter() - started:.2f} s")
        if embed:
            from .memory.embed import EmbeddingError, embed_missing, embedder_for

            embedder = embedder_for(folder.paths)
            if embedder is None:
                raise click.UsageError("model.md has no usable `embeddings:` (model, and base_url or provider: "
                                       "ollama | openai | local); see spec/index-db.md")
            try:
                count = catalog.healing(lambda: embed_missing(catalog, embedder))
            except EmbeddingError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"{name}: embedded {count:,} document(s) with {embedder.model}")


@main.command("search")
@click.argument("name")
@click.argument("query", nargs=-1, required=True)
# memory_tools.TYPE_CHOICES written out: importing it would load the index code for every --help.
@click.option("--type", "note_type", help="A note type (user, feedback, project, decision, reference), or memory "
                                          "(every note), wiki, journal, skill, archive.")
@click.option("--limit", "-k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search_cmd(ctx: click.Context, name: str, query: tuple[str, ...], note_type: str | None, limit: int,
               as_json: bool) -> None:
    """Search agent NAME's notes, wiki, journal and skills (BM25 with related terms; best first)."""
    from .memory.catalog import Catalog
    from .memory.search import search

    folder = _vault(ctx).agent(name)
    with Catalog(folder.paths, progress=_IndexProgress(name)) as catalog:
        catalog.sync()
        # Only the files search cannot find, not every warning about the notes (`vault-agent notes` lists those).
        for finding in catalog.findings(left_out=True):
            click.echo(finding.one_line(), err=True)
        hits = search(catalog, " ".join(query), type=note_type, limit=limit)
    if as_json:
        click.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False))
        return
    for h in hits:
        where = f"{h.path}#{h.anchor}" if h.anchor else h.path
        click.echo(f"{h.score:7.2f}  {where}  [{h.type}] {h.name}")
        if h.snippet:
            click.echo(f"         {h.snippet}")
    if not hits:
        click.echo("no matches", err=True)


@main.command("watch")
@click.argument("name", required=False)
@click.option("--quiet", "quiet_s", default=0.5, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds without further edits before a sync.")
@click.pass_context
def watch_cmd(ctx: click.Context, name: str | None, quiet_s: float) -> None:
    """Keep the search index of agent NAME (default: every agent) fresh while files are edited; Ctrl-C stops."""
    import threading

    from .errors import AgentNotFound
    from .memory.watch import watch_agents

    vault = _vault(ctx)
    if not vault.root.is_dir():
        raise AgentNotFound("vault folder does not exist", path=vault.root,
                            fix="create an agent with: vault-agent init NAME, or pass --vault DIR")
    warned: set[str] = set()

    def say(line: str) -> None:
        click.echo(line, err=True)

    def discover() -> list[Any]:
        names, misnamed = vault.agents_and_misnamed()
        for finding in misnamed:
            if finding.message not in warned:
                warned.add(finding.message)
                say(finding.one_line())
        return [vault.agent_path(n) for n in names]

    roots = [vault.agent(name).root] if name else discover()

    def report(agent: str, stats: Any) -> None:
        if stats.added or stats.changed or stats.removed or stats.skipped:
            skipped = f", {stats.skipped} left out (see above)" if stats.skipped else ""
            click.echo(f"[{agent}] {stats.added} added, {stats.changed} changed, {stats.removed} removed{skipped}")

    following = ", ".join(r.name for r in roots) or "no agents yet"
    new_agents = "" if name else "; agents created meanwhile are picked up"
    say(f"watching {following}{new_agents} (Ctrl-C to stop)")
    # Ctrl-C or SIGTERM stops it now, even mid-sync, quietly: the index keeps its committed batches.
    with _interruptible(None):
        # Whole lines only: a line rewritten in place, left open, would take in another agent's line.
        watch_agents(roots, threading.Event(), quiet_s=quiet_s, on_sync=report,
                     discover=None if name else discover, progress_for=partial(_IndexProgress, in_place=False),
                     say=say)


@main.command("dream")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--with-model", is_flag=True,
              help="Have the agent's model write near-duplicate merges, a journal summary and aliases for notes "
                   "without any (one run: cost caps apply; the deterministic merge stands where its text is unusable).")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="How many past journal days to summarize (up to yesterday).")
@click.option("--wait", "wait_s", type=float, default=30.0, show_default=True,
              help="Seconds to wait for a run of this agent to finish.")
@click.pass_context
def dream_cmd(ctx: click.Context, name: str, dry_run: bool, with_model: bool, days: int, wait_s: float) -> None:
    """Consolidate agent NAME's memory: merge duplicates, archive expired notes, summarize recent journal days."""
    import datetime as dt

    from .memory import dream
    from .ops.consolidate import run_dream

    folder = _vault(ctx).agent(name)

    def show(planned: dream.DreamPlan) -> None:
        for line in planned.lines(folder.root, with_model=with_model):
            click.echo(f"{'plan' if dry_run else 'todo'}: {line}")
        for line in planned.warnings(folder.root):
            click.echo(f"warning: {line}", err=True)

    if dry_run:
        with _interruptible("a dry run: nothing was changed or logged"):
            show(dream.plan(folder, today=dt.date.today(), days=days, aliases=with_model))
        return
    # Planning too happens inside run_dream: a dream stopped at any point leaves its record.
    with _interruptible("the dream was logged as interrupted, with the steps it had done"):
        result = run_dream(_agent(ctx, name), days=days, with_model=with_model, lock_timeout_s=wait_s,
                           say=lambda line: click.echo(f"warning: {line}", err=True), show=show)
    for line in result.text.splitlines():
        click.echo(f"done: {line}")
    if result.error:
        click.echo(f"error: {result.error}", err=True)
    click.echo(f"— run {result.run_id} · {result.status} (logged, with a journal entry)", err=True)
    sys.exit(EXIT_FOR_STATUS.get(result.status, 1))


if __name__ == "__main__":
    main()
