"""GRPO and its variants (Dr. GRPO, DAPO) as small torch functions over a LoRA policy.

GRPO (Shao et al. 2024, DeepSeekMath) samples a group of k completions per prompt, uses the
group-normalised reward as each completion's advantage (no value network) and maximises a clipped
PPO surrogate, optionally with a KL penalty to the reference policy. What we keep and drop:

- several optimizer steps per sampled batch (``grpo.epochs`` × ``grpo.minibatches``, PPO style): the
  behaviour ("old") log-probs are stored with the batch before its first step, at the sampling
  temperature, so the ratio and its clip (``epsilon``, ``epsilon_high``) act from the second step on.
- the trainer divides logits by the sampling temperature, and both samplers record processed
  (post-temperature, post-top-p) log-probs: the gradient is that of the policy that sampled.
- the KL reference (``beta > 0``) is the adapter as it stood when the RL stage began
  (``grpo.reference: stage_start``, a frozen second LoRA) or the bare base (``base``); with
  ``beta = 0`` (the DAPO / Dr. GRPO default) there is no reference pass at all.
- vLLM and the trainer compute slightly different log-probs for the same tokens. Truncated importance
  sampling (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL") weights
  each token by ``min(π_train / π_sampler, cap)``, and the mismatch is logged every step.

Loss variants (``grpo.loss_type``):

- ``grpo``: std-scaled advantages, mean over each sequence's tokens, then over sequences.
- ``dr_grpo`` (Liu et al. 2025): advantages not divided by the group std, token sums divided by a
  constant (max_tokens), removing GRPO's length and difficulty biases.
- ``dapo`` (Yu et al. 2025): token-level mean over the whole batch.

DAPO's other three pieces are switches of their own, usable with any ``loss_type`` and defined here
so the loop only calls them: clip-higher (``epsilon_high``, :func:`clip_bounds`), dynamic sampling
(``dynamic_sampling``, :func:`kept_groups`) and overlong shaping (``overlong_buffer``,
:func:`shape_overlong`). ``dr_grpo`` also switches off std scaling whatever ``scale_rewards`` says
(:func:`scales_by_std`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from rlmath.config import GRPOConfig
from rlmath.distributed import global_weights, sum_gradients
from rlmath.policy import (
    Reference,
    model_device,
    pack_batch,
    reference_active,
    reference_logprobs,
    token_logprobs,
    training_precision,
)
from rlmath.sharding import full_norm, is_sharded, passes_over_ranks, summed_gradients
from rlmath.zero import ZeroOptimizer


@dataclass
class RolloutBatch:
    """Flattened rollouts of one step: B = prompts × k rows, each with its group advantage.

    ``old_logprobs`` are the behaviour policy's (the trainer's weights when the batch was sampled, at the
    sampling temperature), fixed for every optimizer step taken on this batch: they are what the PPO
    ratio and its clip are measured against. ``None`` until :func:`attach_behaviour_logprobs` fills them.
    """

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    sampler_logprobs: list[list[float]]
    advantages: torch.Tensor  # (B,)
    old_logprobs: list[list[float]] | None = None

    def rows(self, index: Sequence[int]) -> RolloutBatch:
        """The sub-batch of the given rows (a minibatch)."""
        pick = list(index)
        old = None if self.old_logprobs is None else [self.old_logprobs[i] for i in pick]
        return RolloutBatch([self.prompt_ids[i] for i in pick], [self.completion_ids[i] for i in pick],
                            [self.sampler_logprobs[i] for i in pick], self.advantages[pick], old)


@dataclass
class NonFiniteGuard:
    """Counts optimizer steps skipped in a row for a NaN/inf loss or gradient; ``limit`` of them trip it.

    One NaN step would poison every weight and Adam moment, so such a step is skipped rather than
    taken; but a run that only skips is not training, so the loop keeps one guard across rollout
    batches (a checkpoint saves ``consecutive``) and stops the run when it trips.
    """

    limit: int
    consecutive: int = 0

    @property
    def tripped(self) -> bool:
        return self.consecutive >= self.limit

    def record(self, stepped: bool) -> None:
        self.consecutive = 0 if stepped else self.consecutive + 1


def group_advantages(rewards: torch.Tensor, scale: bool, eps: float = 1e-4) -> torch.Tensor:
    """(N, k) rewards -> (N, k) advantages: reward minus group mean, optionally over group std.

    >>> group_advantages(torch.tensor([[1.0, 0.0], [2.0, 2.0]]), scale=False).tolist()
    [[0.5, -0.5], [0.0, 0.0]]
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + eps)
    return centred


