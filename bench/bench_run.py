"""Runner benchmark: runtime overhead of one run against the local fake model server.

For agents with 0, 1k and 10k notes: in-process `Agent.run` overhead (wall time
minus the server's time), prompt tokens, CLI run wall time, CLI peak memory,
and `vault-agent --help` time. Targets (issue 3): in-process overhead under
50 ms at 10k notes; prompt at 10k notes under 12k tokens; a CLI run at 10k
notes at most 0.2 s slower than at 0 notes; CLI peak memory under 150 MB;
--help under 0.15 s.

    python bench/bench_run.py [--sizes 0,1000,10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_agent import generate  # noqa: E402

from vault_agent.runner import Agent  # noqa: E402
from vault_agent.testing.fakellm import FakeLLMServer, Reply  # noqa: E402


def point_at(root: Path, server: FakeLLMServer) -> None:
    model_md = root / "model.md"
    text = model_md.read_text()
    head, _, rest = text.partition("\n---\n")
    lines = [l for l in head.splitlines() if not l.startswith(("base_url:", "replay:", "provider:", "model:"))]
    lines[1:1] = ["provider: anthropic", "model: claude-sonnet-5", f"base_url: {server.anthropic_base_url}"]
    model_md.write_text("\n".join(lines) + "\n---\n" + rest)


def cli_run(vault: Path, name: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `vault-agent run` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "run", name, "-m",
                    "What should I do first today?"], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="0,1000,10000")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".out" / "run")
    args = ap.parse_args()
    env = {**os.environ, "ANTHROPIC_API_KEY": "bench"}
    t = time.perf_counter()
    for _ in range(5):
        subprocess.run([sys.executable, "-m", "vault_agent.cli", "--help"], check=True, capture_output=True)
    help_s = (time.perf_counter() - t) / 5
    print(f"vault-agent --help: {help_s:.3f} s (mean of 5)")
    print(f"{'notes':>7} {'overhead p50':>13} {'overhead p95':>13} {'prompt tokens':>14} {'CLI run p50':>12} "
          f"{'CLI peak RSS':>13}")
    cli_base = None
    with FakeLLMServer() as server:
        server.default = Reply("Start with the Tokyo files.", input_tokens=5000, output_tokens=40)
        for n in [int(s) for s in args.sizes.split(",")]:
            root = generate(args.out, f"run{n}", n)
            point_at(root, server)
            agent = Agent(root, env=env)
            agent.run("warm up")  # builds the derived catalog once, as the first run of a new agent does
            overheads = []
            tokens = 0
            for i in range(args.runs):
                server_before = server.server_time_s
                started = time.perf_counter()
                result = agent.run(f"What should I do first today? ({i})")
                wall = time.perf_counter() - started
                assert result.status == "ok", result.error
                overheads.append(wall - (server.server_time_s - server_before))
            tokens = agent.context("What should I do first today?").tokens
            cli = [cli_run(args.out, root.name, env) for _ in range(5)]
            cli_p50 = statistics.median(c[0] for c in cli)
            cli_base = cli_p50 if cli_base is None else cli_base
            overheads.sort()
            p95 = overheads[min(len(overheads) - 1, int(len(overheads) * 0.95))]
            print(f"{n:>7} {statistics.median(overheads) * 1e3:>11.1f}ms {p95 * 1e3:>11.1f}ms {tokens:>14,} "
                  f"{cli_p50:>10.3f}s {max(c[1] for c in cli):>10.0f} MB")
    print(f"CLI run at the largest size minus at the smallest: {cli_p50 - cli_base:+.3f} s")


if __name__ == "__main__":
    main()
