"""The trl-trained stages (SFT warm start, DPO) checkpoint and resume like GRPO's steps.

A crash inside a stage resumes from its last sealed trainer checkpoint and ends bit-for-bit where an
uninterrupted run ends (tiny model, HF sampling on CPU); SIGTERM inside a stage finishes the optimizer
step, checkpoints, exits 143, and ``--resume`` finishes the run. Real trl trainers, real mlflow store.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from rlmath import checkpoint as ckpt
from rlmath.algorithms import dpo, sft
from rlmath.config import load_config
from tests.test_resume import ROOT, adapter_tensors, assert_each_step_logged_once, cli, mlflow_run, start, wait_for

QUIET = Console(quiet=True)
# SFT logs every 5 steps (the mean loss since the last log): checkpoints every 5 keep those windows whole.
WARM_START = ["sampling.backend=hf", "sft.warm_start=true", "sft.max_steps=12", "sft.batch_size=4",
              "sft.micro_batch_size=2", "checkpoint.stage_every=5", "checkpoint.every=1", "grpo.steps=2"]


def rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the values allowed to differ: wall-clock and memory readings, and what trl counts
    from the moment its trainer started (``num_tokens``, and the end-of-training mean loss), which its
    checkpoints do not carry. Every value the training produces (losses, gradients, evals, rewards) stays."""
    noisy = ("time/", "throughput/", "system/", "sft/train_", "dpo/train_", "sft/num_tokens", "dpo/num_tokens")
    out = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(noisy) and not k.endswith("tokens_per_s")} for r in out]


def crash_at(monkeypatch, module, name: str, at: int) -> None:
    """Make ``module.name`` (train_sft / train_dpo) raise when its trainer finishes optimizer step ``at``."""
    real = getattr(module, name)

    def crashing(*args, on_step=None, **kwargs):
        def step(done: int, total: int) -> None:
            if done == at:
                raise RuntimeError("simulated crash")
        return real(*args, on_step=step, **kwargs)

    monkeypatch.setattr(module, name, crashing)


def crash(monkeypatch, recipe, config, module, name: str, at: int) -> Path:
    """``recipe(config)`` with ``module.name`` raising after optimizer step ``at``; the run folder it leaves FAILED."""
    crash_at(monkeypatch, module, name, at)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exported the last run's store
    with pytest.raises(RuntimeError, match="simulated crash"):
        recipe(config, QUIET)
    run_dir = Path(config.output_dir) / config.run_name
    assert mlflow_run(run_dir)[1].info.status == "FAILED"
    return run_dir


def resume(monkeypatch, recipe, run_dir: Path) -> None:
    """``rlmath train --resume run_dir`` in process, with the crash taken out again."""
    monkeypatch.undo()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert recipe(load_config(run_dir / "config.yaml"), QUIET, resume=run_dir) == run_dir


def assert_same_run(ours: Path, reference: Path) -> None:
    differ = [(a["step"], {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)})
              for a, b in zip(rows(ours), rows(reference)) if a != b]
    assert len(rows(ours)) == len(rows(reference)) and not differ, differ[:1]
    mine, theirs = adapter_tensors(ours / "adapter"), adapter_tensors(reference / "adapter")
    assert mine.keys() == theirs.keys() and all((mine[k] == theirs[k]).all() for k in mine)
    client, run = mlflow_run(ours)
    assert run.info.status == "FINISHED"
    assert_each_step_logged_once(client, run)


@pytest.mark.slow
def test_a_crash_in_the_sft_warm_start_resumes_from_its_checkpoint_bitwise(tmp_path: Path, monkeypatch) -> None:
    from rlmath import loop

    def config(out: str):
        return load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path / out}", "run_name=r", *WARM_START])

    reference = loop.run_training(config("a"), QUIET)
    run_dir = crash(monkeypatch, loop.run_training, config("b"), sft, "train_sft", at=8)
    stopped = ckpt.find_resumable(run_dir)
    assert (stopped.stage, stopped.step) == ("sft", 5) and not (run_dir / "checkpoint-0").exists()

    resume(monkeypatch, loop.run_training, run_dir)
    assert [r["step"] for r in rows(run_dir) if "sft/loss" in r] == [5, 10]  # each once: 5 before the crash
    assert sum("eval/base/accuracy" in r for r in rows(run_dir)) == 1  # the base is not evaluated again
    assert_same_run(run_dir, reference)
    assert not ckpt.stage_folder(run_dir, "sft").exists()  # a finished run keeps no stage checkpoints
    report = json.loads((run_dir / "eval.json").read_text())
    assert [stage["name"] for stage in report["stages"]] == ["base", "sft", "final"]


