"""A dream as a logged run: plan, optional model text, apply under the run lock, one record and one journal entry.

`vault-agent dream` and a schedule entry with `action: dream` both come here,
so memory consolidation leaves the same audit trail as any other run: a log
record (trigger `dream` or `schedule:<id>`) listing the notes it wrote, and a
journal entry saying what it did. With a model, the merged notes, the journal
summary and aliases for notes without any come from one agent run of their
own (cost caps, fallback, leak scan and its own log record apply); the dream's
record names that run instead of counting its spend a second time.
"""

from __future__ import annotations

from typing import Callable

from ..memory import dream, dream_model
from ..memory.catalog import Catalog
from ..runner import Agent, LoggedWork, NoteCaptured, RunResult

WORK_ITEM = "consolidate memory (dream)"


def run_dream(agent: Agent, *, trigger: str = "dream", days: int = dream.SUMMARY_DAYS, with_model: bool = False,
              lock_timeout_s: float = 30.0, say: Callable[[str], None] | None = None,
              show: Callable[[dream.DreamPlan], None] | None = None) -> RunResult:
    """Consolidate the agent's memory now and log it as a run; never raises for a user problem.

    `show`: called with the plan once it is made, before anything is changed (the CLI prints it).

    Logged as a run is, by the runner (Agent.logged_work): busy, error, or, for KeyboardInterrupt (Ctrl-C, or
    the daemon stopping past its grace period) at any point, planning included, `interrupted`, with the steps
    done and notes written before it, and raised again. The steps that change files run under the run lock,
    and the record is written before it is released: a dream killed after that is not logged again.
    """
    folder = agent.folder
    progress = dream.Progress()
    extra: dict[str, object] = {}

    def settle(work: LoggedWork) -> None:
        # A dream that did not get to run (busy, error) did nothing: its journal entry, like a run's, says why
        # under Problem only.
        done = progress.steps
        idle = "nothing to do" if work.status == "ok" else ""
        work.describe(text="\n".join(done) or idle, did="; ".join(done) or idle,
                      captures=_captured(agent, progress), extra={**extra, "dream": done})

    with agent.logged_work(WORK_ITEM, trigger=trigger, settle=settle) as work:
        planned = dream.plan(folder, today=work.started.date(), days=days, aliases=with_model)
        if show is not None:
            show(planned)
        if planned.problems:
            extra["warnings"] = planned.warnings(folder.root)
        model = None
        prompt = dream_model.prompt(planned) if with_model else None
        if prompt is not None:
            # The agent's own run, with its own record, so the model's part stays behind the cost caps.
            answer = agent.run(prompt, trigger=trigger, lock_timeout_s=lock_timeout_s)
            extra["model_run"] = answer.run_id  # its record holds the spend; counting it here too would double it
            model = _model_text(agent, planned, answer, say)
        if not planned.empty:
            with work.locked(lock_timeout_s):
                dream.apply(folder, planned, tag=work.run_id, model=model, progress=progress)
                with Catalog(folder.paths) as catalog:
                    catalog.sync()
    return work.result


def _model_text(agent: Agent, planned: dream.DreamPlan, answer: RunResult,
                say: Callable[[str], None] | None) -> dream.ModelText:
    """What the model's run wrote for the plan, checked; when the run did not end ok, why nothing of it is used."""
    if answer.ok:
        # The run left its leak scan (stored secret values included) on the folder: the reply goes through it.
        return dream_model.read_reply(planned, answer.text, agent.folder.redact or str)
    why = f"no model text: {answer.error or answer.status}"
    if say is not None:
        say(f"{why}; deterministic merges and the digest only")
    return dream_model.not_written(planned, why)


def _captured(agent: Agent, progress: dream.Progress) -> list[NoteCaptured]:
    """The notes the dream wrote so far, as a run's captures: each merge's kept note, notes given aliases and
    the observation note; not a write a person's edit won over (the journal entry would name it too)."""
    root = agent.folder.root
    return [NoteCaptured(w.note.type, w.note.name, w.note.path.relative_to(root).as_posix(), w.action, "dream")
            for w in progress.written if w.action in ("created", "updated")]
