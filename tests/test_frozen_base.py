"""``grpo.frozen_base: auto``: the RL stage holds the LoRA-wrapped base weights in bfloat16 when its update runs
under bfloat16 autocast, with the same numbers and without the float32 copy mapped from the model file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rlmath.config import load_config
from rlmath.policy import (
    bfloat16_base_wanted,
    hold_base_in_bfloat16,
    holds_bfloat16_base,
    load_policy,
    lora_state,
    pack_batch,
    sequence_logprobs,
    token_logprobs,
    training_precision,
)
from rlmath.weight_sync import merged_weights
from tests.test_grpo import _perturb

ROOT = Path(__file__).resolve().parents[1]
PROMPTS, COMPLETIONS = [[5, 6, 7, 8], [9, 10]], [[11, 12, 13], [21, 22, 23, 24, 25]]


@pytest.fixture
def policy():
    from rlmath.models import resolve_model

    config = load_config(ROOT / "configs/smoke.yaml")
    loaded = load_policy(config, resolve_model(config.model.name_or_path))
    _perturb(loaded.model)  # a trained-looking adapter: B is zero at init, which would hide the LoRA path
    return loaded


def update_numbers(model) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The update's forward and backward under bfloat16 autocast: log-probs and every LoRA gradient."""
    model.zero_grad(set_to_none=True)
    batch = pack_batch(PROMPTS, COMPLETIONS, 0)
    with training_precision(model, "bfloat16"):
        logprobs = token_logprobs(model, batch, temperature=0.6)
    (logprobs * batch.mask).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    return logprobs.detach(), grads


def mapped(path: Path) -> bool:
    return str(path) in Path("/proc/self/maps").read_text()


def test_bfloat16_base_gives_the_update_the_same_log_probs_and_gradients(policy) -> None:
    model = policy.model
    before_logprobs, before_grads = update_numbers(model)
    lora_before = lora_state(model)
    hold_base_in_bfloat16(model)
    after_logprobs, after_grads = update_numbers(model)
    assert holds_bfloat16_base(model)
    assert torch.equal(before_logprobs, after_logprobs)  # autocast cast the float32 weights to these very values
    assert before_grads.keys() == after_grads.keys() and len(after_grads) > 0
    assert all(torch.equal(before_grads[name], after_grads[name]) for name in before_grads)
    state = lora_state(model)
    assert all(v.dtype == torch.float32 and torch.equal(v, lora_before[k]) for k, v in state.items())
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert all(d == torch.bfloat16 for n, d in dtypes.items() if n.endswith("base_layer.weight"))
    assert all(d == torch.float32 for n, d in dtypes.items() if not n.endswith("base_layer.weight"))


def test_a_probe_forward_outside_autocast_runs_on_the_bfloat16_base(policy) -> None:
    """The sync probe calls ``sequence_logprobs`` with no autocast of its own: float32 inputs against bfloat16
    weights would raise, so it runs in the update's precision."""
    model = policy.model
    with torch.no_grad(), training_precision(model, "bfloat16"):
        update = sequence_logprobs(model, PROMPTS, COMPLETIONS, 0)
    float32 = sequence_logprobs(model, PROMPTS, COMPLETIONS, 0)
    hold_base_in_bfloat16(model)
    with torch.no_grad():
        probe = sequence_logprobs(model, PROMPTS, COMPLETIONS, 0)
    assert not torch.is_autocast_enabled("cpu")  # the probe's autocast does not leak out
    for ours, theirs, full in zip(probe, update, float32):
        assert torch.equal(ours, theirs) and not torch.equal(ours, full)


def test_merged_weights_add_the_delta_in_float32_to_the_bfloat16_base(policy) -> None:
    model = policy.model
    reference = dict(merged_weights(model))
    hold_base_in_bfloat16(model)
    merged = dict(merged_weights(model))
    assert merged.keys() == reference.keys()
    lora_named = [name for name in merged if name.endswith("q_proj.weight")]
    assert lora_named
    for name in lora_named:
        assert merged[name].dtype == torch.float32
        # the sum is the float32 one, from the base as the update sees it: within bfloat16 rounding of before
        assert torch.allclose(merged[name], reference[name], rtol=0, atol=reference[name].abs().max().item() / 64)
    embedding = "model.embed_tokens.weight"
    assert torch.equal(merged[embedding], reference[embedding])  # not LoRA-wrapped: untouched float32


