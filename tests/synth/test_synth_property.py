"""Property tests: over thousands of seeds, every solution's boxed answer verifies against its gold.

The local structural check always runs; the checks through `rewards.verify` (the verifier that
scores the model during RL) run once that package provides it, and are skipped before.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlmath.synth import FAMILIES, generate
from rlmath.synth.check import extract_boxed, local_ok, rewards_verifier


def _rewards():
    """The rewards module if it exposes a working verify(), else skip."""
    if rewards_verifier() is None:
        pytest.skip("rewards.verify is not available yet")
    import rewards

    return rewards


def test_gold_matches_solution_over_thousands_of_seeds():
    for seed in range(3000):
        for it in generate(3, seed=seed):
            assert local_ok(it["answer"], it["solution"]), it


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**63), family=st.sampled_from(sorted(FAMILIES)), lo=st.integers(1, 5), span=st.integers(0, 4)
)
def test_any_seed_family_and_level_range_gives_verified_items(seed, family, lo, span):
    hi = min(5, lo + span)
    for it in generate(4, seed=seed, families=[family], difficulty=(lo, hi)):
        assert lo <= it["difficulty"] <= hi
        assert extract_boxed(it["solution"]) == it["answer"] and local_ok(it["answer"], it["solution"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rewards_verify_accepts_every_family_solution(family):
    rewards = _rewards()
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
    rewards = _rewards()
    for it in generate(10, seed=23, families=[family]):
        wrong = it["solution"].replace(f"\\boxed{{{it['answer']}}}", f"\\boxed{{{_perturb(it['answer'])}}}")
        assert not rewards.verify(it["answer"], wrong).correct, (it["answer"], _perturb(it["answer"]))


@pytest.mark.slow
def test_rewards_verify_batch_over_thousands_of_seeds():
    rewards = _rewards()
    items = [it for seed in range(2000) for it in generate(5, seed=seed)]
    verdicts = rewards.verify_batch([it["answer"] for it in items], [it["solution"] for it in items])
    bad = [(it["answer"], v.status) for it, v in zip(items, verdicts) if not v.correct]
    assert not bad, bad[:20]
