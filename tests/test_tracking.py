"""The tracker's own promises about what lands in the mlflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from rlmath.config import load_config
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
