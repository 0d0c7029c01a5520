"""Repeated questions: drop them (first one wins) and estimate each family's distinct-question capacity.

Small families (a few templates over narrow parameter ranges) repeat themselves: 3000 items gave 3.5%
repeated questions in train before this step. Questions are compared after :func:`normalise_question`
(case and spacing ignored). The capacity estimate is Chao1 on the question counts of the draw: a lower
bound on how many distinct questions the family can make at the requested difficulty, ``None`` when
the draw repeated nothing (the family is far larger than the draw).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

_SPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """Lower case, single spaces, no surrounding blanks: the form two questions are compared in.

    >>> normalise_question("  What is 2 +  2?\\n") == normalise_question("what is 2 + 2?")
    True
    """
    return _SPACE.sub(" ", text).strip().casefold()


def first_occurrences(items: Sequence[dict]) -> Tuple[List[dict], Dict[str, int]]:
    """Items whose question has not appeared before (in either split), and drops counted per family.

    Keeping the first keeps ``generate(n)`` a prefix of ``generate(m)`` for ``m > n``. Dropping across
    splits too means no question text is ever on both sides of the train/test split.
    """
    seen: set = set()
    kept: List[dict] = []
    dropped: Dict[str, int] = Counter()
    for item in items:
        key = normalise_question(item["question"])
        if key in seen:
            dropped[item["family"]] += 1
            continue
        seen.add(key)
        kept.append(item)
    return kept, dict(dropped)


def chao1(counts: Sequence[int]) -> Optional[int]:
    """Chao1 richness estimate from how often each distinct question was drawn; None if none repeated.

    >>> chao1([1, 1, 2, 3]), chao1([1, 1, 1])
    (6, None)
    """
    distinct = len(counts)
    singles, doubles = sum(c == 1 for c in counts), sum(c == 2 for c in counts)
    if singles == distinct:
        return None
    extra = singles * singles / (2 * doubles) if doubles else singles * (singles - 1) / 2
    return int(round(distinct + extra))


def capacity(items: Sequence[dict]) -> Dict[str, dict]:
    """Per family: questions drawn, distinct among them, and the Chao1 estimate of the family's capacity."""
    per_family: Dict[str, Counter] = defaultdict(Counter)
    for item in items:
        per_family[item["family"]][normalise_question(item["question"])] += 1
    return {family: {"drawn": sum(counts.values()), "distinct": len(counts), "estimate": chao1(list(counts.values()))}
            for family, counts in sorted(per_family.items())}


def capacity_text(entry: Optional[dict]) -> str:
    """``~412`` (the estimate), or ``> N`` when a draw of N repeated nothing; ``-`` for no entry."""
    if not entry:
        return "-"
    return f"> {entry['drawn']}" if entry["estimate"] is None else f"~{entry['estimate']}"
