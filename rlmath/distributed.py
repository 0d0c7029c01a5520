"""The multi-process learner's process-group plumbing: one GRPO step split over ranks, equal to the
single-process step. The GRPO pieces that use it are ``rlmath.algorithms.grpo.distributed_grpo_step``
and, in the recipe, ``rlmath.loop.learner_step`` / ``follow_training`` (so this stage module never
imports a recipe).

Launch (DDP over replicated LoRA weights; gloo on CPU, nccl on GPUs)::

    accelerate launch --config_file configs/accelerate/ddp.yaml -m rlmath.cli train -c CONFIG

How a step is shared:

- every rank picks the same problems (same seed) and takes whole groups of them
  (:func:`rank_groups`): group advantages only need their own group, so they stay exact;
- the loss weights come from the *global* batch (:func:`global_weights`: the row count for
  ``grpo``/``dr_grpo``, the token count for ``dapo``), so each rank's loss is its share of the
  single-process loss; gradients are then *summed* across ranks (:func:`sum_gradients`) before
  clipping, so every rank clips the same gradient and takes the same optimiser step;
- a rank with no rows still joins the all-reduce with zero gradients (no hang on uneven shards);
- only rank 0 (:func:`is_main_process`) saves and syncs the adapter and logs to mlflow;
- the batch travels with its behaviour log-probs (``old_logprobs``, computed once on rank 0), and the
  sampling temperature and KL reference reach every rank's loss;
- one optimizer step per batch: the global weights normalise over the whole batch, so
  ``grpo.epochs × grpo.minibatches > 1`` is refused (:func:`check_learner_config`) rather than
  stepping on minibatches whose weights no rank could normalise without another exchange.

Everything is a no-op without an initialised process group, so one process runs the same code.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.distributed as dist

from rlmath.errors import RLMathError


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when no process group is running."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    return world()[0] == 0


def rank_groups(num_groups: int, rank: int, world_size: int) -> range:
    """This rank's contiguous share of whole groups; the first ``num_groups % world_size`` get one more.

    >>> [rank_groups(5, r, 2) for r in range(2)]
    [range(0, 3), range(3, 5)]
    """
    size, extra = divmod(num_groups, world_size)
    start = rank * size + min(rank, extra)
    return range(start, start + size + (rank < extra))


def global_weights(lengths: Sequence[int], weigh: Callable[[list[int]], torch.Tensor]) -> torch.Tensor:
    """This rank's rows' loss weights, ``weigh`` applied to every rank's lengths (gathered in rank order).

    ``weigh`` is the algorithm's normalisation (GRPO's ``sequence_weights``): this module knows ranks,
    not losses.
    """
    rank, size = world()
    if size == 1:
        return weigh(list(lengths))
    gathered: list[list[int] | None] = [None] * size
    dist.all_gather_object(gathered, list(lengths))
    everyone = [n for part in gathered for n in part]
    offset = sum(len(part) for part in gathered[:rank])
    return weigh(everyone)[offset:offset + len(lengths)]


def sum_gradients(params: list[torch.Tensor]) -> None:
    """All-reduce (sum) the trainable gradients, in one flat buffer; missing gradients count as zero."""
    if world()[1] == 1:
        return
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    flat = torch.cat([param.grad.reshape(-1) for param in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for param in params:
        count = param.grad.numel()
        param.grad.copy_(flat[offset:offset + count].view_as(param.grad))
        offset += count


def check_learner_config(config) -> None:
    """Refuse what the multi-process learner cannot do exactly, before any rank loads a model."""
    grpo = config.grpo
    if grpo.epochs * grpo.minibatches > 1:
        raise RLMathError(f"grpo.epochs={grpo.epochs}, grpo.minibatches={grpo.minibatches}: the multi-process "
                          "learner takes one optimizer step per rollout batch; set both to 1 or run one process")
    if config.sft.warm_start:
        raise RLMathError("sft.warm_start: not supported under a multi-process launch yet; run it alone first")
    if config.sampling.backend == "vllm" and config.engine_sync == "merged":
        # vLLM's engine would then join the learner's process group: its group set-up waits for ranks that never come
        raise RLMathError("sampling.sync=merged: not supported under a multi-process launch (the engine runs inside "
                          "rank 0's process and would join the learner's process group); use sampling.sync=auto or adapter "
                          "(the engine in its own process) or sampling.backend=vllm_server")


def shard_batch(batch, group_size: int, rank: int, world_size: int):
    """The rows of this rank's whole groups (rows are laid out group after group, ``group_size`` each).

    ``batch`` is a rollout batch with a ``rows(index)`` method; the rows keep their behaviour log-probs
    (``old_logprobs``), computed once on rank 0.
    """
    groups = rank_groups(len(batch.completion_ids) // group_size, rank, world_size)
    return batch.rows(range(groups.start * group_size, groups.stop * group_size))


def start_learner() -> bool:
    """Join the process group ``accelerate launch`` (or torchrun) describes; True when there are several ranks.

    accelerate's ``PartialState`` reads the launcher's environment and picks gloo on CPU, nccl on GPUs.
    On a machine without GPUs it is told so: ``accelerate launch --use_fsdp`` cannot be combined with
    ``--cpu``, and without it accelerate would join no process group at all (every rank its own rank 0).
    """
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available()).num_processes > 1


def share_batch(batch):
    """Rank 0's rollout batch (or ``None``: nothing to learn from this step), on every rank.

    The whole dataclass is pickled, so its ``old_logprobs`` travel with it.
    """
    if world()[1] == 1:
        return batch
    holder = [batch]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def share_parameters(model, *, frozen_too: bool = False) -> None:
    """Start every rank from rank 0's adapter (a fresh LoRA init draws from each process's RNG).

    ``frozen_too``: the base weights as well. Under an FSDP launch transformers loads the checkpoint on
    rank 0 only (accelerate's ``FSDP_CPU_RAM_EFFICIENT_LOADING``) and leaves the other ranks' weights
    empty (zeros here), expecting them to be sent from rank 0 before sharding.
    """
    if world()[1] == 1:
        return
    for param in model.parameters():
        if param.requires_grad or frozen_too:
            dist.broadcast(param.data, src=0)
