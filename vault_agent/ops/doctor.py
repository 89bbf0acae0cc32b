"""`vault-agent doctor`: check a vault or one agent and say, one line each, what is wrong and the fix."""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigError, Finding
from ..memory.catalog import check_index
from ..vault import index_md, runlog
from ..vault.config import ModelRef
from ..vault.folder import AgentFolder, Vault
from ..vault.layout import PERSONA_FILES
from ..vault.lock import LOGGED, is_locked, owner_path, owner_started, read_owner


def check_environment() -> list[Finding]:
    findings: list[Finding] = []
    if sys.version_info < (3, 11):
        findings.append(Finding("error", None, f"Python {sys.version.split()[0]} is too old", "use Python 3.11+"))
    findings.append(sandbox_finding())
    return findings


def sandbox_finding() -> Finding:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Finding("warning", None,
                       "bubblewrap (bwrap) not found: shell and custom tools run with rlimits, timeouts and a "
                       "scrubbed environment but without namespaces",
                       "install bubblewrap (apt-get install bubblewrap)")
    try:
        probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("warning", None, f"bubblewrap found but cannot start: {exc}",
                       "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    if probe.returncode != 0:
        reason = probe.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
        return Finding("warning", None,
                       f"bubblewrap found but cannot create a sandbox here ({reason[0] if reason else 'exit ' + str(probe.returncode)})",
                       "allow unprivileged user namespaces, or run where they are permitted")
    return Finding("info", None, f"sandbox: bubblewrap works ({bwrap})")


def _key_finding(folder: AgentFolder, ref: ModelRef, role: str, has_replay: bool) -> Finding | None:
    env = ref.key_env()
    if ref.provider == "replay" or env is None:
        return None
    if os.environ.get(env):
        return Finding("info", folder.paths.model_md, f"{role} model {ref.label()}: {env} is set")
    if has_replay:
        return Finding("warning", folder.paths.model_md,
                       f"{env} is not set: runs use the offline replay transcript instead of {ref.label()}",
                       f"export {env}=... to run against the real model")
    level = "error" if role == "primary" else "warning"
    return Finding(level, folder.paths.model_md, f"{role} model {ref.label()} needs {env}, which is not set",
                   f"export {env}=... in the environment that runs vault-agent")


def check_agent(folder: AgentFolder) -> list[Finding]:
    paths = folder.paths
    findings: list[Finding] = []
    for fname in PERSONA_FILES:
        if not (paths.persona / fname).is_file():
            findings.append(Finding("warning", paths.persona / fname, "persona file missing",
                                    f"create persona/{fname} (see spec/persona.md)"))
    if not paths.memory.is_dir():
        findings.append(Finding("warning", paths.memory, "memory/ folder missing", "create the folder memory/"))
    try:
        config = folder.load_config()
    except ConfigError as exc:
        findings.append(Finding("error", exc.path, exc.message, exc.fix))
        config = None
    if config is not None:
        findings.extend(f for f in config.findings if "persona file missing" not in f.message)
        replay = config.model.replay
        has_replay = bool(replay) and (paths.root / str(replay)).is_file()
        for role, ref in (("primary", config.model.primary), ("fallback", config.model.fallback)):
            if ref is not None:
                finding = _key_finding(folder, ref, role, has_replay and role == "primary")
                if finding is not None:
                    findings.append(finding)
        if replay and not has_replay:
            level = "error" if config.model.provider == "replay" else "warning"
            findings.append(Finding(level, paths.model_md, f"replay transcript {replay} not found",
                                    "point replay: at a transcript file inside the agent folder"))
    notes = folder.notes.scan()
    findings.extend(folder.notes.findings)
    findings.extend(_index_findings(folder, notes))
    damaged = check_index(paths)
    if damaged is not None:
        findings.append(damaged)
    findings.extend(_log_findings(folder))
    findings.extend(_schedule_findings(folder))
    findings.extend(_lock_findings(folder))
    return findings


def _lock_findings(folder: AgentFolder) -> list[Finding]:
    """A run in progress, or one killed holding the run lock that no run has logged yet (lock.run_lock)."""
    lock = folder.paths.run_lock
    seen = read_owner(lock)
    if is_locked(lock):
        return [Finding("info", lock, f"a run is in progress (run {seen.get('run_id', '?')}, "
                                      f"pid {seen.get('pid', '?')})")]
    # A run that ended since the owner file was read, as runs end, removed it before releasing the lock: only the
    # same run's owner file, there before and after the lock was seen free, is one a killed run left.
    owner = read_owner(lock)
    started = owner_started(owner) or _dt.datetime.now()
    if not owner.get("run_id") or owner["run_id"] != seen.get("run_id") or owner.get(LOGGED) or runlog.find_record(
            folder.paths.log, str(owner["run_id"]), started.date()) is not None:
        return []  # no run, one that ended, or one logged before it was killed
    return [Finding("warning", owner_path(lock),
                    f"run {owner['run_id']} (started {owner.get('since', '?')}, trigger {owner.get('trigger', '?')}) "
                    "was killed before it finished and is not logged yet",
                    f"nothing to do: the agent's next run, dream or tools call logs it "
                    f"(vault-agent log {folder.name} --status killed)")]


def _index_findings(folder: AgentFolder, notes: list) -> list[Finding]:
    path = folder.paths.index_md
    if not path.is_file():
        if not notes:
            return []
        return [Finding("warning", path, "memory/INDEX.md missing", "run: vault-agent doctor NAME --fix")]
    text = path.read_text(encoding="utf-8", errors="replace")
    listed = index_md.indexed_stems(text)
    if index_md.split_managed(text)[1] is None:
        return [Finding("info", path, "INDEX has no vault-agent block yet; it is added on the next note write",
                        "or run: vault-agent doctor NAME --fix")]
    stems = {n.stem for n in notes}
    out = []
    missing = sorted(stems - listed)
    dangling = sorted(listed - stems)
    if missing:
        out.append(Finding("warning", path, f"{len(missing)} note(s) not in INDEX (e.g. {missing[0]})",
                           "run: vault-agent doctor NAME --fix"))
    if dangling:
        out.append(Finding("warning", path, f"INDEX links {len(dangling)} missing note(s) (e.g. {dangling[0]})",
                           "run: vault-agent doctor NAME --fix"))
    return out


def _log_findings(folder: AgentFolder) -> list[Finding]:
    read = folder.read_log()
    out = []
    for torn in read.torn:
        what = "torn last line (a run was killed while writing it)" if torn.is_last else "unreadable line"
        out.append(Finding("warning", torn.path, f"line {torn.line_no}: {what}; readers skip it",
                           f"delete line {torn.line_no} if it is not needed"))
    return out


def _schedule_findings(folder: AgentFolder) -> list[Finding]:
    """Bad schedule entries, and a paused agent (spec/schedule.md)."""
    from . import schedule as sched

    entries, findings = sched.load_entries(folder)
    info = sched.pause_info(folder)
    if info is not None:
        findings.append(Finding("warning", sched.pause_path(folder),
                                f"scheduled runs are paused: {info.get('reason') or 'PAUSED.md is present'}",
                                "fix the cause, then delete PAUSED.md (or: vault-agent schedule resume NAME)"))
    elif entries:
        findings.append(Finding("info", folder.root / sched.SCHEDULE_FILE, f"{len(entries)} schedule entry(ies)"))
    return findings


def fix_agent(folder: AgentFolder) -> list[str]:
    """The safe repairs: rewrite INDEX's managed block."""
    done = []
    if folder.rewrite_index():
        done.append(f"rewrote {folder.paths.index_md}")
    return done


def run_doctor(vault: Vault, name: str | None = None) -> list[tuple[str | None, Finding]]:
    results: list[tuple[str | None, Finding]] = [(None, f) for f in check_environment()]
    results.extend((None, f) for f in vault.findings())
    names = [name] if name else vault.agent_names()
    for agent_name in names:
        folder = vault.agent(agent_name)
        results.extend((agent_name, f) for f in check_agent(folder))
    return results


def relative(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


__all__ = ["check_agent", "check_environment", "fix_agent", "run_doctor"]
