"""The GRPO recipe on one screen: sample → score → update → sync → track.

``run_training`` is the recipe and ``one_training_step`` the loop body; each stage is a named function
below it. The lifecycle every recipe shares (setup, adapter sync, evaluation, finish, failure marking)
is :mod:`rlmath.run`; GRPO maths, including every effect of ``grpo.loss_type``, is
:mod:`rlmath.algorithms.grpo`; the optional SFT warm start is :mod:`rlmath.algorithms.sft`.
Launch: ``rlmath train -c configs/default.yaml``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from rlmath.algorithms.grpo import (
    NonFiniteGuard,
    RolloutBatch,
    apply_truncation,
    attach_behaviour_logprobs,
    distributed_grpo_step,
    gradient_rows,
    grpo_step,
    informative_groups,
    kept_groups,
    shape_overlong,
    step_advantages,
    takes_one_step,
)
from rlmath.algorithms.sft import warm_start
from rlmath.checkpoint import Checkpoint, find_resumable, stage_folder
from rlmath.config import Config
from rlmath.curriculum import ProblemPicker
from rlmath.data import Problem
from rlmath.distributed import (
    check_learner_config,
    is_main_process,
    shard_batch,
    share_batch,
    share_parameters,
    start_learner,
    world,
)
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage
from rlmath.interrupt import StopOnSignal
from rlmath.models import resolve_model
from rlmath.peak_memory import peak_rss_gib
from rlmath.policy import (
    Reference,
    bfloat16_base_wanted,
    freeze_reference,
    hold_base_in_bfloat16,
    load_policy,
    updates_in_bfloat16,
)
from rlmath.rollout_scoring import Scored, score_groups
from rlmath.run import (
    RunState,
    checkpoint_run,
    evaluate_and_log,
    finish_run,
    progress_bar,
    resume_run,
    resume_stages,
    setup_run,
    sync_adapter,
    training_run,
)
from rlmath.sampling import Completion, EngineCrashed, SamplingRequest, VLLMSampler
from rlmath.sharding import check_sharding, fsdp_launch, is_sharded, shard, to_rollout_phase, to_update_phase
from rlmath.trl_stage import StageCheckpoints
from rlmath.vllm_server import replica_metrics
from rlmath.zero import ZeroOptimizer, check_zero, deepspeed_launch, zero_optimizer, zero_stage


@dataclass
class Trainer(RunState):
    """The shared run state plus what only GRPO needs: the optimiser, the problem picker, the KL reference."""

    optimizer: torch.optim.Optimizer | ZeroOptimizer | None = None  # ZeroOptimizer: under a DeepSpeed launch
    picker: ProblemPicker | None = None
    reference: Reference | None = None  # the KL reference, frozen when the RL stage begins (beta > 0)
    guard: NonFiniteGuard | None = None  # optimizer steps skipped in a row for a NaN/inf loss or gradient
    updated_step: int = 0  # the last step whose optimizer update is done (a crash after it checkpoints that step)

    def stateful(self) -> dict:
        """What a checkpoint saves besides the adapters (the reference is one) and RNGs."""
        return {"optimizer": self.optimizer, "picker": self.picker}


def setup(config: Config, resume: Checkpoint | None = None) -> Trainer:
    """The shared setup (model, seed, data, policy, tracker, sampler), then GRPO's optimiser and picker."""
    state = setup_run(config, resume)
    config = state.config  # setup_run may resolve derived values (the rollout length cap)
    optimizer = prepare_learner(state.policy.model, config)
    picker = ProblemPicker(state.train, config.seed, curriculum=config.data.curriculum, low=config.data.curriculum_low,
                           high=config.data.curriculum_high, promote_at=config.data.promote_at,
                           promote_window=config.data.promote_window, revisit=config.data.curriculum_revisit,
                           family_power=config.data.curriculum_family_power)
    return Trainer(**{f.name: getattr(state, f.name) for f in fields(state)}, optimizer=optimizer, picker=picker,
                   guard=NonFiniteGuard(config.grpo.max_bad_steps))


