"""`vault-agent dashboard`: one self-contained HTML page about the whole vault, aggregated from the run logs.

Spend per day, agent and model against the caps, runs and failure rate,
tokens with cache hits, tool calls and refusals, and the latest runs with
their details (record, tool calls, journal entry). Inline CSS and SVG only: it
opens offline, and its size depends on the window shown, not on the log size.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import deque
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..vault import journal, runlog
from ..vault.config import CostCaps
from ..vault.folder import AgentFolder, Vault
from . import schedule as sched
from .svg import PALETTE, Line, Series, hbars, stacked_bars

LATEST = 50


@dataclass
class Day:
    cost: float = 0.0
    runs: int = 0
    errors: int = 0
    refused: int = 0
    other: int = 0  # runlog.STOPPED (busy, interrupted, killed): stopped from outside, not failed
    input: int = 0  # uncached input tokens
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0
    tool_calls: int = 0
    tool_refused: int = 0


@dataclass
class AgentStats:
    name: str
    caps: CostCaps | None
    model: str
    paused: bool
    days: dict[str, Day] = field(default_factory=dict)
    months: dict[str, float] = field(default_factory=dict)
    latest: deque[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=lambda: deque(maxlen=LATEST))
    torn: int = 0


@dataclass
class VaultStats:
    agents: list[AgentStats]
    models: dict[str, list[float]] = field(default_factory=dict)  # model -> [cost, runs, input, output]
    tools: dict[str, list[int]] = field(default_factory=dict)  # tool -> [calls, errors, refused]


def _day(stats: AgentStats, ts: str) -> Day:
    key = ts[:10]
    day = stats.days.get(key)
    if day is None:
        day = stats.days[key] = Day()
    return day


def collect(vault: Vault) -> VaultStats:
    """Aggregate every agent's whole log: per day, per month, per model, per tool, and the latest runs."""
    out = VaultStats([])
    for name in vault.agent_names():
        folder = vault.agent(name)
        try:
            model_config = folder.load_config().model
            caps: CostCaps | None = model_config.caps
            model = model_config.primary.label()
        except ConfigError as exc:
            caps, model = None, f"model.md unusable: {exc.message}"
        stats = AgentStats(name, caps, model, sched.pause_info(folder) is not None)
        _read_agent(folder, stats, out)
        out.agents.append(stats)
    return out


def _read_agent(folder: AgentFolder, stats: AgentStats, out: VaultStats) -> None:
    loads = json.loads
    current: list[dict[str, Any]] | None = None
    for path in runlog.day_files(folder.paths.log):
        for line in path.read_bytes().split(b"\n"):
            if not line:
                continue
            try:
                r = loads(line)
            except ValueError:
                stats.torn += 1
                continue
            if not isinstance(r, dict):
                continue
            ts = str(r.get("ts", ""))
            if r.get("kind", "run") != "run" or "parent_run_id" in r:
                day = _day(stats, ts)
                day.tool_calls += 1
                status = r.get("status")
                day.tool_refused += status == "refused"
                tool = out.tools.setdefault(str(r.get(runlog.TOOL_NAME, "?")), [0, 0, 0])
                tool[0] += 1
                tool[1] += status == "error"
                tool[2] += status == "refused"
                if current is not None and r.get("parent_run_id") == stats.latest[-1][0].get("run_id"):
                    current.append(r)
                continue
            cost = runlog.record_cost(r)
            tokens = runlog.record_tokens(r)
            day = _day(stats, ts)
            day.cost += cost
            day.runs += 1
            status = r.get("status")
            day.errors += status == "error"
            day.refused += status == "refused"
            day.other += status in runlog.STOPPED
            day.cache_read += tokens["cache_read"]
            day.cache_write += tokens["cache_write"]
            # OTel input tokens include cached ones; atomic-agents-stack's did not, hence the floor at 0.
            day.input += max(0, tokens["input"] - tokens["cache_read"] - tokens["cache_write"])
            day.output += tokens["output"]
            stats.months[ts[:7]] = stats.months.get(ts[:7], 0.0) + cost
            model = out.models.setdefault(runlog.record_model(r) or "no model call", [0.0, 0, 0, 0])
            model[0] += cost
            model[1] += 1
            model[2] += tokens["input"]
            model[3] += tokens["output"]
            current = []
            stats.latest.append((r, current))


