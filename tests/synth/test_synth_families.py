"""Every family at every difficulty makes well-formed items (the contract the trainer relies on)."""

from __future__ import annotations

import json
import random
import re

import pytest

from rewards.extract import last_boxed as extract_boxed
from rlmath.synth import FAMILIES, generate
from rlmath.synth.check import structural_ok
from rlmath.synth.registry import DIFFICULTIES

KEYS = {"id", "family", "difficulty", "question", "answer", "solution", "meta"}
META = {"template", "surface", "surfaces", "kind", "instance", "split", "params", "attempt"}


def test_registry_has_at_least_25_families_with_descriptions():
    assert len(FAMILIES) >= 25
    for name, fam in FAMILIES.items():
        assert fam.name == name and fam.topic and fam.description


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_family_and_level_generates_valid_items(family, difficulty):
    items = generate(40, seed=difficulty, families=[family], difficulty=difficulty, dedup=False)
    assert len(items) == 40
    for it in items:
        assert set(it) == KEYS and set(it["meta"]) == META
        assert it["family"] == family and it["difficulty"] == difficulty
        assert it["question"].strip() and it["answer"].strip()
        assert it["solution"].rstrip().endswith(f"\\boxed{{{it['answer']}}}")
        assert extract_boxed(it["solution"]) == it["answer"] and structural_ok(it["answer"], it["solution"])
        assert "None" not in it["question"] + it["solution"], it
        assert it["question"].count("$") % 2 == 0 and it["solution"].count("$") % 2 == 0, it
        json.loads(it["meta"]["params"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_has_several_distinct_surface_forms(family):
    rng = random.Random(0)
    problem = FAMILIES[family].make(rng, 3)
    assert len(problem.questions) >= 2
    assert len(set(problem.questions)) == len(problem.questions)


@pytest.mark.parametrize("family", ["add", "sub", "mul", "linear"])
def test_demo_families_give_short_questions_and_plain_integer_answers(family):
    for it in generate(200, seed=1, families=[family], difficulty=(1, 5)):
        assert re.fullmatch(r"-?\d+", it["answer"]), it
        assert len(it["question"]) < 120


def test_difficulty_one_add_and_mul_use_one_or_two_digit_numbers():
    for it in generate(200, seed=2, families=["add", "mul"], difficulty=1):
        nums = [int(n) for n in re.findall(r"\d+", it["question"])]
        assert all(n < 100 for n in nums), it["question"]


def test_difficulty_raises_operand_size():
    small = generate(100, seed=3, families=["mul"], difficulty=1)
    large = generate(100, seed=3, families=["mul"], difficulty=5)
    assert max(abs(int(i["answer"])) for i in small) < min(abs(int(i["answer"])) for i in large) * 100


def test_unknown_family_and_bad_difficulty_raise():
    with pytest.raises(ValueError, match="unknown families"):
        generate(1, 0, families=["nope"])
    with pytest.raises(ValueError, match="difficulty"):
        generate(1, 0, difficulty=(0, 6))
