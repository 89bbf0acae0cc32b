"""Reading the audit trail back: `vault-agent log`, `show RUN_ID` and `cost` (spend against the caps)."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cost import Ledger
from ..errors import ConfigError, VaultAgentError
from ..vault import journal, runlog
from ..vault.config import CostCaps
from ..vault.folder import AgentFolder, Vault

CHAIN_KEYS = ("prev_hash", "seq")


def parse_since(text: str, today: _dt.date | None = None) -> _dt.date:
    """`2026-11-01`, `7d`, `2w`, `today`, `yesterday` -> the first day to include."""
    today = today or _dt.date.today()
    low = text.strip().lower()
    if low == "today":
        return today
    if low == "yesterday":
        return today - _dt.timedelta(days=1)
    m = re.fullmatch(r"(\d+)\s*([dw])", low)
    if m:
        days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
        return today - _dt.timedelta(days=max(0, days - 1))
    try:
        return _dt.date.fromisoformat(low)
    except ValueError:
        raise ConfigError(f"--since {text!r} is not a date", fix="use YYYY-MM-DD, 7d, 2w, today or yesterday") \
            from None


def _file_day(path: Path) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(path.stem)
    except ValueError:
        return None


def runs(vault: Vault, names: list[str], *, since: _dt.date | None = None, status: str | None = None,
         limit: int | None = None) -> list[dict[str, Any]]:
    """Run records of the agents, oldest first; with `limit`, the newest `limit` of them."""
    found: list[tuple[str, int, dict[str, Any]]] = []
    for name in names:
        folder = vault.agent(name)
        picked: list[dict[str, Any]] = []
        for path in reversed(runlog.day_files(folder.paths.log)):
            day = _file_day(path)
            if since is not None and day is not None and day < since:
                break
            day_runs = [r for r in runlog.iter_runs(runlog.read_day(path).records)
                        if status is None or r.get("status") == status]
            picked[:0] = day_runs
            if limit is not None and len(picked) >= limit:
                break
        for i, r in enumerate(picked[-limit:] if limit else picked):
            found.append((str(r.get("ts", "")), i, {**r, "agent": r.get("agent") or name}))
    found.sort(key=lambda t: (t[0], t[1]))
    records = [r for _, _, r in found]
    return records[-limit:] if limit else records


def one_line(r: dict[str, Any]) -> str:
    cost = r.get("cost_usd")
    cost_text = "price unknown" if cost is None and r.get("status") == "ok" else f"${runlog.record_cost(r):.4f}"
    tokens = runlog.record_tokens(r)
    model = runlog.record_model(r) or "-"
    item = journal.one_line(str(r.get("work_item", "")), 60)
    return (f"{str(r.get('ts', ''))[:19].replace('T', ' ')}  {r.get('agent', '?'):<14} "
            f"{str(r.get('status', '?')):<11} {cost_text:>9}  {tokens['input']:>7,} in {tokens['output']:>6,} out  "
            f"{r.get('tool_calls', 0) or 0:>2} tools  {model:<22} {r.get('run_id', '?')}  {item}")


# --- show ------------------------------------------------------------------

@dataclass
class RunDetail:
    agent: str
    record: dict[str, Any]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    journal: str | None = None
    log_file: Path | None = None


def _run_day(run_id: str) -> _dt.date | None:
    m = re.match(r"^(\d{4})(\d\d)(\d\d)T", run_id)
    if not m:
        return None
    try:
        return _dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def find_run(vault: Vault, run_id: str, names: list[str] | None = None) -> RunDetail:
    """The run record with this id, its tool calls and its journal entry."""
    started = _run_day(run_id)
    for name in names or vault.agent_names():
        folder = vault.agent(name)
        files = runlog.day_files(folder.paths.log)
        if started is not None:
            # A record lands in its start day's file or, around midnight, a later one.
            files = [p for p in files if (_file_day(p) or started) >= started][:3]
        for path in files:
            read = runlog.read_day(path)
            record = next((r for r in runlog.iter_runs(read.records) if r.get("run_id") == run_id), None)
            if record is None:
                continue
            children = [r for r in read.records if r.get("parent_run_id") == run_id]
            return RunDetail(name, record, children, _journal_entry(folder, run_id, started), path)
    raise VaultAgentError(f"no run {run_id!r} in the vault's logs", path=vault.root,
                          fix="list runs with: vault-agent log")


def _journal_entry(folder: AgentFolder, run_id: str, day: _dt.date | None) -> str | None:
    for d in ([day] if day else []):
        try:
            text = folder.paths.journal_day(d).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for entry in journal.parse_day(text):
            if entry.run_id == run_id:
                return entry.text
    return None


# --- cost ------------------------------------------------------------------

@dataclass
class CostReport:
    agent: str
    month: str
    month_usd: float
    day_usd: float | None  # today's spend (only for the current month)
    runs: int
    unknown_runs: int
    caps: CostCaps | None  # None when model.md cannot be read
    by_day: dict[str, float]
    by_model: dict[str, float]


def cost_report(folder: AgentFolder, month: str | None = None, today: _dt.date | None = None) -> CostReport:
    today = today or _dt.date.today()
    month = month or f"{today:%Y-%m}"
    if not re.fullmatch(r"\d{4}-\d\d", month):
        raise ConfigError(f"--month {month!r} is not YYYY-MM")
    records: list[dict[str, Any]] = []
    for path in runlog.day_files(folder.paths.log):
        # Around midnight a record can land in the next day's file: read one file past the month.
        if path.parent.name >= month:
            runlog.read_day(path, runlog.LogRead(records))
            if path.parent.name > month:
                break
    current = month == f"{today:%Y-%m}"
    ledger = Ledger.from_records(records, today if current else _dt.date.fromisoformat(month + "-01"))
    by_day: dict[str, float] = {}
    by_model: dict[str, float] = {}
    count = 0
    for r in runlog.iter_runs(records):
        ts = str(r.get("ts", ""))
        if not ts.startswith(month):
            continue
        count += 1
        by_day[ts[:10]] = by_day.get(ts[:10], 0.0) + runlog.record_cost(r)
        model = runlog.record_model(r) or "no model call"
        by_model[model] = by_model.get(model, 0.0) + runlog.record_cost(r)
    try:
        caps: CostCaps | None = folder.load_config().model.caps
    except ConfigError:
        caps = None
    return CostReport(folder.name, month, ledger.month_usd, ledger.day_usd if current else None, count,
                      ledger.unknown_runs, caps, dict(sorted(by_day.items())), by_model)


def cap_text(spent: float, cap: float | None) -> str:
    if cap is None:
        return f"${spent:.4f} (no cap)"
    share = spent / cap if cap > 0 else 1.0
    flag = "  OVER" if spent > cap else ("  near" if share >= 0.8 else "")
    return f"${spent:.4f} of ${cap:.2f} ({share:.0%}){flag}"
