"""The run lifecycle every recipe shares: set up, sync the adapter, evaluate, finish, fail cleanly.

A recipe (GRPO in ``rlmath.loop``, SFT in ``rlmath.algorithms.sft``) is the part in the middle: it
calls :func:`setup_run`, wraps its body in :func:`tracked_run`, trains, and hands its evaluated
stages to :func:`finish_run`. What a recipe alone needs (an optimiser, a problem picker) it builds
itself, so an SFT run never pays for GRPO's pieces.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rlmath.allocator import active_allocator
from rlmath.checkpoint import STAGES, Checkpoint, Stateful, restore_checkpoint, save_checkpoint, stage_folder
from rlmath.config import Config
from rlmath.data import Problem, load_problems
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage, build_eval_report, comparison_metrics, print_eval_report, write_eval_report
from rlmath.evaluation import EvalResult, evaluate
from rlmath.interrupt import StopOnSignal
from rlmath.model_registry import register_adapter
from rlmath.models import resolve_model
from rlmath.plots import plot_eval_report, plot_training_curves
from rlmath.policy import bfloat16_base_wanted, load_policy, save_adapter, sequence_logprobs, updates_in_bfloat16
from rlmath.prompts import PromptEncoder
from rlmath.redact import redact
from rlmath.sampling import AdapterRef, Sampler, SamplingRequest, build_sampler, max_tokens_from_lengths
from rlmath.tracking import Tracker, new_run_dir, rewind_synced
from rlmath.vllm_server import probe_targets

EVAL_PLOT = "reasoning_gains.png"
"""The one eval plot of a run folder (every stage per family, 95% CIs); ``rlmath eval`` writes the same."""


@dataclass
class RunState:
    """What every recipe's steps share; built once by :func:`setup_run`."""

    config: Config
    tracker: Tracker
    policy: object
    encoder: PromptEncoder
    sampler: Sampler
    train: list[Problem]
    eval: list[Problem]
    adapter: AdapterRef | None = None
    version: int = 0  # adapter versions handed to the sampler; vLLM caches by this id, so never reuse one


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch: the run's random streams start here and only here."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_run(config: Config, resume: Checkpoint | None = None) -> RunState:
    """Resolve the model, then seed, load data and the policy, open the tracker, start the sampler.

    Seeding comes after ``resolve_model``: a cold cache builds the model, and nothing that happens only
    on a machine's first run may shift the run's random stream. With ``resume`` the run folder and
    mlflow run are the checkpoint's, and its logs are cut back to what the checkpoint had seen.
    """
    with StopOnSignal(at_once="during start-up"):  # nothing to checkpoint yet: a signal stops here and now
        base = resolve_model(config.model.name_or_path)
        seed_everything(config.seed)
        train, held_out = load_problems(config, "train"), load_problems(config, "eval")
        if config.eval.limit:
            held_out = held_out[: config.eval.limit]
        policy = load_policy(config, base)
        config = cap_from_solutions(config, train, policy.tokenizer)
        tracker = open_tracker(config, resume)
        with tracked_run(tracker):  # engine failed (FAILED) or signal (KILLED): the run opened above never stays RUNNING
            if resume is None:  # a resumed run's dataset inputs are already in mlflow
                log_datasets(tracker, config, train, held_out)
            tracker.set_tags(resolved_precision(config, policy))
            sampler = build_sampler(config, base, policy)
    return RunState(config, tracker, policy, PromptEncoder(policy.tokenizer, config), sampler, train, held_out)


def resolved_precision(config: Config, policy) -> dict[str, str]:
    """What ran on this machine (config.yaml keeps the request): the precision ``bfloat16_if_fast`` became for the
    engine and the update, the dtype the RL stage holds its frozen base in (``grpo.frozen_base``), the hand-over
    ``sampling.sync: auto`` became, and the memory allocator (:mod:`rlmath.allocator`)."""
    autocast = "bfloat16" if updates_in_bfloat16(policy.model, config.grpo.autocast) else "none"
    frozen = "bfloat16" if bfloat16_base_wanted(config, policy.model) else config.model.dtype
    return {"rlmath.engine_dtype": config.engine_dtype, "rlmath.update_autocast": autocast,
            "rlmath.frozen_base_rl": frozen,
            "rlmath.engine_sync": config.engine_sync, "rlmath.allocator": active_allocator()}


def open_tracker(config: Config, resume: Checkpoint | None) -> Tracker:
    """A new run folder and mlflow run, or, resuming, the checkpoint's own (reopened).

    A resumed run's logs are cut back to the checkpoint: the steps after it are redone, not repeated.
    """
    if resume is None:
        return Tracker(config, new_run_dir(config, config.algorithm), kind="train")
    truncate_logs(resume.run_dir, resume.state["logs"])
    return Tracker(config, resume.run_dir, kind="train", resume_run_id=resume.state["mlflow_run_id"],
                   resume_uri=resume.state.get("mlflow_uri"))


