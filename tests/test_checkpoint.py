"""Checkpoints: atomic writes, latest-complete discovery, exact state round trips, --resume errors."""

from __future__ import annotations

import errno
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rlmath import checkpoint as ckpt
from rlmath.cli import app
from rlmath.curriculum import ProblemPicker
from rlmath.errors import RLMathError
from rlmath.sources import Problem


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_capture_restore_gives_the_same_draws() -> None:
    json_part, tensor_part = ckpt.capture_rng()
    first = draws()
    draws()
    ckpt.restore_rng(json_part, tensor_part)
    assert draws() == first


def problems(count: int = 20) -> list[Problem]:
    return [Problem(id=f"p{i}", question=f"q{i}", answer=str(i), family="add", difficulty=1 + i % 3)
            for i in range(count)]


@pytest.mark.parametrize("curriculum", [False, True])
def test_picker_state_round_trip_continues_the_same_stream(curriculum: bool) -> None:
    kwargs = dict(curriculum=curriculum, promote_at=0.5, promote_window=4)
    picker = ProblemPicker(problems(), seed=3, **kwargs)
    for _ in range(3):
        batch = picker.next_batch(4)
        picker.update(batch, [1.0, 0.5, 0.0, 1.0])
    restored = ProblemPicker(problems(), seed=99, **kwargs)
    restored.load_state_dict(picker.state_dict())
    assert restored.level == picker.level
    assert [restored.next_batch(4) for _ in range(5)] == [picker.next_batch(4) for _ in range(5)]


def test_picker_refuses_state_of_another_problem_set() -> None:
    state = ProblemPicker(problems(20), seed=0, curriculum=False).state_dict()
    with pytest.raises(ValueError, match="20 problems"):
        ProblemPicker(problems(10), seed=0, curriculum=False).load_state_dict(state)


