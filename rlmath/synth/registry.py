"""The family registry and the two types every family shares: an `Instance` and the `Family` that makes it.

An `Instance` is one template with its parameters (not yet one question): a family's
`make(rng, difficulty)` returns one holding *all* surface forms of the
question. The engine, not the family, picks the wording, so a test can check every form and the
train/test split can key on the instance (template + parameters) rather than on the wording.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

DIFFICULTIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Instance:
    """One template instance, every wording of it: what is asked (template + params), how it may be worded, and its solution.

    `params` identifies the instance independently of wording; it must be JSON-serialisable.
    `steps` are the worked-solution lines *before* the final boxed answer, which the engine appends.
    """

    template: str
    params: dict
    questions: Tuple[str, ...]
    steps: Tuple[str, ...]
    answer: str
    kind: str = "int"


@dataclass(frozen=True)
class Family:
    """A named generator of problems with difficulty levels 1-5."""

    name: str
    topic: str
    description: str
    make: Callable[[random.Random, int], Instance] = field(repr=False)


FAMILIES: Dict[str, Family] = {}


def register(name: str, topic: str, description: str):
    """Decorator adding a `make(rng, difficulty)` function to `FAMILIES` under `name`.

    Registration happens at import time of `rlmath.synth.families`, so the registry is complete
    as soon as `rlmath.synth` is imported.
    """

    def wrap(make: Callable[[random.Random, int], Instance]):
        if name in FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        FAMILIES[name] = Family(name=name, topic=topic, description=description, make=make)
        return make

    return wrap