def prepare_learner(model, config: Config) -> torch.optim.Optimizer | ZeroOptimizer:
    """Every rank: start from rank 0's adapter; under an FSDP launch shard the model and gather it once for
    the rollout phase (``rlmath.sharding``); then the optimiser, on the trainable parameters as they are
    after sharding (FSDP replaces them). Under a DeepSpeed launch the optimiser is handed to a ZeRO-2
    engine, which the loop then holds in its place (``rlmath.zero``). Under FSDP the KL reference adapter
    (``grpo.beta > 0``) is frozen before sharding, so it is sharded with its layers; the stage start's
    ``freeze_reference`` then returns it as it is (no update has run in between)."""
    size = world()[1]
    sharded = size > 1 and fsdp_launch()
    share_parameters(model, frozen_too=sharded)
    if sharded:
        if config.grpo.beta > 0:
            freeze_reference(model, config.grpo.reference)
        shard(model)
        to_rollout_phase(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.grpo.learning_rate, weight_decay=config.grpo.weight_decay)
    if size > 1 and deepspeed_launch():
        return zero_optimizer(model, optimizer, config, size)
    return optimizer


def run_training(config: Config, console, resume: Path | None = None) -> Path | None:
    """GRPO: evaluate the base, optionally warm-start with SFT, train, evaluate, finish; return the run folder.

    ``resume``: a run folder to continue from its latest complete checkpoint (``config`` is its config.yaml).
    Under ``accelerate launch`` rank 0 runs this loop (and alone writes checkpoints) and the other ranks
    only follow its updates (:func:`follow_training`); they return ``None``.
    """
    if config.algorithm != "grpo":
        raise RLMathError(f"algorithm: {config.algorithm!r} is not the GRPO recipe; `rlmath train` picks its recipe")
    if start_learner():
        check_learner_config(config)
        check_sharding(config)
        check_zero()
        refuse_distributed_resume(resume)
        if not is_main_process():
            return follow_training(config)
    checkpoint = find_resumable(resume) if resume is not None else None
    trainer = setup(config, checkpoint)
    config = trainer.config
    with training_run(trainer) as stop:
        if checkpoint is None or checkpoint.stage:  # fresh, or stopped in its SFT warm start
            stages, first = begin(trainer, console, stop, checkpoint), 1
            hold_base_for_rl(trainer)  # after SFT, which runs the float32 model
        else:
            hold_base_for_rl(trainer)  # before the resume's sync: the engine gets what the unbroken run gave it
            stages, first = resume_training(trainer, checkpoint), checkpoint.step + 1
        with progress_bar(console) as progress:
            task = progress.add_task("GRPO", total=config.grpo.steps, completed=first - 1)
            for step in range(first, config.grpo.steps + 1):
                try:
                    metrics = one_training_step(trainer, step)
                except EngineCrashed as exc:
                    raise stop_on_engine_crash(trainer, step, stages, exc) from None
                progress.update(task, advance=1,
                                description=f"GRPO reward {metrics['reward/mean']:.2f} acc {metrics['accuracy']:.2f}")
                if config.grpo.eval_every and step % config.grpo.eval_every == 0 and step < config.grpo.steps:
                    evaluate_and_log(trainer, "during", trainer.adapter, step)
                stop_on_bad_steps(trainer, step, stages)
                maybe_checkpoint(trainer, step, stages, stop)
        stages.append(Stage("final", "adapter", evaluate_and_log(trainer, "final", trainer.adapter, config.grpo.steps)))
        finish_run(trainer, stages, console)
    return trainer.tracker.run_dir


