"""rewards vs math-verify on the same public cases: agreement with the expected verdicts and throughput.

Both run over rlmath/bench/data/verifier_cases.json (package data) in one process run. Ours is ``rewards.verify_batch``
(the path the trainer uses; the worker pool is warmed first, as in training). The peer is
math-verify's ``parse`` + ``verify`` per case, in-process, as its README shows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rlmath.bench.report import finish

CASES_FILE = Path(__file__).resolve().parent / "data" / "verifier_cases.json"


def load_cases(path: Path = CASES_FILE) -> list[dict]:
    return json.loads(path.read_text())["cases"]


def run_ours(cases: list[dict], repeats: int) -> tuple[list[bool], float, float]:
    """Verdicts, items/s over all repeats, and items/s of the first pass alone.

    Caches are not reset between repeats, as in training (k completions per gold, repeated answers);
    the first pass shows the rate with cold per-answer caches (workers already started and warmed).
    """
    import rewards
    from rewards.pool import get_pool

    golds, preds = [c["gold"] for c in cases], [c["pred"] for c in cases]
    get_pool(2).warm()  # start the worker pool outside the timing, as the trainer does at start-up
    start = time.perf_counter()
    verdicts = rewards.verify_batch(golds, preds, timeout=5.0)
    first = time.perf_counter() - start
    for _ in range(repeats - 1):
        verdicts = rewards.verify_batch(golds, preds, timeout=5.0)
    elapsed = time.perf_counter() - start
    return [v.correct for v in verdicts], repeats * len(cases) / elapsed, len(cases) / first


def run_peer(cases: list[dict]) -> tuple[list[bool], float]:
    """Verdicts and items/s for math-verify (errors count as a False verdict)."""
    from math_verify import parse, verify

    verify(parse("$1$"), parse("$\\frac{1}{1}$"))  # load its LaTeX grammar outside the timing, as ours warms its pool
    results = []
    start = time.perf_counter()
    for case in cases:
        try:
            results.append(bool(verify(parse(case["gold"]), parse(case["pred"]))))
        except Exception:  # noqa: BLE001 - a crash is a wrong verdict for the benchmark
            results.append(False)
    return results, len(cases) / (time.perf_counter() - start)


def agreement(verdicts: list[bool], cases: list[dict]) -> float:
    return sum(v == c["expected"] for v, c in zip(verdicts, cases)) / len(cases)


def run(out: Path | None, console=None, repeats: int = 3) -> dict:
    """Run both verifiers, write the JSON result to ``out`` and print a short table."""
    cases = load_cases()
    ours, ours_rate, first_rate = run_ours(cases, repeats)
    peer, peer_rate = run_peer(cases)
    result = {
        "name": "verifier", "ours": round(ours_rate, 1), "peer": round(peer_rate, 1),
        "ratio": round(ours_rate / peer_rate, 2), "unit": "items/s", "ours_label": "rewards.verify_batch",
        "peer_label": "math-verify parse+verify", "config": {"cases": len(cases), "repeats": repeats},
        "ours_agreement": round(agreement(ours, cases), 4), "peer_agreement": round(agreement(peer, cases), 4),
        "ours_first_pass": round(first_rate, 1), "cases": len(cases),
    }
    rows = [("agreement: rewards / math-verify", f"{result['ours_agreement']:.1%} / {result['peer_agreement']:.1%}"),
            ("rewards, first pass (items/s)", f"{result['ours_first_pass']:.0f}")]
    return finish(result, out, console, rows=rows)
