"""Generation-time check: every solution's final boxed answer must verify against its gold answer.

Two paths, so generation never depends on the verifier being importable:

* `rewards.verify_batch` (the trainer's own verifier) when it is available -- then the data is
  guaranteed to be scoreable by exactly the code that scores the model;
* a local structural check otherwise: the boxed text is the gold string and the gold string is in
  one of the canonical forms the verifier is specified to parse.
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

_CANONICAL = [
    re.compile(r"-?\d+"),  # 42, -7
    re.compile(r"-?\d+/\d+"),  # 3/4
    re.compile(r"-?\d+\.\d+"),  # 2.5
    re.compile(r"\(-?[\d/.]+(, -?[\d/.]+)+\)"),  # (1, 2)
    re.compile(r"[\(\[](-\\infty|-?[\d/.]+), (\\infty|-?[\d/.]+)[\)\]]"),  # (-\infty, 3]
    re.compile(r"[-+ ()\d/^.a-z\\{}]+"),  # x^2 + 2x + 1, 6\sqrt{2}, 25\pi
]


def extract_boxed(text: str) -> Optional[str]:
    """Content of the last ``\\boxed{...}`` in `text`, with nested braces balanced; None if absent.

    >>> extract_boxed(r"so \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i = start + len("\\boxed{")
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def local_ok(gold: str, solution: str) -> bool:
    """Structural check used when `rewards` is unavailable: boxed == gold and gold is canonical.

    >>> local_ok("42", "... \\\\boxed{42}"), local_ok("42", "... \\\\boxed{41}")
    (True, False)
    """
    boxed = extract_boxed(solution)
    return boxed == gold and any(p.fullmatch(gold) for p in _CANONICAL)


def rewards_verifier():
    """`rewards.verify_batch` if the verifier package is importable and working, else None."""
    try:
        import rewards

        verify_batch = rewards.verify_batch
        if not rewards.verify("1", "1").correct:
            return None
    except Exception:  # the verifier is another package, possibly still being built: fall back
        return None
    return verify_batch


def failing(golds: Sequence[str], solutions: Sequence[str], use_rewards: bool = True) -> List[int]:
    """Indices whose solution does not verify against the gold (local check, then the verifier)."""
    bad = [i for i, (g, s) in enumerate(zip(golds, solutions)) if not local_ok(g, s)]
    verify_batch = rewards_verifier() if use_rewards else None
    if verify_batch is None:
        return bad
    skip = set(bad)
    idx = [i for i in range(len(golds)) if i not in skip]
    verdicts = verify_batch([golds[i] for i in idx], [solutions[i] for i in idx])
    return sorted(bad + [i for i, v in zip(idx, verdicts) if not _correct(v, golds[i], solutions[i])])


def _correct(verdict, gold: str, solution: str) -> bool:
    """A verdict, with pool timeouts (a loaded machine, not a bad item) re-checked in process.

    Without this, a busy machine could make the same seed give different items.
    """
    if verdict.status != "timeout":
        return verdict.correct
    import rewards

    return rewards.verify(gold, solution).correct
