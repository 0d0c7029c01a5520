"""``rlmath pts -c CONFIG --out DIR``: Pivotal Token Search as a tracked run that writes DPO pairs.

The search itself (Phi-4 report 4.3: question filter, recursive prefix subdivision, pivotal tokens,
alternatives) lives in :mod:`rlmath.pivotal`; this recipe runs it with the configured policy
(``lora.init_adapter``, e.g. an SFT warm start) over ``pts.problems`` training problems in batches,
logs its cost and what it found to mlflow, and writes the pairs for ``dpo.pairs: DIR``.

mlflow: ``pts/pairs`` and ``pts/pairs_per_minute`` (per minute of sampling, the cost that dominates),
``pts/seconds_per_pair`` (wall clock), ``pts/p_change`` (one point per pivotal token, its signed change
of p(success)) with quantiles, and the pairs as an artifact.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

from rlmath.config import Config
from rlmath.errors import RLMathError
from rlmath.pairs import save_pairs
from rlmath.pivotal import SearchStats, run_search
from rlmath.run import progress_bar, setup_run, sync_adapter, tracked_run


def run_pts(config: Config, out: Path, console) -> Path:
    """Search, log, write ``out`` (a pairs folder); refuses to overwrite a non-empty ``out``."""
    if out.exists() and any(out.iterdir()):
        raise RLMathError(f"--out {out}: folder exists and is not empty")
    trainer = setup_run(config)
    with tracked_run(trainer.tracker, trainer.sampler):
        trainer.adapter = sync_adapter(trainer, step=0)
        problems = random.Random(config.seed).sample(trainer.train, min(config.pts.problems, len(trainer.train)))
        prompts = trainer.encoder([p.question for p in problems])
        started = time.perf_counter()
        with progress_bar(console) as bar:
            task = bar.add_task("PTS", total=len(problems))

            def on_batch(rows, stats: SearchStats, done: int, total: int) -> None:
                bar.update(task, completed=done, description=f"PTS {len(rows)} pairs, {stats.pivots} pivots")
                trainer.tracker.log_metrics(cost_metrics(len(rows), stats, time.perf_counter() - started), done)

            rows, stats = run_search(problems, prompts, trainer.sampler, trainer.adapter, trainer.policy.tokenizer,
                                     config, policy_version=config.lora.init_adapter or "fresh", on_batch=on_batch)
        elapsed = time.perf_counter() - started
        log_search(trainer.tracker, rows, stats, elapsed)
        if not rows:
            raise RLMathError(f"pts: no pivotal-token pairs in {stats.questions} questions ({stats.kept_questions} "
                              f"with {config.pts.p_low} <= p <= {config.pts.p_high}); nothing written to {out}")
        save_pairs(rows, out)
        trainer.tracker.log_artifact(out / "pairs.jsonl", "pairs")
        trainer.tracker.finish()
    console.print(f"{len(rows)} pivotal-token pairs from {stats.kept_questions}/{stats.questions} questions in "
                  f"{elapsed:.0f} s ({elapsed / len(rows):.1f} s per pair) -> {out}")
    return out


def cost_metrics(pairs: int, stats: SearchStats, elapsed_s: float) -> dict[str, float]:
    """What PTS costs: pairs per minute of sampling, seconds per pair, the search's shape."""
    return {"pts/pairs": float(pairs), "pts/pivots": float(stats.pivots),
            "pts/pivots_without_alternative": float(stats.pivots_without_alternative),
            "pts/questions": float(stats.questions), "pts/kept_questions": float(stats.kept_questions),
            "pts/trajectories": float(stats.trajectories), "pts/sampler_calls": float(stats.sampler_calls),
            "pts/continuations": float(stats.continuations), "pts/sampling_s": stats.sampling_s,
            "pts/elapsed_s": elapsed_s, "pts/pairs_per_minute": pairs / max(stats.sampling_s / 60, 1e-9),
            "pts/seconds_per_pair": elapsed_s / pairs if pairs else float("nan")}


def log_search(tracker, rows: list[dict], stats: SearchStats, elapsed_s: float) -> None:
    """Final cost metrics plus the distribution of p changes (one point per pivot, and quantiles)."""
    tracker.log_metrics(cost_metrics(len(rows), stats, elapsed_s), stats.questions)
    for index, change in enumerate(stats.p_changes):
        tracker.log_metrics({"pts/p_change": change}, index)
    if stats.p_changes:
        magnitudes = np.abs(np.asarray(stats.p_changes))
        tracker.log_metrics({f"pts/abs_p_change_q{q}": float(np.quantile(magnitudes, q / 100)) for q in (10, 50, 90)}
                            | {"pts/positive_fraction": float(np.mean(np.asarray(stats.p_changes) > 0))},
                            stats.questions)