def greedy_advantages(rewards: torch.Tensor, greedy: torch.Tensor) -> torch.Tensor:
    """(N, k) rewards, (N,) greedy rewards -> (N, k) advantages against the greedy completion (ReMax).

    A group whose samples all agree still teaches when greedy disagrees with them: four correct samples
    of a problem greedy gets wrong are four rows at +1.

    >>> greedy_advantages(torch.tensor([[1.0, 1.0], [1.0, 0.0]]), torch.tensor([0.0, 1.0])).tolist()
    [[1.0, 1.0], [0.0, -1.0]]
    """
    return rewards - greedy.unsqueeze(1)


def weigh_negatives(advantages: torch.Tensor, weight: float) -> torch.Tensor:
    """Scale the negative advantages by ``weight`` (``grpo.negative_weight``), leaving the positive ones alone.

    >>> weigh_negatives(torch.tensor([[1.5, -0.5, -1.0]]), 0.5).tolist()
    [[1.5, -0.25, -0.5]]
    """
    return torch.where(advantages < 0, advantages * weight, advantages)


def gradient_rows(advantages: torch.Tensor, rows_kept: torch.Tensor, config: GRPOConfig) -> torch.Tensor:
    """(N, k) rows the update must see: the kept ones, less (under dynamic sampling) those with a zero advantage.

    At ``negative_weight: 0`` that is every below-average row, most of a batch whose groups are mostly
    wrong; the update's cost is its rows, and without a KL term (``beta``) these add nothing to its gradient.
    Without dynamic sampling every kept row stays, so the per-sequence mean keeps its old denominator.
    """
    if config.beta > 0 or not config.dynamic_sampling:
        return rows_kept
    return rows_kept & (advantages != 0)


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """DAPO dynamic sampling: a group whose rewards are all equal has zero advantage everywhere.

    >>> informative_groups(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).tolist()
    [True, False]
    """
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > 1e-8


def scales_by_std(config: GRPOConfig) -> bool:
    """Divide advantages by the group std? ``scale_rewards``, except that Dr. GRPO never does."""
    return config.scale_rewards and config.loss_type != "dr_grpo"


def shape_overlong(rewards: torch.Tensor, lengths: Sequence[int], max_tokens: int, buffer: int) -> torch.Tensor:
    """DAPO overlong shaping: the last ``buffer`` tokens before ``max_tokens`` cost up to 1 reward, linearly.

    ``rewards`` and ``lengths`` are flat (one per completion); ``buffer == 0`` leaves the rewards alone.

    >>> shape_overlong(torch.tensor([1.0, 1.0, 1.0]), [4, 6, 8], max_tokens=8, buffer=4).tolist()
    [1.0, 0.5, 0.0]
    """
    if not buffer:
        return rewards
    over = torch.tensor([n - (max_tokens - buffer) for n in lengths], dtype=torch.float32)
    return rewards - torch.clamp(over / buffer, 0.0, 1.0)


