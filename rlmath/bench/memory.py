"""Peak RSS of a bounded `rlmath train` run (default: the embedded default config, fewer steps).

The run is a child process; its high-water mark comes from ``getrusage(RUSAGE_CHILDREN)``, the same
figure ``/usr/bin/time -v`` prints. There is no peer process for memory: the reference is the
product's budget (4 GiB for the embedded default), so ``ratio`` is peak / budget (≤ 1 passes).
    rlmath bench memory -c configs/default.yaml --out runs/bench_memory.json
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time

from rlmath.bench.report import finish
from rlmath.errors import RLMathError
from rlmath.peak_memory import peak_rss_gib

BOUNDED = ["grpo.steps=2", "sft.max_steps=4", "eval.limit=16", "grpo.eval_every=0"]
"""Every phase of the run once (model, SFT, sampling, update, sync, eval), in ~4 minutes. It understates a full
run: on glibc's malloc (before stop 28) a 16-step GRPO run on the AVX512-BF16 box climbed for four steps to
5.6-5.7 GiB (6.05 peak) where these two steps ended at 4.2-4.7, and glibc's heap made peaks of the same config vary
by GiBs. The child runs as ``python -m rlmath.cli``, so on mimalloc like the product (``RLMATH_MALLOC`` decides)."""


def run(config_path: str, overrides: list[str], *, budget_gib: float, out=None, console=None) -> dict:
    output = tempfile.mkdtemp(prefix="rlmath-bench-memory-")
    settings = BOUNDED + [f"output_dir={output}"] + list(overrides)
    command = [sys.executable, "-m", "rlmath.cli", "train", "-c", config_path]
    for item in settings:
        command += ["--set", item]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RLMathError(f"the bounded train run failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    peak = peak_rss_gib(resource.RUSAGE_CHILDREN)
    result = {"name": "memory", "ours": round(peak, 2), "peer": budget_gib, "ratio": round(peak / budget_gib, 3),
              "unit": "GiB peak RSS", "ours_label": "rlmath train (bounded)", "peer_label": "budget",
              "config": {"config": config_path, "overrides": settings}, "seconds": round(time.perf_counter() - started, 1)}
    return finish(result, out, console)

