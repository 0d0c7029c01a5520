"""Samplers: the real vLLM engine serving a LoRA adapter agrees with the trainer; HF backend shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlmath.config import load_config
from rlmath.models import resolve_model
from rlmath.policy import load_policy, save_adapter, sequence_logprobs
from rlmath.sampling import AdapterRef, HFSampler, SamplingRequest
from tests.engine_crash import kill_engine_core

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


def test_hf_sampler_keeps_the_first_eos_and_its_logprob_but_not_in_the_text(perturbed_policy) -> None:
    """Stopping is an action: like vLLM, token_ids/logprobs end with the first EOS; the text does not."""
    _, policy, _ = perturbed_policy
    sampler = HFSampler(policy.model, policy.tokenizer)
    eos = policy.tokenizer.eos_token_id
    plain = COMPLETION[:3]
    completion = sampler._to_completion(torch.tensor(plain + [eos, eos, eos]), torch.tensor([-0.1, -0.2, -0.3, -0.4, -5.0, -5.0]))
    assert completion.token_ids == plain + [eos]
    assert completion.logprobs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert completion.finish_reason == "stop"
    assert completion.text == policy.tokenizer.decode(plain, skip_special_tokens=True)
    cut = sampler._to_completion(torch.tensor(plain), torch.tensor([-0.1, -0.2, -0.3]))
    assert cut.token_ids == plain and cut.finish_reason == "length"


@pytest.mark.parametrize("temperature,top_p", [(0.5, 1.0), (1.7, 1.0)])
def test_hf_sampler_records_processed_logprobs_that_the_trainer_reproduces_at_that_temperature(
        perturbed_policy, temperature: float, top_p: float) -> None:
    """Sampler log-probs are those of the distribution sampled from; the trainer divides logits by T."""
    _, policy, _ = perturbed_policy
    sampler = HFSampler(policy.model, policy.tokenizer)
    torch.manual_seed(0)
    request = SamplingRequest(n=4, temperature=temperature, top_p=top_p, max_tokens=8)
    group = sampler.generate([PROMPT], request, adapter=None)[0]
    with torch.no_grad(), policy.model.disable_adapter():
        ours = sequence_logprobs(policy.model, [PROMPT] * 4, [c.token_ids for c in group], policy.tokenizer.pad_token_id,
                                 temperature=temperature)
        raw = sequence_logprobs(policy.model, [PROMPT] * 4, [c.token_ids for c in group], policy.tokenizer.pad_token_id)
    for completion, trainer, untempered in zip(group, ours, raw):
        assert torch.allclose(torch.tensor(completion.logprobs), trainer, atol=1e-4)
        assert not torch.allclose(torch.tensor(completion.logprobs), untempered, atol=1e-2)


def test_batch_limits_vllm_refuses_are_named_as_config_keys() -> None:
    from rlmath.errors import RLMathError
    from rlmath.sampling import _engine_start_error

    refused = ValueError("max_num_batched_tokens (32) must be greater than or equal to max_num_seqs (64).")
    error = _engine_start_error(refused, 0.3, None, {"max_num_seqs": 64, "max_num_batched_tokens": 32})
    assert isinstance(error, RLMathError)
    assert "sampling.max_num_seqs=64, sampling.max_num_batched_tokens=32" in str(error)


@pytest.mark.slow
def test_the_engine_batch_limits_reach_the_engine_and_a_group_larger_than_them_still_completes(perturbed_policy) -> None:
    """``sampling.max_num_seqs`` / ``max_num_batched_tokens`` bound the engine's batch (its resident heap on CPU)."""
    from rlmath.sampling import build_sampler

    config, policy, _ = perturbed_policy
    limited = config.model_copy(update={"sampling": config.sampling.model_copy(update={
        "sync": "merged", "max_num_seqs": 2, "max_num_batched_tokens": config.sampling.max_model_len})})
    sampler = build_sampler(limited, policy.base_path, policy)
    try:
        scheduler = sampler._llm.llm_engine.vllm_config.scheduler_config
        assert (scheduler.max_num_seqs, scheduler.max_num_batched_tokens) == (2, config.sampling.max_model_len)
        groups = sampler.generate([PROMPT, PROMPT[:8]], SamplingRequest(n=3, temperature=1.0, max_tokens=6), None)
        assert [len(group) for group in groups] == [3, 3]  # 6 sequences through a batch of 2
    finally:
        sampler.close()


def test_a_kv_cache_size_in_tokens_costs_half_the_bytes_in_a_bfloat16_engine(perturbed_policy) -> None:
    """One token is every layer's keys and values; the bytes follow the engine's dtype, the tokens do not."""
    from transformers import AutoConfig

    from rlmath.sampling import kv_cache_size

    config, policy, _ = perturbed_policy
    model = AutoConfig.from_pretrained(policy.base_path)
    head_dim = model.hidden_size // model.num_attention_heads
    per_token_fp32 = model.num_hidden_layers * 2 * model.num_key_value_heads * head_dim * 4
    sampling = config.sampling.model_copy(update={"kv_cache_gib": None, "kv_cache_tokens": 1000})
    assert kv_cache_size(sampling, policy.base_path, "float32") == ("sampling.kv_cache_tokens=1000",
                                                                    1000 * per_token_fp32)
    assert kv_cache_size(sampling, policy.base_path, "bfloat16")[1] == 1000 * per_token_fp32 // 2


