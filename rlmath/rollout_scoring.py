"""Score completions against gold answers with ``rewards``: the one path for training and eval.

Every verdict status is counted, so an all-zero reward caused by, say, unparseable golds shows up
as ``status/gold_unparseable`` in mlflow instead of as a silent flat curve.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import rewards
from rlmath.config import RewardsConfig


@dataclass
class Scored:
    verdicts: list  # rewards.Verdict, one per completion
    rewards: list[float]

    @property
    def correct(self) -> list[bool]:
        return [v.correct for v in self.verdicts]

    def status_counts(self) -> dict[str, int]:
        counts = Counter(v.status for v in self.verdicts)
        return {status: counts.get(status, 0) for status in rewards.STATUSES}


def score(golds: list[str], texts: list[str], lengths: list[int], config: RewardsConfig, max_length: int) -> Scored:
    """Verify each completion (worker pool, hard timeout) and combine the configured rewards."""
    verdicts = rewards.verify_batch(golds, texts, timeout=config.timeout, workers=config.workers)
    values = rewards.combine_rewards(texts, verdicts, dict(config.weights), lengths=lengths, max_length=max_length)
    return Scored(verdicts=verdicts, rewards=list(values))


def score_groups(golds: list[str], groups: list[list], config: RewardsConfig, max_length: int) -> Scored:
    """Score k completions per problem: ``groups[i]`` answers ``golds[i]``; verdicts come back problem-major."""
    flat = [c for group in groups for c in group]
    repeated = [gold for gold, group in zip(golds, groups) for _ in group]
    return score(repeated, [c.text for c in flat], [len(c.token_ids) for c in flat], config, max_length)
