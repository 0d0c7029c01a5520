"""One prompt pass for a GRPO group's completions: the same log-probs and gradients as the packed rows."""

from __future__ import annotations

import pytest
import torch

from rlmath.algorithms.grpo import RolloutBatch, behaviour_logprobs, micro_batch_loss, prompt_group_chunks
from rlmath.config import GRPOConfig, load_config
from rlmath.policy import completion_logprobs, pack_batch, shared_prompt_logprobs, token_logprobs

PROMPT = [5, 6, 7, 8, 9, 10]
COMPLETIONS = [[11, 12, 13], [21], [31, 32, 33, 34, 35], [41, 42]]


@pytest.fixture
def tiny_model():
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    config = load_config("configs/smoke.yaml")
    model = load_policy(config, resolve_model(config.model.name_or_path)).model
    torch.manual_seed(3)
    with torch.no_grad():  # move the LoRA off zero so its gradient reaches lora_A as well as lora_B
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    return model


def _lora_grads(model) -> dict[str, torch.Tensor]:
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}


def _packed_logprobs(model, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    packed = pack_batch([PROMPT] * len(COMPLETIONS), COMPLETIONS, pad_id=0)
    return token_logprobs(model, packed, temperature), packed.mask


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_shared_prompt_logprobs_equal_the_packed_rows(tiny_model, temperature: float) -> None:
    with torch.no_grad():
        shared, mask = shared_prompt_logprobs(tiny_model, PROMPT, COMPLETIONS, 0, temperature)
        packed, packed_mask = _packed_logprobs(tiny_model, temperature)
    assert torch.equal(mask, packed_mask)
    assert torch.allclose(shared * mask, packed * mask, atol=1e-5)


def test_shared_prompt_gradients_equal_the_packed_rows(tiny_model) -> None:
    """The prompt's KV cache is repeated per row, and its gradient is summed back into the one prompt pass."""
    weights = torch.tensor([0.7, -1.3, 0.4, 2.0]).unsqueeze(1)
    shared, mask = shared_prompt_logprobs(tiny_model, PROMPT, COMPLETIONS, 0)
    (shared * mask * weights).sum().backward()
    via_shared = _lora_grads(tiny_model)
    tiny_model.zero_grad(set_to_none=True)
    packed, _ = _packed_logprobs(tiny_model)
    (packed * mask * weights).sum().backward()
    via_packed = _lora_grads(tiny_model)
    assert via_shared.keys() == via_packed.keys() and any("lora_A" in name for name in via_shared)
    for name, grad in via_shared.items():
        assert torch.allclose(grad, via_packed[name], atol=1e-5, rtol=1e-4), name


def test_a_single_token_completion_set_needs_no_second_pass(tiny_model) -> None:
    with torch.no_grad():
        shared, mask = shared_prompt_logprobs(tiny_model, PROMPT, [[11], [12]], 0)
        packed = token_logprobs(tiny_model, pack_batch([PROMPT, PROMPT], [[11], [12]], pad_id=0))
    assert shared.shape == (2, 1) and torch.allclose(shared, packed, atol=1e-5)


def test_rows_of_different_prompts_fall_back_to_the_packed_batch(tiny_model) -> None:
    prompts = [PROMPT, PROMPT[:3]]
    with torch.no_grad():
        logp, mask = completion_logprobs(tiny_model, prompts, COMPLETIONS[:2], 0)
        packed = pack_batch(prompts, COMPLETIONS[:2], pad_id=0)
        assert torch.allclose(logp, token_logprobs(tiny_model, packed), atol=1e-6)
    assert torch.equal(mask, packed.mask)


def test_gradient_checkpointing_in_training_uses_the_packed_batch(tiny_model) -> None:
    """transformers drops the KV cache under checkpointing in training mode: sharing would lose the prompt."""
    from rlmath.policy import shares_prompt_passes

    tiny_model.train()
    assert shares_prompt_passes(tiny_model)
    tiny_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert not shares_prompt_passes(tiny_model)
    logp, _ = completion_logprobs(tiny_model, [PROMPT] * 2, COMPLETIONS[:2], 0)
    packed = token_logprobs(tiny_model, pack_batch([PROMPT] * 2, COMPLETIONS[:2], pad_id=0))
    assert torch.allclose(logp, packed, atol=1e-5)


def test_micro_batches_hold_one_prompt_each_and_cover_every_row() -> None:
    prompts = [[1]] * 5 + [[2]] * 3
    completions = [[9] * n for n in (4, 1, 3, 2, 5, 2, 1, 3)]
    batch = RolloutBatch(prompts, completions, [[]] * 8, torch.zeros(8))
    chunks = prompt_group_chunks(batch, 2)
    assert sorted(row for chunk in chunks for row in chunk) == list(range(8))
    assert all(len(chunk) <= 2 and len({tuple(prompts[row]) for row in chunk}) == 1 for chunk in chunks)


def test_the_behaviour_pass_equals_the_loss_forward_of_a_shared_prompt_group(tiny_model) -> None:
    """With stored behaviour log-probs the first step's ratio must be exactly 1: both passes take the same path."""
    sampler = [[0.0] * len(c) for c in COMPLETIONS]
    batch = RolloutBatch([PROMPT] * 4, COMPLETIONS, sampler, torch.tensor([1.0, -1.0, 1.0, -1.0]))
    batch.old_logprobs = behaviour_logprobs(tiny_model, batch, 0, 0.6, micro_batch_size=4, autocast="bfloat16")
    config = GRPOConfig(micro_batch_size=4, autocast="bfloat16")
    _, stats = micro_batch_loss(tiny_model, batch, slice(None), torch.full((4,), 0.1), config, 0, temperature=0.6)
    assert stats["ratio_max"] == pytest.approx(1.0, abs=1e-6)
