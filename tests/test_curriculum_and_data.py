"""Problem picking, data splits, and seed reproducibility of the first training step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlmath.config import ConfigError, load_config
from rlmath.curriculum import ProblemPicker
from rlmath.data import Problem, load_problems
from rlmath.errors import RLMathError
from rlmath.sources import Fields, rows_to_problems

ROOT = Path(__file__).resolve().parents[1]


def problems(count: int) -> list[Problem]:
    return [Problem(id=str(i), question=f"q{i}", answer=str(i)) for i in range(count)]


def test_plain_picker_visits_every_problem_once_per_epoch() -> None:
    picker = ProblemPicker(problems(10), seed=0, curriculum=False)
    seen = picker.next_batch(4) + picker.next_batch(4) + picker.next_batch(2)
    assert sorted(seen) == list(range(10))


def test_curriculum_prefers_problems_inside_the_pass_rate_band() -> None:
    picker = ProblemPicker(problems(100), seed=0, curriculum=True, off_weight=0.01)
    picker.update(list(range(50)), [1.0] * 50)  # mastered
    picker.update(list(range(50, 100)), [0.5] * 50)  # learnable
    drawn = np.concatenate([picker.next_batch(10) for _ in range(50)])
    assert (drawn >= 50).mean() > 0.9
    assert picker.in_band_fraction() == pytest.approx(0.5)


def leveled(per_level: int, levels: range) -> list[Problem]:
    return [Problem(id=f"{level}-{i}", question=f"q{level}-{i}", answer=str(i), difficulty=level)
            for level in levels for i in range(per_level)]


@pytest.mark.parametrize("curriculum", [True, False])
def test_escalation_draws_only_up_to_the_current_level(curriculum: bool) -> None:
    pool = leveled(20, range(1, 4))
    picker = ProblemPicker(pool, seed=0, curriculum=curriculum, promote_window=8)
    drawn = [pool[i].difficulty for _ in range(10) for i in picker.next_batch(8)]
    assert set(drawn) == {1}


def test_escalation_promotes_once_the_level_is_mostly_solved_and_keeps_rehearsing() -> None:
    pool = leveled(20, range(1, 4))
    picker = ProblemPicker(pool, seed=0, curriculum=True, promote_at=0.8, promote_window=8)
    batch = picker.next_batch(8)
    picker.update(batch, [0.5] * 8)  # learnable, not mastered: stay
    assert picker.level == 1
    batch = picker.next_batch(8)
    picker.update(batch, [1.0] * 8)  # the last 8 groups at level 1 average 1.0
    assert picker.level == 2
    drawn = np.array([pool[i].difficulty for _ in range(50) for i in picker.next_batch(8)])
    assert set(drawn.tolist()) == {1, 2}
    assert (drawn == 2).mean() > 0.7  # the new level dominates; level 1 is rehearsed at off_weight


def test_escalation_stops_at_the_top_level_and_config_rejects_an_inverted_range() -> None:
    picker = ProblemPicker(leveled(10, range(1, 3)), seed=0, curriculum=True, promote_window=4)
    for _ in range(5):
        batch = picker.next_batch(4)
        picker.update(batch, [1.0] * 4)
    assert picker.level == 2
    with pytest.raises(ConfigError, match="data: .*max_difficulty"):
        load_config(ROOT / "configs/default.yaml", ["data.difficulty=3", "data.max_difficulty=2"])


def test_escalating_config_trains_on_every_level_and_evaluates_on_the_first() -> None:
    config = load_config(ROOT / "configs/default.yaml", ["data.train_size=300", "data.eval_size=20",
                                                         "data.max_difficulty=3"])
    assert {p.difficulty for p in load_problems(config, "train")} == {1, 2, 3}
    assert {p.difficulty for p in load_problems(config, "eval")} == {1}


def test_eval_split_never_shares_a_question_with_train_and_is_balanced() -> None:
    config = load_config(ROOT / "configs/default.yaml", ["data.train_size=500", "data.eval_size=40"])
    train, held_out = load_problems(config, "train"), load_problems(config, "eval")
    assert len(train) == 500
    assert not {p.question for p in train} & {p.question for p in held_out}
    families = config.data.families + config.data.eval_families
    counts = {name: sum(p.family == name for p in held_out) for name in families}
    assert len(set(counts.values())) == 1 and min(counts.values()) > 0, counts


def test_synthetic_splits_repeat_no_question_and_share_none() -> None:
    """Small families repeat themselves; a split must not (compared case- and space-insensitively)."""
    config = load_config(ROOT / "configs/default.yaml", ["data.train_size=300", "data.eval_size=30",
                                                         "data.families=[pythagoras,probability,counting]",
                                                         "data.max_difficulty=3"])
    train, held_out = load_problems(config, "train"), load_problems(config, "eval")
    norm = [[" ".join(p.question.lower().split()) for p in side] for side in (train, held_out)]
    assert len(train) == 300 and len(held_out) >= 30  # 10 per family, eval-only families included
    assert all(len(set(side)) == len(side) for side in norm)
    assert not set(norm[0]) & set(norm[1])


def test_same_seed_gives_the_same_problems() -> None:
    config = load_config(ROOT / "configs/smoke.yaml")
    assert load_problems(config, "train") == load_problems(config, "train")


def test_dataset_rows_name_the_missing_field() -> None:
    with pytest.raises(RLMathError, match="'problem'"):
        rows_to_problems([{"question": "1+1", "answer": "2"}], Fields("problem", "answer"), "data.jsonl")


def test_local_jsonl_dataset_source(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"question": f"{i}+1?", "answer": str(i + 1)}) for i in range(12)))
    config = load_config(None, ["data.source=dataset", f"data.path={path}", "data.eval_size=2"])
    assert [p.answer for p in load_problems(config, "eval")] == ["11", "12"]
    assert len(load_problems(config, "train")) == 10


def test_first_step_is_reproducible_from_the_seed(tmp_path: Path, monkeypatch) -> None:
    """Same seed, same first-step metrics, whether or not the model cache is warm.

    Run "a" starts from an empty ``RLMATH_CACHE`` (it converts the embedded GGUF and builds the tiny
    model, as on a fresh machine); run "b" finds both in the cache. HF backend: deterministic on CPU.
    """
    from rich.console import Console

    from rlmath.loop import run_training

    monkeypatch.setenv("RLMATH_CACHE", str(tmp_path / "empty-cache"))
    firsts = []
    for name in ("a", "b"):
        config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}", f"run_name={name}",
                                                           "sampling.backend=hf", "grpo.steps=1",
                                                           "tracking.mlflow=false"])
        run_dir = run_training(config, Console(quiet=True))
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        step = next(r for r in rows if r["step"] == 1 and "reward/mean" in r)
        samples = (run_dir / "samples.jsonl").read_text()
        firsts.append(({k: v for k, v in step.items() if not k.startswith(("time/", "throughput/", "system/"))}, samples))
    assert firsts[0] == firsts[1]


def test_unseen_problems_are_not_in_band_and_the_band_is_revisited() -> None:
    """Half of each batch revisits problems measured inside the band; unseen ones fill the rest."""
    picker = ProblemPicker(problems(200), seed=0, curriculum=True, revisit=0.5)
    picker.update(list(range(10)), [0.5] * 10)  # measured, learnable
    picker.update(list(range(10, 50)), [1.0] * 40)  # measured, mastered
    draws = [picker.next_batch(8) for _ in range(40)]
    band_share = np.mean([np.mean([i < 10 for i in batch]) for batch in draws])
    assert band_share >= 0.45  # uniform over band + unseen would give 10/160
    assert np.mean([10 <= i < 50 for batch in draws for i in batch]) < 0.02  # mastered: left alone
    assert picker.last_batch_in_band == pytest.approx(0.5)
    assert picker.in_band_fraction() == pytest.approx(10 / 50)  # over measured problems only


def test_curriculum_training_revisits_problems_so_pass_rates_exist() -> None:
    """Simulated training: problems with a middling pass rate keep coming back."""
    picker = ProblemPicker(problems(2000), seed=0, curriculum=True)
    skill = np.random.default_rng(1).uniform(0, 1, 2000)
    counts = np.zeros(2000)
    for _ in range(24):
        batch = picker.next_batch(16)
        counts[batch] += 1
        picker.update(batch, [round(float(skill[i]) * 8) / 8 for i in batch])
    revisited = counts >= 2
    assert revisited.sum() >= 30
    assert np.all((skill[revisited] >= 0.15) & (skill[revisited] <= 0.85))


def test_unseen_problems_are_drawn_from_families_whose_groups_carry_signal() -> None:
    """After a warm start one family is solved in every sample and another in none: a fresh problem of
    either gives a zero-advantage group, so fresh draws go to the family whose groups are mixed."""
    pool = [Problem(id=f"{family}{i}", question=f"{family} q{i}", answer=str(i), family=family)
            for family in ("solved", "mixed", "hopeless") for i in range(300)]
    picker = ProblemPicker(pool, seed=0, curriculum=True, revisit=0.0)
    seen = {"solved": 1.0, "mixed": 0.5, "hopeless": 0.0}
    for _ in range(6):  # measure every family: each drawn problem gets its family's pass rate
        batch = picker.next_batch(30)
        picker.update(batch, [seen[pool[i].family] for i in batch])
    drawn = [pool[i].family for _ in range(10) for i in picker.next_batch(30)]
    assert drawn.count("mixed") / len(drawn) > 0.8  # uniform over unseen problems would give 1/3
    restored = ProblemPicker(pool, seed=0, curriculum=True)
    restored.load_state_dict(picker.state_dict())
    assert restored.family_groups == picker.family_groups


@pytest.mark.parametrize("power", [0.0, 1.0, 3.0])
def test_family_power_sets_how_hard_fresh_draws_lean_on_the_families_with_signal(power: float) -> None:
    """Two families, one informative in 3 of 4 groups, one in 1 of 4: the draws split by the share's power
    (smoothed shares 2/3 and 1/3: at power 0 half each, at 1 two to one, at 3 eight to one)."""
    pool = [Problem(id=f"{family}{i}", question=f"{family} q{i}", answer=str(i), family=family)
            for family in ("often", "rarely") for i in range(2000)]
    picker = ProblemPicker(pool, seed=0, curriculum=True, revisit=0.0, family_power=power)
    picker.family_groups = {"often": [3, 4], "rarely": [1, 4]}
    drawn = [pool[i].family for _ in range(20) for i in picker.next_batch(50)]
    expected = (2 / 3) ** power / ((2 / 3) ** power + (1 / 3) ** power)
    assert drawn.count("often") / len(drawn) == pytest.approx(expected, abs=0.05)


def test_running_out_of_fresh_problems_warns_once_and_is_counted(caplog) -> None:
    """With revisit 0 ("fresh problems only") a pool smaller than the run's draws silently repeats seen
    problems once it runs out; the picker counts what is left and says so the first time."""
    picker = ProblemPicker(leveled(20, range(1, 2)), seed=0, curriculum=True, revisit=0.0)
    first = []
    for _ in range(2):
        batch = picker.next_batch(8)
        picker.update(batch, [0.5] * 8)
        first += batch
    assert picker.unseen_left() == 4
    assert not [r for r in caplog.records if "data.train_size" in r.getMessage()]
    third = picker.next_batch(8)
    assert set(range(20)) - set(first) <= set(third)  # the last 4 unseen come first
    picker.update(third, [0.5] * 8)
    picker.next_batch(8)
    warnings = [r for r in caplog.records if "data.train_size" in r.getMessage()]
    assert len(warnings) == 1 and "all 20 level-1" in warnings[0].getMessage()
    assert picker.unseen_left() == 0


def test_default_config_has_a_fresh_problem_for_every_grpo_draw() -> None:
    """The default ships fresh problems only (revisit 0): its level-1 pool must outlast the GRPO stage.
    With 2000 problems (983 at level 1) against 28 steps x 64 prompts, steps 16-28 re-drew seen problems."""
    config = load_config(ROOT / "configs" / "default.yaml")
    assert config.data.curriculum and config.data.curriculum_revisit == 0.0
    level_one = [p for p in load_problems(config, "train") if p.difficulty == config.data.difficulty]
    assert len(level_one) >= config.grpo.steps * config.grpo.prompts_per_step
