"""A run, as data flows through it: lock, config, cost, memory, context, tool loop, capture, write-back.

`Agent(path).run(work_item)` is the whole product; the CLI, chat, scheduler
and MCP server all call it. Every started run ends in exactly one log record
and one journal entry, whatever happens: ok, error, refused, busy or
interrupted; a run killed outright (SIGKILL, power loss) gets them, killed,
from the next run, dream or tool call to take the agent's run lock, with the
spend it kept in the lock's owner file after each model call, and the call it
had in flight, if any, at the most that call can cost.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import math
import os
import re
import threading
import time
import weakref
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

from . import capture as capture_mod
from .context.assemble import Context, assemble
from .context.tokens import estimate_tokens
from .cost import CostGuard, Ledger
from .errors import AgentBusy, VaultAgentError
from .memory import recall_words
from .memory.catalog import Catalog, CatalogDirectory, Progress
from .memory.recall import Recaller, SearchRecaller, index_view
from .memory.watch import ChangeTracker
from .models.base import (
    Completion,
    CompletionRequest,
    Message,
    Model,
    ModelError,
    OnText,
    Usage,
)
from .security.redact import Redactor, load_redactor
from .tools.runtime import ToolOutcome, ToolRuntime, build_runtime
from .vault import journal as journal_mod
from .vault import runlog
from .vault.config import AgentConfig, Prices, load_model
from .vault.folder import AgentFolder, RunLockHolder
from .vault.lock import SPENT, owner_started

DEFAULT_LOCK_TIMEOUT_S = 30.0
JOURNAL_DAYS = 3
KILLED_ERROR = "killed before it finished (SIGKILL, out of memory or power loss): what it spent and wrote is unknown"
KILLED_AFTER_CALLS = ("killed before it finished (SIGKILL, out of memory or power loss) after {calls} model call(s), "
                      "whose spend this record counts (no call noted in flight): what it wrote is unknown")
KILLED_IN_CALL = ("killed before it finished (SIGKILL, out of memory or power loss) in model call {calls}: this "
                  "record counts the calls before it as spent and the one in flight at its upper bound (its "
                  "{input_tokens:,} input tokens, {max_output_tokens:,} output tokens allowed; not in the token "
                  "counts); what it wrote is unknown")
RECALL_WORDS_PREVIEW = ("recall_words is on in model.md: a run recalls by the search words its model gives for the "
                        "work item; this preview, which calls no model, recalls by the work item's own words")
# The Did of a journal entry written from its run's log record, by the next run: the reply is in neither.
DID_FROM_RECORD = ("unknown: killed after its log record was written and before this entry, which the next run "
                   "wrote from that record")


@dataclass
class NoteCaptured:
    type: str
    name: str
    path: str  # relative to the agent folder
    action: str  # created | updated | unchanged | conflict
    origin: str


@dataclass
class RunResult:
    """What a run did. `status`: ok | error | refused | busy | interrupted."""

    text: str
    run_id: str
    status: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    captures: list[NoteCaptured] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    model: str | None = None
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    capture_problems: list[str] = field(default_factory=list)
    latency_ms: int = 0
    replay: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["usage"] = self.usage.as_dict()
        return data


@dataclass
class _RunState:
    """What a run accumulates, so the record can be written whatever ended it."""

    run_id: str
    started: _dt.datetime
    trigger: str
    work_item: str
    critical: bool
    t0: float = field(default_factory=time.perf_counter)
    status: str = "error"
    text: str = ""
    error: str | None = None
    error_type: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    provider: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    fallback_reason: str | None = None
    replay: bool = False
    outcomes: list[ToolOutcome] = field(default_factory=list)
    captured: list[NoteCaptured] = field(default_factory=list)
    capture_problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    iterations: int = 0
    did: str | None = None  # the journal's "Did" line, when not the reply's first line
    extra: dict[str, Any] = field(default_factory=dict)  # more keys for the log record
    # Keeps the spend so far in the run lock's owner file, for the record of a run killed later (_log_killed).
    note_spent: Callable[[dict[str, Any]], None] | None = None
    # Fills in what the record says from what the work got done, just before it is written (LoggedWork).
    settle: Callable[[], None] | None = None
    result: RunResult | None = None  # set once the record is being written: a run is logged once

    def add_cost(self, cost: float | None) -> None:
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost


class Agent:
    """One agent folder, ready to run. Long-lived Agents see what their earlier runs wrote."""

    def __init__(self, path: str | os.PathLike[str], *, model: Model | None = None,
                 env: Mapping[str, str] | None = None, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
                 recaller: Callable[[AgentFolder, Catalog], Recaller] | None = None, watch: bool = True,
                 index_progress: Progress | None = None) -> None:
        """`watch`: between runs, learn about edited notes from the OS instead of stat'ing every note
        (pass False for a process that runs once, such as the CLI). `index_progress`: see Catalog."""
        self.folder = AgentFolder(path)
        # Every note, journal entry and log line is leak-scanned before it is written; a run loads the secrets.
        self.folder.redact = Redactor().scrub
        self._model = model
        self._env = env
        self.lock_timeout_s = lock_timeout_s
        self._make_recaller = recaller
        self._watch = watch
        self._index_progress = index_progress
        self._catalog: Catalog | None = None
        self._tracker: ChangeTracker | None = None
        self._models: dict[str, tuple[Model, list[str]]] = {}
        self._mutex = threading.RLock()

    def close(self) -> None:
        """Release the derived index and the file watcher (also done at interpreter exit)."""
        with self._mutex:
            if self._tracker is not None:
                self._tracker.stop()
                self._tracker = None
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _synced_catalog(self) -> Catalog:
        """The derived catalog, in step with the files; opened once per Agent."""
        if self._catalog is None:
            catalog = Catalog(self.folder.paths, progress=self._index_progress)
            try:
                catalog.sync()
            except BaseException:
                catalog.close()
                raise
            self._catalog = catalog
            if self._watch:
                # The whole folder: the index covers wiki/, journal/ and skills/ as well as memory/.
                tracker = ChangeTracker(self.folder.root, self.folder.root)
                if tracker.start():
                    self._tracker = tracker
                    # An Agent dropped without close() must not leave its watcher thread behind.
                    weakref.finalize(self, tracker.stop)
            return self._catalog
        taken = self._tracker.take() if self._tracker is not None else None
        try:
            self._catalog.sync(taken)
        except BaseException:
            if self._tracker is not None:
                self._tracker.restore(taken)  # what a failed sync (a lock held 30 s ...) missed, the next one gets
            raise
        return self._catalog

    def _build_model(self, config: AgentConfig, override: str | None) -> tuple[Model, list[str]]:
        from .models.factory import build_model

        key = repr((config.model.primary, config.model.fallback, config.model.timeout_s,
                    config.model.max_retries, config.model.replay, override))
        cached = self._models.get(key)
        if cached is not None:
            return cached
        built = build_model(config.model, self.folder.root, env=self._env or os.environ, override=override)
        # A replay plays its transcript from the start on every run, so it is never reused.
        if built[0].provider != "replay":
            self._models[key] = built
        return built

    @property
    def name(self) -> str:
        return self.folder.name

    def __repr__(self) -> str:
        return f"Agent({str(self.folder.root)!r})"

    # --- the prompt ------------------------------------------------------
    def context(self, work_item: str, *, history: list[Message] | None = None) -> Context:
        """Exactly what the model would be sent for this work item (no model call, no lock), leak-scanned as a
        run's request is."""
        config = self.folder.load_config()
        with self._mutex:
            catalog = self._synced_catalog()
            tools = self._tools(config, "preview", catalog)[0]
            context = self._assemble(config, catalog, work_item, history or [], tools)
        scrub = tools.redactor.scrub
        warnings = [*context.warnings, *([RECALL_WORDS_PREVIEW] if config.model.recall_words else [])]
        return dataclasses.replace(context, system=_scrubbed_texts(context.system, scrub),
                                   messages=_scrubbed_messages(context.messages, scrub),
                                   parts=_scrubbed_texts(context.parts, scrub), warnings=warnings)

    def _tools(self, config: AgentConfig, run_id: str, catalog: Catalog,
               secrets: tuple[Redactor, dict[str, str]] | None = None) -> tuple[ToolRuntime, list[str]]:
        return build_runtime(self.folder, config, run_id, env=self._env or os.environ, catalog=catalog,
                             secrets=secrets)

    def _assemble(self, config: AgentConfig, catalog: Catalog, work_item: str, history: list[Message],
                  tools: ToolRuntime, recall_words: str | None = None) -> Context:
        """The prompt for `work_item`; recall and the INDEX view rank by `recall_words` when given (the model's
        search words), else by the work item."""
        from .context.assemble import memory_budgets

        specs = tools.specs()
        recall_budget, index_budget = memory_budgets(config, specs)

        # Asked once per path for the whole prompt: recall, the INDEX view and the check below mostly ask about
        # the same notes, and each answer resolves the path on disk.
        @functools.cache
        def readable(rel: str) -> bool:
            return tools.policy.paths.allows(rel, "read")

        chosen = recall_words is not None
        recaller = self._make_recaller(self.folder, catalog) if self._make_recaller \
            else SearchRecaller(self.folder.paths, catalog, readable=readable, every_word=chosen)
        # A plugged-in recaller may not know the grant: what it returns passes the same check.
        query = recall_words if chosen else work_item
        recalled = [r for r in catalog.healing(lambda: recaller.recall(query, recall_budget)) if readable(r.path)]
        view = catalog.healing(lambda: index_view(catalog, index_budget, work_item=query, readable=readable,
                                                  every_word=chosen))
        return assemble(config, work_item=work_item, tools=specs, index_view=view, recalled=recalled,
                        journal=self._recent_journal(), history=history)

    def _recent_journal(self) -> list[str]:
        """Journal entries of the last few days, newest first."""
        entries: list[str] = []
        today = _dt.date.today()
        for back in range(JOURNAL_DAYS):
            day = today - _dt.timedelta(days=back)
            try:
                text = self.folder.paths.journal_day(day).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            entries.extend(f"[{day.isoformat()}] {e.text.strip()}" for e in reversed(journal_mod.parse_day(text)))
        return entries

    # --- the run ---------------------------------------------------------
    def run(self, work_item: str, *, trigger: str = "api", model: str | None = None, critical: bool = False,
            history: list[Message] | None = None, on_text: OnText | None = None,
            lock_timeout_s: float | None = None) -> RunResult:
        """Run the agent on one work item. Never raises for a user or model problem: see RunResult.status."""
        started = runlog.now_ts()
        state = _RunState(runlog.new_run_id(started), started, trigger, work_item, critical)
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        with self._recording(state):  # a run that never got the lock (busy, Ctrl-C while waiting) is logged here
            # Threads sharing this Agent queue here first (the file lock is per process).
            if not self._mutex.acquire(timeout=timeout):
                raise AgentBusy("agent busy: another run in this process holds it", path=self.folder.paths.run_lock,
                                fix="wait for it to finish, or raise the lock timeout (--wait)")
            try:
                # Before the lock: its owner file holds the work item, scrubbed of stored secret values too.
                secrets = self._leak_scan(state.warnings)
                with self._locked(state, timeout):
                    self._run_locked(state, secrets, model, history or [], on_text)
            finally:
                self._mutex.release()
        assert state.result is not None  # _recording logged it
        return state.result

    @contextmanager
    def logged_work(self, work_item: str, *, trigger: str,
                    settle: Callable[[LoggedWork], None]) -> Iterator[LoggedWork]:
        """Work done for this agent outside a model run (a dream), logged exactly as a run is, by the same code:
        one record and one journal entry, whatever ended it (ok, error, busy, interrupted; Ctrl-C and internal
        errors then go on up, a VaultAgentError does not). Its steps that change files go under
        `work.locked(timeout)`, which logs it before releasing the run lock, as a run is.

        `settle(work)` is called just before the record is written, with `work.status` known, to `describe` it.
        """
        started = runlog.now_ts()
        state = _RunState(runlog.new_run_id(started), started, trigger, work_item, False, status="ok")
        work = LoggedWork(self, state)
        state.settle = lambda: settle(work)
        with self._recording(state):  # what never got the lock (busy, Ctrl-C while planning) is logged here
            yield work

    @contextmanager
    def _locked(self, state: _RunState, timeout: float) -> Iterator[None]:
        """Hold the run lock for the run (or dream) and log it before releasing the lock, marking its owner file
        logged: one killed after that is not logged again by the next taker (_log_killed)."""
        with self.run_lock(state.run_id, started=state.started, timeout=timeout, trigger=state.trigger,
                           work_item=state.work_item) as holder, self._recording(state, holder.logged):
            state.note_spent = holder.spent
            yield

    @contextmanager
    def _recording(self, state: _RunState, logged: Callable[[], None] | None = None) -> Iterator[None]:
        """Log the run when the block ends, whatever ended it; Ctrl-C and internal errors then go on up.
        `logged`: called once the record is written (the run lock's, when this block holds it).

        Nested, the inner block logs it; the outer one passes on what it raised, as it does a failed write.
        """
        try:
            yield
        except BaseException as exc:
            if state.result is not None:
                raise
            state.status, state.error, state.error_type = _how_it_ended(exc)
            self._finish(state, logged)
            if not isinstance(exc, VaultAgentError):
                raise
        else:
            if state.result is None:
                self._finish(state, logged)

    @contextmanager
    def run_lock(self, run_id: str, *, started: _dt.datetime, timeout: float, trigger: str,
                 work_item: str) -> Iterator[RunLockHolder]:
        """Hold the agent's run lock for a run, a dream or a tool call; AgentBusy after `timeout` seconds.
        Yields what the holder keeps in the lock's owner file: its spend so far, that its record is written.

        A run found killed holding it (SIGKILL, out of memory, power loss) before it was logged is logged first,
        from the owner file it left (_log_killed).
        """
        with self.folder.run_lock(timeout=timeout, run_id=run_id, started=started, trigger=trigger,
                                  work_item=work_item, on_killed=self._log_killed) as holder:
            yield holder

    def _log_killed(self, owner: dict[str, Any]) -> None:
        """Write the record and journal entry a run killed holding the run lock never wrote, with the spend its
        owner file kept: the lock is held, so once. A run killed after writing its own marked its owner file
        logged (lock.run_lock skips it), or, killed between the two, has its record in the log since it started;
        killed between its record and its journal entry, it gets that entry from the record."""
        run_id = str(owner.get("run_id") or "")
        if not run_id:
            return  # not an owner file this runtime wrote: no run to name
        started = owner_started(owner) or runlog.now_ts()
        record = runlog.find_record(self.folder.paths.log, run_id, started.date())  # read only after a kill
        if record is not None:
            self._journal_from(record, started)
            return
        state = _RunState(run_id, started, str(owner.get("trigger") or "unknown"), str(owner.get("work_item") or ""),
                          False, status="killed", error=KILLED_ERROR, error_type="killed", cost_usd=None)
        _spent_from(state, owner.get(SPENT), self._prices())
        self._finish(state)

    def _journal_from(self, record: dict[str, Any], started: _dt.datetime) -> None:
        """Write the journal entry of the run `record` logs, started at `started`, unless its day of the journal
        has it (or it is a tools call's: that writes none)."""
        if not any(runlog.iter_runs([record])):
            return
        try:
            text = self.folder.paths.journal_day(started.date()).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        if not any(e.run_id == record["run_id"] for e in journal_mod.parse_day(text)):
            self.folder.append_journal(_entry_from_record(record, started))

    def _prices(self) -> dict[str, Prices] | None:
        """model.md's price table; None when model.md does not load (the run taking the lock then stops on it)."""
        try:
            return load_model(self.folder.paths).prices
        except VaultAgentError:
            return None

    def _leak_scan(self, warnings: list[str]) -> tuple[Redactor, dict[str, str]]:
        """The leak scan with the secret store's values, and those values; from now on everything the folder
        writes (notes, journal, log, the run lock's owner file) goes through it."""
        redactor, values, warning = load_redactor(self.folder.root.parent, self._env or os.environ)
        self.folder.redact = redactor.scrub
        if warning:
            warnings.append(warning)
        return redactor, values

    def call_tool(self, name: str, arguments: dict[str, Any], *, trigger: str = "cli",
                  lock_timeout_s: float | None = None) -> ToolOutcome:
        """Run one tool through the pipeline a run uses (grants, validation, approval, sandbox, leak scan),
        outside any model turn; the call gets its own audit record. Raises VaultAgentError for a config error."""
        from .models.base import ToolCall

        started = runlog.now_ts()
        run_id = runlog.new_run_id(started)
        timeout = self.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
        with self._mutex:
            warnings: list[str] = []
            secrets = self._leak_scan(warnings)
            with self.run_lock(run_id, started=started, timeout=timeout, trigger=trigger,
                               work_item=f"tools call {name}") as holder:
                config = self.folder.load_config()
                tools, _ = self._tools(config, run_id, self._synced_catalog(), secrets)
                [outcome] = tools.execute([ToolCall(f"{trigger}-{run_id}", name, arguments)])
                record = _tool_record(self.name, run_id, 1, outcome, runlog.now_ts())
                record.pop("parent_run_id")
                record.update(run_id=run_id, trigger=trigger, **({"warnings": warnings} if warnings else {}))
                self.folder.append_log([record], day=started.date())
                holder.logged()
        return outcome

    def _run_locked(self, state: _RunState, secrets: tuple[Redactor, dict[str, str]], model_override: str | None,
                    history: list[Message], on_text: OnText | None) -> None:
        """The data flow of DESIGN.md, under the run lock: config, cost, memory, context, loop, capture."""
        config = self.folder.load_config()
        state.warnings.extend(f.one_line() for f in config.findings if f.level != "info")
        model = self._model_for(state, config, model_override)
        ledger = Ledger.from_log(self.folder.paths.log, _dt.date.today(), self.folder.paths.state / "ledger.json")
        guard = CostGuard(config.model.caps, ledger, critical=state.critical)
        catalog = self._synced_catalog()
        tools, tool_warnings = self._tools(config, state.run_id, catalog, secrets)
        state.warnings.extend(tool_warnings)
        words = self._recall_words(state, config, model, guard, secrets[0])
        context = self._assemble(config, catalog, state.work_item, history, tools, words)
        state.warnings.extend(context.warnings)
        untrusted = list(context.untrusted)
        final = self._loop(state, config, model, guard, tools, context, secrets[0], untrusted, on_text)
        state.warnings.extend(guard.warnings)
        if final is not None:
            self._capture(state, final, tools, untrusted)

    def _recall_words(self, state: _RunState, config: AgentConfig, model: Model, guard: CostGuard,
                      redactor: Redactor) -> str | None:
        """With `recall_words` in model.md, the search words the model gives for the work item
        (memory/recall_words.py), which recall then ranks by; None leaves recall the work item's own words: the
        setting is off, a cap refuses the call, the call fails, or the answer holds no words. The run's loop
        then meets the same cap, or the same model, itself."""
        if not config.model.recall_words or not state.work_item.strip():
            return None
        request = _scrubbed(recall_words.request(state.work_item, config.model), redactor)
        calling = _InFlight(model.provider, model.model, estimate_tokens(recall_words.INSTRUCTION)
                            + estimate_tokens(request.messages[0].text), request.max_output_tokens)
        if not guard.check(state.cost_usd or 0.0, calling.upper_bound_usd(config.model.prices),
                           f"{model.provider}:{model.model}").allowed:
            return None
        try:
            completion = self._call(state, model, request, calling, guard, config.model.prices)
        except ModelError as exc:
            state.warnings.append(f"recall words: {exc.one_line()}; recalled by the work item's own words")
            return None
        words = recall_words.words_from(completion.text)
        state.extra["recall_words"] = words
        return words or None

    def _model_for(self, state: _RunState, config: AgentConfig, override: str | None) -> Model:
        if self._model is not None:
            model = self._model
        else:
            model, notices = self._build_model(config, override)
            state.notices.extend(notices)
        state.provider, state.request_model = model.provider, model.model
        return model

    def _loop(self, state: _RunState, config: AgentConfig, model: Model, guard: CostGuard, tools: ToolRuntime,
              context: Context, redactor: Redactor, untrusted: list[str], on_text: OnText | None) -> Completion | None:
        """Call the model until it answers without tool calls; None when the run ends another way."""
        from .models.factory import build_model

        messages = list(context.messages)
        prompt_tokens = context.tokens
        prices = config.model.prices
        before = state.iterations  # the recall words call is not a tool-call round
        while state.iterations - before < config.model.max_tool_iterations:
            calling = _InFlight(model.provider, model.model, prompt_tokens, config.model.max_output_tokens)
            verdict = guard.check(state.cost_usd or 0.0, calling.upper_bound_usd(prices),
                                  f"{model.provider}:{model.model}")
            if not verdict.allowed and config.model.caps.on_cap == "fallback" and config.model.fallback \
                    and self._model is None and model.model != config.model.fallback.model:
                cheaper = dataclasses.replace(config.model, primary=config.model.fallback, fallback=None)
                model, notices = build_model(cheaper, self.folder.root, env=self._env or os.environ)
                state.notices.extend(notices)
                state.warnings.append(f"{verdict.message}; falling back to {model.provider}:{model.model}")
                continue
            if not verdict.allowed:
                state.status, state.error_type = "refused", f"cap_{verdict.cap}"
                state.error = f"refused: {verdict.message}"
                return None
            # The tool list can grow (tool_search); the request is leak-scanned as a whole before it leaves.
            request = _scrubbed(CompletionRequest(context.system, messages, tools.specs(),
                                                  config.model.max_output_tokens, config.model.temperature,
                                                  config.model.timeout_s), redactor)
            try:
                completion = self._call(state, model, request, calling, guard, prices, on_text)
            except ModelError as exc:
                state.status, state.error, state.error_type = "error", exc.one_line(), exc.kind
                return None
            if not completion.tool_calls:
                return completion
            messages.append(Message("assistant", completion.text, tool_calls=list(completion.tool_calls)))
            outcomes = tools.execute(completion.tool_calls)
            state.outcomes.extend(outcomes)
            untrusted.extend(o.result.content for o in outcomes)
            messages.append(Message("tool", tool_results=[o.result for o in outcomes]))
            prompt_tokens += estimate_tokens(completion.text) + sum(
                estimate_tokens(o.result.content) + estimate_tokens(str(o.call.arguments)) + 16 for o in outcomes)
        state.status, state.error_type = "error", "max_iterations"
        state.error = (f"stopped after {config.model.max_tool_iterations} model calls without a final answer "
                       "(max_tool_iterations in model.md)")
        state.text = messages[-2].text if len(messages) >= 2 else ""
        return None

    def _call(self, state: _RunState, model: Model, request: CompletionRequest, calling: _InFlight,
              guard: CostGuard, prices: dict[str, Any], on_text: OnText | None = None) -> Completion:
        """One model call of the run, metered: noted in flight in the run lock's owner file first (a run killed
        during it is logged with it at its upper bound), counted, then its usage and cost added to the run and
        the caps. A ModelError goes up to the caller."""
        if state.note_spent is not None:
            state.note_spent(_spent(state, calling))
        state.iterations += 1
        completion = model.complete(request, on_text=on_text)
        self._account(state, completion, prices)
        guard.note_spend(state.cost_usd or 0.0)
        if state.note_spent is not None:
            state.note_spent(_spent(state))
        return completion

    @staticmethod
    def _account(state: _RunState, completion: Completion, prices: dict[str, Any]) -> None:
        from .models.pricing import price_usd

        state.usage = state.usage + completion.usage
        cost = price_usd(completion.provider, completion.model, completion.usage, prices)
        state.add_cost(0.0 if cost is None and completion.replay else cost)
        state.response_model = completion.model
        state.replay = state.replay or completion.replay
        if completion.fallback_reason:
            state.fallback_reason = completion.fallback_reason
            state.warnings.append(f"fell back: {completion.fallback_reason}")

    def _capture(self, state: _RunState, final: Completion, tools: ToolRuntime, untrusted: list[str]) -> None:
        """The final answer minus its capture blocks is the reply; captures become notes."""
        reply, captures, problems = capture_mod.extract(final.text, capture_mod.untrusted_fingerprints(untrusted))
        state.text = reply
        state.status = "ok"
        state.capture_problems.extend(p.one_line() for p in problems)
        state.capture_problems.extend(p.one_line() for p in tools.ctx.capture_problems)
        self._write_captures(state, [*tools.ctx.captures, *captures])

    def _write_captures(self, state: _RunState, captures: list[capture_mod.Capture]) -> None:
        if not captures:
            return
        today = _dt.date.today()
        # Not re-synced here: the catalog must still hold each note as the run found it,
        # so that a person's edit made during the run is seen as a conflict.
        directory = CatalogDirectory(self._catalog or self._synced_catalog())
        for cap in captures:
            meta = cap.meta()
            existing = directory.find(cap.type, cap.name)
            sources = list(dict.fromkeys([*cap.sources, f"run {state.run_id}"]))
            meta["sources"] = list(dict.fromkeys([*(existing.sources if existing else []), *sources]))
            if existing is None:
                meta["created"] = today
            if existing is None or "updated" in existing.meta or "last_seen" not in existing.meta:
                meta["updated"] = today
            else:
                meta["last_seen"] = today
            result = self.folder.save_note(meta, cap.body.rstrip() + "\n", version_tag=state.run_id,
                                           directory=directory)
            if result.action == "conflict":
                state.warnings.append(f"{result.note.path.name} was edited by a person during the run; their "
                                      f"edit was kept and the agent's version saved to {result.conflict_path}")
            state.captured.append(NoteCaptured(cap.type, cap.name,
                                               result.note.path.relative_to(self.folder.root).as_posix(),
                                               result.action, cap.origin))

    # --- the record ------------------------------------------------------
    def _finish(self, state: _RunState, logged: Callable[[], None] | None = None) -> RunResult:
        if state.settle is not None:
            state.settle()
        latency_ms = int((time.perf_counter() - state.t0) * 1000)
        state.result = result = RunResult(
            text=state.text, run_id=state.run_id, status=state.status, usage=state.usage,
            cost_usd=None if state.cost_usd is None else round(state.cost_usd, 6),
            captures=state.captured, tool_calls=[_outcome_dict(o) for o in state.outcomes], error=state.error,
            model=state.response_model or state.request_model, warnings=state.warnings, notices=state.notices,
            capture_problems=state.capture_problems, latency_ms=latency_ms, replay=state.replay,
        )
        ended = runlog.now_ts()
        record = _run_record(self.name, state, result, ended)
        children = [_tool_record(self.name, state.run_id, i, o, ended) for i, o in enumerate(state.outcomes, 1)]
        entry = journal_mod.JournalEntry(
            ts=state.started, run_id=state.run_id, status=state.status, trigger=state.trigger,
            asked=state.work_item, did=state.did if state.did is not None else _did(result),
            notes=[Path(c.path).stem for c in state.captured],
            cost=_cost_line(result, state.provider, state.iterations),
            problems=[*([state.error] if state.error else []), *state.capture_problems])
        try:
            self.folder.append_log([record, *children], day=state.started.date())
        finally:
            self.folder.append_journal(entry)
        if logged is not None:
            logged()
        return result