@pytest.fixture(scope="module")
def tiny_peft():
    """A 1-layer Llama with a trainable LoRA and a second (reference) adapter: peft's real multi-adapter layout."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    model.add_adapter("reference", lora)
    return model


def lora_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def perturb(model) -> None:
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(torch.randn_like(param))


def train_a_step(model, optimizer) -> None:
    model.set_adapter("default")
    loss = model(input_ids=torch.randint(0, 64, (2, 6))).logits.pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_checkpoint_round_trip_restores_adapters_optimizer_objects_and_rng(tmp_path: Path, tiny_peft) -> None:
    model = tiny_peft
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    perturb(model)
    train_a_step(model, optimizer)
    picker = ProblemPicker(problems(), seed=1, curriculum=True)
    picker.update(picker.next_batch(3), [0.5, 0.5, 1.0])
    saved_weights = lora_weights(model)
    path = ckpt.save_checkpoint(tmp_path, 7, model=model, objects={"optimizer": optimizer, "picker": picker},
                                state={"version": 3, "mlflow_run_id": "abc"}, keep=2)
    expected_next = draws()
    assert (path / "adapters" / "reference" / "adapter_model.safetensors").is_file()  # the reference adapter too

    perturb(model)  # wreck everything the checkpoint holds
    train_a_step(model, optimizer)
    other = ProblemPicker(problems(), seed=5, curriculum=True)
    loaded = ckpt.latest_checkpoint(tmp_path)
    assert loaded.step == 7 and loaded.state["version"] == 3 and loaded.state["mlflow_run_id"] == "abc"
    ckpt.restore_checkpoint(loaded, model, {"optimizer": optimizer, "picker": other})

    after = lora_weights(model)
    assert after.keys() == saved_weights.keys()
    assert all(torch.equal(after[k], saved_weights[k]) for k in after)
    assert draws() == expected_next
    assert other.next_batch(5) == picker.next_batch(5)
    fresh = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    fresh.load_state_dict(loaded.tensors["objects"]["optimizer"])
    assert int(fresh.state_dict()["state"][0]["step"]) == 1  # Adam's moments and step count came back


def test_keep_last_n_and_latest_is_the_newest(tmp_path: Path, tiny_peft) -> None:
    for step in (2, 4, 6, 8):
        ckpt.save_checkpoint(tmp_path, step, model=tiny_peft, objects={}, state={}, keep=2)
    assert [p.name for p in ckpt.complete_checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-8"]
    assert ckpt.latest_checkpoint(tmp_path).step == 8
    assert not list(tmp_path.glob(".checkpoint-*"))


def test_a_write_that_fails_midway_never_becomes_latest(tmp_path: Path, tiny_peft, monkeypatch) -> None:
    """Disk full while writing: the error names the folder, the previous checkpoint stays the latest."""
    ckpt.save_checkpoint(tmp_path, 2, model=tiny_peft, objects={}, state={}, keep=3)

    def half_then_disk_full(obj, path):
        Path(path).write_bytes(b"\0" * 100)  # half a file is already on disk when the device fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", half_then_disk_full)
    with pytest.raises(RLMathError, match=r"checkpoint-4 \(No space left on device\).*checkpoint-2"):
        ckpt.save_checkpoint(tmp_path, 4, model=tiny_peft, objects={}, state={}, keep=3)
    assert ckpt.latest_checkpoint(tmp_path).step == 2
    assert not (tmp_path / "checkpoint-4").exists() and not list(tmp_path.glob(".checkpoint-*"))


def test_leftovers_of_a_killed_writer_are_never_latest(tmp_path: Path, tiny_peft) -> None:
    """kill -9 mid-write leaves a .partial folder; a folder missing a manifest file is incomplete too."""
    ckpt.save_checkpoint(tmp_path, 2, model=tiny_peft, objects={}, state={}, keep=3)
    partial = tmp_path / ".checkpoint-4.partial-x"
    partial.mkdir()
    (partial / "state.json").write_text("{}")
    copied = ckpt.save_checkpoint(tmp_path, 6, model=tiny_peft, objects={}, state={}, keep=3)
    ckpt.save_checkpoint(tmp_path, 8, model=tiny_peft, objects={}, state={}, keep=3)
    (tmp_path / "checkpoint-8" / "trainer_state.pt").write_bytes(b"truncated")  # size no longer matches
    (copied / "state.json").unlink()
    assert ckpt.latest_checkpoint(tmp_path) is not None and ckpt.latest_checkpoint(tmp_path).step == 2


def test_resume_errors_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(RLMathError, match="not a run folder"):
        ckpt.find_resumable(tmp_path)
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(RLMathError, match="no complete checkpoint"):
        ckpt.find_resumable(tmp_path)
    (tmp_path / "eval.json").write_text("{}")
    with pytest.raises(RLMathError, match="already finished"):
        ckpt.find_resumable(tmp_path)


def said(result) -> str:
    """The CLI's message with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_cli_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "crashed"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"output_dir: {tmp_path / 'runs'}\nmodel:\n  name_or_path: tiny:llama\n")
    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir)])
    assert result.exit_code == 1
    assert "no complete checkpoint" in said(result) and str(run_dir) in said(result)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output

    empty = tmp_path / "nothing"
    empty.mkdir()
    result = CliRunner().invoke(app, ["train", "--resume", str(empty)])
    assert result.exit_code == 2 and "not a run folder" in said(result)
    result = CliRunner().invoke(app, ["train", "--resume", str(run_dir), "--set", "seed=1"])
    assert result.exit_code == 2 and "own config.yaml" in said(result)


def test_a_checkpoint_keeps_the_tracking_uri_redacted_and_resume_still_finds_the_store(
        tmp_path: Path, tiny_peft, monkeypatch) -> None:
    """state.json is a run-folder file: no secret of the environment may land in it (rlmath.redact)."""
    from types import SimpleNamespace

    from rlmath.config import Config
    from rlmath.run import checkpoint_run
    from rlmath.tracking import resumable_uri

    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cr3t-pass")
    uri = "http://ml:s3cr3t-pass@mlflow.internal:5000"
    config = Config(tracking={"tracking_uri": uri})
    (tmp_path / "metrics.jsonl").write_text("")
    tracker = SimpleNamespace(run_dir=tmp_path, run_id="abc", uri=uri, metrics_offset=lambda: 0,
                              samples_offset=lambda: 0, push_metrics=lambda: None)
    state = SimpleNamespace(config=config, tracker=tracker, version=1, train=problems(), policy=SimpleNamespace(model=tiny_peft))
    path = checkpoint_run(state, 1, {}, [])
    text = "".join(p.read_text(errors="ignore") for p in path.rglob("*.json"))
    assert "s3cr3t-pass" not in text
    saved = ckpt.load_checkpoint(path).state["mlflow_uri"]
    assert saved == "http://ml:***@mlflow.internal:5000"
    assert resumable_uri(saved, config) == uri  # the same store, named by this process's environment
    other = Config(tracking={"tracking_uri": "http://ml:other-pass@elsewhere:5000"})
    assert resumable_uri(saved, other) == saved  # not ours: reopening it fails and names it