# --- rendering -----------------------------------------------------------------

def _usd(v: float) -> str:
    return f"${v:,.2f}" if v >= 1 or v == 0 else f"${v:,.3f}" if v >= 0.01 else f"${v:,.4f}"


def _count(v: float) -> str:
    return f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.1f}k" if v >= 1e4 else f"{v:,.0f}"


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def _window(days: int, today: _dt.date) -> list[str]:
    return [(today - _dt.timedelta(days=days - 1 - i)).isoformat() for i in range(days)]


def _sum(stats: VaultStats, labels: list[str]) -> Day:
    total = Day()
    for a in stats.agents:
        for label in labels:
            d = a.days.get(label)
            if d is None:
                continue
            for key in vars(total):
                setattr(total, key, getattr(total, key) + getattr(d, key))
    return total


def render(vault: Vault, stats: VaultStats, *, days: int = 90, today: _dt.date | None = None,
           generated: _dt.datetime | None = None) -> str:
    today = today or _dt.date.today()
    generated = generated or runlog.now_ts()
    labels = _window(days, today)
    total = _sum(stats, labels)
    colors = {a.name: PALETTE[i % len(PALETTE)] for i, a in enumerate(stats.agents)}
    parts = [_head(vault, generated, days), _cards(total, stats, today)]
    spend = [Series(a.name, [a.days[d].cost if d in a.days else 0.0 for d in labels], colors[a.name])
             for a in stats.agents]
    parts.append(f"<h2>Spend per day</h2><p class=note>Last {days} days, all agents stacked.</p>"
                 + stacked_bars(labels, spend, fmt=_usd, title="spend per day by agent") + _legend(spend))
    parts.append("<h2>Spend per agent against its daily cap</h2><div class=grid2>")
    for a, series in zip(stats.agents, spend):
        cap = a.caps.daily_usd if a.caps else None
        lines = [Line(f"{a.name} daily cap", "#d62728", at=cap)] if cap is not None else []
        over = sum(1 for v in series.values if cap is not None and v > cap)
        note = f"daily cap {_usd(cap)}" + (f", exceeded on {over} day(s)" if over else "") if cap is not None \
            else "no daily cap"
        parts.append(f"<div><h3>{escape(a.name)} <small>{escape(note)}</small></h3>"
                     + stacked_bars(labels, [series], fmt=_usd, lines=lines, width=560, height=170,
                                    title=f"{a.name} spend")
                     + "</div>")
    parts.append("</div>")
    parts.append(_months_table(stats, today))
    models = sorted(stats.models.items(), key=lambda kv: -kv[1][0])
    parts.append("<h2>Spend by model</h2><p class=note>Whole history.</p>"
                 + hbars([(m, v[0]) for m, v in models[:12]], fmt=_usd, title="spend by model")
                 + _table(["model", "runs", "spend", "input tokens", "output tokens"],
                          [[m, f"{int(v[1]):,}", _usd(v[0]), _count(v[2]), _count(v[3])] for m, v in models]))
    per_day = [_sum(stats, [d]) for d in labels]
    run_series = [Series(name, [float(f(d)) for d in per_day], color) for name, f, color in (
        ("ok", lambda d: d.runs - d.errors - d.refused - d.other, "#59a14f"),
        ("error", lambda d: d.errors, "#e15759"), ("refused", lambda d: d.refused, "#edc948"),
        ("/".join(runlog.STOPPED), lambda d: d.other, "#bab0ac"))]
    rate = [d.errors / d.runs if d.runs else None for d in per_day]
    top_rate = max([r for r in rate if r is not None] + [0.05])
    parts.append(f"<h2>Runs and failure rate</h2><p class=note>{total.runs:,} runs, {total.errors:,} failed "
                 f"({_pct(total.errors, total.runs)}), {total.refused:,} refused by a cost cap.</p>"
                 + stacked_bars(labels, run_series, fmt=_count, title="runs per day",
                                lines=[Line("failure rate", "#888888", values=rate,
                                            right_max=min(1.0, top_rate * 1.2))])
                 + _legend(run_series, extra="line: failure rate (right axis)"))
    token_series = [Series(name, [float(getattr(d, key)) for d in per_day], color) for name, key, color in (
        ("input (uncached)", "input", "#4e79a7"), ("cache read", "cache_read", "#76b7b2"),
        ("cache write", "cache_write", "#b07aa1"), ("output", "output", "#f28e2b"))]
    all_input = total.input + total.cache_read + total.cache_write
    parts.append(f"<h2>Tokens</h2><p class=note>Cache hits: {_pct(total.cache_read, all_input)} of input tokens "
                 f"were read from the provider's cache.</p>"
                 + stacked_bars(labels, token_series, fmt=_count, title="tokens per day") + _legend(token_series))
    tools = sorted(stats.tools.items(), key=lambda kv: -kv[1][0])
    parts.append(f"<h2>Tool calls and refusals</h2><p class=note>{total.tool_calls:,} tool calls in the window, "
                 f"{total.tool_refused:,} refused by the policy. Whole history below.</p>"
                 + _table(["tool", "calls", "errors", "refused", "refusal rate"],
                          [[t, f"{v[0]:,}", f"{v[1]:,}", f"{v[2]:,}", _pct(v[2], v[0])] for t, v in tools]))
    parts.append(_latest(vault, stats))
    parts.append("</main></body></html>")
    return "".join(parts)


