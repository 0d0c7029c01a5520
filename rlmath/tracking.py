"""Where a run's record goes: its own folder (always) and mlflow (unless ``tracking.mlflow: false``).

The run folder is the source of truth a user can grep (``config.yaml``, ``metrics.jsonl``,
``samples.jsonl``); mlflow mirrors it for the UI. The store defaults to a sqlite file under
``output_dir`` with artifacts beside it, and ``MLFLOW_TRACKING_URI`` or ``tracking.tracking_uri``
(an ``http://`` server, say) takes over when set.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from rlmath.config import Config, dump_config, flat_params


def tracking_uri(config: Config) -> str:
    """Explicit config beats the environment beats the local sqlite default."""
    if config.tracking.tracking_uri:
        return config.tracking.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(config.output_dir).resolve() / 'mlflow.db')}"


def new_run_dir(config: Config, kind: str) -> Path:
    """``runs/<name or kind-timestamp>``; a second run with the same name gets a numbered suffix."""
    base = Path(config.output_dir) / (config.run_name or f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, index = base, 1
    while path.exists():
        index += 1
        path = base.with_name(f"{base.name}-{index}")
    path.mkdir(parents=True)
    return path


# mlflow 3's UI opens experiments without this tag on its GenAI (traces) pages; a training experiment
# should open on its runs, where the charts, tables and the reasoning-gains plot are.
_KIND_TAG = "mlflow.experimentKind"
_EXPERIMENT_TAGS = {_KIND_TAG: "custom_model_development"}


class Tracker:
    """One run: files in ``run_dir`` plus the mirrored mlflow run (optionally nested)."""

    def __init__(self, config: Config, run_dir: Path, *, kind: str = "train", parent_run_id: str | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self.run_id: str | None = None
        (run_dir / "config.yaml").write_text(dump_config(config))
        self._metrics = (run_dir / "metrics.jsonl").open("a")
        self._samples = (run_dir / "samples.jsonl").open("a")
        if config.tracking.mlflow:
            self._start_mlflow(kind, parent_run_id)

    @property
    def client(self):
        """The ``MlflowClient`` of this run's store, for callers that go beyond logging (the registry)."""
        return self._client

    def _start_mlflow(self, kind: str, parent_run_id: str | None) -> None:
        import mlflow

        self.uri = tracking_uri(self.config)
        mlflow.set_tracking_uri(self.uri)
        self._client = mlflow.MlflowClient(self.uri)
        experiment = mlflow.get_experiment_by_name(self.config.tracking.experiment)
        if experiment is None:
            artifacts = None
            if self.uri.startswith("sqlite:"):  # keep artifacts beside the store, not in the cwd
                artifacts = (Path(self.config.output_dir).resolve() / "mlartifacts").as_uri()
            experiment_id = mlflow.create_experiment(self.config.tracking.experiment, artifact_location=artifacts,
                                                     tags=_EXPERIMENT_TAGS)
        else:
            experiment_id = experiment.experiment_id
            if _KIND_TAG not in experiment.tags:  # made by an older rlmath or by hand
                self._client.set_experiment_tag(experiment_id, _KIND_TAG, _EXPERIMENT_TAGS[_KIND_TAG])
        tags = {"rlmath.kind": kind, "rlmath.run_dir": str(self.run_dir.resolve())}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self._client.create_run(experiment_id, run_name=self.run_dir.name, tags=tags)
        self.run_id = run.info.run_id
        params = flat_params(self.config)
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[start:start + 100])
        (self.run_dir / "mlflow_run_id").write_text(self.run_id)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Append to metrics.jsonl and mlflow; non-finite values stay in the file as null."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        self._metrics.write(json.dumps({"step": step, **{k: (v if math.isfinite(v) else None) for k, v in clean.items()}}) + "\n")
        self._metrics.flush()
        if self.run_id:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            batch = [Metric(k, v, now, step) for k, v in clean.items() if math.isfinite(v)]
            for start in range(0, len(batch), 500):
                self._client.log_batch(self.run_id, metrics=batch[start:start + 500])

    def log_samples(self, rows: list[dict[str, Any]], step: int) -> None:
        for row in rows:
            self._samples.write(json.dumps({"step": step, **row}) + "\n")
        self._samples.flush()

    def log_table(self, rows: list[dict[str, Any]], name: str) -> None:
        """A completion table in the mlflow UI's evaluation view (``mlflow.log_table``)."""
        if self.run_id and rows:
            columns = {key: [row.get(key) for row in rows] for key in rows[0]}
            self._client.log_table(self.run_id, columns, artifact_file=name)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if self.run_id:
            if path.is_dir():
                self._client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self._client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.run_id:
            for key, value in tags.items():
                self._client.set_tag(self.run_id, key, value)

    def finish(self, status: str = "FINISHED") -> None:
        self._metrics.close()
        self._samples.close()
        if self.run_id:
            self._client.set_terminated(self.run_id, status=status)
