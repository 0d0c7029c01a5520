"""Which problems to sample next: plain shuffled epochs, or a pass-rate curriculum that climbs levels.

A GRPO group whose k samples all pass (or all fail) has zero advantage and teaches nothing, so the
curriculum spends ``revisit`` of each batch on problems whose last measured pass rate is between ``low``
and ``high`` (known to carry signal), and the rest on unseen problems (to measure them); problems the
model has mastered or cannot touch are drawn only at ``off_weight`` when nothing else is left. An
unseen problem is never "in band": it has no pass rate yet.

Unseen problems are not drawn uniformly: each is weighted by how often its family's groups have carried
signal so far (``(informative + 1) / (groups + 2)``, so a family starts at 1/2). With a few thousand
problems and a few hundred draws a problem is rarely seen twice, but a family is seen every step: after
an SFT warm start some families are solved in every sample and some in none, and drawing those spends
the sampling budget on groups with zero advantage.

When the unseen problems of the current level run out, later batches revisit seen ones (the band first):
with ``revisit`` 0 that silently turns "fresh problems only" into re-solving known instances, whose
answers the model then learns by heart. :meth:`unseen_left` is logged every step, and the first batch
that has to revisit logs a warning naming ``data.train_size``.

Difficulty escalation: when the pool spans several levels, only problems at or below the current
level are drawn (lower levels at ``off_weight``, to rehearse without spending the batch on them).
Once the mean pass rate of the last ``promote_window`` groups at the current level reaches
``promote_at``, the level goes up by one: the model is moved on before its groups stop carrying signal.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np

from rlmath.data import Problem

log = logging.getLogger(__name__)


class ProblemPicker:
    def __init__(self, problems: list[Problem], seed: int, *, curriculum: bool, low: float = 0.2,
                 high: float = 0.8, off_weight: float = 0.1, promote_at: float = 0.8,
                 promote_window: int = 32, revisit: float = 0.5, family_power: float = 1.0) -> None:
        if not problems:
            raise ValueError("no training problems")
        self.problems = problems
        self.curriculum = curriculum
        self.low, self.high, self.off_weight, self.revisit = low, high, off_weight, revisit
        self.family_power = family_power
        self.last_batch_in_band = float("nan")  # share of the last batch drawn from the band
        self.rng = np.random.default_rng(seed)
        self.pass_rate = np.full(len(problems), np.nan)  # latest group pass rate per problem, (P,)
        self.difficulty = np.array([p.difficulty for p in problems])  # (P,)
        self.family = np.array([p.family for p in problems])  # (P,)
        self.family_groups: dict[str, list[int]] = {}  # family -> [informative groups, groups]
        self.levels = sorted(set(self.difficulty.tolist()))
        self.level = self.levels[0]
        self.promote_at = promote_at
        self.recent: deque[float] = deque(maxlen=promote_window)  # pass rates at the current level
        self._order: list[int] = []
        self.warned_exhausted = False

    def next_batch(self, count: int) -> list[int]:
        """Indices of the next ``count`` problems (no repeats within a batch)."""
        eligible = np.flatnonzero(self.difficulty <= self.level)
        count = min(count, len(eligible))
        if self.curriculum:
            return self._curriculum_batch(eligible, count)
        while len(self._order) < count:
            self._order.extend(self.rng.permutation(eligible).tolist())
        batch, self._order = self._order[:count], self._order[count:]
        return batch

    def _curriculum_batch(self, eligible: np.ndarray, count: int) -> list[int]:
        """``revisit`` of the batch from in-band problems at the current level, the rest from unseen ones,
        topped up (if both run short) from the others at ``off_weight``."""
        rate = self.pass_rate[eligible]
        current = self.difficulty[eligible] == self.level
        band = eligible[current & (rate >= self.low) & (rate <= self.high)]
        unseen = eligible[current & np.isnan(rate)]
        lower = eligible[~current]  # rehearsal of earlier levels, at off_weight beside the unseen ones
        picked = list(self.rng.choice(band, size=min(len(band), round(count * self.revisit)), replace=False))
        if count - len(picked) > len(unseen):
            self._warn_exhausted(len(unseen), count - len(picked))
        fresh_pool = np.concatenate([unseen, lower])
        fresh_weights = np.concatenate([self.family_signal(unseen), np.full(len(lower), self.off_weight)])
        fresh = min(len(unseen) + len(lower), count - len(picked))
        if fresh:
            picked += list(self.rng.choice(fresh_pool, size=fresh, replace=False, p=fresh_weights / fresh_weights.sum()))
        if len(picked) < count:  # band and unseen exhausted: fill from the rest, band-first
            rest = np.setdiff1d(eligible, picked)
            rest_rate = self.pass_rate[rest]
            useful = (rest_rate >= self.low) & (rest_rate <= self.high) & (self.difficulty[rest] == self.level)
            weights = np.where(useful | np.isnan(rest_rate), 1.0, self.off_weight)
            picked += list(self.rng.choice(rest, size=count - len(picked), replace=False, p=weights / weights.sum()))
        self.last_batch_in_band = float(np.isin(picked, band).mean()) if picked else float("nan")
        return [int(i) for i in picked]

    def _warn_exhausted(self, unseen: int, needed: int) -> None:
        """Once per run: the current level's unseen problems ran out, so batches now repeat seen ones."""
        if self.warned_exhausted:
            return
        self.warned_exhausted = True
        total = int((self.difficulty == self.level).sum())
        log.warning("data.train_size: all %d level-%d training problems have been drawn (%d unseen were left for %d "
                    "fresh draws); from here batches revisit seen problems. Raise data.train_size for fresh ones.",
                    total, self.level, unseen, needed)

    def unseen_left(self) -> int:
        """Problems at the current level never drawn yet: fresh material left for the curriculum."""
        return int(((self.difficulty == self.level) & np.isnan(self.pass_rate)).sum())

    def update(self, indices: list[int], pass_rates: list[float]) -> None:
        """Record group pass rates; promote to the next level once the current one is mostly solved."""
        self.pass_rate[np.asarray(indices)] = np.asarray(pass_rates, dtype=float)
        for i, rate in zip(indices, pass_rates):
            counts = self.family_groups.setdefault(str(self.family[i]), [0, 0])
            counts[0] += int(0.0 < rate < 1.0)
            counts[1] += 1
        self.recent.extend(rate for i, rate in zip(indices, pass_rates) if self.difficulty[i] == self.level)
        higher = [level for level in self.levels if level > self.level]
        if higher and len(self.recent) == self.recent.maxlen and np.mean(self.recent) >= self.promote_at:
            self.level = higher[0]
            self.recent.clear()
            self._order = []  # plain epochs restart over the widened pool

    def family_signal(self, indices: np.ndarray) -> np.ndarray:
        """Smoothed share of informative groups of each problem's family (1/2 for a family not yet seen),
        raised to ``family_power``."""
        def signal(family: str) -> float:
            informative, groups = self.family_groups.get(family, (0, 0))
            return ((informative + 1) / (groups + 2)) ** self.family_power
        by_family = {family: signal(family) for family in set(self.family[indices].tolist())}
        return np.array([by_family[family] for family in self.family[indices].tolist()], dtype=float)

    def state_dict(self) -> dict:
        """Everything :meth:`next_batch` depends on besides the problems: a resumed run draws what this one would."""
        return {"rng": self.rng.bit_generator.state, "pass_rate": self.pass_rate.tolist(), "level": int(self.level),
                "recent": list(self.recent), "order": list(self._order),
                "family_groups": {family: list(counts) for family, counts in self.family_groups.items()}}

    def load_state_dict(self, state: dict) -> None:
        if len(state["pass_rate"]) != len(self.problems):
            raise ValueError(f"picker state is for {len(state['pass_rate'])} problems, not {len(self.problems)}")
        self.rng.bit_generator.state = state["rng"]
        self.pass_rate = np.asarray(state["pass_rate"], dtype=float)
        self.level = state["level"]
        self.recent = deque(state["recent"], maxlen=self.recent.maxlen)
        self._order = list(state["order"])
        self.family_groups = {family: list(counts) for family, counts in state.get("family_groups", {}).items()}

    def in_band_fraction(self) -> float:
        """Share of seen problems inside the useful band: a curriculum health metric."""
        seen = ~np.isnan(self.pass_rate)
        if not seen.any():
            return float("nan")
        rate = self.pass_rate[seen]
        return float(((rate >= self.low) & (rate <= self.high)).mean())