def hold_base_for_rl(trainer: Trainer) -> None:
    """``grpo.frozen_base: auto``: the RL stage's frozen base in bfloat16 where its update runs in bfloat16
    (:func:`rlmath.policy.hold_base_in_bfloat16`). A resume casts before it syncs the engine, so the merged
    weights it hands over are the ones the uninterrupted run handed over after that step."""
    if bfloat16_base_wanted(trainer.config, trainer.policy.model):
        hold_base_in_bfloat16(trainer.policy.model)


def refuse_distributed_resume(resume: Path | None) -> None:
    """Every rank refuses ``--resume`` under a multi-process launch, before any of them loads a model.

    Only rank 0 holds the checkpoint's state, and the follower ranks have no way to load it yet.
    """
    if resume is not None:
        raise RLMathError(f"--resume {resume}: not supported under a multi-process launch (accelerate launch); "
                          f"resume it as one process (`rlmath train --resume {resume}`), which continues exactly")


def begin(trainer: Trainer, console, stop: StopOnSignal, in_warm_start: Checkpoint | None = None) -> list[Stage]:
    """A fresh run's start: evaluate, SFT warm start or the first sync, the KL reference, checkpoint 0.

    A run that starts from a saved adapter (``lora.init_adapter``, e.g. an earlier run's ``adapter_sft``)
    evaluates that adapter as its ``sft`` stage, as the DPO recipe does, so eval.json's sft→final
    comparison is the RL stage's own paired gain; otherwise the base is evaluated first.
    ``in_warm_start``: a stage checkpoint of the SFT warm start; the base is not evaluated again.
    """
    config = trainer.config
    if config.lora.init_adapter and not config.sft.warm_start:
        trainer.adapter = sync_adapter(trainer, step=0)
        return finish_begin(trainer, [Stage("sft", config.lora.init_adapter,
                                            evaluate_and_log(trainer, "sft", trainer.adapter, step=0))], stop)
    if in_warm_start is None:
        stages = [Stage("base", None, evaluate_and_log(trainer, "base", adapter=None, step=0))]
    else:
        stages = resume_stages(trainer, in_warm_start)
    if config.sft.warm_start:
        checkpoints = StageCheckpoints(trainer, "sft", list(stages), stop, in_warm_start and in_warm_start.path)
        stages.append(Stage("sft", "adapter_sft", warm_start(trainer, console, checkpoints=checkpoints)))
    else:
        trainer.adapter = sync_adapter(trainer, step=0)
    return finish_begin(trainer, stages, stop)


def finish_begin(trainer: Trainer, stages: list[Stage], stop: StopOnSignal) -> list[Stage]:
    """The RL stage begins here: freeze the KL reference (the adapter as it stands now), write checkpoint 0.

    With ``checkpoint.every: 0`` the RL stage cannot be resumed: the warm start's checkpoints go, and
    metrics reach mlflow as they are logged from here on.
    """
    if trainer.config.grpo.beta > 0:
        trainer.reference = freeze_reference(trainer.policy.model, trainer.config.grpo.reference)
    maybe_checkpoint(trainer, 0, stages, stop)
    if not trainer.config.checkpoint.every:
        shutil.rmtree(stage_folder(trainer.tracker.run_dir, "sft"), ignore_errors=True)
        trainer.tracker.send_live()
    return stages


def resume_training(trainer: Trainer, checkpoint: Checkpoint) -> list[Stage]:
    """Put a checkpoint back: the KL reference adapter is made first so its saved weights have a slot to load into."""
    if trainer.config.grpo.beta > 0:
        trainer.reference = freeze_reference(trainer.policy.model, trainer.config.grpo.reference)
    stages = resume_run(trainer, checkpoint, trainer.stateful())
    trainer.guard.consecutive = checkpoint.state["bad_steps"]
    return stages


def checkpoint_facts(trainer: Trainer) -> dict:
    """What GRPO adds to a checkpoint's state.json besides the run's own facts."""
    return {"bad_steps": trainer.guard.consecutive}


