"""Generation-time check: every solution's final boxed answer must verify against its gold answer.

Two checks, both always on: a structural one (the boxed text is the gold string, and the gold is in
one of the canonical forms the verifier is specified to parse), then ``rewards.verify_batch``, the
verifier that scores the model, so the data is scoreable by exactly the code that scores training.
If the verifier itself raises, generation stops with an error: a silent fallback would ship data
no verifier has checked.
"""

from __future__ import annotations

import re
from typing import List, Sequence

import rewards
from rewards.extract import last_boxed
from rlmath.errors import RLMathError

_CANONICAL = [
    re.compile(r"-?\d+"),  # 42, -7
    re.compile(r"-?\d+/\d+"),  # 3/4
    re.compile(r"-?\d+\.\d+"),  # 2.5
    re.compile(r"\(-?[\d/.]+(, -?[\d/.]+)+\)"),  # (1, 2)
    re.compile(r"[\(\[](-\\infty|-?[\d/.]+), (\\infty|-?[\d/.]+)[\)\]]"),  # (-\infty, 3]
    re.compile(r"[-+ ()\d/^.a-z\\{}]+"),  # x^2 + 2x + 1, 6\sqrt{2}, 25\pi
]
CHECK_NAME = "structural + rewards.verify_batch"


def structural_ok(gold: str, solution: str) -> bool:
    """The solution's last box holds exactly the gold, and the gold is in a canonical form.

    >>> structural_ok("42", "... \\\\boxed{42}"), structural_ok("42", "... \\\\boxed{41}")
    (True, False)
    """
    return last_boxed(solution) == gold and any(p.fullmatch(gold) for p in _CANONICAL)


def failing(golds: Sequence[str], solutions: Sequence[str]) -> List[int]:
    """Indices whose solution fails the structural check or does not verify with ``rewards``."""
    bad = [i for i, (g, s) in enumerate(zip(golds, solutions)) if not structural_ok(g, s)]
    skip = set(bad)
    idx = [i for i in range(len(golds)) if i not in skip]
    try:
        verdicts = rewards.verify_batch([golds[i] for i in idx], [solutions[i] for i in idx])
        wrong = [i for i, v in zip(idx, verdicts) if not _correct(v, golds[i], solutions[i])]
    except Exception as exc:  # the verifier is broken, not the item: stop rather than ship unchecked data
        raise RLMathError(f"synth check: the rewards verifier raised {type(exc).__name__}: {exc}") from exc
    return sorted(bad + wrong)


def _correct(verdict, gold: str, solution: str) -> bool:
    """A verdict, with pool timeouts (a loaded machine, not a bad item) re-checked in process.

    Without this, a busy machine could make the same seed give different items.
    """
    if verdict.status != "timeout":
        return verdict.correct
    return rewards.verify(gold, solution).correct