def test_a_kv_cache_size_in_both_gib_and_tokens_is_refused_naming_both_keys() -> None:
    from rlmath.config import ConfigError

    with pytest.raises(ConfigError, match="kv_cache_gib or sampling.kv_cache_tokens"):
        load_config(ROOT / "configs/smoke.yaml", ["sampling.kv_cache_gib=1", "sampling.kv_cache_tokens=4096"])


@pytest.mark.slow
def test_the_engine_holds_the_configured_number_of_kv_cache_tokens(perturbed_policy) -> None:
    """vLLM's CPU worker turns the bytes back into blocks: the engine holds the tokens asked for, to one block."""
    from rlmath.sampling import build_sampler

    config, policy, _ = perturbed_policy
    sized = config.model_copy(update={"sampling": config.sampling.model_copy(update={
        "sync": "merged", "kv_cache_gib": None, "kv_cache_tokens": 4096})})
    sampler = build_sampler(sized, policy.base_path, policy)
    try:
        cache = sampler._llm.llm_engine.vllm_config.cache_config
        assert 4096 - cache.block_size < cache.num_gpu_blocks * cache.block_size <= 4096
    finally:
        sampler.close()


@pytest.mark.slow
@pytest.mark.parametrize(("sync", "setting"), [
    ("adapter", "sampling.gpu_memory_utilization=0.001"),  # engine in a subprocess
    ("merged", "sampling.gpu_memory_utilization=0.001"),   # in-process
    ("merged", "sampling.kv_cache_gib=0.0001"),            # explicit size: too small for one max_model_len sequence
    ("merged", "sampling.kv_cache_tokens=16"),             # the same in tokens
])
def test_a_kv_cache_that_does_not_fit_is_a_config_error_and_the_run_is_marked_failed(tmp_path: Path, sync,
                                                                                       setting) -> None:
    import subprocess
    import sys

    import mlflow

    out = subprocess.run([sys.executable, "-m", "rlmath.cli", "train", "-c", str(ROOT / "configs/smoke.yaml"),
                          "--set", f"output_dir={tmp_path}", "--set", "sampling.backend=vllm",
                          "--set", f"sampling.sync={sync}", "--set", setting],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode != 0
    assert setting in out.stderr + out.stdout
    assert "╭─" not in out.stderr  # no rich traceback from the CLI
    assert not any(f"rlmath/{name}.py" in out.stderr for name in ("cli", "run", "sampling", "loop"))
    if sync == "merged":  # in-process engine: nothing prints a traceback (with an engine subprocess, vLLM's own does)
        assert "Traceback" not in out.stderr
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and {run.info.status for run in runs} == {"FAILED"}



@pytest.mark.slow
@pytest.mark.engine_kill
def test_an_engine_killed_mid_run_is_restarted_once_then_a_second_crash_is_a_clear_error(perturbed_policy,
                                                                                        monkeypatch) -> None:
    """kill -9 of the engine core: the next call restarts it and serves the same adapter; the second time is fatal."""
    from rlmath.sampling import EngineCrashed, build_sampler

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # a merged-mode test earlier in the process set 0

    config, policy, path = perturbed_policy
    sampler = build_sampler(config, policy.base_path)  # sync: adapter, the engine core in its own process
    try:
        adapter = AdapterRef("policy", 1, str(path))
        before = sampler.completion_logprobs(PROMPT, COMPLETION, adapter)
        assert kill_engine_core() >= 1
        after = sampler.completion_logprobs(PROMPT, COMPLETION, adapter)  # restarted, adapter served again
        assert sampler.restarts == 1
        assert max(abs(a - b) for a, b in zip(before, after)) < 1e-4
        assert len(sampler.generate([PROMPT], SamplingRequest(n=2, temperature=1.0, max_tokens=4), adapter)[0]) == 2
        assert kill_engine_core() >= 1
        with pytest.raises(EngineCrashed, match="crashed again after its one restart"):
            sampler.generate([PROMPT], SamplingRequest(n=2, temperature=1.0, max_tokens=4), adapter)
    finally:
        sampler.close()


@pytest.mark.slow
def test_a_call_waiting_on_an_engine_core_that_died_is_woken_not_left_hanging(perturbed_policy, monkeypatch) -> None:
    """vLLM's monitor marks the client dead and shuts it down without waking ``get_output``: we must.

    This reproduces the monitor's action itself (``shutdown()`` on the client while a caller waits), the
    path that hung a fresh-clone run after an engine-core SIGKILL; the caller must get EngineDeadError.
    """
    import threading

    from vllm.v1.engine.exceptions import EngineDeadError

    from rlmath.sampling import build_sampler

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")  # the engine core in its own process
    config, policy, _ = perturbed_policy
    sampler = build_sampler(config, policy.base_path)
    client = sampler._llm.llm_engine.engine_core
    raised: list[BaseException] = []

    def wait_for_output() -> None:
        try:
            client.get_output()
        except BaseException as exc:  # noqa: BLE001 - the test inspects what woke it
            raised.append(exc)

    waiter = threading.Thread(target=wait_for_output, daemon=True)
    waiter.start()
    try:
        client.shutdown()  # what vLLM's engine monitor does once the engine-core process is gone
        waiter.join(timeout=30)
        assert not waiter.is_alive(), "get_output() still blocked 30 s after the engine was shut down"
        assert raised and isinstance(raised[0], EngineDeadError)
    finally:
        sampler.close()

