"""The GRPO recipe on one screen: sample → score → update → sync → track.

``run_training`` is the recipe and ``one_training_step`` the loop body; each stage is a named function
below it. The lifecycle every recipe shares (setup, adapter sync, evaluation, finish, failure marking)
is :mod:`rlmath.run`; GRPO maths, including every effect of ``grpo.loss_type``, is
:mod:`rlmath.algorithms.grpo`; the optional SFT warm start is :mod:`rlmath.algorithms.sft`.
Launch: ``rlmath train -c configs/default.yaml``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from rlmath.algorithms.grpo import (
    RolloutBatch,
    group_advantages,
    grpo_step,
    informative_groups,
    kept_groups,
    scales_by_std,
    shape_overlong,
)
from rlmath.algorithms.sft import warm_start
from rlmath.checkpoint import Checkpoint, find_resumable
from rlmath.config import Config
from rlmath.curriculum import ProblemPicker
from rlmath.data import Problem
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage
from rlmath.interrupt import StopOnSignal
from rlmath.rollout_scoring import Scored, score_groups
from rlmath.run import (
    RunState,
    checkpoint_run,
    evaluate_and_log,
    finish_run,
    progress_bar,
    resume_run,
    setup_run,
    sync_adapter,
    tracked_run,
)
from rlmath.sampling import Completion, SamplingRequest


@dataclass
class Trainer(RunState):
    """The shared run state plus what only GRPO needs: the optimiser and the problem picker."""

    optimizer: torch.optim.Optimizer | None = None
    picker: ProblemPicker | None = None
    bad_steps: int = 0  # consecutive steps skipped for a non-finite loss or gradient

    def stateful(self) -> dict:
        """What a checkpoint saves besides the adapters and RNGs (``state_dict``/``load_state_dict`` each)."""
        return {"optimizer": self.optimizer, "picker": self.picker}


def setup(config: Config, resume: Checkpoint | None = None) -> Trainer:
    """The shared setup (model, seed, data, policy, tracker, sampler), then GRPO's optimiser and picker."""
    state = setup_run(config, resume)
    params = [p for p in state.policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.grpo.learning_rate, weight_decay=config.grpo.weight_decay)
    picker = ProblemPicker(state.train, config.seed, curriculum=config.data.curriculum, low=config.data.curriculum_low,
                           high=config.data.curriculum_high, promote_at=config.data.promote_at,
                           promote_window=config.data.promote_window)
    return Trainer(**{f.name: getattr(state, f.name) for f in fields(state)}, optimizer=optimizer, picker=picker)


def run_training(config: Config, console, resume: Path | None = None) -> Path:
    """GRPO: evaluate the base, optionally warm-start with SFT, train, evaluate, finish; return the run folder.

    ``resume``: a run folder to continue from its latest complete checkpoint (``config`` is its config.yaml).
    """
    if config.algorithm != "grpo":
        raise RLMathError(f"algorithm: {config.algorithm!r} is not the GRPO recipe; `rlmath train` picks its recipe")
    checkpoint = find_resumable(resume) if resume is not None else None
    trainer = setup(config, checkpoint)
    with tracked_run(trainer.tracker, trainer.sampler), StopOnSignal() as stop:
        if config.checkpoint.every:
            trainer.tracker.defer_metrics()
        if checkpoint is None:
            stages = begin(trainer, console)
            maybe_checkpoint(trainer, 0, stages, stop)
        else:
            stages = resume_run(trainer, checkpoint, trainer.stateful())
            trainer.bad_steps = checkpoint.state["bad_steps"]
        with progress_bar(console) as progress:
            task = progress.add_task("GRPO", total=config.grpo.steps, completed=checkpoint.step if checkpoint else 0)
            for step in range((checkpoint.step if checkpoint else 0) + 1, config.grpo.steps + 1):
                metrics = one_training_step(trainer, step)
                progress.update(task, advance=1,
                                description=f"GRPO reward {metrics['reward/mean']:.2f} acc {metrics['accuracy']:.2f}")
                if config.grpo.eval_every and step % config.grpo.eval_every == 0 and step < config.grpo.steps:
                    evaluate_and_log(trainer, "during", trainer.adapter, step)
                stop_on_bad_steps(trainer, step, stages)
                maybe_checkpoint(trainer, step, stages, stop)
        stages.append(Stage("final", "adapter", evaluate_and_log(trainer, "final", trainer.adapter, config.grpo.steps)))
        finish_run(trainer, stages, console)
    return trainer.tracker.run_dir


