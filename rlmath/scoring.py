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
