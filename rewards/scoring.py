"""Reward functions built on verdicts, and their weighted combination.

Each reward is a small pure function ``fn(completion, verdict, **kw) -> float`` (TRL's
``accuracy_rewards.py`` style, each with a doctest), registered by name in ``REWARD_FUNCTIONS`` so
the config can weight them: ``rewards.weights: {correct: 1.0, format: 0.1}``.
"""

from __future__ import annotations

import math
import re
from typing import Callable

from rewards.extract import last_boxed
from rewards.verdict import Verdict

RewardFn = Callable[..., float]


def correctness_reward(completion: str, verdict: Verdict, **kw) -> float:
    """1.0 when the verifier accepted the answer, else 0.0 (timeouts and parse failures included).

    >>> correctness_reward("\\\\boxed{4}", Verdict(True, "correct", "4"))
    1.0
    >>> correctness_reward("5", Verdict(False, "wrong", "5"))
    0.0
    """
    return 1.0 if verdict.correct else 0.0


def format_reward(completion: str, verdict: Verdict, **kw) -> float:
    """1.0 when the completion ends its reasoning with a non-empty ``\\boxed{}`` final answer.

    Rewarding the box teaches small models the one format the verifier extracts most reliably.

    >>> format_reward("so the answer is \\\\boxed{12}.", Verdict(False, "wrong", "12"))
    1.0
    >>> format_reward("so the answer is 12.", Verdict(False, "wrong", "12"))
    0.0
    """
    boxed = last_boxed(completion)
    return 1.0 if boxed is not None and boxed.strip() else 0.0


def format_if_correct_reward(completion: str, verdict: Verdict, **kw) -> float:
    """The format term of the correctness-first default: 1.0 for a *correct* answer in ``\\boxed{}``.

    A bonus any boxed answer earns can outweigh correctness under std-scaled advantages: in a group where
    every answer is wrong, the one boxed answer gets the advantage a correct answer gets elsewhere, and a
    weak model learns "box something, early". Gated on correctness, the term only breaks ties among
    correct answers and an all-wrong group stays at zero advantage.

    >>> format_if_correct_reward("\\\\boxed{4}", Verdict(True, "correct", "4"))
    1.0
    >>> format_if_correct_reward("\\\\boxed{5}", Verdict(False, "wrong", "5"))
    0.0
    """
    return format_reward(completion, verdict) if verdict.correct else 0.0


def length_aware_reward(completion: str, verdict: Verdict, *, length: int | None = None,
                        max_length: int | None = None, pos_start: float = 0.8, neg_end: float = 0.12,
                        **kw) -> float:
    """Phi-4-reasoning's length-aware correctness reward, in [-1, 1] (Abdin et al. 2025, sec. 4.1).

    A correct answer earns 1.0 up to ``pos_start * max_length`` tokens, then decays on a cosine
    to 0.5 at ``max_length`` (favour concise solutions). A wrong answer costs -1.0 when short,
    easing on a cosine to -0.5 at ``neg_end * max_length`` tokens (when wrong, think longer).
    Phi-4 used L_max=31744, L_pos=25600 (0.8), L_neg=3702 (0.12). Without lengths it is +1/-1.

    >>> ok, bad = Verdict(True, "correct", "1"), Verdict(False, "wrong", "2")
    >>> [length_aware_reward("", ok, length=n, max_length=100) for n in (10, 80, 90, 100)]
    [1.0, 1.0, 0.75, 0.5]
    >>> [length_aware_reward("", bad, length=n, max_length=100) for n in (0, 6, 12, 100)]
    [-1.0, -0.75, -0.5, -0.5]
    """
    if length is None or not max_length:
        return 1.0 if verdict.correct else -1.0
    if verdict.correct:
        span = max(max_length * (1.0 - pos_start), 1e-9)
        rho = min(1.0, max(length - pos_start * max_length, 0.0) / span)
        return _cosine(rho, start=1.0, end=0.5)
    rho = min(1.0, max(length, 0) / max(neg_end * max_length, 1e-9))
    return _cosine(rho, start=-1.0, end=-0.5)


def _cosine(rho: float, *, start: float, end: float) -> float:
    """Cosine interpolation from ``start`` (rho=0) to ``end`` (rho=1), rounded for stable doctests."""
    return round(end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * rho)), 12)


def repetition_penalty(completion: str, verdict: Verdict, *, ngram: int = 3, max_penalty: float = -1.0,
                       **kw) -> float:
    """Penalty in [max_penalty, 0] for repeated word n-grams (the share of n-grams seen before).

    Small models collapse into loops under RL; this makes a loop cost reward before it hits
    the length limit (the n-gram repetition penalty of Demystifying Long CoT, Yeo et al. 2025).

    >>> repetition_penalty("one two three four", Verdict(False, "wrong"))
    0.0
    >>> repetition_penalty("a b c a b c a b c", Verdict(False, "wrong"))
    -0.5714285714285714
    """
    words = re.findall(r"\S+", completion.lower())
    if len(words) < ngram:
        return 0.0
    grams = [tuple(words[i:i + ngram]) for i in range(len(words) - ngram + 1)]
    repeated = len(grams) - len(set(grams))
    return max_penalty * repeated / len(grams) if repeated else 0.0


REWARD_FUNCTIONS: dict[str, RewardFn] = {
    "correct": correctness_reward,
    "format": format_reward,
    "format_if_correct": format_if_correct_reward,
    "length": length_aware_reward,
    "repetition": repetition_penalty,
}


def combine_rewards(completions: list[str], verdicts: list[Verdict], weights: dict[str, float],
                    lengths: list[int] | None = None, max_length: int | None = None) -> list[float]:
    """Weighted sum of the named rewards per completion; an unknown name is a ValueError.

    >>> combine_rewards(["\\\\boxed{4}"], [Verdict(True, "correct", "4")], {"correct": 1.0, "format": 0.1})
    [1.1]
    """
    unknown = sorted(set(weights) - set(REWARD_FUNCTIONS))
    if unknown:
        raise ValueError(f"unknown reward name(s) {unknown}; known: {sorted(REWARD_FUNCTIONS)}")
    if len(completions) != len(verdicts) or (lengths is not None and len(lengths) != len(completions)):
        raise ValueError("completions, verdicts and lengths must have the same length")
    totals = []
    for index, (completion, verdict) in enumerate(zip(completions, verdicts)):
        length = lengths[index] if lengths is not None else None
        total = sum(weight * REWARD_FUNCTIONS[name](completion, verdict, length=length, max_length=max_length)
                    for name, weight in weights.items() if weight)
        totals.append(round(total, 12))
    return totals
