"""How a trl trainer (SFT, DPO) runs as one stage of an rlmath run: the arguments both share.

Both stages train the LoRA adapter in fp32 on the run's device with a constant learning rate, log
every few steps to our tracker (never trl's own reporters) and take ``micro_batch_size`` rows per
forward/backward, accumulating gradients up to ``batch_size`` rows per optimizer step.
"""

from __future__ import annotations

import torch

from rlmath.config import Config


def shared_args(section, config: Config, output_dir: str, logging_steps: int) -> dict:
    """TrainingArguments keywords common to trl's SFTConfig and DPOConfig for ``section`` (``config.sft``/``.dpo``)."""
    return dict(output_dir=output_dir, learning_rate=section.learning_rate, num_train_epochs=section.epochs,
                max_steps=section.max_steps, max_length=section.max_length,
                per_device_train_batch_size=section.micro_batch_size or section.batch_size,
                gradient_accumulation_steps=section.accumulation_steps,
                report_to="none", save_strategy="no", logging_steps=logging_steps, lr_scheduler_type="constant",
                warmup_steps=0, seed=config.seed, dataloader_num_workers=0, disable_tqdm=True,
                # fp32 like the GRPO update and vLLM: trl defaults to bf16 autocast, and accelerate
                # leaves that autocast wrapped around model.forward after training.
                bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=not torch.cuda.is_available())