class LoggedWork:
    """Work in progress for Agent.logged_work: its run id, and what its record will say."""

    def __init__(self, agent: Agent, state: _RunState) -> None:
        self._agent, self._state = agent, state

    @property
    def run_id(self) -> str:
        return self._state.run_id

    @property
    def started(self) -> _dt.datetime:
        return self._state.started

    @property
    def status(self) -> str:
        return self._state.status

    @property
    def result(self) -> RunResult:
        assert self._state.result is not None, "read once the logged_work block has ended"
        return self._state.result

    def locked(self, timeout: float) -> AbstractContextManager[None]:
        """Hold the agent's run lock (AgentBusy after `timeout` s); the record is written before it is released."""
        return self._agent._locked(self._state, timeout)

    def describe(self, *, text: str, did: str, captures: list[NoteCaptured], extra: dict[str, Any]) -> None:
        """What the record and journal entry say it did (call from `settle`)."""
        state = self._state
        state.text, state.did, state.captured, state.extra = text, did, captures, extra


def _how_it_ended(exc: BaseException) -> tuple[str, str, str]:
    """The status, error and error.type of a run that `exc` ended."""
    if isinstance(exc, AgentBusy):
        return "busy", exc.one_line(), "busy"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted by the user", "interrupted"
    if isinstance(exc, VaultAgentError):
        return "error", exc.one_line(), type(exc).__name__
    return "error", f"internal error: {exc!r}", type(exc).__name__