def maybe_checkpoint(trainer: Trainer, step: int, stages: list[Stage], stop: StopOnSignal) -> None:
    """Every ``checkpoint.every`` steps (and at step 0 and the last step); always when a signal asked to stop."""
    every, last = trainer.config.checkpoint.every, trainer.config.grpo.steps
    if stop.requested:
        path = checkpoint_run(trainer, step, trainer.stateful(), stages, checkpoint_facts(trainer))
        raise stop.interrupted(f"{path} written; continue with: rlmath train --resume {trainer.tracker.run_dir}")
    if every and (step % every == 0 or step == last):
        checkpoint_run(trainer, step, trainer.stateful(), stages, checkpoint_facts(trainer))


def stop_on_bad_steps(trainer: Trainer, step: int, stages: list[Stage]) -> None:
    """``grpo.max_bad_steps`` skipped optimizer steps in a row: checkpoint and stop with an error saying what to check."""
    if not trainer.guard.tripped:
        return
    limit = trainer.guard.limit
    path = checkpoint_run(trainer, step, trainer.stateful(), stages, checkpoint_facts(trainer))
    raise RLMathError(f"grpo: {limit} optimizer steps in a row (up to step {step}) had a NaN/inf loss or gradient "
                      f"and were skipped (grpo.max_bad_steps={limit}); checked the rewards and "
                      f"grpo.learning_rate? The adapter before them is in {path}")


def stop_on_engine_crash(trainer: Trainer, step: int, stages: list[Stage], exc: EngineCrashed) -> RLMathError:
    """The engine died after its one restart: checkpoint what training holds, say how to continue.

    A crash before this step's update (while sampling) checkpoints the step before; one after it
    (the sync probe) checkpoints this step, whose metrics are the in-flight ones that are lost.
    """
    done = step if trainer.updated_step == step else step - 1
    path = checkpoint_run(trainer, done, trainer.stateful(), stages, checkpoint_facts(trainer))
    return RLMathError(f"{exc}. {path} holds the run up to step {done}; once the cause is fixed (the engine's log "
                       f"above names it), continue with: rlmath train --resume {trainer.tracker.run_dir}")


def learner_step(model, optimizer, batch: RolloutBatch | None, config: Config, pad_id: int,
                 reference: Reference | None = None, guard: NonFiniteGuard | None = None) -> dict[str, float]:
    """Every rank's update: rank 0 passes the step's batch, the others ``None``; each learns on its groups.

    One process (no process group) takes ``grpo_step`` on the whole batch, ``epochs × minibatches`` steps;
    under ``accelerate launch`` each rank takes its whole groups (rows carry their behaviour log-probs).
    ``guard`` counts skipped non-finite steps across calls.
    """
    batch = share_batch(batch)
    if batch is None:
        return {}
    rank, size = world()
    s = config.sampling
    if size == 1:
        return grpo_step(model, optimizer, batch, config.grpo, s.max_tokens, pad_id, s.temperature, reference,
                         guard=guard)
    local = shard_batch(batch, s.num_generations, rank, size)
    sharded = is_sharded(model)
    if sharded:  # FSDP: free the gathered weights; each layer gathers its own in the forward
        to_update_phase(model)
    metrics = distributed_grpo_step(model, optimizer, local, config.grpo, s.max_tokens, pad_id, s.temperature,
                                    reference, guard=guard)
    if sharded:  # every rank joins the all-gather; rank 0 keeps the weights to sample, sync, probe and save
        to_rollout_phase(model)
    metrics |= {"learner/ranks": float(size), "learner/sharded": float(sharded)}
    if isinstance(optimizer, ZeroOptimizer):
        metrics["learner/zero_stage"] = float(zero_stage())
    return metrics


