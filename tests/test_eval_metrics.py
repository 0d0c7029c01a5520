"""pass@k, maj@k and bootstrap CIs against hand-computed values; evaluate() on scripted completions."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from rlmath.config import load_config
from rlmath.data import Problem
from rlmath.eval_report import Stage, stage_summary
from rlmath.eval_stats import bootstrap_ci, majority_correct, paired_bootstrap, parse_ks, pass_at_k
from rlmath.evaluation import evaluate
from rlmath.sampling import Completion

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("n, c, k, expected", [
    (1, 0, 1, 0.0), (1, 1, 1, 1.0),
    (4, 1, 1, 1 / 4), (4, 1, 2, 1 - 3 / 6),         # 1 - C(3,2)/C(4,2)
    (5, 2, 2, 1 - 3 / 10),                            # 1 - C(3,2)/C(5,2)
    (8, 3, 4, 1 - 5 / 70),                            # 1 - C(5,4)/C(8,4)
    (10, 1, 10, 1.0), (10, 0, 5, 0.0), (3, 3, 2, 1.0),
    (200, 20, 1, 0.1),                                # pass@1 is the plain sample mean
])
def test_pass_at_k_matches_binomial_formula(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected)
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_rejects_impossible_counts() -> None:
    for n, c, k in [(4, 5, 1), (4, 1, 5), (4, 1, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


@pytest.mark.parametrize("answers, correct, expected", [
    (["4", "4", "5"], [True, True, False], True),
    (["5", "5", "4"], [False, False, True], False),     # the right answer is a minority
    (["4", "5"], [True, False], True),                   # tie: first seen wins
    (["5", "4"], [False, True], False),
    ([None, None, "4"], [False, False, True], True),     # no-answer samples do not vote
    ([None, None], [False, False], False),
])
def test_majority_vote(answers, correct, expected) -> None:
    assert majority_correct(answers, correct) is expected


def test_bootstrap_ci_on_a_fair_coin_matches_the_normal_interval() -> None:
    values = [1.0, 0.0] * 200  # mean 0.5, n=400: normal 95% half-width 1.96*0.5/sqrt(400) = 0.049
    low, high = bootstrap_ci(values, resamples=4000)
    assert low == pytest.approx(0.5 - 0.049, abs=0.01) and high == pytest.approx(0.5 + 0.049, abs=0.01)


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(200):
        sample = (rng.random(100) < 0.3).astype(float)
        low, high = bootstrap_ci(sample, resamples=500, seed=trial)
        hits += low <= 0.3 <= high
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_is_seeded_and_degenerate_cases_are_explicit() -> None:
    assert bootstrap_ci([0.0, 1.0, 1.0], seed=3) == bootstrap_ci([0.0, 1.0, 1.0], seed=3)
    assert bootstrap_ci([0.0] * 5) == (0.0, 0.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_paired_bootstrap_is_tighter_than_unpaired_when_items_correlate() -> None:
    rng = np.random.default_rng(0)
    easy = (rng.random(300) < 0.5).astype(float)
    base = easy.copy()
    adapter = easy.copy()
    adapter[np.flatnonzero(easy == 0)[:30]] = 1.0  # the adapter fixes 30 items, breaks none: +0.1
    diff = paired_bootstrap(base, adapter)
    assert diff["mean"] == pytest.approx(0.1)
    assert 0.06 < diff["ci_low"] < 0.1 < diff["ci_high"] < 0.14
    assert diff["p_le_zero"] == 0.0
    unpaired = np.subtract(bootstrap_ci(adapter, seed=1), bootstrap_ci(base, seed=2)[::-1])
    assert unpaired[1] - unpaired[0] > 2 * (diff["ci_high"] - diff["ci_low"])
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_parse_ks() -> None:
    assert parse_ks("1,4,8") == [1, 4, 8]
    for bad in ("0,4", "a", ""):
        with pytest.raises(ValueError):
            parse_ks(bad)


class ScriptedSampler:
    """Returns fixed completion texts: greedy gets ``greedy[i]``, sampling gets ``samples[i]``."""

    def __init__(self, greedy: list[str], samples: list[list[str]]) -> None:
        self.greedy, self.samples = greedy, samples

    def generate(self, prompts, request, adapter):
        texts = [[g] for g in self.greedy] if request.temperature == 0.0 else self.samples
        assert len(texts) == len(prompts) and all(len(t) == request.n for t in texts)
        return [[Completion(t, [1] * (len(t.split()) or 1), [0.0], "stop") for t in group] for group in texts]


def test_evaluate_computes_pass_at_k_and_maj_at_k_from_verifier_verdicts() -> None:
    config = load_config(ROOT / "configs/smoke.yaml", ["tracking.mlflow=false"])
    problems = [Problem("0", "1+1?", "2", family="add", difficulty=1),
                Problem("1", "2*3?", "6", family="mul", difficulty=2)]
    greedy = ["\\boxed{2}", "\\boxed{5}"]
    samples = [["\\boxed{3}", "\\boxed{2}", "\\boxed{3}", "no idea"],   # c=1 of 4; first-2 vote: 3 (wrong)
               ["\\boxed{6}", "\\boxed{6.0}", "\\boxed{1}", "\\boxed{6}"]]  # c=3 of 4; first-2 vote: 6 (right)
    result = evaluate(ScriptedSampler(greedy, samples), lambda qs: [[1, 2]] * len(qs), problems, config, None,
                      ks=[1, 2, 4])
    assert result.accuracy == 0.5 and result.by_family == {"add": 1.0, "mul": 0.0}
    assert result.by_category["level"] == {"1": 1.0, "2": 0.0}
    assert result.pass_at_k["pass@1"] == pytest.approx((1 / 4 + 3 / 4) / 2)
    assert result.pass_at_k["pass@2"] == pytest.approx(((1 - 3 / 6) + 1.0) / 2)  # 1 - C(3,2)/C(4,2); n-c=1 < k
    assert result.pass_at_k["pass@4"] == 1.0
    assert result.maj_at_k["maj@2"] == 0.5  # problem 0: 3 vs 2, tie -> first seen (3) wrong; problem 1 right
    assert result.maj_at_k["maj@4"] == 0.5  # problem 0: "3" wins 2-1; problem 1: "6" (6 and 6.0 agree) wins
    assert result.status_counts["correct"] == 1 and result.status_counts["wrong"] == 1
    assert len(result.rows) == 2 and len(result.sample_rows) == 8
    assert {"prompt", "completion", "extracted", "gold", "correct", "status"} <= set(result.rows[0])
    summary = stage_summary(Stage("base", None, result), resamples=200, seed=0)
    assert set(summary["ci"]) == {"accuracy", "pass@1", "pass@2", "pass@4", "maj@2", "maj@4"}
    assert summary["by_category"]["level"]["2"] == {"accuracy": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 1}
    names = result.metrics("eval/final")
    assert "eval/final/pass_at_4" in names and "eval/final/maj_at_2_ci_low" in names
    assert all(re.fullmatch(r"[/\w.\- :]*", name) for name in names), "mlflow rejects other characters"


def test_greedy_only_eval_samples_nothing() -> None:
    config = load_config(ROOT / "configs/smoke.yaml", ["tracking.mlflow=false"])
    problems = [Problem("0", "1+1?", "2")]
    result = evaluate(ScriptedSampler(["\\boxed{2}"], []), lambda qs: [[1]] * len(qs), problems, config, None)
    assert result.pass_at_k == {"pass@1": 1.0} and result.maj_at_k == {} and not result.sample_rows
