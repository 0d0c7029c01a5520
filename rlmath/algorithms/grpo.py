"""GRPO and its variants (Dr. GRPO, DAPO) as small torch functions over a LoRA policy.

GRPO (Shao et al. 2024, DeepSeekMath) samples a group of k completions per prompt, uses the
group-normalised reward as each completion's advantage (no value network) and maximises a clipped
PPO surrogate, optionally with a KL penalty to the reference policy. What we keep and drop:

- one gradient step per sampled batch (``num_iterations = 1``): the "old" policy is the current one
  detached, so the ratio is 1 at the step but its gradient is exactly the policy gradient; the clip
  matters once a batch is reused, and the code is written for that.
- the reference policy is the base model with the adapter disabled: no second copy of the weights,
  and with ``beta = 0`` (the DAPO / Dr. GRPO default) no reference pass at all.
- vLLM and the trainer compute slightly different log-probs for the same tokens. Truncated importance
  sampling (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL") weights
  each token by ``min(π_train / π_sampler, cap)``, and the mismatch is logged every step.

Loss variants (``grpo.loss_type``):

- ``grpo``: std-scaled advantages, mean over each sequence's tokens, then over sequences.
- ``dr_grpo`` (Liu et al. 2025): advantages not divided by the group std, token sums divided by a
  constant (max_tokens), removing GRPO's length and difficulty biases.
- ``dapo`` (Yu et al. 2025): token-level mean over the whole batch, clip-higher (``epsilon_high``),
  dynamic sampling (drop all-equal groups) and overlong shaping live in the loop and rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from rlmath.config import GRPOConfig
from rlmath.policy import model_device, pack_batch, token_logprobs


@dataclass
class RolloutBatch:
    """Flattened rollouts of one step: B = prompts × k rows, each with its group advantage."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    sampler_logprobs: list[list[float]]
    advantages: torch.Tensor  # (B,)


def group_advantages(rewards: torch.Tensor, scale: bool, eps: float = 1e-4) -> torch.Tensor:
    """(N, k) rewards -> (N, k) advantages: reward minus group mean, optionally over group std.

    >>> group_advantages(torch.tensor([[1.0, 0.0], [2.0, 2.0]]), scale=False).tolist()
    [[0.5, -0.5], [0.0, 0.0]]
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + eps)
    return centred


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """DAPO dynamic sampling: a group whose rewards are all equal has zero advantage everywhere.

    >>> informative_groups(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist()
    [True, False]
    """
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > 1e-8


def sequence_weights(lengths: Sequence[int], loss_type: str, max_tokens: int) -> torch.Tensor:
    """Weight of each token of each sequence, so that micro-batches sum to the full-batch loss.

    >>> sequence_weights([2, 4], "grpo", 8).tolist()
    [0.25, 0.125]
    >>> [round(w, 4) for w in sequence_weights([2, 4], "dapo", 8).tolist()]
    [0.1667, 0.1667]
    """
    count = len(lengths)
    if loss_type == "grpo":
        values = [1.0 / (count * max(n, 1)) for n in lengths]
    elif loss_type == "dr_grpo":
        values = [1.0 / (count * max_tokens)] * count
    elif loss_type == "dapo":
        values = [1.0 / max(sum(lengths), 1)] * count
    else:
        raise ValueError(f"grpo.loss_type: unknown {loss_type!r}")
    return torch.tensor(values, dtype=torch.float32)


def clipped_surrogate(logp, old_logp, advantages, eps_low: float, eps_high: float):
    """Per-token PPO objective to *minimise*: -min(r·A, clip(r, 1-ε_low, 1+ε_high)·A). All (B, T)."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * advantages
    return -torch.minimum(unclipped, clipped), (unclipped != clipped).float()


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's unbiased, non-negative KL estimator per token: e^(ref-logp) - (ref-logp) - 1."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def _padded(rows: Sequence[list[float]], mask: torch.Tensor) -> torch.Tensor:
    """Right-pad per-completion values to the (B, T) layout of ``pack_batch``."""
    out = torch.zeros_like(mask)
    for row, values in enumerate(rows):
        count = min(len(values), mask.shape[1])
        out[row, :count] = torch.tensor(values[:count], dtype=out.dtype)
    return out


def micro_batch_loss(model, batch: RolloutBatch, rows: slice, weights: torch.Tensor, config: GRPOConfig, pad_id: int):
    """Loss of one micro-batch (already weighted to sum to the batch loss) and its diagnostics."""
    device = model_device(model)
    packed = pack_batch(batch.prompt_ids[rows], batch.completion_ids[rows], pad_id, device=device)
    mask = packed.mask  # (b, T)
    logp = token_logprobs(model, packed)  # (b, T)
    old_logp = logp.detach()
    sampler_logp = _padded(batch.sampler_logprobs[rows], mask)
    log_ratio = (old_logp - sampler_logp) * mask  # trainer vs sampler, per token
    is_weight = torch.clamp(torch.exp(log_ratio), max=config.importance_cap) * mask
    advantages = batch.advantages[rows].unsqueeze(1).to(device)  # (b, 1)
    eps_high = config.epsilon if config.epsilon_high is None else config.epsilon_high
    per_token, clipped = clipped_surrogate(logp, old_logp, advantages, config.epsilon, eps_high)
    per_token = per_token * is_weight
    kl = torch.zeros_like(logp)
    if config.beta > 0:
        with torch.no_grad(), model.disable_adapter():
            ref_logp = token_logprobs(model, packed)
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + config.beta * kl
    token_weight = weights[rows].unsqueeze(1).to(device) * mask  # (b, T)
    loss = (per_token * token_weight).sum()
    tokens = mask.sum().clamp(min=1)
    stats = {
        "kl": float((kl * mask).sum() / tokens),
        "clip_fraction": float((clipped * mask).sum() / tokens),
        "mismatch_abs_mean": float(log_ratio.abs().sum() / tokens),
        "mismatch_abs_max": float(log_ratio.abs().max()),
        "tokens": float(tokens),
    }
    return loss, stats


def grpo_step(model, optimizer, batch: RolloutBatch, config: GRPOConfig, max_tokens: int, pad_id: int) -> dict[str, float]:
    """One optimiser step over the whole rollout batch, accumulated over micro-batches."""
    lengths = [len(c) for c in batch.completion_ids]
    weights = sequence_weights(lengths, config.loss_type, max_tokens)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total_loss, token_sums, maxima = 0.0, {}, {}
    for start in range(0, len(lengths), config.micro_batch_size):
        rows = slice(start, start + config.micro_batch_size)
        loss, stats = micro_batch_loss(model, batch, rows, weights, config, pad_id)
        loss.backward()
        total_loss += float(loss.detach())
        tokens = stats.pop("tokens")
        for key, value in stats.items():
            if key.endswith("_max"):
                maxima[key] = max(maxima.get(key, 0.0), value)
            else:  # token-weighted mean across micro-batches
                token_sums[key] = token_sums.get(key, 0.0) + value * tokens
    params = [p for p in model.parameters() if p.requires_grad]
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
    optimizer.step()
    total_tokens = max(sum(lengths), 1)
    metrics = {key: value / total_tokens for key, value in token_sums.items()} | maxima
    metrics.update(loss=total_loss, grad_norm=grad_norm if math.isfinite(grad_norm) else float("nan"))
    return metrics