def begin(trainer: Trainer, console) -> list[Stage]:
    """A fresh run's start: evaluate the base, then SFT warm start or the first adapter sync."""
    stages = [Stage("base", None, evaluate_and_log(trainer, "base", adapter=None, step=0))]
    if trainer.config.sft.warm_start:
        stages.append(Stage("sft", "adapter_sft", warm_start(trainer, console)))
    else:
        trainer.adapter = sync_adapter(trainer, step=0)
    return stages


def maybe_checkpoint(trainer: Trainer, step: int, stages: list[Stage], stop: StopOnSignal) -> None:
    """Every ``checkpoint.every`` steps (and at step 0 and the last step); always when a signal asked to stop."""
    every, last = trainer.config.checkpoint.every, trainer.config.grpo.steps
    if stop.requested:
        path = checkpoint_run(trainer, step, trainer.stateful(), stages, {"bad_steps": trainer.bad_steps})
        raise stop.interrupted(f"{path} written; continue with: rlmath train --resume {trainer.tracker.run_dir}")
    if every and (step % every == 0 or step == last):
        checkpoint_run(trainer, step, trainer.stateful(), stages, {"bad_steps": trainer.bad_steps})


def stop_on_bad_steps(trainer: Trainer, step: int, stages: list[Stage]) -> None:
    """``grpo.max_bad_steps`` skipped steps in a row: checkpoint and stop with an error that says what to change."""
    limit = trainer.config.grpo.max_bad_steps
    if trainer.bad_steps < limit:
        return
    path = checkpoint_run(trainer, step, trainer.stateful(), stages, {"bad_steps": trainer.bad_steps})
    raise RLMathError(f"grpo: {limit} steps in a row (up to step {step}) had a NaN/inf loss or gradient and were "
                      f"skipped (grpo.max_bad_steps={limit}); checked the rewards and grpo.learning_rate? "
                      f"The adapter before them is in {path}")


def one_training_step(trainer: Trainer, step: int) -> dict[str, float]:
    """One GRPO iteration; returns the metrics it logged."""
    started = time.perf_counter()
    indices = trainer.picker.next_batch(trainer.config.grpo.prompts_per_step)
    problems = [trainer.train[i] for i in indices]
    groups, sample_s = sample_rollouts(trainer, problems)
    scored, rewards = score_rollouts(trainer, problems, groups)
    batch, batch_stats = build_batch(trainer, problems, groups, rewards)
    trainer.picker.update(indices, rewards_to_pass_rates(scored, trainer.config.sampling.num_generations))
    update = {}
    if batch is not None:
        update = grpo_step(trainer.policy.model, trainer.optimizer, batch, trainer.config.grpo,
                           trainer.config.sampling.max_tokens, trainer.policy.tokenizer.pad_token_id)
    bad = update.get("skipped_nonfinite", 0.0) > 0
    trainer.bad_steps = trainer.bad_steps + 1 if bad else 0
    update["bad_steps/consecutive"] = float(trainer.bad_steps)
    sync_started = time.perf_counter()
    trainer.adapter = sync_adapter(trainer, step=step)
    metrics = step_metrics(trainer, groups, scored, rewards, sample_s) | batch_stats | update
    metrics["time/sync_s"] = time.perf_counter() - sync_started
    metrics["time/step_s"] = time.perf_counter() - started
    trainer.tracker.log_metrics(metrics, step)
    log_samples(trainer, problems, groups, scored, rewards, step)
    return metrics


