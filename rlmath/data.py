"""Problems for training and evaluation: synthetic (gold computed by sympy) or a user's dataset.

Synthetic problems come from the ``synth`` engine with no repeated question inside a split and none
shared between train and eval (compared after :func:`normalise_question`); dataset problems come
from :mod:`rlmath.sources`, the reader eval sets and decontamination use too.
"""

from __future__ import annotations

import logging
from typing import Literal

from rlmath.config import Config, DataConfig
from rlmath.errors import RLMathError
from rlmath.sources import Fields, Problem, load
from rlmath.synth import FAMILIES, generate, normalise_question

__all__ = ["Problem", "load_problems"]
log = logging.getLogger(__name__)


def load_problems(config: Config, split: Literal["train", "eval"]) -> list[Problem]:
    """Train or held-out eval problems; the synth engine's split keeps template instances apart."""
    data = config.data
    if data.source == "dataset":
        return _dataset_split(data, split)
    held_out = _synthetic_eval(data)
    if split == "eval":
        return held_out
    levels = (data.difficulty, data.max_difficulty or data.difficulty)  # a range when escalating
    seen = {normalise_question(p.question) for p in held_out}
    return _synthetic(data.families, data.train_size, data.train_seed, levels, "train", seen)


def _synthetic_eval(data: DataConfig) -> list[Problem]:
    """Equal counts per family (trained and eval-only), so a per-family accuracy is never a handful of items."""
    families = data.families + [f for f in data.eval_families if f not in data.families]
    per_family = max(1, data.eval_size // max(len(data.families), 1))
    seen: set[str] = set()
    return [p for name in families for p in _synthetic([name], per_family, data.eval_seed, data.difficulty, "test", seen)]


def _synthetic(families: list[str], n: int, seed: int, difficulty: int | tuple[int, int], split: str,
               seen: set[str]) -> list[Problem]:
    """``n`` distinct problems of one side of the engine's split whose questions are not in ``seen``.

    The engine sends about 10% of instances to test, so the draw grows until ``n`` are kept; ``seen``
    gains the kept questions, so later calls never repeat them.
    """
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise RLMathError(f"data.families: unknown {unknown}; known: {sorted(FAMILIES)}")
    kept: list[dict] = []
    drawn = n
    while len(kept) < n:
        drawn = drawn * (12 if split == "test" else 2)
        kept = [item for item in generate(drawn, seed, families=list(families), difficulty=difficulty)
                if item["meta"]["split"] == split and normalise_question(item["question"]) not in seen]
        if drawn > 200 * n:  # a family with (almost) no more distinct instances on this side of the split
            break
    if len(kept) < n:
        log.warning("%s: only %d distinct %s questions at difficulty %s (asked for %d); see `rlmath synth` for "
                    "each family's capacity", ",".join(families), len(kept), split, difficulty, n)
    kept = kept[:n]
    seen.update(normalise_question(item["question"]) for item in kept)
    return [Problem(id=str(item["id"]), question=item["question"], answer=str(item["answer"]),
                    family=item["family"], difficulty=int(item["difficulty"]), solution=item.get("solution", ""))
            for item in kept]


def _dataset_split(data: DataConfig, split: str) -> list[Problem]:
    """A local file/folder, preset or hub id: the train split trains; eval uses the last eval_size rows."""
    if data.path is None:
        raise RLMathError("data.path: required when data.source is 'dataset'")
    problems = load(data.path, split=data.split, fields=Fields(data.question_field, data.answer_field)).problems
    if split == "eval":
        return problems[-data.eval_size:]
    return problems[: max(len(problems) - data.eval_size, 0)][: data.train_size]
