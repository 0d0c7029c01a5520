"""Reward functions and their combination."""

import pytest

import rewards
from rewards import Verdict


def test_registry_names():
    assert set(rewards.REWARD_FUNCTIONS) == {"correct", "format", "length", "repetition"}


def test_combine_unknown_name_is_named():
    with pytest.raises(ValueError, match="bogus"):
        rewards.combine_rewards(["x"], [Verdict(False, "wrong", "x")], {"bogus": 1.0})


def test_combine_weights_and_lengths():
    verdicts = [Verdict(True, "correct", "4"), Verdict(False, "no_answer")]
    values = rewards.combine_rewards(["\\boxed{4}", "hmm hmm hmm hmm hmm"], verdicts,
                                     {"correct": 1.0, "format": 0.5, "length": 1.0, "repetition": 1.0},
                                     lengths=[10, 100], max_length=100)
    assert values[0] == pytest.approx(1.0 + 0.5 + 1.0)
    assert values[1] == pytest.approx(-0.5 - 2 / 3)


def test_verdict_rejects_bad_status():
    with pytest.raises(ValueError):
        Verdict(False, "maybe")
    with pytest.raises(ValueError):
        Verdict(True, "wrong")


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError, match="nope"):
        rewards.verify("1", "1", nope=True)