def log_datasets(tracker: Tracker, config: Config, train: list[Problem], held_out: list[Problem]) -> None:
    """Training data and eval set as mlflow dataset inputs (name, digest, source, size)."""
    data = config.data
    synth = {"generator": "rlmath.synth", "families": ",".join(data.families), "difficulty": data.difficulty}
    train_source = data.path if data.source == "dataset" else synth | {"seed": data.train_seed}
    eval_source = data.path if data.source == "dataset" else synth | {"seed": data.eval_seed}
    tracker.log_dataset([asdict(p) for p in train], "train", "training", train_source)
    tracker.log_dataset([asdict(p) for p in held_out], "eval", "evaluation", eval_source)


def cap_from_solutions(config: Config, train: list[Problem], tokenizer) -> Config:
    """With ``sampling.max_tokens_percentile`` set, derive the rollout cap from the worked solutions' lengths.

    A cap below the solutions' own length truncates correct rollouts before their box; the resolved value
    is what config.yaml and mlflow record.
    """
    s = config.sampling
    lengths = [len(tokenizer.encode(p.solution, add_special_tokens=False)) for p in train if p.solution]
    if s.max_tokens_percentile is None or not lengths:
        return config
    cap = max_tokens_from_lengths(lengths, s.max_tokens_percentile, s.max_tokens_slack, s.max_tokens)
    return config.model_copy(update={"sampling": s.model_copy(update={"max_tokens": cap})})


@contextmanager
def tracked_run(tracker: Tracker, sampler: Sampler | None = None) -> Iterator[None]:
    """Mark the mlflow run FAILED on any error (KILLED on Ctrl-C) and always close the sampler.

    The body finishes the tracker itself on success (``finish_run``), so a run is never left RUNNING.
    """
    try:
        yield
    except KeyboardInterrupt:
        tracker.finish("KILLED")
        raise
    except BaseException:
        tracker.finish("FAILED")
        raise
    finally:
        if sampler is not None:
            sampler.close()


@contextmanager
def training_run(state: RunState) -> Iterator[StopOnSignal]:
    """A training recipe's body: :func:`tracked_run`, SIGINT/SIGTERM turned into a stop request, and
    metrics deferred to the checkpoints when the run writes any; yields the stop request."""
    with tracked_run(state.tracker, state.sampler), StopOnSignal() as stop:
        defer_metrics_if_checkpointed(state)
        yield stop


def sync_adapter(state: RunState, step: int, probe_key: str = "sync/probe_max_abs_diff") -> AdapterRef:
    """Save adapter files, point the sampler at them (no merge, no reload), probe, drop the old files."""
    state.version += 1
    path = save_adapter(state.policy.model, state.tracker.run_dir / "adapters" / f"v{state.version}")
    adapter = AdapterRef("policy", state.version, str(path.resolve()))
    if state.config.grpo.probe and state.config.sampling.backend in ("vllm", "vllm_server"):
        # Every vLLM server replica is probed; the in-process engine is its own single target.
        difference = max(probe_adapter(state, adapter, target) for target in probe_targets(state.sampler))
        state.tracker.log_metrics({probe_key: difference}, step)
    if state.adapter is not None and state.adapter.path != adapter.path:
        shutil.rmtree(state.adapter.path, ignore_errors=True)
    return adapter


def probe_adapter(state: RunState, adapter: AdapterRef, sampler: Sampler | None = None) -> float:
    """Fail loudly if the sampler's log-probs disagree with the trainer's, at the sampling temperature.

    At T > 0 the sampler draws a short completion at the training temperature (top_p 1) and reports its
    processed log-probs; the trainer scores the same tokens at that temperature. At T = 0 both score a
    fixed completion. ``sampler`` is one probe target (a server replica); the run's sampler by default.
    A sampled probe over the tolerance gets one fresh draw (:func:`confirmed_difference`).
    """
    sampler = state.sampler if sampler is None else sampler
    tolerance = state.config.probe_tolerance
    redraw = state.config.sampling.temperature > 0
    difference = confirmed_difference(lambda: probe_difference(state, adapter, sampler), tolerance, redraw)
    if difference > tolerance:
        where = f" at {sampler.url}" if hasattr(sampler, "url") else ""
        raise RLMathError(f"adapter sync probe failed: the sampler's{where} log-probs differ from the trainer's by "
                          f"{difference:.4f} > grpo.probe_tolerance={tolerance} "
                          f"(is it still serving an old adapter? version {adapter.version} at {adapter.path})")
    return difference