def kept_groups(rewards: torch.Tensor, config: GRPOConfig, greedy: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) mask of the groups the update uses: with dynamic sampling the informative ones (against the
    greedy rewards ``greedy`` when given: some sample disagrees with greedy), else all."""
    if not config.dynamic_sampling:
        return torch.ones(rewards.shape[0], dtype=torch.bool)
    if greedy is None:
        return informative_groups(rewards)
    return (greedy_advantages(rewards, greedy).abs() > 1e-8).any(dim=1)


def step_advantages(rewards: torch.Tensor, config: GRPOConfig, greedy: torch.Tensor | None = None) -> torch.Tensor:
    """(N, k) advantages under ``config.baseline`` (``greedy``: the (N,) greedy rewards it needs), negatives
    weighted by ``negative_weight``."""
    if config.baseline == "greedy":
        if greedy is None:
            raise ValueError("grpo.baseline=greedy needs each prompt's greedy reward")
        advantages = greedy_advantages(rewards, greedy)
    else:
        advantages = group_advantages(rewards, scale=scales_by_std(config))
    return weigh_negatives(advantages, config.negative_weight)


def clip_bounds(config: GRPOConfig) -> tuple[float, float]:
    """(ε_low, ε_high) of the PPO clip: clip-higher only when ``epsilon_high`` is set, for any loss_type."""
    return config.epsilon, config.epsilon if config.epsilon_high is None else config.epsilon_high


def apply_truncation(rewards: torch.Tensor, truncated: torch.Tensor, mode: str, penalty: float):
    """Explicit handling of rollouts cut by ``max_tokens``: returns (rewards, keep), both (N, k).

    ``mask``: rewards unchanged (a truncated rollout still counts in its group's baseline) but ``keep`` is
    False, so it contributes no gradient: an unfinished solution is neither reinforced nor punished for
    content it never got to finish. ``penalty``: ``penalty`` is subtracted from its reward. ``none``: as is.

    >>> r, keep = apply_truncation(torch.tensor([[1.0, 0.0]]), torch.tensor([[False, True]]), "penalty", 0.5)
    >>> r.tolist(), keep.tolist()
    ([[1.0, -0.5]], [[True, True]])
    >>> apply_truncation(torch.tensor([[1.0, 0.0]]), torch.tensor([[False, True]]), "mask", 0.5)[1].tolist()
    [[True, False]]
    """
    if mode == "mask":
        return rewards, ~truncated
    if mode == "penalty":
        return rewards - penalty * truncated.float(), torch.ones_like(truncated)
    if mode == "none":
        return rewards, torch.ones_like(truncated)
    raise ValueError(f"grpo.truncation: unknown {mode!r}")


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


def behaviour_logprobs(model, batch: RolloutBatch, pad_id: int, temperature: float,
                       micro_batch_size: int, autocast: str = "none", multiple_of: int = 1) -> list[list[float]]:
    """One no-grad trainer pass over the batch at the sampling temperature: the behaviour log-probs."""
    was_training = model.training
    model.eval()
    out: list[list[float]] = [[] for _ in batch.completion_ids]
    with torch.no_grad():
        for chunk in length_sorted_chunks(batch, micro_batch_size):
            part = batch.rows(chunk)
            packed = pack_batch(part.prompt_ids, part.completion_ids, pad_id, device=model_device(model),
                                multiple_of=multiple_of)
            with training_precision(model, autocast):
                logp = token_logprobs(model, packed, temperature)  # (b, T)
            for row, index in enumerate(chunk):
                out[index] = logp[row, : len(batch.completion_ids[index])].tolist()
    model.train(was_training)
    return out


def attach_behaviour_logprobs(model, batch: RolloutBatch, pad_id: int, temperature: float, micro_batch_size: int,
                              sampler_is_trainer: bool, single_step: bool = False,
                              autocast: str = "none", multiple_of: int = 1) -> RolloutBatch:
    """Store the behaviour log-probs with the batch, before its first optimizer step.

    When the sampler *is* the trainer's model (HF backend, top_p = 1) its processed log-probs already are
    the trainer's at the sampling temperature, so they are reused. When the batch feeds one optimizer
    step only (``single_step``: epochs × minibatches = 1), the weights that compute the loss are the
    behaviour weights, so the loss's own forward (detached) gives them exactly and a separate pass would
    cost a forward over the batch for nothing: ``old_logprobs`` stays ``None`` (see
    :func:`micro_batch_loss`). Otherwise (vLLM, or top-p truncation, with batch reuse) one no-grad trainer
    pass computes them (under the update's ``autocast``, so the first step's ratio is 1), and the sampler's
    own numbers only feed the trainer/sampler importance correction.
    """
    if sampler_is_trainer:
        batch.old_logprobs = [list(row) for row in batch.sampler_logprobs]
    elif not single_step:
        batch.old_logprobs = behaviour_logprobs(model, batch, pad_id, temperature, micro_batch_size, autocast,
                                                multiple_of)
    return batch


def takes_one_step(config: GRPOConfig) -> bool:
    """Does a rollout batch feed exactly one optimizer step (the behaviour weights are the loss's weights)?"""
    return config.epochs * config.minibatches == 1


def length_sorted_chunks(batch: RolloutBatch, size: int) -> list[list[int]]:
    """Row indices in micro-batches of ``size``, rows of similar (prompt + completion) length together.

    Each micro-batch is padded to its longest row, so mixing a 120-token rollout with 30-token ones
    spends most of the forward/backward on padding; the loss weights are per row, so the grouping
    changes no gradient.

    >>> batch = RolloutBatch([[1]] * 4, [[1] * 9, [1], [1] * 8, [1, 1]], [[]] * 4, torch.zeros(4))
    >>> length_sorted_chunks(batch, 2)
    [[1, 3], [2, 0]]
    """
    total = [len(p) + len(c) for p, c in zip(batch.prompt_ids, batch.completion_ids)]
    order = sorted(range(len(total)), key=lambda row: total[row])
    return [order[start:start + size] for start in range(0, len(order), size)]


def micro_batch_loss(model, batch: RolloutBatch, rows: slice, weights: torch.Tensor, config: GRPOConfig, pad_id: int,
                     temperature: float = 1.0, reference: Reference | None = None):
    """Loss of one micro-batch (already weighted to sum to the minibatch loss) and its diagnostics.

    Three log-probs per token: ``logp`` (current weights, with gradient), ``old_logp`` (behaviour policy,
    fixed for the batch: the PPO ratio and clip) and ``sampler_logp`` (what the sampler reported: the
    truncated importance weight corrects the trainer/sampler mismatch at the behaviour policy).
    """
    device = model_device(model)
    packed = pack_batch(batch.prompt_ids[rows], batch.completion_ids[rows], pad_id, device=device,
                        multiple_of=config.pad_to_multiple_of)
    mask = packed.mask  # (b, T)
    with training_precision(model, config.autocast):
        logp = token_logprobs(model, packed, temperature)  # (b, T)
    # No stored behaviour log-probs: one optimizer step on this batch, so the current weights are the behaviour ones.
    old_logp = logp.detach() if batch.old_logprobs is None else _padded(batch.old_logprobs[rows], mask)  # (b, T)
    sampler_logp = _padded(batch.sampler_logprobs[rows], mask)
    log_ratio = (old_logp - sampler_logp) * mask  # trainer vs sampler at the behaviour policy, per token
    is_weight = torch.clamp(torch.exp(log_ratio), max=config.importance_cap) * mask
    advantages = batch.advantages[rows].unsqueeze(1).to(device)  # (b, 1)
    eps_low, eps_high = clip_bounds(config)
    per_token, clipped = clipped_surrogate(logp, old_logp, advantages, eps_low, eps_high)
    per_token = per_token * is_weight
    kl = torch.zeros_like(logp)
    if config.beta > 0:
        if reference is None:
            raise ValueError("grpo.beta > 0 needs a reference policy (policy.freeze_reference at stage start)")
        kl = k3_kl(logp, reference_logprobs(model, reference, packed, temperature))
        per_token = per_token + config.beta * kl
    token_weight = weights[rows].unsqueeze(1).to(device) * mask  # (b, T)
    loss = (per_token * token_weight).sum()
    tokens = mask.sum().clamp(min=1)
    ratio = torch.exp((logp.detach() - old_logp) * mask)  # current vs behaviour policy
    stats = {
        "kl": float((kl.detach() * mask).sum() / tokens),
        "clip_fraction": float((clipped * mask).sum() / tokens),
        "ratio_max": float(ratio.max()),
        "mismatch_abs_mean": float(log_ratio.abs().sum() / tokens),
        "mismatch_abs_max": float(log_ratio.abs().max()),
        "tokens": float(tokens),
    }
    return loss, stats


def grpo_step(model, optimizer, batch: RolloutBatch, config: GRPOConfig, max_tokens: int, pad_id: int,
              temperature: float = 1.0, reference: Reference | None = None, *,
              weights: torch.Tensor | None = None,
              reduce_gradients: Callable[[list[torch.Tensor]], None] | None = None,
              passes: Callable[[int], int] | None = None,
              guard: NonFiniteGuard | None = None) -> dict[str, float]:
    """``epochs`` passes over the rollout batch, each split into ``minibatches`` optimizer steps.

    The batch's behaviour log-probs stay fixed across all those steps, so from the second step on the
    ratio moves away from 1 and the clip acts (PPO's reuse of a batch). A batch without them gets them
    from one no-grad pass now, before any step (unless there is only one step: :func:`attach_behaviour_logprobs`). Metrics are token-weighted means over all steps
    (``*_max``: the maximum), plus the number of optimizer steps taken.

    A multi-process learner (``rlmath.distributed``) passes this rank's rows with ``weights``
    normalised over the global batch, and ``reduce_gradients`` to sum gradients across ranks before
    clipping, so every rank takes the single-process step. Those global weights hold for one step over
    the whole batch only, so they refuse ``epochs × minibatches > 1``. Under FSDP and DeepSpeed ZeRO-2,
    ``passes`` maps this rank's forward/backward count to the count every rank runs (zero-weight passes make
    up the difference); under DeepSpeed ``optimizer`` is a :class:`rlmath.zero.ZeroOptimizer`, whose engine
    runs each backward and the reduce, clip and step.

    An optimizer step whose loss or gradient norm is NaN/inf is skipped (:class:`NonFiniteGuard`, which
    the loop keeps across batches); once ``grpo.max_bad_steps`` in a row are skipped the guard trips and
    no further step is tried on this batch: the loop stops the run.
    """
    if (weights is not None or reduce_gradients is not None) and config.epochs * config.minibatches > 1:
        raise ValueError(f"grpo.epochs={config.epochs} x grpo.minibatches={config.minibatches}: the multi-process "
                         "learner takes one optimizer step per batch; set both to 1")
    if batch.old_logprobs is None:
        attach_behaviour_logprobs(model, batch, pad_id, temperature, config.micro_batch_size, sampler_is_trainer=False,
                                  single_step=takes_one_step(config), autocast=config.autocast,
                                  multiple_of=config.pad_to_multiple_of)
    count = len(batch.completion_ids)
    parts = max(1, min(config.minibatches, count))
    model.train()
    token_sums: dict[str, float] = {}
    maxima: dict[str, float] = {}
    guard = NonFiniteGuard(config.max_bad_steps) if guard is None else guard
    losses, norms, skipped, total_tokens = [], [], 0, 0.0
    for _ in range(config.epochs):
        order = torch.randperm(count).tolist()
        for part in range(parts):
            if guard.tripped:
                break
            index = order[part::parts]
            minibatch = batch.rows(index)
            given = None if weights is None else weights[index]
            loss, norm, tokens, stepped = _optimizer_step(model, optimizer, minibatch, config, max_tokens, pad_id,
                                                          temperature, reference, token_sums, maxima,
                                                          weights=given, reduce_gradients=reduce_gradients,
                                                          passes=passes)
            guard.record(stepped)
            skipped += not stepped
            losses.append(loss)
            norms.append(norm)
            total_tokens += tokens
    metrics = {key: value / max(total_tokens, 1.0) for key, value in token_sums.items()} | maxima
    finite = [n for n in norms if math.isfinite(n)]
    metrics.update(loss=sum(losses) / len(losses), grad_norm=sum(finite) / len(finite) if finite else float("nan"),
                   optimizer_steps=float(len(losses) - skipped), skipped_nonfinite=float(skipped),
                   **{"bad_steps/consecutive": float(guard.consecutive)})
    return metrics


def _optimizer_step(model, optimizer, batch: RolloutBatch, config: GRPOConfig, max_tokens: int, pad_id: int,
                    temperature: float, reference: Reference | None, token_sums: dict, maxima: dict, *,
                    weights: torch.Tensor | None = None,
                    reduce_gradients: Callable[[list[torch.Tensor]], None] | None = None,
                    passes: Callable[[int], int] | None = None):
    """One optimizer step over ``batch``, accumulated over micro-batches; returns (loss, grad norm, tokens, stepped).

    ``stepped`` is False when the step was skipped for a NaN/inf loss or gradient norm. Under the
    multi-process learner only the gradient norm decides: it is computed from the summed gradients, so
    every rank sees the same number and skips the same steps, while each rank's loss is its own share.
    """
    lengths = [len(c) for c in batch.completion_ids]
    weights = sequence_weights(lengths, config.loss_type, max_tokens) if weights is None else weights
    optimizer.zero_grad(set_to_none=True)
    total_loss, total_tokens = 0.0, 0.0
    chunks = length_sorted_chunks(batch, config.micro_batch_size)
    backward = _backward(optimizer)
    for _ in range((passes(len(chunks)) if passes else len(chunks)) - len(chunks)):
        idle_pass(model, pad_id, config, backward, reference)
    for chunk in chunks:
        loss, stats = micro_batch_loss(model, batch.rows(chunk), slice(None), weights[chunk], config, pad_id,
                                       temperature, reference)
        backward(loss)
        total_loss += float(loss.detach())
        tokens = stats.pop("tokens")
        total_tokens += tokens
        for key, value in stats.items():
            if key.endswith("_max"):
                maxima[key] = max(maxima.get(key, 0.0), value)
            else:  # token-weighted mean across micro-batches and steps
                token_sums[key] = token_sums.get(key, 0.0) + value * tokens
    grad_norm, finite = _clip_and_step(model, optimizer, config, total_loss, reduce_gradients)
    return total_loss, grad_norm, total_tokens, finite


def _backward(optimizer) -> Callable[[torch.Tensor], None]:
    """DeepSpeed's engine runs the backward itself (its ZeRO hooks reduce the gradients); otherwise autograd's."""
    return optimizer.backward if isinstance(optimizer, ZeroOptimizer) else torch.Tensor.backward


def _clip_and_step(model, optimizer, config: GRPOConfig, total_loss: float,
                   reduce_gradients: Callable[[list[torch.Tensor]], None] | None) -> tuple[float, bool]:
    """(grad norm, stepped): reduce, clip to ``max_grad_norm`` and step, or skip a NaN/inf step."""
    if isinstance(optimizer, ZeroOptimizer):  # DeepSpeed reduces, clips and skips a non-finite norm in its step
        return optimizer.clip_and_step()
    params = [p for p in model.parameters() if p.requires_grad]
    if reduce_gradients is not None:
        reduce_gradients(params)
    grad_norm = float(full_norm(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)))
    finite = math.isfinite(grad_norm) and (reduce_gradients is not None or math.isfinite(total_loss))
    if finite:
        optimizer.step()
    else:  # one NaN/inf would poison every weight and Adam moment: skip the step, the guard counts it
        optimizer.zero_grad(set_to_none=True)
    return grad_norm, finite


def idle_pass(model, pad_id: int, config: GRPOConfig,
              backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
              reference: Reference | None = None) -> None:
    """A zero-weight forward/backward over two pad tokens: under FSDP every layer's all-gather and gradient
    reduce-scatter needs every rank (under ZeRO-2 every backward's bucket reduction), so a rank with fewer
    rows than the busiest one runs these instead. With a KL term it runs the reference forward between the
    two, as a real micro-batch does: under FSDP that forward all-gathers every layer as well."""
    ids = torch.full((1, 2), pad_id, device=model_device(model))
    with training_precision(model, config.autocast):
        logits = model(input_ids=ids).logits
    if config.beta > 0 and reference is not None:
        with torch.no_grad(), reference_active(model, reference):
            model(input_ids=ids)
    backward(logits.float().sum() * 0.0)


def distributed_grpo_step(model, optimizer, local: RolloutBatch, config: GRPOConfig, max_tokens: int,
                          pad_id: int, temperature: float = 1.0, reference: Reference | None = None,
                          guard: NonFiniteGuard | None = None) -> dict[str, float]:
    """``grpo_step`` on this rank's rows, with loss weights over the global batch and summed gradients."""
    weights = global_weights([len(c) for c in local.completion_ids],
                             lambda everyone: sequence_weights(everyone, config.loss_type, max_tokens))
    sharded = is_sharded(model)  # FSDP's backward already reduce-scattered the gradients (as a mean over ranks)
    zero = isinstance(optimizer, ZeroOptimizer)  # DeepSpeed's engine reduces them itself
    reduce = None if zero else summed_gradients if sharded else sum_gradients
    return grpo_step(model, optimizer, local, config, max_tokens, pad_id, temperature, reference, weights=weights,
                     reduce_gradients=reduce, passes=passes_over_ranks if sharded or zero else None, guard=guard)
