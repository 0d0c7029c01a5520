"""SFT warm start: teach the LoRA adapter the worked-solution format before RL (Phi-4's order).

Phi-4 first fine-tunes on synthetic worked solutions, then does preference/RL training. A small
model that never writes ``\\boxed{}`` gets almost no reward signal, so a short SFT pass on the
synthetic engine's verified solutions gives GRPO something to sharpen. We use trl's ``SFTTrainer``
on prompt/completion conversations (loss on the completion only) with the same chat template and
prompt the sampler uses, and forward its logs to our tracker instead of trl's own mlflow callback.

Used two ways: ``algorithm: sft`` (the recipe :func:`run_sft`, a run of its own evaluated before and
after) and ``sft.warm_start: true`` in a GRPO config (:func:`warm_start`: the same policy is
fine-tuned in place before GRPO). Both build on the shared lifecycle in :mod:`rlmath.run`.
"""

from __future__ import annotations

from pathlib import Path

from rlmath.checkpoint import find_resumable
from rlmath.config import Config
from rlmath.data import Problem
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage
from rlmath.evaluation import EvalResult
from rlmath.policy import save_adapter
from rlmath.prompts import chat_messages
from rlmath.run import (
    RunState,
    evaluate_and_log,
    finish_run,
    progress_bar,
    resume_stages,
    setup_run,
    sync_adapter,
    training_run,
)
from rlmath.trainer_logs import forward_logs
from rlmath.trl_stage import StageCheckpoints, output_folder, shared_args, train


def sft_dataset(problems: list[Problem], config: Config):
    """Conversational prompt/completion rows; the completion is the verified worked solution."""
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()  # trl's map() bars would interleave with the run's own progress display
    rows = [{"prompt": chat_messages(p.question, config), "completion": [{"role": "assistant", "content": p.solution}]}
            for p in problems if p.solution]
    if not rows:
        raise RLMathError("sft: the training problems carry no worked solutions (use data.source: synth)")
    return Dataset.from_list(rows)


def train_sft(policy, problems: list[Problem], config: Config, log, on_step=None,
              checkpoints: StageCheckpoints | None = None) -> dict[str, float]:
    """Fine-tune ``policy.model`` (a PeftModel) in place.

    ``log(metrics, step)`` receives trl's logs; ``on_step(step, total)`` drives a progress bar;
    ``checkpoints`` (in a run) saves and resumes the stage.
    """
    # trl (and its transformers trainer) load only when SFT runs: a GRPO run without warm start never pays for them.
    from trl import SFTConfig, SFTTrainer

    cfg = config.sft
    with output_folder(checkpoints, "rlmath-sft-") as out:
        args = SFTConfig(**shared_args(cfg, config, out, logging_steps=5, checkpoints=checkpoints),
                         completion_only_loss=True, packing=False)
        trainer = SFTTrainer(model=policy.model, args=args, train_dataset=sft_dataset(problems, config),
                             processing_class=policy.tokenizer, callbacks=[forward_logs("sft", log, on_step)])
        result = train(trainer, checkpoints)
    policy.model.config.use_cache = False
    return {"sft/train_loss": float(result.training_loss), "sft/steps": float(result.global_step)}


def warm_start(state: RunState, console, stage: str = "sft", checkpoints: StageCheckpoints | None = None) -> EvalResult:
    """Phi-4 order: SFT on verified worked solutions, keep that adapter as ``adapter_sft/``, evaluate it.

    ``checkpoints`` (the run's) saves the SFT stage as it trains, or continues it from a saved step.
    """
    with progress_bar(console) as progress:
        task = progress.add_task(f"SFT warm start ({len(state.train)} worked solutions)", total=None)
        metrics = train_sft(state.policy, state.train, state.config, state.tracker.log_metrics,
                            on_step=lambda step, total: progress.update(task, completed=step, total=total),
                            checkpoints=checkpoints)
    state.tracker.log_metrics(metrics, 0)
    if stage == "sft":
        save_adapter(state.policy.model, state.tracker.run_dir / "adapter_sft")
    state.adapter = sync_adapter(state, step=0)
    result = evaluate_and_log(state, stage, state.adapter, 0)
    if stage == "sft":  # an SFT-only run logs its adapter as the final model in finish_run
        sft_metrics = result.metrics(f"eval/{stage}")
        state.tracker.log_adapter_model(state.tracker.run_dir / "adapter_sft", "sft", 0, sft_metrics)
    return result


def run_sft(config: Config, console, resume: Path | None = None) -> Path:
    """``algorithm: sft``: a tracked run that evaluates, fine-tunes on worked solutions, evaluates again.

    ``resume``: a run folder whose SFT stage was stopped; it continues from its latest stage checkpoint.
    """
    checkpoint = find_resumable(resume) if resume is not None else None
    state = setup_run(config, checkpoint)
    with training_run(state) as stop:
        if checkpoint is None:
            before = [Stage("base", None, evaluate_and_log(state, "base", adapter=None, step=0))]
        else:
            before = resume_stages(state, checkpoint)
        checkpoints = StageCheckpoints(state, "sft", before, stop, checkpoint and checkpoint.path)
        final = Stage("final", "adapter", warm_start(state, console, stage="final", checkpoints=checkpoints))
        finish_run(state, [*before, final], console)
    return state.tracker.run_dir
