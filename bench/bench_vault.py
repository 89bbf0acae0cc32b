"""Vault benchmark: config load time and note listing time for agents with 1k, 10k and 100k notes.

Targets (issue 2): `vault-agent notes NAME --json` at 10k notes under 0.6 s end to end;
loading an agent's config under 5 ms whatever the note count.

    python bench/bench_vault.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_agent import generate  # noqa: E402

from vault_agent.vault.config import load_config  # noqa: E402
from vault_agent.vault.folder import AgentFolder  # noqa: E402
from vault_agent.vault.layout import AgentPaths  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / ".out" / "vault")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'notes':>8} {'config p50':>11} {'config max':>11} {'scan (in-proc)':>15} "
          f"{'notes --json first':>19} {'notes --json p50':>17}")
    for n in sizes:
        root = generate(args.out, f"bench{n}", n)
        paths = AgentPaths(root)
        load_config(paths)
        config_times = timed(lambda: load_config(paths), 200)
        folder = AgentFolder(root)
        scan = statistics.median(timed(folder.scan_notes, 3))
        cmd = [sys.executable, "-m", "vault_agent.cli", "--vault", str(args.out), "notes", root.name, "--json"]
        for stale in root.joinpath(".vault-agent").glob("index.db*"):
            stale.unlink()
        # The first listing builds the derived catalog; later ones only stat the files.
        first = timed(lambda: subprocess.run(cmd, capture_output=True, check=True), 1)[0]

        def cli() -> None:
            subprocess.run(cmd, capture_output=True, check=True)

        cli_p50 = statistics.median(timed(cli, 5))
        print(f"{n:>8} {statistics.median(config_times) * 1e3:>9.2f}ms {max(config_times) * 1e3:>9.2f}ms "
              f"{scan:>13.3f}s {first:>17.3f}s {cli_p50:>15.3f}s")


if __name__ == "__main__":
    main()