# A reply that opens with a section marker ("=== summary ===", "---") is described by its first line of text.
_MARKER_LINE = re.compile(r"^\s*(?:(?:=|-){3,}.*(?:=|-){3,}|(?:=|-|`){3,}\w*)?\s*$")


def _did(result: RunResult) -> str:
    if result.status != "ok":
        return ""
    tools = f"{len(result.tool_calls)} tool call(s); " if result.tool_calls else ""
    lines = [line for line in result.text.strip().splitlines() if not _MARKER_LINE.match(line)]
    return tools + (lines or [""])[0][:300]


def _cost_line(result: RunResult, provider: str | None, model_calls: int) -> str:
    killed = result.status == "killed"
    if killed and not model_calls:
        return ""  # what it spent is unknown: its Problem says so
    u = result.usage
    cost = "price unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    model = f"{provider}:{result.model}" if result.model else "no model call"
    replay = " (replay)" if result.replay else ""
    took = "killed: its time is unknown" if killed else f"{result.latency_ms / 1000:.1f} s"
    return (f"{cost} · {u.input_tokens:,} in · {u.output_tokens:,} out · {u.cache_read_tokens:,} cache read · "
            f"{model}{replay} · {took}")


def _entry_from_record(record: dict[str, Any], started: _dt.datetime) -> journal_mod.JournalEntry:
    """The journal entry _finish writes for the run `record` logs (_run_record), as far as the record tells it:
    what it did is not in it. Read defensively: a person may have edited the log."""
    def text(key: str) -> str:
        value = record.get(key)
        return value if isinstance(value, str) else ""

    def texts(value: Any) -> list[str]:
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    tokens = runlog.record_tokens(record)  # its input counts cached tokens too (_run_record)
    cost, latency_ms, calls = record.get("cost_usd"), record.get("latency_ms"), record.get("iterations")
    result = RunResult(
        text="", run_id=text("run_id"), status=text("status"),
        usage=Usage(tokens["input"] - tokens["cache_read"] - tokens["cache_write"], tokens["output"],
                    tokens["cache_read"], tokens["cache_write"]),
        cost_usd=cost if type(cost) in (int, float) else None, model=runlog.record_model(record),
        latency_ms=latency_ms if type(latency_ms) is int else 0, replay=record.get("replay") is True)
    return journal_mod.JournalEntry(
        ts=started, run_id=result.run_id, status=result.status, trigger=text("trigger"), asked=text("work_item"),
        did=DID_FROM_RECORD, notes=[Path(p).stem for p in texts(record.get("notes_written"))],
        cost=_cost_line(result, text(runlog.PROVIDER) or None, calls if type(calls) is int else 0),
        problems=[*texts([record.get("error")]), *texts(record.get("capture_problems"))])


