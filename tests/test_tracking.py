"""The tracker's own promises about what lands in the mlflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from rlmath.config import load_config
from rlmath.run import truncate_logs
from rlmath.tracking import Tracker, tracking_uri

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_shorter_than_the_sampling_interval_still_has_system_metrics(tmp_path: Path) -> None:
    """mlflow's monitor drops a window it is stopped in; a 3 s CI run once ended with no system/* at all."""
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path / 'runs'}"])
    run_dir = tmp_path / "runs" / "short"
    run_dir.mkdir(parents=True)
    tracker = Tracker(config, run_dir, kind="train")
    tracker.finish()

    metrics = mlflow.MlflowClient(tracking_uri(config)).get_run(tracker.run_id).data.metrics
    assert any(key.startswith("system/cpu_utilization_percentage") for key in metrics), sorted(metrics)
    assert any(key.startswith("system/system_memory_usage") for key in metrics), sorted(metrics)


def test_a_resume_behind_what_mlflow_already_holds_sends_each_step_once(tmp_path: Path) -> None:
    """A finished run (every row pushed) resumed from an earlier checkpoint, its redone rows written with
    other values (other byte lengths): the synced offset used to stay past the cut and point into the
    middle of a new row (JSONDecodeError on push), and the redone steps would have reached mlflow twice."""
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path / 'runs'}"])
    run_dir = tmp_path / "runs" / "resumed"
    run_dir.mkdir(parents=True)
    tracker = Tracker(config, run_dir, kind="train")
    tracker.defer_metrics()
    tracker.log_metrics({"loss": 1.0}, 1)
    checkpoint = {"metrics": tracker.metrics_offset(), "samples": tracker.samples_offset()}
    tracker.push_metrics()
    tracker.log_metrics({"loss": 0.123456789, "eval/accuracy": 0.25}, 2)
    tracker.finish()  # pushes step 2: mlflow now holds rows past the checkpoint
    run_id = tracker.run_id

    truncate_logs(run_dir, checkpoint)
    resumed = Tracker(config, run_dir, kind="train", resume_run_id=run_id)
    resumed.defer_metrics()
    resumed.log_metrics({"loss": 0.5, "eval/accuracy": 0.3, "new/key": 7.0}, 2)
    resumed.log_metrics({"loss": 0.25}, 3)
    resumed.push_metrics()
    resumed.finish()

    client = mlflow.MlflowClient(tracking_uri(config))
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")] == [(1, 1.0), (2, 0.123456789),
                                                                                       (3, 0.25)]
    assert [m.step for m in client.get_metric_history(run_id, "eval/accuracy")] == [2]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "new/key")] == [(2, 7.0)]
