"""Property tests: over thousands of seeds, every solution's boxed answer verifies against its gold.

Both the structural check and `rewards.verify` (the verifier that scores the model during RL) run.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewards
from rewards.extract import last_boxed as extract_boxed
from rlmath.synth import FAMILIES, generate
from rlmath.synth.check import structural_ok


def test_gold_matches_solution_over_thousands_of_seeds():
    for seed in range(3000):
        for it in generate(3, seed=seed):
            assert structural_ok(it["answer"], it["solution"]), it


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**63), family=st.sampled_from(sorted(FAMILIES)), lo=st.integers(1, 5), span=st.integers(0, 4)
)
def test_any_seed_family_and_level_range_gives_verified_items(seed, family, lo, span):
    hi = min(5, lo + span)
    for it in generate(4, seed=seed, families=[family], difficulty=(lo, hi)):
        assert lo <= it["difficulty"] <= hi
        assert extract_boxed(it["solution"]) == it["answer"] and structural_ok(it["answer"], it["solution"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rewards_verify_accepts_every_family_solution(family):
    items = generate(30, seed=17, families=[family])
    for it in items:
        verdict = rewards.verify(it["answer"], it["solution"])
        assert verdict.correct, (it["answer"], verdict.status, it["solution"][-200:])
        assert rewards.verify(it["answer"], it["answer"]).correct, it["answer"]


def _perturb(answer: str) -> str:
    """A wrong answer of the same shape: bump the first integer in it."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), answer, count=1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rewards_verify_rejects_a_perturbed_answer(family):
    for it in generate(10, seed=23, families=[family]):
        wrong = it["solution"].replace(f"\\boxed{{{it['answer']}}}", f"\\boxed{{{_perturb(it['answer'])}}}")
        assert not rewards.verify(it["answer"], wrong).correct, (it["answer"], _perturb(it["answer"]))


@pytest.mark.slow
def test_rewards_verify_batch_over_thousands_of_seeds():
    items = [it for seed in range(2000) for it in generate(5, seed=seed)]
    verdicts = rewards.verify_batch([it["answer"] for it in items], [it["solution"] for it in items])
    bad = [(it["answer"], v.status) for it, v in zip(items, verdicts) if not v.correct]
    assert not bad, bad[:20]
