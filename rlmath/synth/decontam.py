"""Decontamination: drop synthetic items whose question shares many word n-grams with an eval set.

Following Phi-4 and GPT-3, overlap is measured on normalised word n-grams: an item is dropped
when at least `threshold` of its n-grams (or its whole text, if shorter than n words) occur in
the eval set, whose question texts the caller supplies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Sequence, Set, Tuple

_TOKEN = re.compile(r"[a-z]+|\d+")
N = 8
THRESHOLD = 0.5


def tokens(text: str) -> List[str]:
    """Lower-cased words and numbers; LaTeX commands and punctuation are ignored.

    >>> tokens(r"Solve $3x + 5 = 20$.")
    ['solve', '3', 'x', '5', '20']
    """
    return _TOKEN.findall(re.sub(r"\\[a-zA-Z]+", " ", text.lower()))


def windows(toks: Sequence[str], n: int) -> Set[Tuple[str, ...]]:
    """All contiguous n-token windows of a token list."""
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


@dataclass(frozen=True)
class EvalTexts:
    """Question texts of an eval set and the name they came from (recorded in the stats and card).

    Reading the set is the caller's job (``rlmath.sources.question_texts``): synth stays at the bottom
    of the import graph.
    """

    source: str
    texts: Sequence[str]


def contaminated(
    questions: Sequence[str], eval_texts: Sequence[str], n: int = N, threshold: float = THRESHOLD
) -> List[int]:
    """Indices of questions whose n-gram overlap with the eval texts is at least `threshold`.

    A question shorter than n words is compared as one window of its own length, so a short
    synthetic question found verbatim inside a longer eval problem is still caught.

    >>> contaminated(["What is 2 + 2?", "Solve 3x = 9."], ["Quick: what is 2 + 2? Explain."])
    [0]
    """
    q_tokens = [tokens(q) for q in questions]
    e_tokens = [tokens(t) for t in eval_texts]
    index = {}
    for size in {min(len(t), n) for t in q_tokens if t}:
        index[size] = set().union(*(windows(t, size) for t in e_tokens)) if e_tokens else set()
    out = []
    for i, toks in enumerate(q_tokens):
        if not toks:
            continue
        size = min(len(toks), n)
        grams = windows(toks, size)
        hits = sum(1 for g in grams if g in index[size])
        if hits / len(grams) >= threshold:
            out.append(i)
    return out
