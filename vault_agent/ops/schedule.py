"""An agent's schedule: its entries (schedule.md or model.md), when each last ran, and the PAUSED.md switch.

Format: spec/schedule.md. The folder stays the source of truth: when an entry
last ran is read back from the run log (trigger `schedule:<id>`), and a paused
agent is one with a PAUSED.md file that a person deletes to resume it. Only
the count of consecutive failures is derived state (.vault-agent/schedule.json).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Finding
from ..vault import frontmatter, placeholders, runlog
from ..vault.atomic import atomic_write, read_state
from ..vault.folder import AgentFolder
from . import when as when_mod

SCHEDULE_FILE = "schedule.md"
PAUSE_FILE = "PAUSED.md"
STATE_FILE = "schedule.json"
TRIGGER_PREFIX = "schedule:"
DEFAULT_PAUSE_AFTER = 3
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


ACTIONS = ("run", "dream")


@dataclass(frozen=True)
class Entry:
    """One scheduled work item of one agent."""

    agent: str
    id: str
    when_text: str
    when: when_mod.When
    work_item: str
    source: Path  # the file that declares it
    anchor: _dt.datetime  # when that file was last saved: what `in 10m` and `at 16:50` count from
    action: str = "run"  # "run": the work item goes to the agent; "dream": consolidate its memory
    with_model: bool = False  # a dream only: the model writes merges and the summary (`vault-agent dream --with-model`)

    @property
    def trigger(self) -> str:
        return TRIGGER_PREFIX + self.id


def _default_id(work_item: str, taken: set[str]) -> str:
    words = re.findall(r"[a-z0-9]+", work_item.lower())
    base = ""
    for word in words:  # whole words, up to 32 characters
        if len(base) + len(word) + 1 > 32:
            break
        base = f"{base}-{word}" if base else word
    base = base or (words[0][:32] if words else "entry")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _declared(path: Path) -> list[Any] | None:
    """The `schedule:` list in a file's frontmatter, None when the file or the key is absent."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        fm, _ = frontmatter.split(text)
        meta = frontmatter.parse(fm) if fm is not None else {}
    except ConfigError as exc:
        raise ConfigError(exc.message, path=path, fix=exc.fix) from None
    raw = meta.get("schedule")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ConfigError("'schedule' must be a list of entries with when: and work_item:", path=path,
                          fix="see spec/schedule.md")
    return raw


def load_entries(folder: AgentFolder) -> tuple[list[Entry], list[Finding]]:
    """The agent's entries from schedule.md, then model.md's `schedule:`; bad entries become findings."""
    entries: list[Entry] = []
    findings: list[Finding] = []
    taken: set[str] = set()
    for path in (folder.root / SCHEDULE_FILE, folder.paths.model_md):
        try:
            raw = _declared(path)
        except ConfigError as exc:
            findings.append(Finding("error", exc.path, exc.message, exc.fix))
            continue
        if raw is None:
            continue
        anchor = _dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        for n, item in enumerate(raw, 1):
            try:
                entries.append(_entry(folder.name, path, anchor, item, taken))
            except ConfigError as exc:
                findings.append(Finding("error", path, f"schedule entry {n}: {exc.message}", exc.fix))
    return entries, findings


def _entry(agent: str, path: Path, anchor: _dt.datetime, item: Any, taken: set[str]) -> Entry:
    if not isinstance(item, dict):
        raise ConfigError("must be a mapping with when: and work_item:", fix="see spec/schedule.md")
    when_text, work_item, action = item.get("when"), item.get("work_item"), item.get("action", "run")
    if action not in ACTIONS:
        raise ConfigError(f"action {action!r} is not one of {', '.join(ACTIONS)}", fix="see spec/schedule.md")
    if action == "dream" and work_item is None:
        work_item = "consolidate memory (dream)"
    with_model = item.get("with_model", False)
    if not isinstance(with_model, bool):
        raise ConfigError(f"with_model must be true or false, not {with_model!r}", fix="see spec/schedule.md")
    if with_model and action != "dream":
        raise ConfigError("with_model applies to action: dream only", fix="remove with_model, or add action: dream")
    if not isinstance(when_text, str) or not isinstance(work_item, str) or not work_item.strip():
        raise ConfigError("needs when: (text) and work_item: (text)", fix="see spec/schedule.md")
    entry_id = item.get("id")
    if entry_id is None:
        entry_id = _default_id(work_item, taken)
    elif not isinstance(entry_id, str) or not _ID.match(entry_id):
        raise ConfigError(f"id {entry_id!r} must be 1-48 lowercase letters, digits, '-' or '_'")
    if entry_id in taken:
        raise ConfigError(f"id {entry_id!r} is used twice", fix="give each entry its own id:")
    taken.add(entry_id)
    return Entry(agent, entry_id, when_text.strip(), when_mod.parse(when_text), work_item.strip(), path, anchor,
                 action, with_model)