@dataclass(frozen=True)
class _InFlight:
    """A model call a run has in flight, as its run lock's owner file keeps it (_spent)."""

    provider: str
    model: str
    input_tokens: int  # the request's, as the run counts or estimates them
    max_output_tokens: int  # what the request allows

    def sound(self) -> bool:
        """Whether it is what _spent wrote: counts a price can multiply (int64), names."""
        return isinstance(self.provider, str) and isinstance(self.model, str) and all(
            type(n) is int and 0 <= n < 2**63 for n in (self.input_tokens, self.max_output_tokens))

    def upper_bound_usd(self, prices: dict[str, Prices] | None) -> float | None:
        """The most it can cost by `prices` (model.md's), which the cost caps reserve before the call; None when
        unknown."""
        from .models.pricing import worst_case_usd

        if prices is None:
            return None
        cost = worst_case_usd(self.provider, self.model, self.input_tokens, self.max_output_tokens, prices)
        # A replay spends nothing, unless model.md prices its model to rehearse the caps offline.
        return 0.0 if cost is None and self.provider == "replay" else cost


def _spent(state: _RunState, in_flight: _InFlight | None = None) -> dict[str, Any]:
    """What a run has spent so far, and the model call it has in flight, as its run lock's owner file keeps them
    (_spent_from reads them back)."""
    return {"model_calls": state.iterations, "cost_usd": state.cost_usd, "usage": state.usage.as_dict(),
            "provider": state.provider, "request_model": state.request_model,
            "response_model": state.response_model, "replay": state.replay,
            **({"in_flight": dataclasses.asdict(in_flight)} if in_flight is not None else {})}


