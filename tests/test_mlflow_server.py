"""A real ``mlflow server`` on a free loopback port: the tiny model trains logging over HTTP, then the
run, its completion table, its gains plot, its logged models, dataset inputs, system metrics and a
registered adapter version are read back over HTTP: what an ML engineer opens the UI to find."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmath.config import load_config

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.slow  # a server start and a training run: about a minute on 2 cores


@pytest.fixture
def mlflow_server(tmp_path: Path):
    from rlmath.ui import start_server

    server = start_server(tmp_path / "store", log=tmp_path / "mlflow_server.log")
    yield server
    server.stop()


def test_training_logs_over_http_and_reads_back(tmp_path: Path, mlflow_server, monkeypatch) -> None:
    import mlflow
    import pandas as pd
    from rich.console import Console

    import rewards
    from rlmath.loop import run_training
    from tests.test_train import text_length_reward

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    config = load_config(ROOT / "configs/smoke.yaml", [
        f"output_dir={tmp_path / 'runs'}", "run_name=http", "sampling.backend=hf", "grpo.steps=1",
        f"tracking.tracking_uri={mlflow_server.url}", "tracking.experiment=rlmath-http",
        "rewards.weights={correct: 1.0, text_length: 1.0}"])
    run_dir = run_training(config, Console(quiet=True))
    assert not (tmp_path / "runs" / "mlflow.db").exists(), "logged to the local store, not the server"

    client = mlflow.MlflowClient(mlflow_server.url)
    run = client.get_run((run_dir / "mlflow_run_id").read_text())
    assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert client.get_experiment(run.info.experiment_id).name == "rlmath-http"
    assert "eval/final/accuracy" in run.data.metrics and "reward/mean" in run.data.metrics

    table = client.load_table(run.info.experiment_id, "eval_final_completions.json", run_ids=[run.info.run_id])
    assert isinstance(table, pd.DataFrame) and len(table) == config.data.eval_size
    assert {"prompt", "completion", "extracted", "gold", "correct", "status"} <= set(table.columns)

    png = Path(client.download_artifacts(run.info.run_id, "reasoning_gains.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (tmp_path / "store" / "mlartifacts").is_dir(), "the server should proxy artifacts into its store"

    check_mlflow3_records(client, run)
    register_and_check(config, run_dir, client)


def check_mlflow3_records(client, run) -> None:
    """Training view, logged models with linked eval metrics, datasets, system metrics, source and commit."""
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    tags = run.data.tags
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.source.name"]
    assert len(tags["mlflow.source.git.commit"]) == 40
    # the smoke run's float32 model with no bfloat16 asked for: what ran, as resolved on this machine
    assert (tags["rlmath.engine_dtype"], tags["rlmath.update_autocast"]) == ("float32", "none")
    assert tags["rlmath.frozen_base_rl"] == "float32"  # no bfloat16 update, so the base stays as loaded
    assert any(key.startswith("system/cpu_utilization_percentage") for key in run.data.metrics), sorted(run.data.metrics)
    assert any(key.startswith("system/system_memory_usage") for key in run.data.metrics)

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "eval"}
    contexts = {name: {t.key: t.value for t in d.tags}["mlflow.data.context"] for name, d in inputs.items()}
    assert contexts == {"train": "training", "eval": "evaluation"}
    assert json.loads(inputs["eval"].dataset.profile)["num_rows"] == 8 and inputs["eval"].dataset.digest
    assert json.loads(inputs["train"].dataset.source)["tags"]["families"] == "add,linear"

    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    final = [m for m in models if m.name == "final" and m.source_run_id == run.info.run_id]
    assert len(final) == 1 and str(final[0].status) == "READY"
    linked = {m.key: m for m in final[0].metrics}
    assert "eval/final/accuracy" in linked and linked["eval/final/accuracy"].dataset_name == "eval"
    assert linked["eval/final/accuracy"].value == run.data.metrics["eval/final/accuracy"]
    files = {f.path for f in client.list_logged_model_artifacts(final[0].model_id)}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files
    assert [o.model_id for o in run.outputs.model_outputs] == [final[0].model_id]
    name, number = tags["rlmath.registered_model"].split("/")
    version = client.get_model_version(name, number)  # the registered version points at the final logged model
    assert version.source == f"models:/{final[0].model_id}" and version.run_id == run.info.run_id
    assert client.get_model_version_download_uri(name, number) == final[0].artifact_location


def register_and_check(config, run_dir: Path, client) -> None:
    """The registry path the loop takes at the end of a run: log adapter/, add a model version with tags."""
    from rlmath.model_registry import register_adapter
    from rlmath.tracking import Tracker

    (run_dir.parent / "registered").mkdir()
    tracker = Tracker(config, run_dir.parent / "registered", kind="train")
    tracker.log_artifact(run_dir / "adapter", "adapter")
    version = register_adapter(tracker, {"eval/final/accuracy": 0.25, "eval/base/accuracy": 0.125})
    tracker.finish()
    stored = client.get_model_version(config.tracking.registered_model_name, version.version)
    assert stored.run_id == tracker.run_id and stored.source.endswith("/adapter")
    assert stored.tags["eval.eval/final/accuracy"] == "0.25" and stored.tags["base_model"] == "tiny:llama"
    assert client.get_run(tracker.run_id).data.tags["rlmath.registered_model"].startswith("rlmath-adapter/")
