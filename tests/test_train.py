"""End-to-end training on the tiny model: files, changed LoRA weights, metrics in mlflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlmath.config import load_config
from rlmath.eval_report import load_eval_report

ROOT = Path(__file__).resolve().parents[1]


def check_run_folder(run_dir: Path, steps: int, expect_update: bool = True) -> None:
    """What every GRPO run folder must hold, and proof that training moved the adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for name in ("config.yaml", "metrics.jsonl", "samples.jsonl", "eval.json", "reasoning_gains.png", "adapter"):
        assert (run_dir / name).exists(), name
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    step_rows = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in step_rows] == list(range(1, steps + 1))
    for key in ("loss", "grad_norm", "accuracy", "status/correct", "status/no_answer", "throughput/tokens_per_s",
                "truncation/count", "clip_fraction", "optimizer_steps", "mismatch_abs_mean"):
        assert key in step_rows[-1], key
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert {"prompt", "completion", "reward", "status"} <= set(samples[0])
    evals = load_eval_report(run_dir)
    assert [stage["name"] for stage in evals["stages"]] == ["base", "final"]
    assert 0.0 <= evals["stages"][-1]["accuracy"] <= 1.0 and evals["stages"][-1]["adapter"] == "adapter"
    assert [(c["from"], c["to"]) for c in evals["comparisons"]] == [("base", "final")]
    assert evals["kind"] == "train" and evals["trained_categories"] == ["add", "linear"]
    if not expect_update:
        return
    config = load_config(run_dir / "config.yaml")
    from rlmath.models import resolve_model

    base = AutoModelForCausalLM.from_pretrained(resolve_model(config.model.name_or_path))
    model = PeftModel.from_pretrained(base, str(run_dir / "adapter"))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().max()) > 0 for p in lora_b), "LoRA B is still all zeros: no update happened"


def read_mlflow_run(run_dir: Path):
    import mlflow

    uri = f"sqlite:///{(run_dir.parent / 'mlflow.db').resolve()}"
    client = mlflow.MlflowClient(uri)
    return client, client.get_run((run_dir / "mlflow_run_id").read_text())


def text_length_reward(completion: str, verdict, **kw) -> float:
    """A random tiny model is never correct, so (as in TRL's tests) a shape reward gives GRPO signal."""
    return len(completion) / 100.0


def test_hf_backend_training_run_end_to_end(smoke_overrides: list[str], monkeypatch) -> None:
    from rich.console import Console

    import rewards
    from rlmath.loop import run_training

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    config = load_config(ROOT / "configs/smoke.yaml",
                         smoke_overrides + ["sampling.backend=hf", "rewards.weights={correct: 1.0, text_length: 1.0}"])
    run_dir = run_training(config, Console(quiet=True))
    check_run_folder(run_dir, config.grpo.steps)
    client, run = read_mlflow_run(run_dir)
    assert run.info.status == "FINISHED"
    assert run.data.params["grpo.steps"] == str(config.grpo.steps)
    history = client.get_metric_history(run.info.run_id, "reward/mean")
    assert sorted(m.step for m in history) == [1, 2]
    assert "eval/base/accuracy" in run.data.metrics and "eval/final/accuracy" in run.data.metrics
    assert "compare/base_to_final/trained/gain" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"adapter", "reasoning_gains.png", "eval.json"} <= artifacts


def test_greedy_baseline_run_samples_a_greedy_answer_per_prompt_and_logs_its_accuracy(
        smoke_overrides: list[str], monkeypatch) -> None:
    """``grpo.baseline: greedy`` (ReMax): one greedy completion per prompt beside the group, scored, logged."""
    from rich.console import Console

    import rewards
    from rlmath import loop

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    requests = []
    real_sample = loop.sample_rollouts

    def recording_sample(trainer, problems, greedy=False):
        groups, seconds = real_sample(trainer, problems, greedy)
        requests.append((len(problems), greedy, [len(group) for group in groups]))
        return groups, seconds

    monkeypatch.setattr(loop, "sample_rollouts", recording_sample)
    config = load_config(ROOT / "configs/smoke.yaml", smoke_overrides + [
        "sampling.backend=hf", "rewards.weights={correct: 1.0, text_length: 1.0}", "grpo.baseline=greedy"])
    run_dir = loop.run_training(config, Console(quiet=True))
    check_run_folder(run_dir, config.grpo.steps)
    k, prompts = config.sampling.num_generations, config.grpo.prompts_per_step
    assert requests == [(prompts, False, [k] * prompts), (prompts, True, [1] * prompts)] * config.grpo.steps
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    step_rows = [r for r in rows if "reward/mean" in r]
    assert all(0.0 <= r["baseline/greedy_accuracy"] <= 1.0 and r["time/greedy_sample_s"] > 0 for r in step_rows)


@pytest.mark.slow
def test_vllm_smoke_training_via_cli(smoke_overrides: list[str]) -> None:
    """The product path: real vLLM engine, adapter sync through LoRARequest, probe logged."""
    args = [sys.executable, "-m", "rlmath.cli", "train", "-c", "configs/smoke.yaml"]
    for item in smoke_overrides:
        args += ["--set", item]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = Path(smoke_overrides[0].split("=", 1)[1]) / "smoke"
    check_run_folder(run_dir, 2, expect_update=False)  # random model, zero advantages: see the HF test
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    probes = [r["sync/probe_max_abs_diff"] for r in rows if "sync/probe_max_abs_diff" in r]
    assert len(probes) == 3 and max(probes) < 0.01  # initial sync + one per step
    _, run = read_mlflow_run(run_dir)
    assert "sync/probe_max_abs_diff" in run.data.metrics
    assert run.data.tags["rlmath.allocator"] == "mimalloc"  # the command re-executed itself on it (rlmath/allocator.py)


def test_a_run_from_a_saved_adapter_evaluates_it_as_its_sft_stage(smoke_overrides: list[str], monkeypatch) -> None:
    """GRPO from ``lora.init_adapter``: the starting stage is that adapter (not the bare base), so eval.json's
    one comparison is the RL stage's own paired gain over where it started."""
    from rich.console import Console

    import rewards
    from rlmath.loop import run_training

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    common = smoke_overrides[:1] + ["sampling.backend=hf", "rewards.weights={correct: 1.0, text_length: 1.0}"]
    first = run_training(load_config(ROOT / "configs/smoke.yaml", common + ["run_name=first"]), Console(quiet=True))
    config = load_config(ROOT / "configs/smoke.yaml", common + ["run_name=second", "sft.warm_start=false",
                                                               f"lora.init_adapter={first / 'adapter'}"])
    second = run_training(config, Console(quiet=True))
    report = load_eval_report(second)
    assert [(s["name"], s["adapter"]) for s in report["stages"]] == [("sft", str(first / "adapter")),
                                                                     ("final", "adapter")]
    assert [(c["from"], c["to"]) for c in report["comparisons"]] == [("sft", "final")]
    metrics = {}
    for run in (first, second):
        for line in (run / "metrics.jsonl").read_text().splitlines():
            metrics.update({f"{run.name}:{k}": v for k, v in json.loads(line).items() if k.startswith("eval/")})
    # The start of the second run is the end of the first: the same adapter, greedy, on the same items.
    assert metrics["second:eval/sft/mean_completion_tokens"] == metrics["first:eval/final/mean_completion_tokens"]
    assert "second:eval/base/accuracy" not in metrics