_CSS = """
:root{color-scheme:light dark;--fg:#1d1d1f;--bg:#fff;--muted:#6e6e73;--line:#e5e5ea;--card:#f5f5f7}
@media (prefers-color-scheme:dark){:root{--fg:#f5f5f7;--bg:#1c1c1e;--muted:#a1a1a6;--line:#3a3a3c;--card:#2c2c2e}}
body{margin:0;font:14px/1.45 -apple-system,system-ui,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 6px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:12px 0 2px}small,.note{color:var(--muted);font-weight:normal}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:10px;margin-top:16px}
.card{background:var(--card);border-radius:8px;padding:10px 12px}.card b{display:block;font-size:20px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:6px 24px}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{padding:3px 8px;border-bottom:1px solid var(--line);
text-align:left;vertical-align:top}th{color:var(--muted);font-weight:600}td.n{text-align:right}
.chart text.axis{font-size:11px;fill:var(--muted)}.chart line.grid{stroke:var(--line)}
.legend span{display:inline-block;margin-right:14px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.s-ok{color:#2e7d32}.s-error{color:#c62828}.s-refused{color:#b8860b}
.run{border:1px solid var(--line);border-radius:8px;padding:8px 12px;margin:10px 0}.run:target{outline:2px solid #4e79a7}
pre{white-space:pre-wrap;background:var(--card);padding:8px;border-radius:6px;margin:4px 0}
a{color:#4e79a7}.nw{white-space:nowrap}
"""


def _head(vault: Vault, generated: _dt.datetime, days: int) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>vault-agent dashboard</title><style>{_CSS}</style></head><body><main>"
            f"<h1>vault-agent dashboard</h1><p class=note>{escape(str(vault.root))} · generated "
            f"{escape(runlog.ts_string(generated)[:16].replace('T', ' '))} · charts show the last {days} days</p>")


def _cards(total: Day, stats: VaultStats, today: _dt.date) -> str:
    month = f"{today:%Y-%m}"
    month_spend = sum(a.months.get(month, 0.0) for a in stats.agents)
    paused = [a.name for a in stats.agents if a.paused]
    all_input = total.input + total.cache_read + total.cache_write
    cards = [("spend in window", _usd(total.cost)), (f"spend in {month}", _usd(month_spend)),
             ("runs", f"{total.runs:,}"), ("failure rate", _pct(total.errors, total.runs)),
             ("cache hit rate", _pct(total.cache_read, all_input)), ("tool calls", f"{total.tool_calls:,}"),
             ("refusals", f"{total.refused + total.tool_refused:,}"),
             ("agents", f"{len(stats.agents)}" + (f" ({len(paused)} paused)" if paused else ""))]
    body = "".join(f"<div class=card><small>{escape(k)}</small><b>{escape(v)}</b></div>" for k, v in cards)
    return f"<div class=cards>{body}</div>" + (
        f"<p class=note>Paused (delete PAUSED.md in the agent folder to resume): {escape(', '.join(paused))}</p>"
        if paused else "")


