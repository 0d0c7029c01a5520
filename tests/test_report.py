"""eval.json v1 (rlmath.eval_report) and the run wrapper every recipe uses (rlmath.run.tracked_run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmath.config import load_config
from rlmath.errors import RLMathError
from rlmath.eval_report import (
    SCHEMA_VERSION,
    Stage,
    build_eval_report,
    compare,
    comparison_metrics,
    load_eval_report,
    write_eval_report,
)
from rlmath.evaluation import EvalResult
from rlmath.run import tracked_run
from rlmath.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]


def result(flags: dict[tuple[str, str], bool]) -> EvalResult:
    """An EvalResult over items (family, id) -> correct, as ``evaluate`` leaves it for greedy-only evals."""
    correct = [float(ok) for ok in flags.values()]
    accuracy = sum(correct) / len(correct)
    return EvalResult(accuracy=accuracy, ci_low=0.0, ci_high=1.0, total=len(correct), by_family={},
                      status_counts={"correct": int(sum(correct))}, mean_completion_tokens=1.0, tokens_per_s=1.0,
                      pass_at_k={"pass@1": accuracy}, ci={"accuracy": [0.0, 1.0], "pass@1": [0.0, 1.0]},
                      item_scores={"accuracy": correct, "pass@1": correct}, item_ids=[i for _, i in flags],
                      item_categories={"family": [f for f, _ in flags]})


BEFORE = {("add", "1"): False, ("add", "2"): False, ("mul", "1"): True, ("decimals", "1"): False}
AFTER = {("add", "1"): True, ("add", "2"): True, ("mul", "1"): True, ("decimals", "1"): True}


def test_compare_splits_trained_and_untrained_categories_and_pairs_items() -> None:
    shuffled = dict(reversed(list(AFTER.items())))  # same items, other order: pairing goes by (family, id)
    entry = compare(Stage("base", None, result(BEFORE)), Stage("final", "adapter", result(shuffled)),
                    category="family", trained=["add", "mul"], resamples=200, seed=0)
    assert (entry["from"], entry["to"]) == ("base", "final")
    trained, untrained, every = entry["groups"]["trained"], entry["groups"]["untrained"], entry["groups"]["all"]
    assert trained["n"] == 3 and trained["from"] == pytest.approx(1 / 3) and trained["to"] == 1.0
    assert trained["gain"] == pytest.approx(2 / 3)
    assert untrained == {"n": 1, "from": 0.0, "to": 1.0, "gain": 1.0, "gain_ci_low": 1.0, "gain_ci_high": 1.0}
    assert every["n"] == 4 and every["gain"] == pytest.approx(0.75)
    assert entry["by_category"]["add"]["gain"] == 1.0 and entry["by_category"]["mul"]["gain"] == 0.0
    assert entry["metrics"]["accuracy"]["mean"] == pytest.approx(0.75) and entry["metrics"]["pass@1"]["n"] == 4


def test_train_report_has_every_stage_and_flat_mlflow_names(tmp_path: Path) -> None:
    middle = dict(BEFORE) | {("add", "1"): True}
    stages = [Stage("base", None, result(BEFORE)), Stage("sft", "adapter_sft", result(middle)),
              Stage("final", "adapter", result(AFTER))]
    report = build_eval_report(kind="train", dataset="config:synth", category="family", trained_categories=["add"],
                               stages=stages, comparisons=[("base", "sft"), ("sft", "final"), ("base", "final")],
                               meta={"run_dir": str(tmp_path)}, resamples=200, seed=0)
    assert report["schema_version"] == SCHEMA_VERSION and report["items"] == 4
    assert report["stages"][1]["by_category"]["family"]["add"] == {"accuracy": 0.5, "ci_low": 0.0, "ci_high": 1.0,
                                                                  "n": 2}
    assert [c["groups"]["trained"]["gain"] for c in report["comparisons"]] == [0.5, 0.5, 1.0]
    flat = comparison_metrics(report)
    assert flat["compare/sft_to_final/untrained/gain"] == pytest.approx(0.5)  # mul stays right, decimals flips
    assert "compare/base_to_final/metric/pass_at_1_ci_low" in flat
    path = write_eval_report(report, tmp_path / "eval.json")
    assert load_eval_report(tmp_path) == json.loads(path.read_text())


def test_load_eval_report_rejects_other_schemas_with_the_file_named(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"before": {}, "after": {}, "gains": {}}))
    with pytest.raises(RLMathError, match=r"old\.json: schema_version None, expected 1"):
        load_eval_report(old)
    with pytest.raises(RLMathError, match="no eval.json"):
        load_eval_report(tmp_path / "missing")


class ClosingSampler:
    closed = False

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("error, status", [(RLMathError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_tracked_run_marks_the_mlflow_run_and_always_closes_the_sampler(tmp_path: Path, error, status) -> None:
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker, sampler = Tracker(config, run_dir), ClosingSampler()
    with pytest.raises(type(error)), tracked_run(tracker, sampler):
        raise error
    assert sampler.closed
    assert tracker.client.get_run(tracker.run_id).info.status == status
    (tmp_path / "ok").mkdir()
    done, sampler = Tracker(config, tmp_path / "ok"), ClosingSampler()
    with tracked_run(done, sampler):
        done.finish()
    assert sampler.closed and done.client.get_run(done.run_id).info.status == "FINISHED"
