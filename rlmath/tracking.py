"""Where a run's record goes: its own folder (always) and mlflow (unless ``tracking.mlflow: false``).

The run folder is the source of truth a user can grep (``config.yaml``, ``metrics.jsonl``,
``samples.jsonl``); mlflow mirrors it for the UI. The store defaults to a sqlite file under
``output_dir`` with artifacts beside it, and ``MLFLOW_TRACKING_URI`` or ``tracking.tracking_uri``
(an ``http://`` server, say) takes over when set.

What an ML engineer expects to find in mlflow 3, and where it comes from here:

- the experiment opens on the model-training pages (the ``mlflow.experimentKind`` tag), not GenAI;
- every saved adapter is a *logged model* (:meth:`Tracker.log_adapter_model`) with its step and
  the eval metrics linked to it, so "Logged models" lists SFT, final and checkpoints;
- training data and eval set are dataset inputs (:meth:`Tracker.log_dataset`): name, digest, source, size;
- training runs record system metrics (CPU, memory, GPU where present), their source and git commit.

Everything crossing this boundary passes :mod:`rlmath.redact`, so environment secrets never land in
the run folder or the store.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlmath.config import Config, dump_config, flat_params
from rlmath.errors import RLMathError
from rlmath.redact import install_logging_filter, redact, redact_value


def tracking_uri(config: Config) -> str:
    """Explicit config beats the environment beats the local sqlite default."""
    if config.tracking.tracking_uri:
        return config.tracking.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(config.output_dir).resolve() / 'mlflow.db')}"


def resumable_uri(saved: str | None, config: Config) -> str:
    """The store a resumed run reopens: the one its checkpoint names (kept redacted, as every file of a run).

    A name whose secrets were masked is this process's own store when it masks the same way; otherwise it
    is returned as it is and reopening it fails with an error that names it.

    >>> from rlmath.config import Config
    >>> resumable_uri("sqlite:///elsewhere/mlflow.db", Config())
    'sqlite:///elsewhere/mlflow.db'
    """
    current = tracking_uri(config)
    return current if saved is None or saved == redact(current) else saved


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
# Seconds between system-metric samples: a smoke run lasts under a minute, a real one hours.
_SYSTEM_METRICS_INTERVAL = 5.0


def source_tags() -> dict[str, str]:
    """The run's source (entry point) and the git commit of the rlmath checkout, as mlflow tags."""
    import sys

    from mlflow.utils.git_utils import get_git_commit, get_git_repo_url
    from mlflow.utils.mlflow_tags import (
        MLFLOW_GIT_COMMIT,
        MLFLOW_GIT_REPO_URL,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
    )

    package_dir = str(Path(__file__).resolve().parent)
    script = Path(sys.argv[0]).name
    script = "rlmath" if script in ("rlmath", "cli.py", "__main__.py") else script
    entry = " ".join([script, *sys.argv[1:2]])  # "rlmath train", "rlmath eval", "pytest tests/..."
    tags = {MLFLOW_SOURCE_NAME: entry, MLFLOW_SOURCE_TYPE: "LOCAL"}
    commit = get_git_commit(package_dir)
    if commit:
        tags[MLFLOW_GIT_COMMIT] = commit
        url = get_git_repo_url(package_dir)
        if url:
            tags[MLFLOW_GIT_REPO_URL] = url
    return tags


def _dataset_source(source: str | dict[str, Any]):
    """An mlflow DatasetSource: code-generated (a dict of generator settings), a local path, or a hub id."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    if isinstance(source, dict):
        return CodeDatasetSource(tags={key: redact(str(value)) for key, value in source.items()})
    path = Path(source).expanduser()
    if path.exists():
        return str(path.resolve())  # mlflow resolves local paths to a LocalArtifactDatasetSource
    return HuggingFaceDatasetSource(path=redact(source))


def _dataset_inputs(run) -> dict[str, tuple[str, str]]:
    """context -> (name, digest) of a run's logged dataset inputs: what :meth:`Tracker.log_dataset` returned."""
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    found = {}
    for item in run.inputs.dataset_inputs if run.inputs else []:
        context = next((tag.value for tag in item.tags if tag.key == MLFLOW_DATASET_CONTEXT), None)
        if context:
            found[context] = (item.dataset.name, item.dataset.digest)
    return found


