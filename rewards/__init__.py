"""rewards: a safe, fast symbolic verifier for math answers, and the rewards built on it.

Two verbs, as in Math-Verify: ``verify(gold, pred)`` checks one completion in-process and
``verify_batch(golds, preds)`` checks many in a persistent pool of worker processes with a hard,
per-item timeout. Model text is parsed by a small grammar of our own and never reaches ``eval``,
``sympify`` or ``parse_expr``.

>>> verify("3/4", r"The answer is $\\frac{3}{4}$.").status
'correct'
"""

from __future__ import annotations

from rewards.core import verify_options
from rewards.extract import answer_candidates, extract_answer
from rewards.fastpath import quick_verdict
from rewards.pool import get_pool, shutdown_pool
from rewards.scoring import (
    REWARD_FUNCTIONS,
    combine_rewards,
    correctness_reward,
    format_reward,
    length_aware_reward,
    repetition_penalty,
)
from rewards.verdict import STATUSES, Options, Verdict

__all__ = [
    "STATUSES", "Verdict", "Options", "verify", "verify_batch", "shutdown_pool", "extract_answer",
    "REWARD_FUNCTIONS", "combine_rewards", "correctness_reward", "format_reward",
    "length_aware_reward", "repetition_penalty",
]


def verify(gold: str, pred: str, **options) -> Verdict:
    """Check one completion (or bare answer) ``pred`` against ``gold`` in this process.

    No hard timeout here (use ``verify_batch`` for untrusted volume); the grammar's own size
    limits still reject towers like ``9^{9^{9^9}}``.

    >>> verify("x=5", "so x = 5, i.e. \\\\boxed{5}").correct
    True
    """
    return verify_options(gold, pred, Options.build(options))


def verify_batch(golds: list[str], preds: list[str], *, timeout: float = 2.0, workers: int = 2,
                 **options) -> list[Verdict]:
    """Check many completions in the worker pool; a stuck item becomes a ``timeout`` verdict.

    >>> [v.status for v in verify_batch(["2", "2"], ["\\\\boxed{2}", "I could not solve it."])]
    ['correct', 'no_answer']
    """
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} golds but {len(preds)} preds")
    opts = Options.build(options)
    if not golds:
        return []
    candidates = [answer_candidates(pred, opts.number_fallback) for pred in preds]
    answers = [found[0] if found else None for found in candidates]
    results: dict[int, Verdict] = {}
    pending = []
    for index, (gold, found) in enumerate(zip(golds, candidates)):
        quick = quick_verdict(gold, found[0], opts) if found else None
        if quick is not None:
            results[index] = quick
        else:
            pending.append((index, gold, found))
    if pending:
        results.update(get_pool(workers).run(pending, opts, timeout))
    return [_with_extracted(results[index], answers[index]) for index in range(len(preds))]


def _with_extracted(verdict: Verdict, answer: str | None) -> Verdict:
    """Timeout verdicts come from the parent, which still knows what answer text was extracted."""
    if verdict.status != "timeout":
        return verdict
    return Verdict(False, "timeout", answer)
