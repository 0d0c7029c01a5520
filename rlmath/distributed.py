"""The multi-process learner: one GRPO step split over ranks, equal to the single-process step.

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
- only rank 0 (:func:`is_main_process`) saves and syncs the adapter and logs to mlflow.

Everything is a no-op without an initialised process group, so one process runs the same code.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist

from rlmath.algorithms.grpo import RolloutBatch, grpo_step, sequence_weights
from rlmath.config import GRPOConfig


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


def global_weights(lengths: Sequence[int], loss_type: str, max_tokens: int) -> torch.Tensor:
    """This rank's rows' loss weights, normalised over every rank's rows (gathered in rank order)."""
    rank, size = world()
    if size == 1:
        return sequence_weights(lengths, loss_type, max_tokens)
    gathered: list[list[int] | None] = [None] * size
    dist.all_gather_object(gathered, list(lengths))
    everyone = [n for part in gathered for n in part]
    offset = sum(len(part) for part in gathered[:rank])
    return sequence_weights(everyone, loss_type, max_tokens)[offset:offset + len(lengths)]


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


def distributed_grpo_step(model, optimizer, local: RolloutBatch, config: GRPOConfig, max_tokens: int,
                          pad_id: int) -> dict[str, float]:
    """``grpo_step`` on this rank's rows, with global loss weights and summed gradients."""
    weights = global_weights([len(c) for c in local.completion_ids], config.loss_type, max_tokens)
    return grpo_step(model, optimizer, local, config, max_tokens, pad_id, weights=weights,
                     reduce_gradients=sum_gradients)


def shard_batch(batch: RolloutBatch, group_size: int, rank: int, world_size: int) -> RolloutBatch:
    """The rows of this rank's whole groups (rows are laid out group after group, ``group_size`` each)."""
    groups = rank_groups(len(batch.completion_ids) // group_size, rank, world_size)
    rows = slice(groups.start * group_size, groups.stop * group_size)
    return RolloutBatch(prompt_ids=batch.prompt_ids[rows], completion_ids=batch.completion_ids[rows],
                        sampler_logprobs=batch.sampler_logprobs[rows], advantages=batch.advantages[rows])


def start_learner() -> bool:
    """Join the process group ``accelerate launch`` (or torchrun) describes; True when there are several ranks.

    accelerate's ``PartialState`` reads the launcher's environment and picks gloo on CPU, nccl on GPUs.
    """
    from accelerate import PartialState

    return PartialState().num_processes > 1


def share_batch(batch: RolloutBatch | None) -> RolloutBatch | None:
    """Rank 0's rollout batch (or ``None``: nothing to learn from this step), on every rank."""
    if world()[1] == 1:
        return batch
    holder = [batch]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def share_parameters(model) -> None:
    """Start every rank from rank 0's adapter (a fresh LoRA init draws from each process's RNG)."""
    if world()[1] == 1:
        return
    for param in model.parameters():
        if param.requires_grad:
            dist.broadcast(param.data, src=0)


def learner_step(model, optimizer, batch: RolloutBatch | None, config, group_size: int, pad_id: int) -> dict[str, float]:
    """Every rank's update: rank 0 passes the step's batch, the others ``None``; each learns on its groups."""
    batch = share_batch(batch)
    if batch is None:
        return {}
    rank, size = world()
    local = shard_batch(batch, group_size, rank, size)
    return distributed_grpo_step(model, optimizer, local, config.grpo, config.sampling.max_tokens, pad_id)


def follow_training(config) -> None:
    """A rank other than 0: the same policy and optimiser, one update per step from rank 0's rollouts.

    It never samples, syncs, evaluates or logs: rank 0 does, and hands each step's batch over.
    """
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    policy = load_policy(config, resolve_model(config.model.name_or_path))
    share_parameters(policy.model)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.grpo.learning_rate, weight_decay=config.grpo.weight_decay)
    for _ in range(config.grpo.steps):
        learner_step(policy.model, optimizer, None, config, config.sampling.num_generations,
                     policy.tokenizer.pad_token_id)
