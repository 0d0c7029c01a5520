"""`generate`: deterministic items from the family registry, checked, with a train/test split key.

Each item gets its own RNG seeded from ``(seed, index, attempt)``, so item *i* does not depend on
how many items come before it: ``generate(10, s) == generate(20, s)[:10]``. Items whose solution
fails the check are regenerated with the next attempt number (the "fix or drop" step). Then a
question already asked earlier in the stream (in either split) is dropped, the first kept, so the
prefix property holds and no split repeats a question. Retries, drops, duplicates per family and
each family's estimated distinct-question capacity are reported in `last_stats`.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Dict, List, Optional, Sequence, Tuple, Union

from rlmath.synth import families as _families  # noqa: F401  (registers every family)
from rlmath.synth.check import failing
from rlmath.synth.dedup import capacity, first_occurrences
from rlmath.synth.registry import DIFFICULTIES, FAMILIES, Instance

Difficulty = Union[int, Tuple[int, int]]
ENGINE_VERSION = "1"  # bump when the same seed would give different items
TEST_PERCENT = 10  # share of template instances that land in the test split
MAX_ATTEMPTS = 8
last_stats: Dict[str, object] = {}


def instance_key(family: str, problem: Instance) -> str:
    """Hash of what is asked (family, template, parameters), independent of wording.

    Every surface form of one instance shares this key, so splitting on it keeps a question
    (in any wording) on one side of the train/test split.
    """
    blob = json.dumps([family, problem.template, problem.params], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def split_of(instance: str) -> str:
    """'test' for a fixed TEST_PERCENT of instance keys, else 'train' (the same for every seed)."""
    return "test" if int(instance, 16) % 100 < TEST_PERCENT else "train"


def _levels(difficulty: Difficulty) -> Tuple[int, int]:
    """Normalise an int or (lo, hi) difficulty to a validated inclusive range."""
    lo, hi = (difficulty, difficulty) if isinstance(difficulty, int) else tuple(difficulty)
    if not (DIFFICULTIES[0] <= lo <= hi <= DIFFICULTIES[-1]):
        raise ValueError(f"difficulty must lie in 1-5 with lo <= hi, got {difficulty!r}")
    return lo, hi


def _names(families: Optional[Sequence[str]]) -> List[str]:
    """Validated family names in registry order (all families when None)."""
    if isinstance(families, str):  # tolerate "add,mul" from a config value
        families = [f.strip() for f in families.split(",") if f.strip()]
    if not families:
        return list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(families))


def make_item(seed: int, index: int, names: Sequence[str], levels: Tuple[int, int], attempt: int = 0) -> dict:
    """Build item `index` of the stream for `seed` (one family pick, one difficulty, one wording)."""
    rng = random.Random(f"synth:{seed}:{index}:{attempt}")
    family = names[rng.randrange(len(names))]
    difficulty = rng.randint(*levels)
    problem = FAMILIES[family].make(rng, difficulty)
    surface = rng.randrange(len(problem.questions))
    instance = instance_key(family, problem)
    steps = "\n".join(problem.steps)
    return {
        "id": f"synth-{seed}-{index}",
        "family": family,
        "difficulty": difficulty,
        "question": problem.questions[surface],
        "answer": problem.answer,
        "solution": f"{steps}\nThe answer is \\boxed{{{problem.answer}}}",
        "meta": {
            "template": problem.template,
            "surface": surface,
            "surfaces": len(problem.questions),
            "kind": problem.kind,
            "instance": instance,
            "split": split_of(instance),
            "params": json.dumps(problem.params, sort_keys=True, default=str),
            "attempt": attempt,
        },
    }


def generate(
    n: int,
    seed: int,
    families: Optional[List[str]] = None,
    difficulty: Difficulty = (1, 5),
    check: bool = True,
    dedup: bool = True,
) -> List[dict]:
    """`n` checked items, deterministic from `seed`; see the module docstring for the scheme.

    >>> items = generate(3, seed=0, families=["add"], difficulty=1)
    >>> [i["family"] for i in items], items == generate(3, seed=0, families=["add"], difficulty=1)
    (['add', 'add', 'add'], True)
    """
    names, levels = _names(families), _levels(difficulty)
    items = [make_item(seed, i, names, levels) for i in range(n)]
    retries = dropped = 0
    bad = _failing(items) if check else []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        if not bad:
            break
        retries += len(bad)
        for i in bad:
            items[i] = make_item(seed, i, names, levels, attempt)
        bad = [bad[j] for j in _failing([items[i] for i in bad])]
    if bad:
        dropped = len(bad)
        drop = set(bad)
        items = [it for i, it in enumerate(items) if i not in drop]
    drawn = items
    duplicates: Dict[str, int] = {}
    if dedup:
        items, duplicates = first_occurrences(items)
    last_stats.clear()
    last_stats.update(retried=retries, dropped=dropped, kept=len(items), duplicates=sum(duplicates.values()),
                      duplicates_by_family=duplicates, capacity=capacity(drawn))
    return items


def _failing(items: List[dict]) -> List[int]:
    """Positions of items whose boxed answer does not verify against their gold."""
    return failing([it["answer"] for it in items], [it["solution"] for it in items])
