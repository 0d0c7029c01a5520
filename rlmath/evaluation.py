"""Greedy held-out accuracy with a 95% confidence interval and a per-family breakdown.

The trainer calls :func:`evaluate` before and after training with the sampler it already has (so no
second engine starts); ``rlmath eval`` builds its own sampler and does the same.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rlmath.config import Config
from rlmath.data import Problem
from rlmath.prompts import PromptEncoder
from rlmath.sampling import AdapterRef, Sampler, SamplingRequest
from rlmath.scoring import score


@dataclass
class EvalResult:
    accuracy: float
    ci_low: float
    ci_high: float
    total: int
    by_family: dict[str, float]
    status_counts: dict[str, int]
    mean_completion_tokens: float
    tokens_per_s: float
    rows: list[dict] = field(default_factory=list, repr=False)

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat mlflow metrics: ``eval/before/accuracy``, ``eval/before/family/add``, ..."""
        flat = {f"{prefix}/accuracy": self.accuracy, f"{prefix}/ci_low": self.ci_low, f"{prefix}/ci_high": self.ci_high,
                f"{prefix}/mean_completion_tokens": self.mean_completion_tokens, f"{prefix}/tokens_per_s": self.tokens_per_s}
        flat.update({f"{prefix}/family/{name}": value for name, value in self.by_family.items()})
        flat.update({f"{prefix}/status/{name}": float(count) for name, count in self.status_counts.items()})
        return flat

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "rows"}


def bootstrap_ci(values: list[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (seeded, so the same results give the same interval).

    >>> bootstrap_ci([1.0] * 10)
    (1.0, 1.0)
    """
    if not values:
        return (float("nan"), float("nan"))
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return (float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail)))


def evaluate(sampler: Sampler, encoder: PromptEncoder, problems: list[Problem], config: Config,
             adapter: AdapterRef | None) -> EvalResult:
    """Greedy decode every problem once, verify, and summarise."""
    request = SamplingRequest(n=1, temperature=0.0, max_tokens=config.eval.max_tokens)
    started = time.perf_counter()
    outputs = sampler.generate(encoder([p.question for p in problems]), request, adapter)
    elapsed = time.perf_counter() - started
    completions = [group[0] for group in outputs]
    lengths = [len(c.token_ids) for c in completions]
    scored = score([p.answer for p in problems], [c.text for c in completions], lengths, config.rewards,
                   config.eval.max_tokens)
    correct = [float(flag) for flag in scored.correct]
    low, high = bootstrap_ci(correct, seed=config.seed)
    families: dict[str, list[float]] = {}
    for problem, flag in zip(problems, correct):
        families.setdefault(problem.family, []).append(flag)
    rows = [{"family": p.family, "question": p.question, "gold": p.answer, "completion": c.text,
             "extracted": v.extracted, "correct": v.correct, "status": v.status}
            for p, c, v in zip(problems, completions, scored.verdicts)]
    return EvalResult(accuracy=float(np.mean(correct)) if correct else float("nan"), ci_low=low, ci_high=high,
                      total=len(problems), by_family={k: float(np.mean(v)) for k, v in sorted(families.items())},
                      status_counts=scored.status_counts(), mean_completion_tokens=float(np.mean(lengths)) if lengths else 0.0,
                      tokens_per_s=sum(lengths) / max(elapsed, 1e-9), rows=rows)


def run_eval_command(config: Config, *, adapter: Path | None, out: Path | None, console) -> EvalResult:
    """``rlmath eval``: one engine, the config's eval split, optional adapter, JSON out."""
    from rlmath.data import load_problems
    from rlmath.sampling import build_sampler
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    if adapter is not None and (adapter / "adapter").is_dir():
        adapter = adapter / "adapter"  # a run folder
    base = resolve_model(config.model.name_or_path)
    problems = load_problems(config, "eval")
    if config.eval.limit:
        problems = problems[: config.eval.limit]
    policy = load_policy(config, base, adapter=adapter, trainable=False) if config.sampling.backend == "hf" else None
    sampler = build_sampler(config, base, policy)
    try:
        encoder = PromptEncoder(_tokenizer(base, policy), config)
        ref = AdapterRef("eval", 1, str(adapter.resolve())) if adapter is not None else None
        result = evaluate(sampler, encoder, problems, config, ref)
    finally:
        sampler.close()
    console.print(f"accuracy {result.accuracy:.3f} (95% CI {result.ci_low:.3f}-{result.ci_high:.3f}) on {result.total} problems")
    for family, value in result.by_family.items():
        console.print(f"  {family:>16}: {value:.3f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.summary(), indent=2))
    return result


def _tokenizer(base: str, policy):
    if policy is not None:
        return policy.tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base)
