"""Pivotal Token Search on a scripted policy whose success probability is known exactly.

The policy writes five tokens: ``First we <carry|skip> the <answer>``. Where the third token is not yet
given, exactly half of any batch of continuations writes " carry" and half " skip"; the answer is right
iff " carry" appears. So p(success) is 0.5 before position 2, 1 after " carry", 0 after " skip", and
" carry"/" skip" at position 2 are the only pivotal tokens. Verification is the real ``rewards``.
"""

from __future__ import annotations

import math

import pytest

from rlmath.data import Problem
from rlmath.pivotal import (
    PrefixEstimator,
    PTSOptions,
    SearchStats,
    find_pivots,
    rewards_verifier,
    search_pairs,
    select_trajectories,
    split_point,
)
from rlmath.sampling import Completion

WORDS = {10: "First", 11: " we", 20: " carry", 21: " skip", 13: " the", 30: " \\boxed{7}", 31: " \\boxed{3}"}
CARRY, SKIP = 20, 21
PROMPT = (1, 2, 3)


def decode(ids) -> str:
    return "".join(WORDS.get(i, "") for i in ids)


class ScriptedPolicy:
    """A Sampler whose continuations follow the rule in the module docstring, deterministically."""

    def __init__(self) -> None:
        self.prompts: list[tuple[int, ...]] = []

    def generate(self, prompts, request, adapter):
        groups = []
        for prompt in prompts:
            self.prompts.append(tuple(prompt))
            prefix = list(prompt[len(PROMPT):])
            self.max_tokens = request.max_tokens
            groups.append([self._continue(prefix, j) for j in range(request.n)])
        return groups

    def _continue(self, prefix: list[int], j: int) -> Completion:
        full = list(prefix)
        logprobs = []
        while len(full) < 5:
            position = len(full)
            if position == 2:
                full.append(CARRY if j % 2 == 0 else SKIP)
                logprobs.append(math.log(0.5))
            elif position == 4:
                full.append(30 if CARRY in full else 31)
                logprobs.append(0.0)
            else:
                full.append({0: 10, 1: 11, 3: 13}[position])
                logprobs.append(0.0)
        tokens = full[len(prefix):][: self.max_tokens]
        return Completion(decode(tokens), tokens, logprobs[: len(tokens)], "stop" if len(full) == 5 else "length")

    def completion_logprobs(self, prompt, completion, adapter):  # pragma: no cover - not used by PTS
        raise NotImplementedError

    def close(self) -> None:
        pass


def run_search(split: str):
    policy, stats = ScriptedPolicy(), SearchStats()
    options = PTSOptions(question_samples=4, mc_samples=4, threshold=0.2, split=split, solutions_per_question=2,
                         max_tokens=5)
    estimator = PrefixEstimator(policy, None, options, rewards_verifier(timeout=5.0, workers=1), decode, stats)
    rows = search_pairs([Problem("p1", "carry?", "7", "add", 1)], [PROMPT], estimator, options, decode, "v0", stats)
    return rows, stats, policy


@pytest.mark.parametrize("split", ["logprob", "token"])
def test_pts_finds_the_planted_pivotal_token_and_no_other(split: str) -> None:
    rows, stats, _ = run_search(split)
    assert stats.kept_questions == 1 and stats.trajectories == 2  # one right, one wrong solution searched
    assert stats.pivots == 2 and sorted(stats.p_changes) == [-0.5, 0.5]  # " carry" (+) and " skip" (-), both at 2
    assert len(rows) == 1  # both pivots give the same pair: deduplicated
    row = rows[0]
    assert row["chosen_ids"] == [CARRY] and row["rejected_ids"] == [SKIP]
    assert row["prompt_ids"] == [*PROMPT, 10, 11] and row["prefix_length"] == 2
    assert row["prompt"] == "First we" and row["chosen"] == " carry" and row["rejected"] == " skip"
    assert row["prompt_has_chat_template"] is True and row["problem_id"] == "p1"
    assert {row["p_before"], row["p_after"], row["p_alternative"]} <= {0.5, 1.0, 0.0}


def test_pts_batches_prefixes_and_never_estimates_one_twice() -> None:
    _, stats, policy = run_search("token")
    assert len(policy.prompts) == len(set(policy.prompts))  # the cache answers repeats
    assert stats.sampler_calls < len(policy.prompts)  # several prefixes per sampler call


def test_each_continuation_keeps_its_own_prefix_length_budget() -> None:
    """Prefixes of different lengths share a sampler call; a short one must not get the long one's budget."""
    policy, stats = ScriptedPolicy(), SearchStats()
    options = PTSOptions(mc_samples=4, max_tokens=5)
    estimator = PrefixEstimator(policy, None, options, rewards_verifier(timeout=5.0, workers=1), decode, stats)
    carried, early = estimator.estimate([(PROMPT, (10, 11, CARRY), "7"), (PROMPT, (10,), "7")])
    assert (carried.p, early.p) == (1.0, 0.5) and stats.sampler_calls == 1
    assert set(early.next_tokens) == {11}


def test_a_question_outside_the_band_is_not_searched() -> None:
    policy, stats = ScriptedPolicy(), SearchStats()
    options = PTSOptions(question_samples=4, mc_samples=4, p_low=0.6, p_high=0.8)
    estimator = PrefixEstimator(policy, None, options, rewards_verifier(timeout=5.0, workers=1), decode, stats)
    assert select_trajectories([Problem("p1", "q", "7")], [PROMPT], estimator, options, stats) == []
    assert find_pivots([], estimator, options) == [] and stats.kept_questions == 0


@pytest.mark.parametrize("start,end,logprobs,rule,expected", [
    (0, 6, [0.0] * 6, "logprob", 3),                 # no surprise: token midpoint
    (0, 6, [0, 0, 0, 0, -2.0, 0], "logprob", 5),     # cut right after the surprising token
    (0, 6, [-2.0, 0, 0, 0, 0, 0], "logprob", 1),
    (0, 2, [0, -5.0], "logprob", 1),                 # always strictly inside the segment
    (2, 6, [0, 0, -1.0, -1.0, -1.0, -1.0], "logprob", 4),
    (0, 7, [-1.0] * 7, "token", 3),
])
def test_split_point(start, end, logprobs, rule, expected) -> None:
    assert split_point(start, end, logprobs, rule) == expected