def _spent_from(state: _RunState, spent: Any, prices: dict[str, Prices] | None) -> None:
    """Give a killed run's state the spend its owner file kept (_spent), with a call then in flight at the most
    it can cost by `prices` (model.md's; None: unknown); nothing when it kept none or it is not what _spent
    wrote: the record then says its spend is unknown."""
    try:
        calls = int(spent["model_calls"])
        cost = spent["cost_usd"]
        usage = Usage(**{k: int(v) for k, v in spent["usage"].items()})
        in_flight = None if spent.get("in_flight") is None else _InFlight(**spent["in_flight"])
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError):
        return
    # A cost cap compared with NaN, infinity or less than nothing would never count it right.
    if calls < (1 if in_flight is None else 0) or min(usage.as_dict().values()) < 0 or not (
            cost is None or isinstance(cost, (int, float)) and 0 <= cost < math.inf) or not (
            in_flight is None or in_flight.sound()):
        return
    state.iterations, state.cost_usd, state.usage = calls, cost, usage
    state.provider, state.request_model, state.response_model = (
        v if isinstance(v, str) else None for v in map(spent.get, ("provider", "request_model", "response_model")))
    state.replay = spent.get("replay") is True
    state.error = KILLED_AFTER_CALLS.format(calls=calls)
    if in_flight is not None:
        state.iterations += 1
        state.add_cost(in_flight.upper_bound_usd(prices))
        state.error = KILLED_IN_CALL.format(calls=state.iterations, input_tokens=in_flight.input_tokens,
                                            max_output_tokens=in_flight.max_output_tokens)


