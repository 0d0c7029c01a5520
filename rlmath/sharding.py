"""FSDP for the multi-process learner: launched with ``configs/accelerate/fsdp.yaml``, every rank holds a
shard of each decoder layer (frozen base and LoRA weights alike) instead of a full replica.

Launch::

    accelerate launch --config_file configs/accelerate/fsdp.yaml -m rlmath.cli train -c CONFIG

A step has two phases, and every rank switches at the same points (inside ``rlmath.loop.learner_step``):

- **update**: each decoder layer is ``fully_shard``-ed (FSDP2; :func:`shard` says why the embeddings
  and head are not), so a layer's weights are all-gathered for its forward and backward and freed after it;
  LoRA gradients are reduce-scattered and turned into a *sum* over ranks (:func:`summed_gradients`),
  since each rank's loss is already its share of the global loss (``rlmath.distributed.global_weights``). Every all-gather needs every
  rank, so a rank with fewer rows runs zero-weight passes until it has run as many as the busiest
  rank (:func:`passes_over_ranks`).
- **rollout**: after the optimizer step every rank joins the all-gather of the whole model, layer by
  layer (:func:`to_rollout_phase`); rank 0 keeps the full weights for what it does alone (sampling with
  HF generate, the hand-over to vLLM, the sync probe, saving adapters, evaluation), as verl's colocated
  engines gather theirs, and the other ranks free each layer as soon as it is gathered. Rank 0 turns resharding after a forward
  off for that phase: a reshard would make its next forward an all-gather no other rank joins.

The KL reference (``grpo.beta > 0``, ``grpo.reference: stage_start``) is a second, frozen adapter made before
sharding (``rlmath.loop.prepare_learner``), so its weights are sharded with their layers (FSDP2 keeps frozen
parameters in a unit beside trainable ones; they get no gradient). Its forward, in the update phase,
all-gathers every layer like the policy's, so a rank's zero-weight pass runs one too
(``rlmath.algorithms.grpo.idle_pass``) and every rank runs the same collectives in the same order.
DeepSpeed ZeRO-2 is ``rlmath.zero``.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from accelerate.utils import parse_flag_from_env
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

from rlmath.errors import RLMathError

log = logging.getLogger(__name__)


def fsdp_launch() -> bool:
    """Did ``accelerate launch`` get an FSDP config (``distributed_type: FSDP`` or ``--use_fsdp``)?"""
    return parse_flag_from_env("ACCELERATE_USE_FSDP", default=False)


def check_sharding(config) -> None:
    """Refuse what the FSDP learner cannot do, before any rank loads a model (DeepSpeed: ``rlmath.zero.check_zero``)."""
    if fsdp_launch() and parse_flag_from_env("FSDP_OFFLOAD_PARAMS", default=False):
        raise RLMathError("accelerate config: fsdp_offload_params is not supported by rlmath's learner; set it to false")


def decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated blocks FSDP wraps one by one (transformers names them ``…layers`` or ``…h``)."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) and type(module[0]).__name__.endswith(
                ("DecoderLayer", "Block")):
            return list(module)
    raise RLMathError(f"FSDP: found no decoder layers to shard in {type(model).__name__}")


def shard(model) -> None:
    """``fully_shard`` each decoder layer (FSDP's gradient reduce-scatter averages: :func:`summed_gradients`).

    The embeddings, final norm and head stay whole on every rank: the update calls the decoder and
    the head separately (``rlmath.policy.token_logprobs`` runs the head over chunks of positions), so
    a root unit's hooks would never gather them. They are frozen and carry no LoRA weights, and the
    layers hold the bulk of the model (SmolLM2-135M: 106M of 135M parameters; Qwen2.5-1.5B: 1.31B of 1.54B).
    """
    device = next(model.parameters()).device
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    layers = decoder_layers(model)
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    log.info("FSDP: %d decoder layers sharded over %d ranks (FSDP2 full shard)", len(layers), dist.get_world_size())


def _units(model) -> list[FSDPModule]:
    return [module for module in model.modules() if isinstance(module, FSDPModule)]


def is_sharded(model) -> bool:
    return bool(_units(model))


def to_update_phase(model) -> None:
    """Free the gathered weights (local, no communication): each layer gathers its own in the forward."""
    for unit in _units(model):
        unit.reshard()
        unit.set_reshard_after_forward(True)


def to_rollout_phase(model) -> None:
    """Every rank: the whole model all-gathered, layer by layer; rank 0 keeps it, the others free each
    layer at once (so they never hold more than their shards and one gathered layer)."""
    keep = dist.get_rank() == 0
    for unit in _units(model):
        unit.unshard()
        if keep:
            unit.set_reshard_after_forward(False)
        else:
            unit.reshard()


def passes_over_ranks(count: int) -> int:
    """The most forward/backward passes any rank has this step: every rank runs that many."""
    most = torch.tensor([count])
    dist.all_reduce(most, op=dist.ReduceOp.MAX)
    return int(most)


def summed_gradients(params: list[torch.Tensor]) -> None:
    """Turn FSDP's averaged gradients into the sum over ranks that the global loss weights need.

    Each rank's loss is already its share of the global loss, so the step wants the sum; FSDP's
    reduce-scatter divides by the world size (a divide factor of 1 needs ``PREMUL_SUM``, which gloo lacks).
    """
    size = dist.get_world_size()
    for param in params:
        if param.grad is not None:
            param.grad.mul_(size)


def full_norm(norm: torch.Tensor) -> torch.Tensor:
    """``clip_grad_norm_`` of sharded gradients returns a DTensor: its value, the same on every rank."""
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def state_to_save(model) -> dict[str, torch.Tensor] | None:
    """The ``state_dict`` argument for peft's ``save_pretrained``: ``None`` (the model's own) unless sharded.

    FSDP's ``state_dict`` hands out sharded DTensors even while the weights are gathered; in the
    rollout phase the parameters themselves are rank 0's gathered tensors, so they are what is saved.
    """
    if not is_sharded(model):
        return None
    return {name: param.detach() for name, param in model.named_parameters()}