@pytest.mark.slow
def test_a_crash_in_dpo_resumes_on_the_saved_pairs_bitwise(tmp_path: Path, monkeypatch) -> None:
    def config(out: str):
        return load_config(ROOT / "configs/dpo_smoke.yaml", [f"output_dir={tmp_path / out}", "run_name=r",
                                                             "dpo.max_steps=6", "dpo.batch_size=2",
                                                             "checkpoint.stage_every=2"])

    reference = dpo.run_dpo(config("a"), QUIET)
    run_dir = crash(monkeypatch, dpo.run_dpo, config("b"), dpo, "train_dpo", at=3)
    stopped = ckpt.find_resumable(run_dir)
    assert (stopped.stage, stopped.step) == ("dpo", 2)

    resume(monkeypatch, dpo.run_dpo, run_dir)
    assert [r["step"] for r in rows(run_dir) if "dpo/loss" in r] == [1, 2, 3, 4, 5, 6]
    assert_same_run(run_dir, reference)


@pytest.mark.slow
def test_sigterm_in_the_sft_stage_checkpoints_it_exits_143_and_resume_finishes(tmp_path: Path) -> None:
    """The signal lands mid-SFT (only a signal saves here: stage_every=0); the optimizer step ends, is saved, sealed.

    150 steps: the signal goes out within 0.1 s of the first log (step 5), with well over a second of SFT left."""
    run_dir = tmp_path / "runs" / "run"
    args = cli("train", "-c", "configs/smoke.yaml", "--set", f"output_dir={tmp_path / 'runs'}", "--set", "run_name=run",
               "--set", "algorithm=sft", "--set", "sampling.backend=hf", "--set", "sft.max_steps=150",
               "--set", "sft.batch_size=2", "--set", "checkpoint.stage_every=0")
    proc = start(args, tmp_path / "log")
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and any("sft/loss" in r for r in rows(run_dir)), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 143
    output = (tmp_path / "log").read_text()
    assert "stopped by SIGTERM" in output and "Traceback" not in output and "--resume" in output
    stopped = ckpt.find_resumable(run_dir)
    assert stopped.stage == "sft" and 5 <= stopped.step < 150 and not (run_dir / "eval.json").exists()
    assert mlflow_run(run_dir)[1].info.status == "KILLED"

    resumed = subprocess.run(cli("train", "--resume", str(run_dir)), cwd=ROOT, capture_output=True, text=True,
                             timeout=900, env=start_env())
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    steps = [r["step"] for r in rows(run_dir) if "sft/loss" in r]
    assert steps == list(range(5, 151, 5))  # every logged step once: before the signal, then after the resume
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED"
    assert_each_step_logged_once(client, run)


@pytest.mark.slow
def test_a_full_disk_while_a_stage_saves_is_a_clear_error_and_its_folder_never_counts(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    from transformers import Trainer

    from rlmath.errors import RLMathError

    real, calls = Trainer._save_optimizer_and_scheduler, []

    def disk_full_at_the_second_save(self, output_dir):
        calls.append(output_dir)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", disk_full_at_the_second_save)
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}", "run_name=r", "algorithm=sft",
                                                       "sampling.backend=hf", "sft.max_steps=4", "sft.batch_size=2",
                                                       "checkpoint.stage_every=2"])
    with pytest.raises(RLMathError, match=r"sft: could not write a checkpoint .*No space left.*checkpoint-2"):
        sft.run_sft(config, QUIET)
    run_dir, folder = tmp_path / "r", ckpt.stage_folder(tmp_path / "r", "sft")
    assert (folder / "checkpoint-4").is_dir() and not ckpt.is_complete(folder / "checkpoint-4")
    assert ckpt.find_resumable(run_dir).step == 2
    assert mlflow_run(run_dir)[1].info.status == "FAILED"


def start_env() -> dict:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env
