"""Cost guardrails: the ledger (from the JSONL log), caps, warnings and per-call reservations.

Before every model call the guard adds the worst case of that call (all input
uncached at the input price, plus max_output_tokens at the output price) to
what is already spent; if that could cross a cap, the call is not made. So a
run can overshoot a cap only by what the estimate missed of one call, never
by a whole run.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .vault import runlog
from .vault.atomic import atomic_write, read_state
from .vault.config import CostCaps
from .vault.runlog import iter_runs, record_cost


@dataclass
class Ledger:
    """What this agent spent today and this month, read from its run log."""

    day_usd: float = 0.0
    month_usd: float = 0.0
    unknown_runs: int = 0  # runs whose cost could not be priced

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], today: _dt.date) -> Ledger:
        ledger = cls()
        month_prefix = f"{today:%Y-%m}"
        day_prefix = today.isoformat()
        for r in iter_runs(records):
            ts = str(r.get("ts", ""))
            if not ts.startswith(month_prefix):
                continue
            if r.get("cost_usd") is None and r.get("status") == "ok":
                ledger.unknown_runs += 1
            cost = record_cost(r)
            ledger.month_usd += cost
            if ts.startswith(day_prefix):
                ledger.day_usd += cost
        return ledger

    @classmethod
    def from_log(cls, log_root: Path, today: _dt.date, cache: Path) -> Ledger:
        """The ledger of this month, re-reading only day files that changed since the last run.

        Every run checks the caps, and parsing a busy month's log costs tens of
        ms; per day file, the spend by date is kept in `cache` (derived state)
        under the file's size and mtime, so a run re-reads only today's file.
        """
        old = read_state(cache)
        # The last day of the month before, too: a run that ended after midnight is in its start day's file.
        first = today.replace(day=1) - _dt.timedelta(days=1)
        sums: dict[str, Any] = {}
        for path in runlog.day_files(log_root):
            try:
                if _dt.date.fromisoformat(path.stem) < first:
                    continue
                st = path.stat()
            except (ValueError, OSError):
                continue
            key = path.relative_to(log_root).as_posix()
            stamp = [st.st_size, st.st_mtime_ns]
            entry = old.get(key)
            if not (isinstance(entry, dict) and entry.get("stamp") == stamp):
                entry = {"stamp": stamp, "by_date": _by_date(runlog.read_day(path).records)}
            sums[key] = entry
        if sums != old:
            try:
                atomic_write(cache, json.dumps(sums, sort_keys=True))
            except OSError:
                pass  # only a cache: the next run reads the files again
        ledger = cls()
        month, day = f"{today:%Y-%m}", today.isoformat()
        for entry in sums.values():
            for date, (cost, unknown) in entry["by_date"].items():
                if date.startswith(month):
                    ledger.month_usd += cost
                    ledger.unknown_runs += unknown
                    if date == day:
                        ledger.day_usd += cost
        return ledger


def _by_date(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per date of the runs' end (ts): [spend, runs whose price was unknown]."""
    out: dict[str, list[float]] = {}
    for r in iter_runs(records):
        date = str(r.get("ts", ""))[:10]
        entry = out.setdefault(date, [0.0, 0])
        entry[0] += record_cost(r)
        if r.get("cost_usd") is None and r.get("status") == "ok":
            entry[1] += 1
    return out


@dataclass
class Verdict:
    allowed: bool
    cap: str | None = None  # "per_run" | "daily" | "monthly" when a cap stops the call
    message: str = ""


@dataclass
class CostGuard:
    caps: CostCaps
    ledger: Ledger
    critical: bool = False
    warned: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_caps(self) -> bool:
        return any(c is not None for c in (self.caps.per_run_usd, self.caps.daily_usd, self.caps.monthly_usd))

    def _limits(self, run_usd: float) -> list[tuple[str, float, float]]:
        """(cap name, cap, spent so far including this run)."""
        out = []
        if self.caps.per_run_usd is not None:
            out.append(("per_run", self.caps.per_run_usd, run_usd))
        if self.caps.daily_usd is not None:
            out.append(("daily", self.caps.daily_usd, self.ledger.day_usd + run_usd))
        if self.caps.monthly_usd is not None:
            out.append(("monthly", self.caps.monthly_usd, self.ledger.month_usd + run_usd))
        return out

    def check(self, run_usd: float, reserve_usd: float | None, model_label: str) -> Verdict:
        """May a call that could cost up to `reserve_usd` be made, with `run_usd` already spent in this run?"""
        if not self.has_caps:
            return Verdict(True)
        if reserve_usd is None:
            self._warn_once(f"unpriced:{model_label}",
                            f"the price of {model_label} is unknown, so cost caps cannot be enforced for it "
                            "(add a prices: entry to model.md)")
            return Verdict(True)
        for name, cap, spent in self._limits(run_usd):
            if spent + reserve_usd > cap:
                message = (f"{name} cost cap ${cap:.2f} would be exceeded: ${spent:.4f} spent, next call may "
                           f"cost up to ${reserve_usd:.4f}")
                if self.critical:
                    self._warn_once(f"critical:{name}", f"--critical: {message}; going ahead")
                    continue
                return Verdict(False, name, message)
        return Verdict(True)

    def note_spend(self, run_usd: float) -> None:
        """Warn (once per threshold) as spending crosses the warn_at fractions of each cap."""
        for name, cap, spent in self._limits(run_usd):
            for fraction in self.caps.warn_at:
                if cap > 0 and spent >= cap * fraction:
                    self._warn_once(f"{name}:{fraction}",
                                    f"{name} spend ${spent:.4f} reached {fraction:.0%} of its ${cap:.2f} cap")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.warnings.append(message)
