"""Tool runtime benchmark: parallel tool calls, progressive disclosure, sandbox cost.

Figures (targets from the tools issue):
- wall time of 8 independent `shell` calls that each sleep 0.5 s, through the
  full pipeline, in one turn (parallel) and one at a time (target: parallel
  under 0.8 s);
- prompt tokens of the tool definitions of an agent with 40 tools (11 built-in,
  29 custom), all shown vs progressive disclosure (target: at most a third);
- added cost of the sandbox per shell call: median wall time of `/bin/true`
  through sandbox.run (bwrap + rlimits + scrubbed env) minus a bare
  subprocess.run (target: under 50 ms).

    python bench/bench_tools.py [--runs 40]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vault_agent.context.assemble import tool_definition_tokens
from vault_agent.models.base import ToolCall
from vault_agent.security import sandbox
from vault_agent.tools.disclosure import Disclosure
from vault_agent.tools.runtime import build_runtime
from vault_agent.vault.folder import AgentFolder

BUILTINS = ["read_file", "write_file", "edit_file", "list_dir", "search_files", "shell", "web_fetch", "remember",
            "memory_search", "memory_read", "log_read"]
VERBS = ["convert", "summarize", "translate", "lookup", "schedule", "invoice", "forecast", "classify", "geocode",
         "transcribe", "resize", "validate", "render", "archive", "notify", "compare", "estimate", "extract",
         "format", "index", "merge", "normalize", "plan", "rank", "reconcile", "sign", "tag", "track", "verify"]


def make_agent(base: Path, custom: int) -> Path:
    root = base / "vault" / "bench"
    (root / "persona").mkdir(parents=True)
    (root / "memory").mkdir()
    (root / "model.md").write_text("---\nprovider: openai\nmodel: gpt-4o-mini\n---\n")
    names = [f"{v}_records" for v in VERBS[:custom]]
    (root / "tools.md").write_text("---\ntools: [" + ", ".join(BUILTINS + names) + "]\ncapabilities:\n"
                                   "  shell: true\n  network: {allow_domains: [example.org]}\n---\n")
    for verb, name in zip(VERBS, names):
        folder = root / "tools" / name
        folder.mkdir(parents=True)
        (folder / "TOOL.md").write_text(
            f"---\nname: {name}\ndescription: {verb.capitalize()} the records of a client file and return the result "
            "as a Markdown table, one row per record, with totals at the end.\ncommand: [python3, run.py]\n"
            "input_schema:\n  type: object\n  properties:\n    path: {type: string, description: client file, "
            "relative to the agent folder}\n    since: {type: string, description: first date YYYY-MM-DD}\n"
            "    limit: {type: integer, minimum: 1, maximum: 500}\n  required: [path]\n"
            "  additionalProperties: false\n---\n")
    return root


def bench_parallel(root: Path) -> tuple[float, float]:
    folder = AgentFolder(root)
    rt, _ = build_runtime(folder, folder.load_config(), "bench", env={})
    calls = [ToolCall(f"c{i}", "shell", {"command": "sleep 0.5"}) for i in range(8)]
    t = time.perf_counter()
    outcomes = rt.execute(calls)
    parallel = time.perf_counter() - t
    assert all(o.status == "ok" for o in outcomes), [o.result.content for o in outcomes]
    t = time.perf_counter()
    for c in calls:
        rt.execute([c])
    return parallel, time.perf_counter() - t


def bench_tokens(root: Path) -> tuple[int, int, int]:
    folder = AgentFolder(root)
    rt, _ = build_runtime(folder, folder.load_config(), "bench", env={})
    everything = Disclosure(rt.granted, threshold=10_000).specs()
    disclosed = rt.specs()
    return len(rt.granted), tool_definition_tokens(everything), tool_definition_tokens(disclosed)


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def bench_sandbox(root: Path, runs: int) -> tuple[float, float, float]:
    spec = sandbox.Spec(read=(root,), write=(root / "memory",), cwd=root)
    bare = median_ms(lambda: subprocess.run(["/bin/true"], check=True), runs)
    boxed = median_ms(lambda: sandbox.run(["/bin/true"], spec), runs)
    fallback = median_ms(lambda: sandbox.run(["/bin/true"], spec, isolate=False), runs)
    return bare, boxed, fallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    bwrap = sandbox.bwrap_path()
    print(f"python {sys.version.split()[0]}; bubblewrap: {bwrap or 'not available (fallback: rlimits only)'}")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_agent(Path(tmp), 29)
        parallel, sequential = bench_parallel(root)
        print(f"8 x shell 'sleep 0.5': parallel {parallel:.2f} s, sequential {sequential:.2f} s "
              f"(target: parallel < 0.8 s) {'OK' if parallel < 0.8 else 'MISSED'}")
        count, full, shown = bench_tokens(root)
        print(f"{count} tools: definitions {full:,} tokens all shown, {shown:,} with progressive disclosure "
              f"= {shown / full:.0%} (target: <= 33%) {'OK' if shown * 3 <= full else 'MISSED'}")
        bare, boxed, fallback = bench_sandbox(root, args.runs)
        print(f"/bin/true median of {args.runs}: bare subprocess {bare:.1f} ms, sandbox {boxed:.1f} ms "
              f"(+{boxed - bare:.1f} ms; target < 50 ms) {'OK' if boxed - bare < 50 else 'MISSED'}, "
              f"fallback without bwrap {fallback:.1f} ms (+{fallback - bare:.1f} ms)")


if __name__ == "__main__":
    main()
