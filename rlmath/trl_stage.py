"""How a trl trainer (SFT, DPO) runs as one stage of an rlmath run: shared arguments and checkpoints.

Both stages train the LoRA adapter in fp32 on the run's device with a constant learning rate, log
to our tracker (never trl's own reporters) and take ``micro_batch_size`` rows per forward/backward,
accumulating gradients up to ``batch_size`` rows per optimizer step.

Checkpoints are the trainer's own (adapter, optimizer, scheduler, RNG states, step; its resume skips
the batches already seen), written every ``checkpoint.stage_every`` optimizer steps, after the last
one, and when SIGINT/SIGTERM asks the run to stop. Each is then sealed with the run's facts (mlflow
run, log offsets, stages evaluated before this one) and a manifest, which is what makes it count:
see :mod:`rlmath.checkpoint`. ``rlmath train --resume RUN_DIR`` hands the newest one back to the
trainer (``resume_from``).
"""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from rlmath.checkpoint import MANIFEST, PREFIX, latest_name, seal, stage_folder
from rlmath.config import Config
from rlmath.errors import RLMathError
from rlmath.eval_report import Stage
from rlmath.interrupt import StopOnSignal
from rlmath.run import RunState, run_facts


def output_folder(checkpoints: StageCheckpoints | None, prefix: str):
    """Context manager yielding the trainer's output folder: the stage's checkpoint folder, else a scratch one."""
    return nullcontext(str(checkpoints.folder)) if checkpoints else tempfile.TemporaryDirectory(prefix=prefix)


def shared_args(section, config: Config, output_dir: str, logging_steps: int,
                checkpoints: StageCheckpoints | None) -> dict:
    """TrainingArguments keywords common to trl's SFTConfig and DPOConfig for ``section`` (``config.sft``/``.dpo``)."""
    saving = checkpoints.args() if checkpoints else {"save_strategy": "no"}
    return saving | dict(output_dir=output_dir, learning_rate=section.learning_rate, num_train_epochs=section.epochs,
                max_steps=section.max_steps, max_length=section.max_length,
                per_device_train_batch_size=section.micro_batch_size or section.batch_size,
                gradient_accumulation_steps=section.accumulation_steps,
                report_to="none", logging_steps=logging_steps, lr_scheduler_type="constant",
                warmup_steps=0, seed=config.seed, dataloader_num_workers=0, disable_tqdm=True,
                # fp32 like the GRPO update and vLLM: trl defaults to bf16 autocast, and accelerate
                # leaves that autocast wrapped around model.forward after training.
                bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=not torch.cuda.is_available())


@dataclass
class StageCheckpoints:
    """Checkpointing of one trl stage of a run.

    ``stages``: the stages evaluated before this one (a resume must not evaluate them again);
    ``stop``: the run's signal handler; ``resume_from``: a sealed checkpoint folder of this stage.
    """

    run: RunState
    name: str
    stages: list[Stage]
    stop: StopOnSignal | None = None
    resume_from: Path | None = None

    @property
    def folder(self) -> Path:
        return stage_folder(self.run.tracker.run_dir, self.name)

    @property
    def stopping(self) -> bool:
        """A SIGINT/SIGTERM asked the run to stop: save this step, seal it, then stop."""
        return self.stop is not None and self.stop.requested

    def args(self) -> dict:
        """The trainer's output folder and save schedule (its own rotation off: :func:`seal` prunes)."""
        every = self.run.config.checkpoint.stage_every
        schedule = {"save_strategy": "steps", "save_steps": every} if every else {"save_strategy": "no"}
        return {"output_dir": str(self.folder), "save_total_limit": None, "save_only_model": False} | schedule

    def callback(self):
        """A ``TrainerCallback`` that asks for the saves described above and seals each one."""
        from transformers import TrainerCallback  # heavy: loaded only when a trl stage trains

        owner = self

        class SealCheckpoints(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step >= state.max_steps or owner.stopping:
                    control.should_save = True
                if owner.stopping:
                    control.should_training_stop = True
                if control.should_save:  # a redone step rewrites its folder in place: unsealed until on_save
                    (owner.folder / f"{PREFIX}{state.global_step}" / MANIFEST).unlink(missing_ok=True)

            def on_save(self, args, state, control, **kwargs):
                folder = owner.folder / f"{PREFIX}{state.global_step}"
                facts = run_facts(owner.run, owner.stages) | {"stage": owner.name, "step": state.global_step}
                seal(folder, facts, owner.run.config.checkpoint.keep)
                owner.run.tracker.push_metrics()
                if owner.stopping:
                    raise owner.stop.interrupted(f"{folder} written; continue with: "
                                                 f"rlmath train --resume {owner.run.tracker.run_dir}")

        return SealCheckpoints()


def train(trainer, checkpoints: StageCheckpoints | None):
    """``trainer.train()`` with our progress bar instead of its printed dicts, checkpointed and resumed."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    if checkpoints is None:
        return trainer.train()
    trainer.add_callback(checkpoints.callback())
    resume = str(checkpoints.resume_from) if checkpoints.resume_from else None
    try:
        return trainer.train(resume_from_checkpoint=resume)
    except OSError as exc:  # the trainer's only file writes are its checkpoints (disk full, permissions)
        raise RLMathError(f"{checkpoints.name}: could not write a checkpoint in {checkpoints.folder} "
                          f"({exc.strerror or exc}); the last complete one is {latest_name(checkpoints.folder)}"
                          ) from None