def follow_training(config: Config) -> None:
    """A rank other than 0: the same policy and optimiser, one update per step from rank 0's rollouts.

    It never samples, syncs, evaluates, logs or checkpoints: rank 0 does, and hands each step's batch
    over. Its guard sees the same (summed) gradient norms as rank 0's, so it stops at the same step.
    """
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    optimizer = prepare_learner(policy.model, config)
    # Rank 0 freezes its reference after the step-0 sync, when its adapter still equals the shared start.
    reference = freeze_reference(policy.model, config.grpo.reference) if config.grpo.beta > 0 else None
    guard = NonFiniteGuard(config.grpo.max_bad_steps)
    for step in range(1, config.grpo.steps + 1):
        learner_step(policy.model, optimizer, None, config, policy.tokenizer.pad_token_id, reference, guard)
        if guard.tripped:
            raise RLMathError(f"grpo: {guard.limit} optimizer steps in a row (up to step {step}) had a NaN/inf "
                              f"gradient (grpo.max_bad_steps={guard.limit}); rank 0 stopped the run")


def one_training_step(trainer: Trainer, step: int) -> dict[str, float]:
    """One GRPO iteration; returns the metrics it logged."""
    started = time.perf_counter()
    indices = trainer.picker.next_batch(trainer.config.grpo.prompts_per_step)
    problems = [trainer.train[i] for i in indices]
    groups, sample_s = sample_rollouts(trainer, problems)
    scored, rewards = score_rollouts(trainer, problems, groups)
    greedy, greedy_stats = greedy_rewards(trainer, problems)
    batch, batch_stats = build_batch(trainer, problems, groups, rewards, greedy)
    trainer.picker.update(indices, rewards_to_pass_rates(scored, trainer.config.sampling.num_generations))
    # One process: grpo_step on the batch. Under accelerate launch: every rank updates on its whole groups.
    # Temperature and reference reach the loss either way; the guard counts skipped non-finite steps.
    update = learner_step(trainer.policy.model, trainer.optimizer, batch, trainer.config,
                          trainer.policy.tokenizer.pad_token_id, trainer.reference, trainer.guard)
    update.setdefault("bad_steps/consecutive", float(trainer.guard.consecutive))  # also on a step with no batch
    trainer.updated_step = step
    sync_started = time.perf_counter()
    trainer.adapter = sync_adapter(trainer, step=step)
    metrics = step_metrics(trainer, groups, scored, rewards, sample_s) | greedy_stats | batch_stats | update
    metrics |= replica_metrics(trainer.sampler)  # vllm_server: live replica count (a dead one is logged by URL)
    if isinstance(trainer.sampler, VLLMSampler):
        metrics["sampler/engine_restarts"] = float(trainer.sampler.restarts)
    metrics["time/sync_s"] = time.perf_counter() - sync_started
    metrics["time/step_s"] = time.perf_counter() - started
    metrics["system/peak_rss_gib"] = peak_rss_gib()
    trainer.tracker.log_metrics(metrics, step)
    log_samples(trainer, problems, groups, scored, rewards, step)
    return metrics


def sample_rollouts(trainer: Trainer, problems: list[Problem],
                    greedy: bool = False) -> tuple[list[list[Completion]], float]:
    """k completions per problem from the sampler, with the current adapter (one greedy one if ``greedy``)."""
    s = trainer.config.sampling
    request = (SamplingRequest(n=1, temperature=0.0, max_tokens=s.max_tokens) if greedy else
               SamplingRequest(n=s.num_generations, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens))
    started = time.perf_counter()
    groups = trainer.sampler.generate(trainer.encoder([p.question for p in problems]), request, trainer.adapter)
    return groups, time.perf_counter() - started


def score_rollouts(trainer: Trainer, problems: list[Problem], groups) -> tuple[Scored, torch.Tensor]:
    """Verify every completion; rewards as an (N, k) tensor, with DAPO overlong shaping if set."""
    max_tokens = trainer.config.sampling.max_tokens
    scored = score_groups([p.answer for p in problems], groups, trainer.config.rewards, max_tokens)
    lengths = [len(c.token_ids) for group in groups for c in group]
    values = torch.tensor(scored.rewards, dtype=torch.float32)
    if trainer.config.grpo.truncation == "penalty":  # "mask" acts in build_batch
        values = apply_truncation(values, _truncated(groups).flatten(), "penalty",
                                  trainer.config.grpo.truncation_penalty)[0]
    values = shape_overlong(values, lengths, max_tokens, trainer.config.grpo.overlong_buffer)
    return scored, values.view(len(problems), -1)  # (N, k)