def _legend(series: list[Series], extra: str = "") -> str:
    items = "".join(f"<span><i style='background:{s.color}'></i>{escape(s.name)}</span>" for s in series)
    return f"<div class=legend>{items}{f'<span>{escape(extra)}</span>' if extra else ''}</div>"


def _table(head: list[str], rows: list[list[str]], raw: bool = False) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _months_table(stats: VaultStats, today: _dt.date) -> str:
    months = sorted({m for a in stats.agents for m in a.months}, reverse=True)[:6]
    rows = []
    for a in stats.agents:
        cap = a.caps.monthly_usd if a.caps else None
        cells = [a.name, escape(a.model), _usd(cap) if cap is not None else "none"]
        for m in months:
            v = a.months.get(m, 0.0)
            flag = " class=s-error" if cap is not None and v > cap else ""
            cells.append(f"<span{flag}>{_usd(v)}</span>")
        rows.append(cells)
    return ("<h2>Spend per month against the monthly cap</h2><p class=note>The last six months; red: over the "
            "cap.</p>"
            + _table(["agent", "model", "monthly cap", *months], rows, raw=True))


def _latest(vault: Vault, stats: VaultStats) -> str:
    runs = sorted(((r, kids, a.name) for a in stats.agents for r, kids in a.latest),
                  key=lambda t: str(t[0].get("ts", "")), reverse=True)[:LATEST]
    rows, details = [], []
    journals: dict[tuple[str, str], dict[str, str]] = {}
    for r, kids, agent in runs:
        run_id = str(r.get("run_id", ""))
        anchor = "run-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{agent}-{run_id}")
        status = str(r.get("status", "?"))
        tokens = runlog.record_tokens(r)
        rows.append([f"<span class=nw>{escape(str(r.get('ts', ''))[:19].replace('T', ' '))}</span>", escape(agent),
                     f"<span class=s-{escape(status)}>{escape(status)}</span>", _usd(runlog.record_cost(r)),
                     _count(tokens["input"]), _count(tokens["output"]), str(len(kids)),
                     escape(journal.one_line(str(r.get("work_item", "")), 80)),
                     f"<a class=nw href='#{anchor}'>{escape(run_id)}</a>"])
        entry = _journal_text(vault, agent, run_id, journals)
        record = {k: v for k, v in r.items() if k not in ("prev_hash",)}
        record_rows = [[escape(k), escape(json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)]
                       for k, v in sorted(record.items())]
        kid_rows = [[escape(str(k.get(runlog.TOOL_NAME, "?"))), escape(str(k.get("status", "?"))),
                     f"{k.get('latency_ms', 0)} ms", escape(str(k.get("error") or ""))] for k in kids]
        details.append(f"<div class=run id='{anchor}'><h3>{escape(agent)} · run {escape(run_id)} · "
                       f"<span class=s-{escape(status)}>{escape(status)}</span></h3>"
                       + _table(["key", "value"], record_rows, raw=True)
                       + (_table(["tool", "status", "latency", "error"], kid_rows, raw=True) if kids else "")
                       + (f"<pre>{escape(entry)}</pre>" if entry else "<p class=note>no journal entry found</p>")
                       + "</div>")
    return ("<h2>Latest runs</h2>"
            + _table(["time", "agent", "status", "cost", "in", "out", "tools", "work item", "run"], rows, raw=True)
            + "<h2>Run details</h2>" + "".join(details))


def _journal_text(vault: Vault, agent: str, run_id: str, cache: dict[tuple[str, str], dict[str, str]]) -> str | None:
    day = run_id[:8]
    key = (agent, day)
    if key not in cache:
        cache[key] = {}
        try:
            date = _dt.date(int(day[:4]), int(day[4:6]), int(day[6:8]))
            text = vault.agent(agent).paths.journal_day(date).read_text(encoding="utf-8")
            cache[key] = {e.run_id: e.text for e in journal.parse_day(text)}
        except (ValueError, OSError):
            pass
    return cache[key].get(run_id)


def build(vault: Vault, out: Path, *, days: int = 90, today: _dt.date | None = None) -> tuple[Path, int]:
    """Write the page; (path, bytes)."""
    from ..vault.atomic import atomic_write

    page = render(vault, collect(vault), days=days, today=today).encode("utf-8")
    atomic_write(out, page)
    return out, len(page)