def sample_rollouts(trainer: Trainer, problems: list[Problem]) -> tuple[list[list[Completion]], float]:
    """k completions per problem from the sampler, with the current adapter."""
    s = trainer.config.sampling
    request = SamplingRequest(n=s.num_generations, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens)
    started = time.perf_counter()
    groups = trainer.sampler.generate(trainer.encoder([p.question for p in problems]), request, trainer.adapter)
    return groups, time.perf_counter() - started


def score_rollouts(trainer: Trainer, problems: list[Problem], groups) -> tuple[Scored, torch.Tensor]:
    """Verify every completion; rewards as an (N, k) tensor, with DAPO overlong shaping if set."""
    max_tokens = trainer.config.sampling.max_tokens
    scored = score_groups([p.answer for p in problems], groups, trainer.config.rewards, max_tokens)
    lengths = [len(c.token_ids) for group in groups for c in group]
    values = shape_overlong(torch.tensor(scored.rewards, dtype=torch.float32), lengths, max_tokens,
                            trainer.config.grpo.overlong_buffer)
    return scored, values.view(len(problems), -1)  # (N, k)


def build_batch(trainer: Trainer, problems, groups, rewards: torch.Tensor) -> tuple[RolloutBatch | None, dict]:
    """Group advantages; with dynamic sampling, groups whose rewards are all equal are dropped."""
    cfg = trainer.config.grpo
    advantages = group_advantages(rewards, scale=scales_by_std(cfg))  # (N, k)
    keep = kept_groups(rewards, cfg)
    stats = {"groups/informative_fraction": float(informative_groups(rewards).float().mean()),
             "groups/kept": float(keep.sum())}
    prompts = trainer.encoder([p.question for p in problems])
    rows = [(prompts[i], c, float(advantages[i, j])) for i in range(len(problems)) if keep[i]
            for j, c in enumerate(groups[i])]
    if not rows:
        return None, stats
    return RolloutBatch(prompt_ids=[r[0] for r in rows], completion_ids=[r[1].token_ids for r in rows],
                        sampler_logprobs=[r[1].logprobs for r in rows],
                        advantages=torch.tensor([r[2] for r in rows], dtype=torch.float32)), stats


def rewards_to_pass_rates(scored: Scored, k: int) -> list[float]:
    correct = np.asarray(scored.correct, dtype=float).reshape(-1, k)  # (N, k)
    return correct.mean(axis=1).tolist()


def step_metrics(trainer: Trainer, groups, scored: Scored, rewards: torch.Tensor, sample_s: float) -> dict[str, float]:
    lengths = [len(c.token_ids) for group in groups for c in group]
    truncated = [c.finish_reason == "length" for group in groups for c in group]
    metrics = {"reward/mean": float(rewards.mean()), "reward/std": float(rewards.std(unbiased=False)),
               "accuracy": float(np.mean(scored.correct)), "completion/mean_tokens": float(np.mean(lengths)),
               "completion/max_tokens": float(max(lengths)), "completion/truncated_fraction": float(np.mean(truncated)),
               "time/sample_s": sample_s, "throughput/tokens_per_s": sum(lengths) / max(sample_s, 1e-9),
               "curriculum/in_band_fraction": trainer.picker.in_band_fraction(),
               "curriculum/level": float(trainer.picker.level)}
    metrics.update({f"status/{name}": float(count) for name, count in scored.status_counts().items()})
    return metrics


def log_samples(trainer: Trainer, problems, groups, scored: Scored, rewards: torch.Tensor, step: int) -> None:
    flat_rewards = rewards.flatten().tolist()
    rows, index = [], 0
    for problem, group in zip(problems, groups):
        for completion in group:
            verdict = scored.verdicts[index]
            rows.append({"prompt": problem.question, "gold": problem.answer, "completion": completion.text,
                         "extracted": verdict.extracted, "reward": flat_rewards[index], "status": verdict.status})
            index += 1
    trainer.tracker.log_samples(rows[: trainer.config.tracking.log_samples], step)
