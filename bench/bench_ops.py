"""Ops benchmark: dashboard render time and page size, and `audit verify` time, for a vault with long logs.

Generates (or reuses, with --reuse) 5 agents x 365 days x 50 runs a day
(bench/gen_big_log.py), then times, as a person runs them, the CLI commands
`vault-agent dashboard` and `vault-agent audit verify` (process start
included), and the same work in-process. Targets (issue 5): dashboard under
5 s and under 2 MB; audit verify under 3 s.

    python bench/bench_ops.py [--out DIR] [--reuse] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_big_log import generate  # noqa: E402

from vault_agent.ops import dashboard  # noqa: E402
from vault_agent.vault import chain, runlog  # noqa: E402
from vault_agent.vault.folder import Vault  # noqa: E402


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".out" / "ops-vault")
    ap.add_argument("--reuse", action="store_true", help="keep an already generated vault")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    vault_dir: Path = args.out
    if not (args.reuse and vault_dir.is_dir()):
        t = time.perf_counter()
        lines = generate(vault_dir)
        print(f"generated {vault_dir}: 5 agents x 365 days x 50 runs, {lines:,} log lines "
              f"in {time.perf_counter() - t:.1f} s")
    vault = Vault(vault_dir)
    size = sum(p.stat().st_size for name in vault.agent_names()
               for p in runlog.day_files(vault.agent(name).paths.log))
    print(f"log size: {size / 2**20:.0f} MiB in {sum(len(runlog.day_files(vault.agent(n).paths.log)) for n in vault.agent_names())} day files")

    page = vault_dir.parent / "dashboard.html"
    cli = [sys.executable, "-m", "vault_agent.cli", "--vault", str(vault_dir)]
    dash_cli = timed(lambda: subprocess.run([*cli, "dashboard", "--out", str(page)], check=True,
                                            capture_output=True), args.repeat)
    dash_api = timed(lambda: dashboard.render(vault, dashboard.collect(vault)), args.repeat)
    page_mb = page.stat().st_size / 1e6

    def verify_all() -> None:
        for name in vault.agent_names():
            assert chain.verify(runlog.day_files(vault.agent(name).paths.log)).ok

    verify_cli = timed(lambda: subprocess.run([*cli, "audit", "verify", "--quiet"], check=True,
                                              capture_output=True), args.repeat)
    verify_api = timed(verify_all, args.repeat)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "OVER TARGET"

    print(f"dashboard  (CLI, median of {args.repeat}): {dash_cli:.2f} s  target < 5 s   {verdict(dash_cli < 5)}")
    print(f"dashboard  (in-process collect+render): {dash_api:.2f} s")
    print(f"page size: {page_mb:.2f} MB  target < 2 MB   {verdict(page_mb < 2)}")
    print(f"audit verify (CLI, all 5 agents, median of {args.repeat}): {verify_cli:.2f} s  target < 3 s   "
          f"{verdict(verify_cli < 3)}")
    print(f"audit verify (in-process): {verify_api:.2f} s")


if __name__ == "__main__":
    main()
