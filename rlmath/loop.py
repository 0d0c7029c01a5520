"""The training loop on one screen: sample → score → update → sync → track.

``run_training`` sets things up and ``one_training_step`` is the loop body; each stage is a named
function below it. GRPO maths lives in ``rlmath.algorithms.grpo``; SFT (``algorithm: sft``) is its
own recipe in ``rlmath.algorithms.sft``. Launch: ``rlmath train -c configs/default.yaml``.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlmath.algorithms.grpo import RolloutBatch, group_advantages, grpo_step, informative_groups
from rlmath.config import Config
from rlmath.curriculum import ProblemPicker
from rlmath.data import Problem, load_problems
from rlmath.errors import RLMathError
from rlmath.evaluation import EvalResult, evaluate
from rlmath.models import resolve_model
from rlmath.peak_memory import peak_rss_gib
from rlmath.policy import load_policy, save_adapter, sequence_logprobs
from rlmath.prompts import PromptEncoder
from rlmath.sampling import AdapterRef, Completion, Sampler, SamplingRequest, build_sampler
from rlmath.scoring import Scored, score_groups
from rlmath.tracking import Tracker, new_run_dir


@dataclass
class Trainer:
    """Everything a step needs; built once by ``setup``."""

    config: Config
    tracker: Tracker
    policy: object
    encoder: PromptEncoder
    sampler: Sampler
    optimizer: torch.optim.Optimizer
    picker: ProblemPicker
    train: list[Problem]
    eval: list[Problem]
    adapter: AdapterRef | None = None
    version: int = 0  # adapter versions handed to the sampler; vLLM caches by this id, so never reuse one


def run_training(config: Config, console) -> Path:
    """Train, evaluate before and after, save the adapter; return the run folder."""
    if config.algorithm == "sft":
        from rlmath.algorithms.sft import run_sft

        return run_sft(config, console)
    trainer = setup(config)
    try:
        before = evaluate_and_log(trainer, "eval/before", adapter=None, step=0)
        if config.sft.warm_start:
            warm_start(trainer, console)
        else:
            trainer.adapter = sync_adapter(trainer, step=0)
        with _progress(console) as progress:
            task = progress.add_task("GRPO", total=config.grpo.steps)
            for step in range(1, config.grpo.steps + 1):
                metrics = one_training_step(trainer, step)
                progress.update(task, advance=1, description=f"GRPO reward {metrics['reward/mean']:.2f} acc {metrics['accuracy']:.2f}")
                if config.grpo.eval_every and step % config.grpo.eval_every == 0 and step < config.grpo.steps:
                    evaluate_and_log(trainer, "eval/during", trainer.adapter, step)
        after = evaluate_and_log(trainer, "eval/after", trainer.adapter, config.grpo.steps)
        finish_run(trainer, before, after, console)
    except BaseException:
        trainer.tracker.finish("FAILED")
        raise
    finally:
        trainer.sampler.close()
    return trainer.tracker.run_dir


def warm_start(trainer: Trainer, console, prefix: str = "eval/after_sft") -> EvalResult:
    """Phi-4 order: SFT on verified worked solutions first, then RL from that adapter."""
    from rlmath.algorithms.sft import train_sft

    with _progress(console) as progress:
        task = progress.add_task(f"SFT warm start ({len(trainer.train)} worked solutions)", total=None)
        metrics = train_sft(trainer.policy, trainer.train, trainer.config, trainer.tracker.log_metrics,
                            on_step=lambda step, total: progress.update(task, completed=step, total=total))
    trainer.tracker.log_metrics(metrics, 0)
    trainer.adapter = sync_adapter(trainer, step=0)
    return evaluate_and_log(trainer, prefix, trainer.adapter, 0)


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
    sync_started = time.perf_counter()
    trainer.adapter = sync_adapter(trainer, step=step)
    metrics = step_metrics(trainer, groups, scored, rewards, sample_s) | batch_stats | update
    metrics["time/sync_s"] = time.perf_counter() - sync_started
    metrics["time/step_s"] = time.perf_counter() - started
    metrics["system/peak_rss_gib"] = peak_rss_gib()
    trainer.tracker.log_metrics(metrics, step)
    log_samples(trainer, problems, groups, scored, rewards, step)
    return metrics


def setup(config: Config) -> Trainer:
    """Resolve the model, then seed everything, load data and model, start the sampler and the tracker.

    Seeding comes after ``resolve_model``: a cold cache builds the model, and nothing that happens only
    on a machine's first run may shift the run's random stream.
    """
    base = resolve_model(config.model.name_or_path)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    train, held_out = load_problems(config, "train"), load_problems(config, "eval")
    if config.eval.limit:
        held_out = held_out[: config.eval.limit]
    policy = load_policy(config, base)
    tracker = Tracker(config, new_run_dir(config, config.algorithm), kind="train")
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.grpo.learning_rate, weight_decay=config.grpo.weight_decay)
    picker = ProblemPicker(train, config.seed, curriculum=config.data.curriculum, low=config.data.curriculum_low,
                           high=config.data.curriculum_high, promote_at=config.data.promote_at,
                           promote_window=config.data.promote_window)
    sampler = build_sampler(config, base, policy)
    return Trainer(config, tracker, policy, PromptEncoder(policy.tokenizer, config), sampler, optimizer, picker,
                   train, held_out)


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
    values = torch.tensor(scored.rewards, dtype=torch.float32)
    buffer = trainer.config.grpo.overlong_buffer
    if buffer:
        over = torch.tensor([len(c.token_ids) - (max_tokens - buffer) for group in groups for c in group],
                            dtype=torch.float32)
        values = values - torch.clamp(over / buffer, 0.0, 1.0)
    return scored, values.view(len(problems), -1)  # (N, k)


def build_batch(trainer: Trainer, problems, groups, rewards: torch.Tensor) -> tuple[RolloutBatch | None, dict]:
    """Group advantages; with dynamic sampling, groups whose rewards are all equal are dropped."""
    cfg = trainer.config.grpo
    advantages = group_advantages(rewards, scale=cfg.scale_rewards and cfg.loss_type != "dr_grpo")  # (N, k)
    keep = informative_groups(rewards) if cfg.dynamic_sampling else torch.ones(len(problems), dtype=torch.bool)
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


def sync_adapter(trainer: Trainer, step: int) -> AdapterRef:
    """Save adapter files, point the sampler at them (no merge, no reload), probe, drop the old files."""
    trainer.version += 1
    path = save_adapter(trainer.policy.model, trainer.tracker.run_dir / "adapters" / f"v{trainer.version}")
    adapter = AdapterRef("policy", trainer.version, str(path.resolve()))
    if trainer.config.grpo.probe and trainer.config.sampling.backend == "vllm":
        difference = probe_adapter(trainer, adapter)
        trainer.tracker.log_metrics({"sync/probe_max_abs_diff": difference}, step)
    if trainer.adapter is not None and trainer.adapter.path != adapter.path:
        shutil.rmtree(trainer.adapter.path, ignore_errors=True)
    return adapter


def probe_adapter(trainer: Trainer, adapter: AdapterRef) -> float:
    """Fail loudly if the sampler's log-probs of a fixed completion disagree with the trainer's."""
    prompt = trainer.encoder([trainer.eval[0].question])[0]
    completion = trainer.policy.tokenizer.encode(f"The answer is \\boxed{{{trainer.eval[0].answer}}}.",
                                                 add_special_tokens=False)
    with torch.no_grad():
        ours = sequence_logprobs(trainer.policy.model, [prompt], [completion], trainer.policy.tokenizer.pad_token_id)[0]
    theirs = torch.tensor(trainer.sampler.completion_logprobs(prompt, completion, adapter))
    difference = float((ours - theirs).abs().max())
    if difference > trainer.config.grpo.probe_tolerance:
        raise RLMathError(f"adapter sync probe failed: the sampler's log-probs differ from the trainer's by "
                          f"{difference:.4f} > grpo.probe_tolerance={trainer.config.grpo.probe_tolerance} "
                          f"(is it still serving an old adapter? version {adapter.version} at {adapter.path})")
    return difference


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


def evaluate_and_log(trainer: Trainer, prefix: str, adapter: AdapterRef | None, step: int) -> EvalResult:
    result = evaluate(trainer.sampler, trainer.encoder, trainer.eval, trainer.config, adapter)
    trainer.tracker.log_metrics(result.metrics(prefix), step)
    trainer.tracker.log_table(result.rows, f"{prefix.replace('/', '_')}_completions.json")
    return result


def finish_run(trainer: Trainer, before: EvalResult, after: EvalResult, console) -> None:
    """Final adapter, eval.json, plots and artifacts; print what to look at next."""
    run_dir = trainer.tracker.run_dir
    save_adapter(trainer.policy.model, run_dir / "adapter")
    shutil.rmtree(run_dir / "adapters", ignore_errors=True)
    from rlmath.plots import plot_gains, plot_training_curves
    from rlmath.report import gains, gains_metrics, print_gains

    summary = gains(before, after, list(trainer.config.data.families), seed=trainer.config.seed)
    (run_dir / "eval.json").write_text(json.dumps({"before": before.summary(), "after": after.summary(),
                                                   "gains": summary}, indent=2))

    plots = [plot_gains(before, after, run_dir / "reasoning_gains.png"),
             plot_training_curves(run_dir / "metrics.jsonl", run_dir / "training_curves.png")]
    for path in [run_dir / "adapter", run_dir / "eval.json", run_dir / "config.yaml", *plots]:
        trainer.tracker.log_artifact(path, "adapter" if path.name == "adapter" else None)
    trainer.tracker.log_metrics({"eval/gain": after.accuracy - before.accuracy} | gains_metrics(summary),
                                trainer.config.grpo.steps)
    from rlmath.registry import register_adapter

    register_adapter(trainer.tracker, before.metrics("eval/before") | after.metrics("eval/after"))
    trainer.tracker.finish()
    print_gains(summary, console)
    console.print(f"held-out accuracy: before {before.accuracy:.3f} [{before.ci_low:.3f}, {before.ci_high:.3f}] → "
                  f"after {after.accuracy:.3f} [{after.ci_low:.3f}, {after.ci_high:.3f}] (n={after.total}, 95% CI)")
    if trainer.tracker.run_id:
        console.print(f"mlflow ui --backend-store-uri {trainer.tracker.uri}   # then open http://127.0.0.1:5000")


def _progress(console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console)
