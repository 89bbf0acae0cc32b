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


def cli_run(vault: Path, name: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MB) of one `vault-agent run` in a child process."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vault_agent.cli", "--vault", str(vault), "run", name, "-m",
                             "What should I do first today?"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    assert os.waitstatus_to_exitcode(status) == 0
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


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
          f"{'CLI CPU p50':>12} {'CLI peak RSS':>13}")
    rows = []
    with FakeLLMServer() as server:
        server.default = Reply("Start with the Tokyo files.", input_tokens=5000, output_tokens=40)
        for n in [int(s) for s in args.sizes.split(",")]:
            root = generate(args.out, f"run{n}", n)
            point_at(root, server)
            agent = Agent(root, env=env)
            agent.run("warm up")  # builds the derived catalog once, as the first run of a new agent does
            overheads = []
            for i in range(args.runs):
                server_before = server.server_time_s
                started = time.perf_counter()
                result = agent.run(f"What should I do first today? ({i})")
                wall = time.perf_counter() - started
                assert result.status == "ok", result.error
                overheads.append(wall - (server.server_time_s - server_before))
            tokens = agent.context("What should I do first today?").tokens
            agent.close()
            overheads.sort()
            rows.append((n, root, overheads, tokens))
        # CLI runs of the different sizes alternate, so that drift in the machine's load
        # falls on all sizes alike instead of on whichever was measured last.
        cli: dict[int, list[tuple[float, float, float]]] = {n: [] for n, *_ in rows}
        for _ in range(9):
            for n, root, *_ in rows:
                cli[n].append(cli_run(args.out, root.name, env))
    cli_p50 = {n: statistics.median(c[0] for c in runs) for n, runs in cli.items()}
    cpu_p50 = {n: statistics.median(c[1] for c in runs) for n, runs in cli.items()}
    for n, _, overheads, tokens in rows:
        p95 = overheads[min(len(overheads) - 1, int(len(overheads) * 0.95))]
        print(f"{n:>7} {statistics.median(overheads) * 1e3:>11.1f}ms {p95 * 1e3:>11.1f}ms {tokens:>14,} "
              f"{cli_p50[n]:>10.3f}s {cpu_p50[n]:>10.3f}s {max(c[2] for c in cli[n]):>10.0f} MB")
    sizes = [n for n, *_ in rows]
    print(f"CLI run at {sizes[-1]} notes minus at {sizes[0]}: {cli_p50[sizes[-1]] - cli_p50[sizes[0]]:+.3f} s wall, "
          f"{cpu_p50[sizes[-1]] - cpu_p50[sizes[0]]:+.3f} s CPU")


if __name__ == "__main__":
    main()
