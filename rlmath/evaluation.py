"""Held-out evaluation: greedy accuracy, pass@k / maj@k from k samples, bootstrap CIs, breakdowns.

The trainer calls :func:`evaluate` for each stage (base, sft, final) with the sampler it already has (so no
second engine starts; ``eval.k: [1]`` keeps that greedy-only and cheap). ``rlmath eval``
(:mod:`rlmath.eval_command`) builds its own sampler, asks for ``--k 1,4,8`` and compares base and
adapter on the same items. Scoring goes through :func:`rlmath.rollout_scoring.score_groups`, the same ``rewards``
path training uses, so an eval number and a training reward can never disagree on what is correct.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rlmath.config import Config
from rlmath.data import Problem
from rlmath.eval_stats import bootstrap_ci, majority_correct, pass_at_k
from rlmath.prompts import PromptEncoder
from rlmath.rollout_scoring import Scored, score_groups
from rlmath.sampling import AdapterRef, Completion, Sampler, SamplingRequest

__all__ = ["EvalResult", "evaluate", "bootstrap_ci"]


@dataclass
class EvalResult:
    accuracy: float  # greedy
    ci_low: float
    ci_high: float
    total: int
    by_family: dict[str, float]
    status_counts: dict[str, int]
    mean_completion_tokens: float
    tokens_per_s: float
    pass_at_k: dict[str, float] = field(default_factory=dict)  # {"pass@4": 0.31}
    maj_at_k: dict[str, float] = field(default_factory=dict)  # {"maj@4": 0.22}
    ci: dict[str, list[float]] = field(default_factory=dict)  # {"accuracy": [lo, hi], "pass@4": [lo, hi]}
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)  # {"level": {"1": 0.5}}
    truncated_fraction: float = 0.0
    sampling: dict[str, float] = field(default_factory=dict)  # n, temperature, top_p of the pass@k samples
    rows: list[dict] = field(default_factory=list, repr=False)  # greedy completion table
    sample_rows: list[dict] = field(default_factory=list, repr=False)  # sampled completion table
    item_scores: dict[str, list[float]] = field(default_factory=dict, repr=False)  # per-item, for paired CIs
    item_ids: list[str] = field(default_factory=list, repr=False)  # (N,) problem ids, to pair two results
    item_categories: dict[str, list[str]] = field(default_factory=dict, repr=False)  # category -> (N,) labels

    def metrics(self, prefix: str) -> dict[str, float]:
        """Flat mlflow metrics: ``eval/base/accuracy``, ``eval/base/pass_at_4``, ``eval/base/family/add``.

        mlflow metric names cannot hold ``@``, so ``pass@4`` is logged as ``pass_at_4``.
        """
        flat = {f"{prefix}/accuracy": self.accuracy, f"{prefix}/ci_low": self.ci_low,
                f"{prefix}/ci_high": self.ci_high, f"{prefix}/mean_completion_tokens": self.mean_completion_tokens,
                f"{prefix}/tokens_per_s": self.tokens_per_s, f"{prefix}/truncated_fraction": self.truncated_fraction}
        for name, value in {**self.pass_at_k, **self.maj_at_k}.items():
            key = name.replace("@", "_at_")
            flat[f"{prefix}/{key}"] = value
            low, high = self.ci.get(name, [float("nan"), float("nan")])
            flat[f"{prefix}/{key}_ci_low"], flat[f"{prefix}/{key}_ci_high"] = low, high
        flat.update({f"{prefix}/family/{name}": value for name, value in self.by_family.items()})
        for category, values in self.by_category.items():
            if category != "family":
                flat.update({f"{prefix}/{category}/{name}": value for name, value in values.items()})
        flat.update({f"{prefix}/status/{name}": float(count) for name, count in self.status_counts.items()})
        return flat


def evaluate(sampler: Sampler, encoder: PromptEncoder, problems: list[Problem], config: Config,
             adapter: AdapterRef | None, *, ks: list[int] | None = None, category: str = "family") -> EvalResult:
    """Greedy-decode every problem; with ``max(ks) > 1`` also sample ``max(ks)`` and estimate pass@k/maj@k.

    With ``ks == [1]`` no sampling happens and ``pass@1`` is the greedy accuracy.
    """
    ks = sorted(set(ks or config.eval.k))
    prompts = encoder([p.question for p in problems])
    greedy_request = SamplingRequest(n=1, temperature=0.0, max_tokens=config.eval.max_tokens)
    greedy, greedy_s = _generate(sampler, prompts, greedy_request, adapter)
    greedy_scored = _score(problems, greedy, config)
    correct = [float(flag) for flag in greedy_scored.correct]  # (N,)
    item_scores = {"accuracy": correct}
    sampled: list[list[Completion]] = []
    sampled_s, n = 0.0, max(ks)
    sample_rows: list[dict] = []
    if n > 1:
        request = SamplingRequest(n=n, temperature=config.eval.temperature, top_p=config.eval.top_p,
                                  max_tokens=config.eval.max_tokens)
        sampled, sampled_s = _generate(sampler, prompts, request, adapter)
        sampled_scored = _score(problems, sampled, config)
        item_scores.update(_sampled_item_scores(sampled_scored, len(problems), n, ks))
        sample_rows = _rows(problems, sampled, sampled_scored)
    else:
        item_scores["pass@1"] = correct
    all_completions = [c for group in greedy + sampled for c in group]
    tokens = sum(len(c.token_ids) for c in all_completions)
    resamples = config.eval.bootstrap_resamples
    ci = {name: list(bootstrap_ci(values, resamples=resamples, seed=config.seed))
          for name, values in item_scores.items()}
    categories = _item_categories(problems, category)
    return EvalResult(
        accuracy=_mean(correct), ci_low=ci["accuracy"][0], ci_high=ci["accuracy"][1], total=len(problems),
        by_family=_group_means([p.family for p in problems], correct), status_counts=greedy_scored.status_counts(),
        mean_completion_tokens=_mean([len(g[0].token_ids) for g in greedy]),
        tokens_per_s=tokens / max(greedy_s + sampled_s, 1e-9),
        pass_at_k={k: _mean(v) for k, v in item_scores.items() if k.startswith("pass@")},
        maj_at_k={k: _mean(v) for k, v in item_scores.items() if k.startswith("maj@")}, ci=ci,
        by_category={name: _group_means(labels, correct) for name, labels in categories.items()},
        truncated_fraction=_mean([float(g[0].finish_reason == "length") for g in greedy]),
        sampling={"n": n, "temperature": config.eval.temperature if n > 1 else 0.0,
                  "top_p": config.eval.top_p if n > 1 else 1.0, "max_tokens": config.eval.max_tokens},
        rows=_rows(problems, greedy, greedy_scored), sample_rows=sample_rows, item_scores=item_scores,
        item_ids=[p.id for p in problems], item_categories=categories)


def _generate(sampler: Sampler, prompts, request: SamplingRequest, adapter) -> tuple[list[list[Completion]], float]:
    started = time.perf_counter()
    outputs = sampler.generate(prompts, request, adapter)
    return outputs, time.perf_counter() - started


def _score(problems: list[Problem], groups: list[list[Completion]], config: Config) -> Scored:
    """Verify every completion of every group with the training scorer, at the eval length budget."""
    return score_groups([p.answer for p in problems], groups, config.rewards, config.eval.max_tokens)


def _sampled_item_scores(scored: Scored, problems: int, n: int, ks: list[int]) -> dict[str, list[float]]:
    """Per-problem pass@k (unbiased, from all n samples) and maj@k (vote over the first k samples)."""
    correct = np.asarray(scored.correct, dtype=bool).reshape(problems, n)  # (N, n)
    # Vote on the verifier's parsed form when it has one, so "0.5" and "1/2" count as the same answer.
    answers = [v.pred_parsed or v.extracted for v in scored.verdicts]
    answers = [answers[i * n:(i + 1) * n] for i in range(problems)]  # (N, n)
    out: dict[str, list[float]] = {}
    for k in ks:
        out[f"pass@{k}"] = [pass_at_k(n, int(row.sum()), k) for row in correct]
        if k > 1:
            out[f"maj@{k}"] = [float(majority_correct(answers[i][:k], correct[i, :k].tolist()))
                               for i in range(problems)]
    return out


def _rows(problems: list[Problem], groups: list[list[Completion]], scored: Scored) -> list[dict]:
    """The completion table: one row per completion, the columns a reader checks a verdict with."""
    rows, index = [], 0
    for problem, group in zip(problems, groups):
        for sample, completion in enumerate(group):
            verdict = scored.verdicts[index]
            rows.append({"id": problem.id, "family": problem.family, "sample": sample, "prompt": problem.question,
                         "completion": completion.text, "extracted": verdict.extracted, "gold": problem.answer,
                         "correct": bool(verdict.correct), "status": verdict.status,
                         "tokens": len(completion.token_ids)})
            index += 1
    return rows


def _item_categories(problems: list[Problem], category: str) -> dict[str, list[str]]:
    """Each item's label per breakdown: ``category`` (the family field), and ``level`` when the items span several."""
    out = {category: [p.family for p in problems]}
    if len({p.difficulty for p in problems}) > 1:
        out["level"] = [str(p.difficulty) for p in problems]
    return out


def _group_means(keys: list[str], values: list[float]) -> dict[str, float]:
    """Mean of ``values`` per key, keys sorted.

    >>> _group_means(["b", "a", "b"], [1.0, 0.0, 0.0])
    {'a': 0.0, 'b': 0.5}
    """
    groups: dict[str, list[float]] = {}
    for key, value in zip(keys, values):
        groups.setdefault(key, []).append(value)
    return {key: float(np.mean(groups[key])) for key in sorted(groups)}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")
