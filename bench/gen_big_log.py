"""Generate a vault whose agents have long, hash-chained run logs (for the dashboard and audit benchmarks).

Default: 5 agents x 365 days x 50 runs a day, each run with 0-3 tool-call
lines, ending today; journal entries for the last 3 days only (the dashboard
reads journals for its latest runs alone). Lines are chained exactly as
AgentFolder.append_log chains them, but written a day file at a time.

    python bench/gen_big_log.py OUT_VAULT [--agents 5] [--days 365] [--runs 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
from pathlib import Path

from vault_agent.vault import chain, journal, runlog

MODELS = (("anthropic", "claude-sonnet-5", 3.0, 15.0), ("anthropic", "claude-haiku-5-5", 1.0, 5.0),
          ("openai", "gpt-4o-mini", 0.15, 0.6))
TOOLS = ("memory_search", "memory_read", "remember", "read_file", "web_fetch", "shell")
ITEMS = ("Plan my week", "Summarise the new briefs in the inbox", "Check invoices due this week",
         "Draft the client status update", "File the meeting notes", "What changed in the roadmap?")
MODEL_MD = """---
provider: {provider}
model: {model}
cost:
  per_run_usd: 0.25
  daily_usd: {daily}
  monthly_usd: {monthly}
---
# Model settings
"""


def _agent(vault: Path, name: str, provider: str, model: str, daily: float) -> Path:
    root = vault / name
    (root / "persona").mkdir(parents=True)
    (root / "memory").mkdir()
    (root / "persona" / "IDENTITY.md").write_text(f"# {name}\n")
    (root / "model.md").write_text(MODEL_MD.format(provider=provider, model=model, daily=daily,
                                                   monthly=round(daily * 25, 2)))
    (root / "tools.md").write_text("---\ntools: [memory_search, memory_read, remember]\n---\n")
    return root


def generate(vault: Path, agents: int = 5, days: int = 365, runs: int = 50, seed: int = 11,
             today: dt.date | None = None) -> int:
    """Write the vault (replacing it); returns the number of log lines written."""
    if vault.exists():
        shutil.rmtree(vault)
    rng = random.Random(seed)
    today = today or dt.date.today()
    tz = dt.datetime.now().astimezone().tzinfo
    total = 0
    for a in range(agents):
        provider, model, price_in, price_out = MODELS[a % len(MODELS)]
        name = f"agent-{a + 1}"
        root = _agent(vault, name, provider, model, daily=round(0.5 + a * 0.25, 2))
        tip = chain.Tip()
        for back in range(days - 1, -1, -1):
            day = today - dt.timedelta(days=back)
            lines: list[str] = []
            entries: list[journal.JournalEntry] = []
            for i in range(runs):
                started = dt.datetime.combine(day, dt.time(0, 0), tz) + dt.timedelta(seconds=(i * 86400 // runs)
                                                                                    + rng.randrange(60))
                latency = rng.randrange(800, 30000)
                ended = started + dt.timedelta(milliseconds=latency)
                run_id = f"{started:%Y%m%dT%H%M%S}-{rng.getrandbits(24):06x}"
                status = rng.choices(("ok", "error", "refused", "busy"), (90, 6, 2, 2))[0]
                cached = rng.randrange(0, 6000)
                fresh = rng.randrange(500, 9000)
                out = rng.randrange(50, 1500) if status == "ok" else 0
                cost = round((fresh * price_in + out * price_out + cached * price_in / 10) / 1e6, 6)
                n_tools = rng.randrange(0, 4) if status == "ok" else 0
                record = {
                    "ts": runlog.ts_string(ended), "started": runlog.ts_string(started), "kind": "run",
                    "run_id": run_id, "agent": name, "trigger": rng.choice(("cli", "schedule:digest", "mcp")),
                    "status": status, runlog.PROVIDER: provider, runlog.REQUEST_MODEL: model,
                    runlog.RESPONSE_MODEL: model if status in ("ok", "error") else None,
                    runlog.INPUT_TOKENS: fresh + cached, runlog.OUTPUT_TOKENS: out,
                    runlog.CACHE_READ_TOKENS: cached, runlog.CACHE_WRITE_TOKENS: 0,
                    "cost_usd": cost if status in ("ok", "error") else 0.0, "latency_ms": latency,
                    "work_item": rng.choice(ITEMS), "notes_written": [], "tool_calls": n_tools,
                    "iterations": n_tools + 1, "error": None if status == "ok" else f"{status}: generated",
                }
                children = [{"ts": runlog.ts_string(ended), "kind": "tool_call", "run_id": f"{run_id}.{k}",
                             "parent_run_id": run_id, "agent": name, runlog.TOOL_NAME: rng.choice(TOOLS),
                             runlog.TOOL_CALL_ID: f"toolu_{rng.getrandbits(64):016x}",
                             "status": rng.choices(("ok", "error", "refused"), (94, 3, 3))[0],
                             "latency_ms": rng.randrange(1, 400), "error": None} for k in range(1, n_tools + 1)]
                lines += chain.link([record, *children], tip, runlog.encode)
                if back < 3:
                    entries.append(journal.JournalEntry(ts=started, run_id=run_id, status=status,
                                                        trigger=record["trigger"], asked=record["work_item"],
                                                        did="generated", cost=f"${record['cost_usd']:.4f}"))
            path = root / "log" / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            total += len(lines)
            if entries:
                jpath = root / "journal" / f"{day:%Y-%m}" / f"{day:%Y-%m-%d}.md"
                jpath.parent.mkdir(parents=True, exist_ok=True)
                jpath.write_text(journal.day_header(day, name) + "".join("\n" + e.render() for e in entries),
                                 encoding="utf-8")
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--agents", type=int, default=5)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()
    lines = generate(args.out, args.agents, args.days, args.runs)
    print(f"wrote {args.out}: {args.agents} agents x {args.days} days x {args.runs} runs, {lines:,} log lines")


if __name__ == "__main__":
    main()