def last_runs(folder: AgentFolder, entry_ids: set[str]) -> dict[str, _dt.datetime]:
    """When each entry last started a run, from the log, newest day files first."""
    found: dict[str, _dt.datetime] = {}
    needle = f'"trigger":"{TRIGGER_PREFIX}'.encode()
    for path in reversed(runlog.day_files(folder.paths.log)):
        if len(found) == len(entry_ids):
            break
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if needle not in raw:
            continue
        for line in raw.splitlines():
            if needle not in line:
                continue
            try:
                record = json.loads(line)
                entry_id = str(record["trigger"])[len(TRIGGER_PREFIX):]
                started = _dt.datetime.fromisoformat(str(record.get("started") or record["ts"]))
            except (ValueError, KeyError, TypeError):
                continue
            if entry_id in entry_ids and (entry_id not in found or started > found[entry_id]):
                found[entry_id] = started
    return found


# --- pausing ----------------------------------------------------------------

def pause_path(folder: AgentFolder) -> Path:
    return folder.root / PAUSE_FILE


def pause_info(folder: AgentFolder) -> dict[str, Any] | None:
    """PAUSED.md's properties when the agent is paused (the file exists and does not say `paused: false`).

    The empty placeholder the sandbox holds there while a command runs (or a
    killed run left) is not a pause.
    """
    path = pause_path(folder)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None
    if not text and placeholders.is_placeholder(folder.root, path):
        return None
    try:
        fm, body = frontmatter.split(text)
        meta = frontmatter.parse(fm) if fm is not None else {}
    except ConfigError:
        meta, body = {}, text  # a hand-written or mangled file still pauses
    if meta.get("paused") is False:
        return None
    return {**meta, "body": body}


def pause(folder: AgentFolder, *, failures: int, last_run_id: str, last_error: str | None,
          now: _dt.datetime | None = None) -> Path:
    """Write PAUSED.md: where a person sees why scheduled runs stopped and how to resume them."""
    now = now or runlog.now_ts()
    meta = {"paused": runlog.ts_string(now), "reason": f"{failures} scheduled runs in a row failed",
            "failures": failures, "last_run_id": last_run_id, "last_error": last_error or ""}
    body = (f"# Scheduled runs of {folder.name} are paused\n\n"
            f"The scheduler stopped running this agent after {failures} failed runs in a row.\n\n"
            f"Last error: {last_error or 'unknown'}\n\n"
            f"See what happened: `vault-agent show {last_run_id}`.\n\n"
            "To resume: fix the cause, then delete this file (or set `paused: false`).\n")
    path = pause_path(folder)
    with folder.write_lock():
        atomic_write(path, frontmatter.render(meta, body))
    return path


def resume(folder: AgentFolder) -> bool:
    path = pause_path(folder)
    if placeholders.is_placeholder(folder.root, path):
        return False  # a command's mount point: unlinking it would lift the mount
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _state_path(folder: AgentFolder) -> Path:
    return folder.paths.state / STATE_FILE


def consecutive_failures(folder: AgentFolder) -> int:
    value = read_state(_state_path(folder)).get("failures", 0)
    return value if isinstance(value, int) else 0


def record_outcome(folder: AgentFolder, status: str, run_id: str, error: str | None,
                   pause_after: int = DEFAULT_PAUSE_AFTER) -> bool:
    """Count a scheduled run's outcome; pause the agent after `pause_after` errors in a row. True if it paused.

    Only `error` counts as a failure: a cost cap refusal, a busy lock or an
    interruption says nothing about whether the agent works.
    """
    failures = consecutive_failures(folder)
    if failures >= pause_after and pause_info(folder) is None:
        failures = 0  # a person resumed the agent since it was paused
    if status == "error":
        failures += 1
    elif status == "ok":
        failures = 0
    paused_now = failures >= pause_after and pause_info(folder) is None
    if paused_now:
        pause(folder, failures=failures, last_run_id=run_id, last_error=error)
    atomic_write(_state_path(folder), json.dumps({"failures": failures}))
    return paused_now


# --- one run of one entry -----------------------------------------------------

def find_entry(folder: AgentFolder, entry_id: str) -> Entry:
    entries, findings = load_entries(folder)
    for entry in entries:
        if entry.id == entry_id:
            return entry
    known = ", ".join(e.id for e in entries) or "none"
    problems = "; ".join(f.message for f in findings)
    raise ConfigError(f"agent {folder.name} has no schedule entry {entry_id!r} (entries: {known})"
                      + (f"; {problems}" if problems else ""), path=folder.root / SCHEDULE_FILE)