@contextmanager
def store_lock(uri: str):
    """Serialise store creation and experiment lookup between processes sharing one local sqlite store.

    Two runs started at once on a fresh store would otherwise both create its tables ("duplicate column
    name: step"), or both create the experiment, and one of them would fail.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


SYNCED = ".mlflow_synced"
"""Byte offset of metrics.jsonl up to which mlflow holds the rows (runs that defer mlflow metrics)."""
SENT_STEPS = ".mlflow_sent_steps.json"
"""Per metric, the last step mlflow holds from rows a resume cut out of metrics.jsonl (see :func:`rewind_synced`)."""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_sent_steps(run_dir: Path) -> dict[str, int]:
    path = run_dir / SENT_STEPS
    return json.loads(path.read_text()) if path.exists() else {}


def _unsent(step: int, row: dict[str, Any], sent: dict[str, int]) -> tuple[int, dict[str, Any]]:
    """The row without the metrics mlflow already holds at this step."""
    return step, {key: value for key, value in row.items() if key not in sent or step > sent[key]}


def rewind_synced(run_dir: Path, offset: int) -> None:
    """Before a resume cuts metrics.jsonl back to ``offset``: move the synced offset back with it.

    mlflow may already hold rows past the checkpoint (pushed by :meth:`Tracker.send_live` for the final
    evaluation, or a finished run resumed from an earlier checkpoint). Left alone, the offset would point
    past the cut, into whatever the resumed run writes there. Each metric's last step among those rows is
    kept in ``SENT_STEPS``, so the redone steps are not sent twice (mlflow cannot delete a point). The
    steps file is written first: a crash between the two writes leaves a rewind that is simply redone.
    """
    synced_path = run_dir / SYNCED
    synced = int(synced_path.read_text()) if synced_path.exists() else 0
    if synced <= offset:
        return
    with open(run_dir / "metrics.jsonl", "rb") as handle:
        handle.seek(offset)
        lines = handle.read(synced - offset).decode().splitlines()
    sent = _read_sent_steps(run_dir)
    for row in (json.loads(line) for line in lines if line.strip()):
        step = row.pop("step")
        for key in row:
            sent[key] = max(step, sent.get(key, step))
    _write_atomic(run_dir / SENT_STEPS, json.dumps(sent))
    _write_atomic(synced_path, str(offset))


class Tracker:
    """One run: files in ``run_dir`` plus the mirrored mlflow run (optionally nested).

    ``resume_run_id`` reopens that mlflow run (status back to RUNNING, params not logged again) and
    appends to the run folder's files instead of starting a new run.
    """

    def __init__(self, config: Config, run_dir: Path, *, kind: str = "train", parent_run_id: str | None = None,
                 resume_run_id: str | None = None, resume_uri: str | None = None) -> None:
        install_logging_filter()
        self.config = config
        self.run_dir = run_dir
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.datasets: dict[str, tuple[str, str]] = {}  # context -> (name, digest) of logged dataset inputs
        self._monitor = None
        self.deferred = False
        if resume_run_id is None:
            (run_dir / "config.yaml").write_text(redact(dump_config(config)))
        self._metrics = (run_dir / "metrics.jsonl").open("a")
        self._samples = (run_dir / "samples.jsonl").open("a")
        if config.tracking.mlflow and resume_run_id:
            self._reopen_mlflow(resume_run_id, resumable_uri(resume_uri, config))
        elif config.tracking.mlflow:
            self._start_mlflow(kind, parent_run_id)

    @property
    def client(self):
        """The ``MlflowClient`` of this run's store, for callers that go beyond logging (the registry)."""
        return self._client

    def _start_mlflow(self, kind: str, parent_run_id: str | None) -> None:
        import mlflow

        self.uri = tracking_uri(self.config)
        mlflow.set_tracking_uri(self.uri)
        with store_lock(self.uri):  # the first client of a fresh store creates its tables
            self._client = mlflow.MlflowClient(self.uri)
            experiment_id = self._experiment_id()
        self.experiment_id = experiment_id
        tags = {"rlmath.kind": kind, "rlmath.run_dir": str(self.run_dir.resolve()), **source_tags()}
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = self._client.create_run(experiment_id, run_name=self.run_dir.name,
                                      tags={k: redact(v) for k, v in tags.items()})
        self.run_id = run.info.run_id
        params = flat_params(self.config)
        from mlflow.entities import Param

        items = [Param(k, redact(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[start:start + 100])
        (self.run_dir / "mlflow_run_id").write_text(self.run_id)
        if kind == "train":
            self._start_system_metrics()

    def _reopen_mlflow(self, run_id: str, uri: str) -> None:
        """Continue a crashed or stopped run in the store it was started in: same run id, RUNNING again.

        Its experiment and dataset inputs are read back, so the final model's metrics still link to them.
        """
        import mlflow
        from mlflow.exceptions import MlflowException

        self.uri = uri
        mlflow.set_tracking_uri(self.uri)
        self._client = mlflow.MlflowClient(self.uri)
        try:
            self._client.update_run(run_id, status="RUNNING")
            run = self._client.get_run(run_id)
        except MlflowException as exc:
            raise RLMathError(f"--resume: mlflow run {run_id} cannot be reopened in {uri} "
                              f"({str(exc).splitlines()[0]})") from None
        self.run_id = run_id
        self.experiment_id = run.info.experiment_id
        self.datasets = _dataset_inputs(run)
        self._start_system_metrics(resume=True)

    def _experiment_id(self) -> str:
        """The configured experiment's id, created (with artifacts beside a sqlite store) if missing."""
        import mlflow

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
        return experiment_id

    def _start_system_metrics(self, resume: bool = False) -> None:
        """mlflow's own CPU/memory/disk/network (and GPU, when pynvml sees one) sampler for this run.

        ``resume``: a reopened run's samples go on after its last system-metric step, not over step 0.
        """
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = SystemMetricsMonitor(self.run_id, sampling_interval=_SYSTEM_METRICS_INTERVAL,
                                             samples_before_logging=1, tracking_uri=self.uri,
                                             resume_logging=resume)
        self._monitor.start()

    def _stop_system_metrics(self) -> None:
        """Stop the sampler and publish one closing sample.

        mlflow's monitor returns without publishing when it is stopped mid-window, so a run shorter
        than the sampling interval (and the last window of every run) would have no system metrics.
        """
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        monitor.finish()
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()

    def log_metrics(self, metrics: dict[str, float], step: int, *, model_id: str | None = None,
                    dataset: tuple[str, str] | None = None) -> None:
        """Append to metrics.jsonl and mlflow; non-finite values stay in the file as null.

        ``model_id`` links the metrics to a logged model (they show on its page and in the "Logged
        models" table); ``dataset`` = (name, digest) of a :meth:`log_dataset` input they were measured on.
        A model's metrics are not in the file, so they reach mlflow at once even when metrics are deferred.
        """
        clean = {k: float(v) for k, v in metrics.items() if v is not None}
        if model_id is None:  # a model's copies of run metrics are already in the file
            self._metrics.write(json.dumps({"step": step, **{k: (v if math.isfinite(v) else None)
                                                             for k, v in clean.items()}}) + "\n")
            self._metrics.flush()
        if self.run_id and (model_id is not None or not self.deferred):
            self._send_metrics([(step, clean)], model_id=model_id, dataset=dataset)

    def _send_metrics(self, rows: list[tuple[int, dict[str, float | None]]], *, model_id: str | None = None,
                      dataset: tuple[str, str] | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        name, digest = dataset or (None, None)
        batch = [Metric(k, v, now, step, model_id=model_id, dataset_name=name, dataset_digest=digest)
                 for step, values in rows for k, v in values.items() if v is not None and math.isfinite(v)]
        for start in range(0, len(batch), 500):
            self._client.log_batch(self.run_id, metrics=batch[start:start + 500])

    # --- deferred metrics (checkpointed runs) -------------------------------------------------------
    # mlflow cannot delete a metric point, so a checkpointed run sends a step's metrics only once the
    # checkpoint after it is written (push_metrics); a resume truncates metrics.jsonl to that checkpoint,
    # so steps redone after a crash reach mlflow once.

    def defer_metrics(self) -> None:
        """From now on metrics reach mlflow only through :meth:`push_metrics`."""
        if not self.deferred and not (self.run_dir / SYNCED).exists():
            self._write_synced(self.metrics_offset())
        self.deferred = True

    def send_live(self) -> None:
        """Undo :meth:`defer_metrics` (nothing after this point will be resumed): send what waits, then each row."""
        self.push_metrics()
        self.deferred = False

    def metrics_offset(self) -> int:
        """Bytes of metrics.jsonl written so far: a checkpoint records it, a resume truncates to it."""
        self._metrics.flush()
        return (self.run_dir / "metrics.jsonl").stat().st_size

    def samples_offset(self) -> int:
        self._samples.flush()
        return (self.run_dir / "samples.jsonl").stat().st_size

    def push_metrics(self) -> None:
        """Send metrics.jsonl rows mlflow does not have yet, then record how far it got.

        Without :meth:`defer_metrics` every row was sent when it was logged: nothing is left to send.
        """
        if not self.run_id or not self.deferred:
            return
        synced = int((self.run_dir / SYNCED).read_text()) if (self.run_dir / SYNCED).exists() else 0
        end = self.metrics_offset()
        with open(self.run_dir / "metrics.jsonl", "rb") as handle:
            handle.seek(synced)
            lines = handle.read(end - synced).decode().splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        sent = _read_sent_steps(self.run_dir)  # steps mlflow got before a resume redid them
        self._send_metrics([_unsent(row.pop("step"), row, sent) for row in rows])
        self._write_synced(end)

    def _write_synced(self, offset: int) -> None:
        _write_atomic(self.run_dir / SYNCED, str(offset))

    def log_samples(self, rows: list[dict[str, Any]], step: int) -> None:
        for row in rows:
            self._samples.write(json.dumps(redact_value({"step": step, **row})) + "\n")
        self._samples.flush()

    def log_table(self, rows: list[dict[str, Any]], name: str) -> None:
        """A completion table in the mlflow UI's evaluation view (``mlflow.log_table``)."""
        if self.run_id and rows:
            columns = {key: [redact_value(row.get(key)) for row in rows] for key in rows[0]}
            self._client.log_table(self.run_id, columns, artifact_file=name)

    def log_dataset(self, rows: list[dict[str, Any]], name: str, context: str,
                    source: str | dict[str, Any] | None = None) -> tuple[str, str] | None:
        """Log ``rows`` as an mlflow dataset input (name, digest, source, size, schema) of this run.

        ``context`` is "training" or "evaluation" (the UI shows it as a tag); ``source`` says where the
        rows came from: a local file or folder, a hub dataset id, or a dict describing the generator
        (synthetic data: families, seed, difficulty). Returns (name, digest) so metrics measured on the
        set can name it (:meth:`log_metrics` ``dataset=``), or None without mlflow.
        """
        if not self.run_id or not rows:
            return None
        import mlflow.data
        import pandas as pd
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        frame = pd.DataFrame(redact_value(rows))
        dataset = mlflow.data.from_pandas(frame, source=_dataset_source(source or {"rlmath": name}), name=name)
        entity = dataset._to_mlflow_entity()
        self._client.log_inputs(self.run_id, [DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])])
        self.datasets[context] = (dataset.name, dataset.digest)
        return self.datasets[context]

    def log_adapter_model(self, path: Path, name: str, step: int, metrics: dict[str, float] | None = None,
                          dataset: tuple[str, str] | None = None) -> str | None:
        """Log a saved adapter folder as an mlflow 3 *logged model* and return its model id.

        The model holds the adapter files, records the run and ``step`` that produced it (the run's
        outputs), and gets ``metrics`` (its eval numbers) linked, so "Logged models" lists SFT, final and
        every checkpoint side by side. Register the final one with ``model_registry.register_adapter``.
        The metrics are linked to the "evaluation" dataset input unless ``dataset`` names another.
        """
        if not self.run_id:
            return None
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus

        model = self._client.create_logged_model(
            self.experiment_id, name=name, source_run_id=self.run_id, model_type="peft-lora-adapter",
            tags={"rlmath.base_model": redact(self.config.model.name_or_path), "rlmath.algorithm": self.config.algorithm,
                  "rlmath.step": str(step)},
            params={"lora.r": str(self.config.lora.r), "lora.alpha": str(self.config.lora.alpha),
                    "base_model": redact(self.config.model.name_or_path)})
        try:
            self._client.log_model_artifacts(model.model_id, str(path))
        except BaseException:
            self._client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            raise
        self._client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        self._client.log_outputs(self.run_id, [LoggedModelOutput(model.model_id, step)])
        if metrics:
            self.log_metrics(metrics, step, model_id=model.model_id, dataset=dataset or self.datasets.get("evaluation"))
        return model.model_id

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Copy a file or folder into the run's artifacts (run-folder files were redacted when written)."""
        if self.run_id:
            if path.is_dir():
                self._client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self._client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.run_id:
            for key, value in tags.items():
                self._client.set_tag(self.run_id, key, redact(str(value)))

    def finish(self, status: str = "FINISHED") -> None:
        if self.deferred and status == "FINISHED":
            self.push_metrics()
        self._metrics.close()
        self._samples.close()
        self._stop_system_metrics()
        if self.run_id:
            self._client.set_terminated(self.run_id, status=status)