def test_the_file_mapping_of_the_float32_weights_is_released(tmp_path: Path) -> None:
    """The float32 base is mapped from ``model.safetensors``: only once no tensor points into it does its
    memory go, so the norms and the embedding are copied out as well."""
    from rlmath.models import resolve_model

    config = load_config(ROOT / "configs/smoke.yaml")
    folder = Path(shutil.copytree(resolve_model(config.model.name_or_path), tmp_path / "model"))
    loaded = load_policy(config, str(folder))
    assert mapped(folder / "model.safetensors")  # transformers loads float32 weights as views of the file
    hold_base_in_bfloat16(loaded.model)
    assert not mapped(folder / "model.safetensors")


@pytest.mark.parametrize(("overrides", "env", "wanted"), [
    (["grpo.autocast=bfloat16"], {}, True),
    (["grpo.autocast=none"], {}, False),
    (["grpo.autocast=bfloat16", "grpo.frozen_base=keep"], {}, False),
    (["grpo.autocast=bfloat16", "sampling.backend=hf"], {}, False),  # HF generate runs the model in float32
    (["grpo.autocast=bfloat16", "algorithm=dpo"], {}, False),
    (["grpo.autocast=bfloat16"], {"WORLD_SIZE": "2"}, False),
])
def test_when_auto_holds_the_base_in_bfloat16(policy, monkeypatch, overrides, env, wanted) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(ROOT / "configs/smoke.yaml", overrides)
    assert bfloat16_base_wanted(config, policy.model) is wanted


@pytest.mark.slow
def test_a_merged_vllm_run_trains_on_the_bfloat16_base(smoke_overrides: list[str], monkeypatch) -> None:
    """The loop casts after the evaluations and sync that start the run, keeps the sync probe in step with
    the engine, and tags what it held."""
    from rich.console import Console

    from rlmath import loop
    from tests.test_train import check_run_folder, read_mlflow_run

    held = []

    def recording_hold(model) -> None:
        hold_base_in_bfloat16(model)
        held.append(model)

    monkeypatch.setattr(loop, "hold_base_in_bfloat16", recording_hold)
    config = load_config(ROOT / "configs/smoke.yaml", smoke_overrides + [
        "grpo.autocast=bfloat16", "sampling.sync=merged", "sampling.dtype=bfloat16", "grpo.probe_tolerance=0.5"])
    run_dir = loop.run_training(config, Console(quiet=True))
    check_run_folder(run_dir, config.grpo.steps, expect_update=False)
    assert len(held) == 1 and holds_bfloat16_base(held[0])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    probes = [r["sync/probe_max_abs_diff"] for r in rows if "sync/probe_max_abs_diff" in r]
    assert len(probes) == config.grpo.steps + 1 and max(probes) < 0.5
    _, run = read_mlflow_run(run_dir)
    assert run.data.tags["rlmath.frozen_base_rl"] == "bfloat16"


@pytest.mark.slow
def test_a_resumed_run_casts_before_it_hands_the_engine_its_weights(tmp_path: Path, monkeypatch) -> None:
    """The unbroken run's engine got merged weights from the bfloat16 base after every GRPO step, so a resume
    must cast before its own sync (it synced from the float32 base before, one step off the unbroken run)."""
    from rich.console import Console

    from rlmath import loop

    overrides = [f"output_dir={tmp_path}", "run_name=r", "grpo.steps=2", "checkpoint.every=1", "grpo.autocast=bfloat16",
                 "sampling.sync=merged", "sampling.dtype=bfloat16", "grpo.probe_tolerance=0.5"]
    real_step, real_resume = loop.one_training_step, loop.resume_training

    def crash_at_2(trainer, step):
        if step == 2:
            raise RuntimeError("simulated crash")
        return real_step(trainer, step)

    monkeypatch.setattr(loop, "one_training_step", crash_at_2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run_training(load_config(ROOT / "configs/smoke.yaml", overrides), Console(quiet=True))
    events = []

    def recording_hold(model) -> None:
        hold_base_in_bfloat16(model)
        events.append("cast")

    def recording_resume(trainer, checkpoint):
        events.append("resume sync")
        return real_resume(trainer, checkpoint)

    monkeypatch.setattr(loop, "one_training_step", real_step)
    monkeypatch.setattr(loop, "hold_base_in_bfloat16", recording_hold)
    monkeypatch.setattr(loop, "resume_training", recording_resume)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "r"
    loop.run_training(load_config(run_dir / "config.yaml"), Console(quiet=True), resume=run_dir)
    assert events == ["cast", "resume sync"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumed = [r["sync/resume_probe_max_abs_diff"] for r in rows if "sync/resume_probe_max_abs_diff" in r]
    assert len(resumed) == 1 and resumed[0] < 0.5
