"""``rlmath eval`` end to end on the tiny model: base vs adapter, paired comparison (eval.json v1), nested run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmath.cli import app
from rlmath.config import load_config
from rlmath.eval_report import load_eval_report

ROOT = Path(__file__).resolve().parents[1]


def fake_training_run(config, runs: Path) -> Path:
    """A run folder the way training leaves it: adapter/ and the mlflow run id (no training needed)."""
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy, save_adapter
    from rlmath.tracking import Tracker

    run_dir = runs / "train-run"
    run_dir.mkdir(parents=True)
    tracker = Tracker(config, run_dir, kind="train")
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    save_adapter(policy.model, run_dir / "adapter")
    tracker.finish()
    return run_dir


def test_eval_compare_base_writes_paired_json_and_a_nested_mlflow_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = [f"output_dir={runs}", "sampling.backend=hf", "eval.max_tokens=8", "eval.bootstrap_resamples=200"]
    config = load_config(ROOT / "configs/smoke.yaml", overrides)
    train_dir = fake_training_run(config, runs)
    data = tmp_path / "gsm8k_test.jsonl"
    data.write_text("\n".join(json.dumps({"question": f"What is {a} + 1?", "answer": f"step\n#### {a + 1}"})
                              for a in range(3)))
    out = tmp_path / "eval.json"
    args = ["eval", "-c", str(ROOT / "configs/smoke.yaml"), "--dataset", str(data), "--adapter", "train-run",
            "--compare-base", "--k", "1,2", "--limit", "2", "--out", str(out)]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = load_eval_report(out)
    assert report["kind"] == "eval" and report["items"] == 2 and report["trained_categories"] == []
    stages = {stage["name"]: stage for stage in report["stages"]}
    assert [stage["name"] for stage in report["stages"]] == ["base", "adapter"]
    for name in ("base", "adapter"):
        assert stages[name]["total"] == 2 and set(stages[name]["pass@k"]) == {"pass@1", "pass@2"}
        assert set(stages[name]["ci"]) == {"accuracy", "pass@1", "pass@2", "maj@2"}
        assert sum(stages[name]["status_counts"].values()) == 2
        assert stages[name]["tokens_per_s"] > 0
    assert stages["adapter"]["adapter"] == str((train_dir / "adapter").resolve())
    (comparison,) = report["comparisons"]
    assert (comparison["from"], comparison["to"]) == ("base", "adapter")
    # A fresh LoRA (B = 0) is the base model: greedy outputs are identical, so the difference is exactly 0.
    assert comparison["metrics"]["accuracy"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 2}
    assert comparison["groups"]["untrained"]["n"] == 2 and comparison["groups"]["all"]["gain"] == 0.0
    assert "trained" not in comparison["groups"]  # a foreign dataset: no trained categories

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    run = client.get_run(report["meta"]["mlflow_run_id"])
    assert run.data.tags["mlflow.parentRunId"] == (train_dir / "mlflow_run_id").read_text()
    assert run.data.tags["rlmath.kind"] == "eval"
    assert "eval/adapter/pass_at_2" in run.data.metrics
    assert "compare/base_to_adapter/all/gain_ci_low" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"eval.json", "reasoning_gains.png", "base_completions.json", "adapter_samples.json"} <= artifacts
    # the run folder's eval.json is the same document as --out
    assert load_eval_report(Path(report["meta"]["run_dir"]))["stages"] == report["stages"]


def test_eval_compares_two_adapters_and_keeps_compare_base_as_an_alias(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    overrides = [f"output_dir={runs}", "sampling.backend=hf", "eval.max_tokens=4", "eval.bootstrap_resamples=100",
                 "tracking.mlflow=false", "eval.limit=2"]
    config = load_config(ROOT / "configs/smoke.yaml", overrides)
    train_dir = fake_training_run(config, runs)
    args = ["eval", "-c", str(ROOT / "configs/smoke.yaml"), "--adapter", "train-run"]
    for item in overrides:
        args += ["--set", item]
    out = tmp_path / "two.json"
    result = CliRunner().invoke(app, [*args, "--compare", str(train_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = load_eval_report(out)
    assert [stage["name"] for stage in report["stages"]] == ["compare", "adapter"]
    assert report["trained_categories"] == ["add", "linear"]  # the config's own held-out split
    assert report["comparisons"][0]["metrics"]["accuracy"]["mean"] == 0.0  # the same adapter twice
    result = CliRunner().invoke(app, [*args, "--compare-base", "--compare", str(train_dir)])
    assert result.exit_code == 2 and "--compare-base" in result.output

def test_eval_rejects_bad_k_and_unknown_adapter(tmp_path: Path) -> None:
    base = ["eval", "-c", str(ROOT / "configs/smoke.yaml"), "--set", f"output_dir={tmp_path}"]
    result = CliRunner().invoke(app, [*base, "--k", "0,2"])
    assert result.exit_code == 2 and ">= 1" in result.output
    result = CliRunner().invoke(app, [*base, "--adapter", "no-such-run", "--set", "sampling.backend=hf"])
    assert result.exit_code == 1 and "no-such-run" in result.output


@pytest.mark.slow
def test_eval_with_merged_sync_serves_each_target_from_its_own_weights(tmp_path: Path) -> None:
    """`rlmath eval -c configs/default.yaml` (vLLM, sync: merged) once failed: the sampler had no policy."""
    import mlflow
    import torch

    from rlmath.models import resolve_model
    from rlmath.policy import load_policy, save_adapter

    runs = tmp_path / "runs"
    overrides = [f"output_dir={runs}", "sampling.backend=vllm", "sampling.sync=merged", "eval.max_tokens=8",
                 "eval.bootstrap_resamples=100", "eval.limit=4"]
    config = load_config(ROOT / "configs/smoke.yaml", overrides)
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    torch.manual_seed(1)
    with torch.no_grad():  # a LoRA that really changes the outputs
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    save_adapter(policy.model, runs / "perturbed" / "adapter")
    fresh = load_policy(config, resolve_model(config.model.name_or_path))  # B = 0: the base model's outputs
    save_adapter(fresh.model, runs / "fresh" / "adapter")

    def completions(compare: str, out: str) -> dict[str, list[str]]:
        args = ["eval", "-c", str(ROOT / "configs/smoke.yaml"), "--adapter", str(runs / "perturbed"),
                "--compare", compare, "--out", str(tmp_path / out)]
        for item in overrides:
            args += ["--set", item]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        report = load_eval_report(tmp_path / out)
        client = mlflow.MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
        texts = {}
        for stage in report["stages"]:
            table = json.loads(Path(client.download_artifacts(report["meta"]["mlflow_run_id"],
                                                              f"{stage['name']}_completions.json")).read_text())
            texts[stage["name"]] = [row[table["columns"].index("completion")] for row in table["data"]]
        return texts

    with_base = completions("base", "base.json")
    assert len(with_base["base"]) == len(with_base["adapter"]) == 4
    assert with_base["base"] != with_base["adapter"]  # the engine served the adapter's merged weights
    two_adapters = completions(str(runs / "fresh"), "two.json")  # one engine, the second adapter loaded in
    assert two_adapters["compare"] == with_base["base"]  # B = 0 is the base model
    assert two_adapters["adapter"] == with_base["adapter"]
