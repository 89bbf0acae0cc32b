"""The cost ledger read from the run log: the same totals as a full read, re-reading only changed day files."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from vault_agent.cost import Ledger
from vault_agent.vault.runlog import read_since

TODAY = dt.date(2026, 11, 21)


def _write(log: Path, day: str, records: list[dict]) -> Path:
    path = log / day[:7] / f"{day}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "log"
    # Started on 31 October, ended after midnight: in October's file, counted in November.
    _write(log, "2026-10-31", [{"kind": "run", "ts": "2026-10-31T10:00:00+00:00", "cost_usd": 5.0, "status": "ok"},
                               {"kind": "run", "ts": "2026-11-01T00:00:30+00:00", "cost_usd": 0.25, "status": "ok"}])
    _write(log, "2026-11-20", [{"kind": "run", "ts": "2026-11-20T09:00:00+00:00", "cost_usd": 1.0, "status": "ok"},
                               {"kind": "tool_call", "parent_run_id": "x", "ts": "2026-11-20T09:00:00+00:00"},
                               {"kind": "run", "ts": "2026-11-20T10:00:00+00:00", "cost_usd": None, "status": "ok"}])
    _write(log, "2026-11-21", [{"kind": "run", "ts": "2026-11-21T08:00:00+00:00", "cost_usd": 0.5, "status": "ok"}])
    return log


def test_the_cached_ledger_has_the_totals_of_a_full_read(tmp_path: Path) -> None:
    log = _log(tmp_path)
    full = Ledger.from_records(read_since(log).records, TODAY)
    cached = Ledger.from_log(log, TODAY, tmp_path / "ledger.json")
    again = Ledger.from_log(log, TODAY, tmp_path / "ledger.json")
    assert (cached.month_usd, cached.day_usd, cached.unknown_runs) == (1.75, 0.5, 1)
    assert full == cached == again


def test_a_later_run_reads_only_the_day_files_that_changed(tmp_path: Path) -> None:
    log = _log(tmp_path)
    cache = tmp_path / "ledger.json"
    Ledger.from_log(log, TODAY, cache)
    today = log / "2026-11" / "2026-11-21.jsonl"
    with today.open("a") as f:
        f.write(json.dumps({"kind": "run", "ts": "2026-11-21T09:00:00+00:00", "cost_usd": 0.25, "status": "ok"}) + "\n")
    opened: list[str] = []
    active = [True]

    def hook(event: str, args: tuple) -> None:
        if active[0] and event == "open" and str(args[0]).endswith(".jsonl"):
            opened.append(Path(str(args[0])).name)

    sys.addaudithook(hook)
    try:
        ledger = Ledger.from_log(log, TODAY, cache)
    finally:
        active[0] = False
    assert opened == ["2026-11-21.jsonl"]
    assert (ledger.month_usd, ledger.day_usd) == (2.0, 0.75)


def test_a_hand_edit_of_a_past_day_is_seen(tmp_path: Path) -> None:
    log = _log(tmp_path)
    cache = tmp_path / "ledger.json"
    Ledger.from_log(log, TODAY, cache)
    _write(log, "2026-11-20", [{"kind": "run", "ts": "2026-11-20T09:00:00+00:00", "cost_usd": 3.0, "status": "ok"}])
    assert Ledger.from_log(log, TODAY, cache).month_usd == 3.75