def confirmed_difference(measure: Callable[[], float], tolerance: float, redraw: bool) -> float:
    """The probe's difference; one over ``tolerance`` is measured again on a fresh draw when ``redraw``.

    Why: a sampled probe's largest token gap has a tail. A bfloat16 engine beside the float32 trainer put
    0.54 nats on 1% of 16-token probes, and a GRPO run on the dev split died at step 15 of 28 on 1.09 > 1.0
    with the adapter in sync. A stale or wrong adapter is over the line on every draw, so the smaller of two
    draws still fails it, while a chance tail now needs two in a row.

    >>> draws = iter([1.3, 0.2]); confirmed_difference(lambda: next(draws), 1.0, redraw=True)
    0.2
    >>> draws = iter([1.3, 0.2]); confirmed_difference(lambda: next(draws), 1.0, redraw=False)
    1.3
    """
    difference = measure()
    if difference > tolerance and redraw:
        difference = min(difference, measure())
    return difference


def probe_difference(state: RunState, adapter: AdapterRef, sampler: Sampler) -> float:
    """Largest |trainer - sampler| token log-prob on one probe completion (see :func:`probe_adapter`)."""
    prompt = state.encoder([state.eval[0].question])[0]
    temperature = state.config.sampling.temperature
    if temperature > 0:
        request = SamplingRequest(n=1, temperature=temperature, top_p=1.0, max_tokens=16)
        sampled = sampler.generate([prompt], request, adapter)[0][0]
        completion, theirs = sampled.token_ids, torch.tensor(sampled.logprobs)
    else:
        completion = state.policy.tokenizer.encode(f"The answer is \\boxed{{{state.eval[0].answer}}}.",
                                                   add_special_tokens=False)
        theirs = torch.tensor(sampler.completion_logprobs(prompt, completion, adapter))
    with torch.no_grad():
        ours = sequence_logprobs(state.policy.model, [prompt], [completion], state.policy.tokenizer.pad_token_id,
                                 temperature=temperature)[0]
    return float((ours - theirs).abs().max())


# --- checkpoint and resume (rlmath.checkpoint does the files; this is what a run puts in them) --------

def checkpoint_run(state: RunState, step: int, objects: dict[str, Stateful], stages: list[Stage],
                   extra: dict | None = None) -> Path:
    """``checkpoint-STEP`` of this run; then mlflow gets the metrics it covers (never a step twice)."""
    path = save_checkpoint(state.tracker.run_dir, step, model=state.policy.model, objects=objects,
                           state=run_facts(state, stages) | (extra or {}), keep=state.config.checkpoint.keep)
    state.tracker.push_metrics()
    return path


def run_facts(state: RunState, stages: list[Stage]) -> dict:
    """What any checkpoint of the run records besides the model: where its logs and mlflow run are, what
    data it trains on, the adapter version the sampler serves and the stages evaluated so far."""
    tracker = state.tracker
    uri = getattr(tracker, "uri", None)
    return {"version": state.version, "mlflow_run_id": tracker.run_id, "mlflow_uri": uri and redact(uri),
            "sampler_seed": state.config.seed,
            "data_fingerprint": data_fingerprint(state.train), "stages": [stage_to_json(s) for s in stages],
            "logs": {"metrics": tracker.metrics_offset(), "samples": tracker.samples_offset()}}


def defer_metrics_if_checkpointed(state: RunState) -> None:
    """A checkpointed run sends mlflow a step's metrics only once a checkpoint covers it (see Tracker)."""
    if state.config.checkpoint.every or state.config.checkpoint.stage_every:
        state.tracker.defer_metrics()


def resume_run(state: RunState, checkpoint: Checkpoint, objects: dict[str, Stateful]) -> list[Stage]:
    """Put the checkpoint back (adapters, objects, RNGs), hand the sampler the resumed adapter, probe it.

    The probe is logged as ``sync/resume_probe_max_abs_diff`` at the checkpoint's step; it reaches
    mlflow with the next checkpoint, so a second crash before that never logs it twice.
    """
    stages = resume_stages(state, checkpoint)
    restore_checkpoint(checkpoint, state.policy.model, objects)
    state.adapter = sync_adapter(state, checkpoint.step, probe_key="sync/resume_probe_max_abs_diff")
    return stages


def resume_stages(state: RunState, checkpoint: Checkpoint) -> list[Stage]:
    """What every resume does first: check the data, send mlflow what it missed, take back the version and
    the stages the checkpoint had evaluated (the model itself is the recipe's or its trainer's to restore)."""
    if checkpoint.state["data_fingerprint"] != data_fingerprint(state.train):
        raise RLMathError(f"--resume: the training problems differ from those {checkpoint.path} was trained on "
                          f"(data.* or the dataset file changed since)")
    state.tracker.push_metrics()  # rows a crash left unsent between the last push and the checkpoint
    state.version = checkpoint.state["version"]
    return [stage_from_json(item) for item in checkpoint.state["stages"]]


