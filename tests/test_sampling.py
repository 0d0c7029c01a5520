"""Samplers: the real vLLM engine serving a LoRA adapter agrees with the trainer; HF backend shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlmath.config import load_config
from rlmath.models import resolve_model
from rlmath.policy import load_policy, save_adapter, sequence_logprobs
from rlmath.sampling import AdapterRef, HFSampler, SamplingRequest

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [1, 4093, 198, 1780, 314, 216, 32, 2, 198, 1, 520, 9531, 198]
COMPLETION = [1780, 314, 216, 32, 30]


@pytest.fixture(scope="module")
def perturbed_policy(tmp_path_factory):
    """A tiny policy whose LoRA B matrices are non-zero, so the adapter really changes outputs."""
    config = load_config(ROOT / "configs/smoke.yaml")
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    path = save_adapter(policy.model, tmp_path_factory.mktemp("adapter") / "v1")
    return config, policy, path


def test_hf_sampler_returns_n_completions_with_aligned_logprobs(perturbed_policy) -> None:
    _, policy, _ = perturbed_policy
    sampler = HFSampler(policy.model, policy.tokenizer)
    groups = sampler.generate([PROMPT, PROMPT[:8]], SamplingRequest(n=3, temperature=1.0, max_tokens=6), adapter=None)
    assert [len(g) for g in groups] == [3, 3]
    for completion in groups[0] + groups[1]:
        assert len(completion.logprobs) == len(completion.token_ids) <= 6
        assert all(lp <= 0 for lp in completion.logprobs)


def test_hf_sampler_adapter_none_means_base_model(perturbed_policy) -> None:
    _, policy, path = perturbed_policy
    sampler = HFSampler(policy.model, policy.tokenizer)
    with_adapter = sampler.completion_logprobs(PROMPT, COMPLETION, AdapterRef("p", 1, str(path)))
    base = sampler.completion_logprobs(PROMPT, COMPLETION, None)
    assert max(abs(a - b) for a, b in zip(with_adapter, base)) > 1e-3


@pytest.mark.slow
def test_vllm_engine_serves_the_saved_lora_adapter(perturbed_policy) -> None:
    from rlmath.sampling import build_sampler

    config, policy, path = perturbed_policy
    sampler = build_sampler(config, policy.base_path)
    try:
        adapter = AdapterRef("policy", 1, str(path))
        served = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, adapter))
        base = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, None))
        with torch.no_grad():
            trained = sequence_logprobs(policy.model, [PROMPT], [COMPLETION], policy.tokenizer.pad_token_id)[0]
        assert float((served - trained).abs().max()) < 1e-3  # vLLM serves exactly this adapter
        assert float((base - trained).abs().max()) > 1e-2  # ... and the adapter matters
        groups = sampler.generate([PROMPT], SamplingRequest(n=4, temperature=1.0, max_tokens=8), adapter)
        assert len(groups[0]) == 4
        assert all(len(c.logprobs) == len(c.token_ids) for c in groups[0])
    finally:
        sampler.close()
