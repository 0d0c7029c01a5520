"""Reward functions and their combination."""

import pytest

import rewards
from rewards import Verdict


def test_registry_names():
    assert set(rewards.REWARD_FUNCTIONS) == {"correct", "format", "format_if_correct", "length", "repetition"}


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


def test_default_reward_is_correctness_first_under_std_scaled_advantages() -> None:
    """A boxed wrong answer in an all-wrong group must not earn what a correct answer earns elsewhere."""
    import torch

    from rlmath.algorithms.grpo import group_advantages
    from rlmath.config import RewardsConfig

    wrong, right = Verdict(False, "wrong", "5"), Verdict(True, "correct", "4")
    texts = ["\\boxed{5}", "5", "5", "5",            # group 1: all wrong, one boxed
             "\\boxed{4}", "5", "5", "5"]            # group 2: one correct
    verdicts = [wrong] * 4 + [right, wrong, wrong, wrong]
    values = rewards.combine_rewards(texts, verdicts, dict(RewardsConfig().weights))
    advantages = group_advantages(torch.tensor(values).view(2, 4), scale=True)
    assert advantages[0].abs().max() < 1e-6  # nothing to learn from an all-wrong group
    assert advantages[1, 0] > 1.0
    # ... and among correct answers the format still breaks the tie
    tie = rewards.combine_rewards(["\\boxed{4}", "4"], [right, right], dict(RewardsConfig().weights))
    assert tie[0] > tie[1] and min(tie) >= 1.0
