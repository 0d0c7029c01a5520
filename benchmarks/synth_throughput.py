"""Throughput of the synthetic problem engine: items per second for 10,000 items.

The product target is 10,000 checked items in at most a minute on a 2-core CPU machine. Three
numbers are printed: generation alone, generation plus the solution check (through
`rewards.verify_batch` when available), and the whole `rlmath synth` command including the
dataset folder, JSONL, parquet and card.

    .venv/bin/python benchmarks/synth_throughput.py [--n 10000] [--seed 0] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()

    from rlmath.synth import generate
    from rlmath.synth.check import rewards_verifier
    from rlmath.synth.command import run_synth

    raw_s, _ = _timed(lambda: generate(args.n, args.seed, check=False))
    checked_s, items = _timed(lambda: generate(args.n, args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        cmd_s, _ = _timed(lambda: run_synth(n=args.n, seed=args.seed, out=Path(tmp) / "ds", console=None))
    result = {
        "n": args.n,
        "cpus": os.cpu_count(),
        "check": "rewards.verify_batch" if rewards_verifier() else "local",
        "generate_items_per_s": round(args.n / raw_s),
        "generate_checked_items_per_s": round(args.n / checked_s),
        "command_items_per_s": round(args.n / cmd_s),
        "command_seconds": round(cmd_s, 2),
        "kept": len(items),
        "families": len({it["family"] for it in items}),
    }
    print(f"generate (no check):       {result['generate_items_per_s']:>9,} items/s")
    print(f"generate + {result['check']:<15} {result['generate_checked_items_per_s']:>9,} items/s")
    print(
        f"rlmath synth (to disk):    {result['command_items_per_s']:>9,} items/s  ({args.n:,} items in {cmd_s:.2f} s; target <= 60 s)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
