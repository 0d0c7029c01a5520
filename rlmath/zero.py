"""DeepSpeed ZeRO-2 for the multi-process learner: launched with ``configs/accelerate/deepspeed_zero2.yaml``,
the LoRA gradients and AdamW state are partitioned over the ranks; the weights stay whole on every rank.

Launch::

    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml -m rlmath.cli train -c CONFIG

rlmath keeps its own update loop (``rlmath.algorithms.grpo.grpo_step``) and hands DeepSpeed only its two
ends, through :class:`ZeroOptimizer`, which the loop holds where it holds an optimizer:

- **backward**: ``engine.backward`` (ZeRO-2's hooks reduce each gradient bucket into its owner's partition
  as the backward fills it), on the loss times the world size: DeepSpeed averages over ranks, and each
  rank's loss is already its share of the global loss (``rlmath.distributed.global_weights``), so the
  step wants the sum. Every backward reduces, so every rank runs as many as the busiest one
  (zero-weight passes, ``rlmath.sharding.passes_over_ranks``), as under FSDP.
- **step**: ``engine.step`` clips the summed gradient to ``grpo.max_grad_norm`` over all partitions, skips
  the step when its norm is NaN/inf (the same on every rank), steps the client AdamW on this rank's
  partition and all-gathers the updated weights, so rank 0 samples, syncs and saves as under DDP.

DeepSpeed's config is built here from the rlmath config (``managed_gradient_accumulation: false``: the
loop, not DeepSpeed's micro-step counter, says when a step ends). Refused by name
(:func:`check_zero`): ZeRO-3 (the chunked, checkpointed lm_head recompute meets a released weight),
stages 0 and 1, offload and a ``deepspeed_config_file`` (its settings would be ignored).

The KL reference (``grpo.beta > 0``) needs nothing from DeepSpeed: ``rlmath.policy.freeze_reference`` adds
its frozen second adapter after the engine has wrapped the model, so the engine's optimizer partitions and
gradient hooks never see it, and with the weights whole on every rank each rank runs its reference forward
alone, with no collective.
"""

from __future__ import annotations

import logging
import os

import torch
from accelerate.utils import parse_flag_from_env

from rlmath.errors import RLMathError

log = logging.getLogger(__name__)

STAGES = (2,)  # ZeRO stages the learner runs (and the tests check)


def deepspeed_launch() -> bool:
    """Did ``accelerate launch`` get a DeepSpeed config (``distributed_type: DEEPSPEED`` or ``--use_deepspeed``)?"""
    return parse_flag_from_env("ACCELERATE_USE_DEEPSPEED", default=False)


def zero_stage() -> int:
    """The ZeRO stage accelerate's config (``zero_stage``) or ``--zero_stage`` asked for."""
    return int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))


def check_zero() -> None:
    """Refuse what the DeepSpeed learner cannot do, before any rank loads a model."""
    if not deepspeed_launch():
        return
    stage = zero_stage()
    if stage == 3:
        raise RLMathError("accelerate config: zero_stage 3 is not supported by rlmath's learner (the lm_head's "
                          "checkpointed recompute finds its weight released); launch with "
                          "configs/accelerate/fsdp.yaml (decoder layers sharded) or deepspeed_zero2.yaml")
    if stage not in STAGES:
        raise RLMathError(f"accelerate config: zero_stage {stage} is not supported by rlmath's learner; use "
                          "configs/accelerate/deepspeed_zero2.yaml (zero_stage 2) or ddp.yaml")
    for key in ("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"):
        if os.environ.get(key, "none").lower() not in ("", "none"):
            raise RLMathError(f"accelerate config: {key.removeprefix('ACCELERATE_DEEPSPEED_').lower()} is not "
                              "supported by rlmath's learner (ZeRO offload steps DeepSpeed's own CPU Adam, a "
                              "compiled op); set it to none")
    if os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "").lower() not in ("", "none"):
        raise RLMathError("accelerate config: deepspeed_config_file is not supported by rlmath's learner (it builds "
                          "DeepSpeed's config from the rlmath config); set zero_stage in the accelerate config")


def deepspeed_config(config, world_size: int) -> dict:
    """DeepSpeed's config for one optimizer step per rollout batch, over any number of micro-batches."""
    return {
        "train_micro_batch_size_per_gpu": 1,  # DeepSpeed's bookkeeping only: the loop makes its own micro-batches
        "gradient_accumulation_steps": 1,
        "train_batch_size": world_size,
        "managed_gradient_accumulation": False,  # step() ends the accumulation, after however many backwards
        "gradient_clipping": config.grpo.max_grad_norm,
        "zero_optimization": {"stage": zero_stage()},
        "zero_allow_untested_optimizer": True,  # the client torch optimizer (AdamW; SGD in tests)
        "steps_per_print": 2**31 - 1,
    }


def skip_compiled_comm() -> None:
    """On CPU, DeepSpeed's comm backend JIT-compiles a shared-memory all-reduce when it starts (a C++ build
    in every rank, ~50 s here, and it needs a compiler); only its inference all-reduce uses it. Marking
    it unbuildable leaves gloo doing every collective."""
    if torch.cuda.is_available():
        return
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


class ZeroOptimizer:
    """The DeepSpeed engine where the loop holds its optimizer: the backward and the step of one update.

    ``zero_grad``, ``state_dict`` and ``load_state_dict`` are the ZeRO optimizer's (a checkpoint holds this
    rank's partition of the AdamW state).
    """

    def __init__(self, engine, world_size: int):
        self.engine = engine
        self.world_size = world_size

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.engine.optimizer.zero_grad(set_to_none=set_to_none)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of this rank's share of the global loss; × world size turns DeepSpeed's mean into the sum."""
        self.engine.backward(loss * self.world_size)

    def clip_and_step(self) -> tuple[float, bool]:
        """(norm of the summed gradient, stepped): ``engine.step`` skips a NaN/inf norm on every rank alike."""
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm if norm is not None else float("nan")), bool(self.engine.was_step_applied())

    def state_dict(self) -> dict:
        return self.engine.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.engine.optimizer.load_state_dict(state)


def zero_optimizer(model, optimizer: torch.optim.Optimizer, config, world_size: int) -> ZeroOptimizer:
    """Every rank: wrap the model and its client optimizer in a DeepSpeed engine (it partitions the
    optimizer over the ranks and starts every rank from rank 0's weights). deepspeed is imported here only,
    under a DeepSpeed launch: it is a ``dev``-extra dependency that no other path needs."""
    skip_compiled_comm()
    import deepspeed

    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=deepspeed_config(config, world_size),
                                      dist_init_required=False)
    log.info("DeepSpeed ZeRO-%d over %d ranks (client optimizer %s)", zero_stage(), world_size,
             type(optimizer).__name__)
    return ZeroOptimizer(engine, world_size)