def _scrubbed(request: CompletionRequest, redactor: Redactor) -> CompletionRequest:
    """The request with every text the model would read leak-scanned (notes or a work item may hold a secret)."""
    return dataclasses.replace(request, system=_scrubbed_texts(request.system, redactor.scrub),
                               messages=_scrubbed_messages(request.messages, redactor.scrub))


_T = TypeVar("_T")


def _scrubbed_texts(items: list[_T], scrub: Callable[[str], str]) -> list[_T]:
    """Copies of dataclasses with a `text` (system blocks, prompt parts), their text leak-scanned."""
    return [dataclasses.replace(i, text=scrub(i.text)) for i in items]  # type: ignore[type-var]


def _scrubbed_messages(messages: list[Message], scrub: Callable[[str], str]) -> list[Message]:
    return [dataclasses.replace(m, text=scrub(m.text), tool_results=[
        dataclasses.replace(r, content=scrub(r.content)) for r in m.tool_results]) for m in messages]


def _outcome_dict(o: ToolOutcome) -> dict[str, Any]:
    return {"id": o.call.id, "name": o.tool or o.call.name, "status": o.status, "decision": o.decision,
            "latency_ms": o.latency_ms, "error": o.error}


def _run_record(agent: str, state: _RunState, result: RunResult, ended: _dt.datetime) -> dict[str, Any]:
    u = state.usage
    record: dict[str, Any] = {
        "ts": runlog.ts_string(ended),
        "started": runlog.ts_string(state.started),
        "kind": "run",
        "run_id": state.run_id,
        "agent": agent,
        "trigger": state.trigger,
        "status": state.status,
        runlog.PROVIDER: state.provider,
        runlog.REQUEST_MODEL: state.request_model,
        runlog.RESPONSE_MODEL: state.response_model,
        # OpenTelemetry counts cached tokens as input too; the cache keys say how many of them.
        runlog.INPUT_TOKENS: u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
        runlog.OUTPUT_TOKENS: u.output_tokens,
        runlog.CACHE_READ_TOKENS: u.cache_read_tokens,
        runlog.CACHE_WRITE_TOKENS: u.cache_write_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": None if state.status == "killed" else result.latency_ms,  # it ended unseen
        "work_item": journal_mod.one_line(state.work_item, runlog.WORK_ITEM_CHARS),
        "notes_written": [c.path for c in state.captured if c.action in ("created", "updated")],
        "tool_calls": len(state.outcomes),
        "iterations": state.iterations,
        "error": state.error,
    }
    if state.error_type:
        record[runlog.ERROR_TYPE] = state.error_type
    if state.critical:
        record["critical"] = True
    if state.fallback_reason:
        record["fallback_reason"] = state.fallback_reason
    if state.replay:
        record["replay"] = True
    if state.capture_problems:
        record["capture_problems"] = state.capture_problems
    if state.warnings:
        record["warnings"] = state.warnings
    record.update(state.extra)
    return record


def _tool_record(agent: str, run_id: str, n: int, o: ToolOutcome, ended: _dt.datetime) -> dict[str, Any]:
    return {
        "ts": runlog.ts_string(ended),
        "kind": "tool_call",
        "run_id": f"{run_id}.{n}",
        "parent_run_id": run_id,
        "agent": agent,
        runlog.TOOL_NAME: o.tool or o.call.name,
        runlog.TOOL_CALL_ID: o.call.id,
        "status": o.status,
        "latency_ms": o.latency_ms,
        "error": o.error,
        **_tool_audit(o),
    }


def _tool_audit(o: ToolOutcome) -> dict[str, Any]:
    """The policy's part of a tool-call record: the decision and its reason, plus what applies to this call."""
    extra = {"via": o.via, "target": o.target, "approval": o.approval, "secrets": o.secrets,
             "redacted": o.redacted, "artifact": o.artifact}
    return {"decision": o.decision, "reason": o.reason, **{k: v for k, v in extra.items() if v}}