def greedy_rewards(trainer: Trainer, problems: list[Problem]) -> tuple[torch.Tensor | None, dict[str, float]]:
    """Under ``grpo.baseline: greedy``, each problem's greedy completion scored as the group's baseline, (N,);
    else ``None``. Its accuracy on the fresh batch tracks what held-out (greedy) evaluation will see."""
    if trainer.config.grpo.baseline != "greedy":
        return None, {}
    groups, sample_s = sample_rollouts(trainer, problems, greedy=True)
    scored, rewards = score_rollouts(trainer, problems, groups)  # (N, 1)
    return rewards[:, 0], {"baseline/greedy_accuracy": float(np.mean(scored.correct)),
                           "time/greedy_sample_s": sample_s}


def build_batch(trainer: Trainer, problems, groups, rewards: torch.Tensor,
                greedy: torch.Tensor | None = None) -> tuple[RolloutBatch | None, dict]:
    """Advantages against the group (or, given ``greedy`` rewards, the greedy completion); with dynamic
    sampling, groups without signal are dropped, and so are rows without gradient (:func:`gradient_rows`)."""
    cfg = trainer.config.grpo
    advantages = step_advantages(rewards, cfg, greedy)  # (N, k)
    keep = kept_groups(rewards, cfg, greedy)
    truncated = _truncated(groups)  # (N, k)
    rows_kept = apply_truncation(rewards, truncated, cfg.truncation, cfg.truncation_penalty)[1]  # (N, k)
    stats = {"groups/informative_fraction": float(informative_groups(rewards).float().mean()),
             "groups/kept": float(keep.sum()), "truncation/count": float(truncated.sum()),
             "truncation/masked": float((~rows_kept).sum())}
    prompts = trainer.encoder([p.question for p in problems])
    carries = gradient_rows(advantages, rows_kept, cfg)  # (N, k)
    stats["rows/zero_advantage_skipped"] = float((rows_kept & ~carries).sum())
    rows = [(prompts[i], c, float(advantages[i, j])) for i in range(len(problems)) if keep[i]
            for j, c in enumerate(groups[i]) if carries[i, j]]
    if not rows:
        return None, stats
    batch = RolloutBatch(prompt_ids=[r[0] for r in rows], completion_ids=[r[1].token_ids for r in rows],
                         sampler_logprobs=[r[1].logprobs for r in rows],
                         advantages=torch.tensor([r[2] for r in rows], dtype=torch.float32))
    s = trainer.config.sampling  # behaviour log-probs are stored before the first optimizer step
    attach_behaviour_logprobs(trainer.policy.model, batch, trainer.policy.tokenizer.pad_token_id, s.temperature,
                              cfg.micro_batch_size, single_step=takes_one_step(cfg), autocast=cfg.autocast,
                              multiple_of=cfg.pad_to_multiple_of,
                              # HF generate's float32 log-probs are the update's only when it runs in float32 too
                              sampler_is_trainer=s.backend == "hf" and s.top_p == 1.0
                              and not updates_in_bfloat16(trainer.policy.model, cfg.autocast))
    return batch, stats


def _truncated(groups) -> torch.Tensor:
    """(N, k) True where the sampler stopped at max_tokens."""
    return torch.tensor([[c.finish_reason == "length" for c in group] for group in groups], dtype=torch.bool)


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
               "curriculum/level": float(trainer.picker.level),
               "curriculum/batch_in_band": trainer.picker.last_batch_in_band,
               "curriculum/unseen_left": float(trainer.picker.unseen_left())}
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