def truncate_logs(run_dir: Path, offsets: dict[str, int]) -> None:
    """Cut metrics.jsonl and samples.jsonl back to the checkpoint: steps after it are redone, not repeated."""
    rewind_synced(run_dir, offsets["metrics"])
    for name, offset in offsets.items():
        path = run_dir / f"{name}.jsonl"
        if path.exists() and path.stat().st_size > offset:
            os.truncate(path, offset)


def data_fingerprint(problems: list[Problem]) -> str:
    """A resume must train on the very problems the picker's state indexes."""
    text = json.dumps([[p.question, p.answer] for p in problems])
    return hashlib.sha256(text.encode()).hexdigest()


def stage_to_json(stage: Stage) -> dict:
    return {"name": stage.name, "adapter": stage.adapter, "result": asdict(stage.result)}


def stage_from_json(item: dict) -> Stage:
    return Stage(item["name"], item["adapter"], EvalResult(**item["result"]))


def evaluate_and_log(state: RunState, stage_name: str, adapter: AdapterRef | None, step: int) -> EvalResult:
    """Evaluate the held-out split with ``adapter``; metrics go to ``eval/<stage_name>/...``."""
    result = evaluate(state.sampler, state.encoder, state.eval, state.config, adapter)
    state.tracker.log_metrics(result.metrics(f"eval/{stage_name}"), step)
    state.tracker.log_table(result.rows, f"eval_{stage_name}_completions.json")
    return result


def train_report(state: RunState, stages: list[Stage]) -> dict:
    """eval.json v1 of a training run: its stages in order and base→sft, sft→final, base→final."""
    names = [stage.name for stage in stages]
    pairs = [(a, b) for a, b in (("base", "sft"), ("sft", "final"), ("base", "final")) if a in names and b in names]
    config = state.config
    meta = {"run_dir": str(state.tracker.run_dir), "mlflow_run_id": state.tracker.run_id, "seed": config.seed}
    return build_eval_report(kind="train", dataset=f"config:{config.data.source}", category="family",
                             trained_categories=list(config.data.families), stages=stages, comparisons=pairs,
                             meta=meta, resamples=config.eval.bootstrap_resamples, seed=config.seed)


def finish_run(state: RunState, stages: list[Stage], console, last_step: int | None = None) -> Path:
    """Final adapter, eval.json, plots, registry, artifacts; print the comparison and what to open next.

    ``last_step``: the step the final evaluation was logged at (default: GRPO's last step, else 0); the
    comparison and the final model's metrics are logged there too.
    """
    run_dir = state.tracker.run_dir
    state.sampler.close()  # every evaluation is done: the engine's KV cache and weights (~1.5 GiB) go before the plots
    save_adapter(state.policy.model, run_dir / "adapter")
    shutil.rmtree(run_dir / "adapters", ignore_errors=True)
    for stage in STAGES:  # a finished run resumes from nothing
        shutil.rmtree(stage_folder(run_dir, stage), ignore_errors=True)
    report = train_report(state, stages)
    write_eval_report(report, run_dir / "eval.json")
    plots = [plot_eval_report(report, run_dir / EVAL_PLOT),
             plot_training_curves(run_dir / "metrics.jsonl", run_dir / "training_curves.png")]
    adapters = [path for path in (run_dir / "adapter_sft", run_dir / "adapter") if path.is_dir()]
    for path in [*adapters, run_dir / "eval.json", run_dir / "config.yaml", *plots]:
        state.tracker.log_artifact(path, path.name if path in adapters else None)
    if last_step is None:
        last_step = max(state.config.grpo.steps, 0) if state.config.algorithm == "grpo" else 0
    state.tracker.log_metrics(comparison_metrics(report), last_step)
    stage_metrics = {key: value for stage in stages
                     for key, value in stage.result.metrics(f"eval/{stage.name}").items()}
    final = stages[-1]
    model_id = state.tracker.log_adapter_model(run_dir / "adapter", "final", last_step,
                                               final.result.metrics(f"eval/{final.name}"))
    register_adapter(state.tracker, stage_metrics, model_id=model_id)
    state.tracker.finish()
    print_eval_report(report, console)
    if state.tracker.run_id:
        console.print(f"mlflow ui --backend-store-uri {state.tracker.uri}   # then open http://127.0.0.1:5000")
    return run_dir


def progress_bar(console) -> Progress:
    """The one progress display of a run (steps, elapsed, remaining)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)
