"""`vault-agent dashboard`: one self-contained page with every figure, rendered in headless Chromium."""

from __future__ import annotations

import datetime as dt
import re
import struct
from pathlib import Path

import pytest

from vault_agent.ops import dashboard
from vault_agent.ops import schedule as sched
from vault_agent.vault import runlog
from vault_agent.vault.folder import AgentFolder, Vault
from vault_agent.vault.templates import create_agent

import chromium
from test_cli import cli

TODAY = dt.date(2026, 11, 21)


def _runs(folder: AgentFolder, days: int, per_day: int, cost: float) -> None:
    for back in range(days, -1, -1):
        day = TODAY - dt.timedelta(days=back)
        for i in range(per_day):
            ts = dt.datetime.combine(day, dt.time(8 + i, 0)).astimezone()
            status = "error" if i == 3 else "refused" if i == 4 and back % 5 == 0 else "ok"
            run_id = f"{ts:%Y%m%dT%H%M%S}-{i:06x}"
            folder.append_log([
                {"ts": runlog.ts_string(ts), "started": runlog.ts_string(ts), "kind": "run", "run_id": run_id,
                 "agent": folder.name, "trigger": "schedule:tick", "status": status,
                 runlog.REQUEST_MODEL: "claude-haiku-5-5", runlog.RESPONSE_MODEL: "claude-haiku-5-5",
                 runlog.INPUT_TOKENS: 3000, runlog.OUTPUT_TOKENS: 200, runlog.CACHE_READ_TOKENS: 1200,
                 runlog.CACHE_WRITE_TOKENS: 0, "cost_usd": cost if status != "refused" else 0.0,
                 "work_item": "Check the <inbox> & file things", "tool_calls": 1, "error": None},
                {"ts": runlog.ts_string(ts), "kind": "tool_call", "run_id": f"{run_id}.1", "parent_run_id": run_id,
                 runlog.TOOL_NAME: "shell" if i == 2 else "memory_search",
                 "status": "refused" if i == 2 else "ok", "latency_ms": 5, "error": None},
            ], day=day)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    root = tmp_path_factory.mktemp("dash") / "vault"
    create_agent(root, "sample", "sample")
    for name, cost in (("inbox", 0.05), ("writer", 0.4)):
        folder_root = root / name
        (folder_root / "persona").mkdir(parents=True)
        (folder_root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-haiku-5-5\n"
                                              "cost:\n  daily_usd: 1.5\n  monthly_usd: 20\n---\n")
        _runs(AgentFolder(folder_root), days=40, per_day=5, cost=cost)
    sched.pause(AgentFolder(root / "writer"), failures=3, last_run_id="x", last_error="boom")
    return Vault(root)


def test_the_page_has_every_figure_and_the_latest_runs_with_details(vault: Vault) -> None:
    page = dashboard.render(vault, dashboard.collect(vault), days=30, today=TODAY)
    for heading in ("Spend per day", "Spend per agent against its daily cap", "Spend per month against the monthly cap",
                    "Spend by model", "Runs and failure rate", "Tokens", "Tool calls and refusals", "Latest runs",
                    "Run details"):
        assert f"<h2>{heading}</h2>" in page
    assert "writer <small>daily cap $1.50, exceeded on 30 day(s)" in page  # $1.60-2.00 a day, every day shown
    assert "Paused (delete PAUSED.md in the agent folder to resume): writer" in page
    assert re.search(r"Cache hits: (3\d|40)\.\d% of input tokens", page)  # 1200 of 3000 in the generated runs
    # Latest runs link to their details, which carry the record, the tool calls and the journal entry.
    links = re.findall(r"<a class=nw href='#(run-[^']+)'>", page)
    assert len(set(links)) == dashboard.LATEST and all(f"id='{a}'" in page for a in links)
    # The sample's runs are among the latest: their journal entries are shown with them.
    assert "run-sample-20261119T130502-d9e3b4" in links and "<pre>## 13:05:02 — cli · run 20261119T130502-d9e3b4" in page
    assert "Check the &lt;inbox&gt; &amp; file things" in page and "<inbox>" not in page


def test_runs_stopped_from_outside_are_counted_apart_from_ok_and_failed_ones(tmp_path: Path) -> None:
    root = tmp_path / "vault" / "solo"
    (root / "persona").mkdir(parents=True)
    (root / "model.md").write_text("---\nprovider: anthropic\nmodel: claude-haiku-5-5\n---\n")
    folder, vault = AgentFolder(root), Vault(root.parent)
    ts = dt.datetime.combine(TODAY, dt.time(9, 0)).astimezone()
    folder.append_log([{"ts": runlog.ts_string(ts), "kind": "run", "run_id": f"{ts:%Y%m%dT%H%M%S}-{i:06x}",
                        "agent": "solo", "trigger": "cli", "status": status, "cost_usd": 0.0, "work_item": "x"}
                       for i, status in enumerate(runlog.STATUSES)], day=TODAY)
    collected = dashboard.collect(vault)
    day = collected.agents[0].days[TODAY.isoformat()]
    assert (day.runs, day.errors, day.refused, day.other) == (6, 1, 1, 3)  # other: busy, interrupted, killed
    assert "busy/interrupted/killed" in dashboard.render(vault, collected, today=TODAY)


def test_the_page_is_self_contained(vault: Vault) -> None:
    page = dashboard.render(vault, dashboard.collect(vault), today=TODAY)
    assert "<script" not in page and "<link" not in page and "url(" not in page and "@import" not in page
    assert not re.search(r"\b(?:src|href)=(?!['\"]?#)", page), "only in-page links"
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_the_cli_writes_the_page_and_chromium_renders_it_without_console_errors(vault: Vault, tmp_path: Path) -> None:
    out = tmp_path / "dash.html"
    made = cli("dashboard", "--out", str(out), vault=vault.root)
    assert made.returncode == 0 and f"wrote {out}" in made.stdout
    shot = chromium.render(out, tmp_path / "dash.png", width=1280, height=2200)
    assert shot.console == []
    data = shot.screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 2200)
    assert len(data) > 50_000  # charts and tables, not a blank page
