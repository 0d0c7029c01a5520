"""vLLM (with and without a LoRA adapter) vs transformers ``generate`` on the same prompts, one run.

Prints tokens/s for each and the ratios, so the sampler choice for a machine is a measurement:
    rlmath bench sampling --prompts 32 --n 4 --max-tokens 48 --out runs/bench_sampling.json
"""

from __future__ import annotations

import json
import time


def run(*, config_path: str, overrides: list[str], prompts: int, n: int, max_tokens: int, out: str | None) -> dict:
    """Time the three samplers on the same prompts; ratios are within this run only."""
    import tempfile
    from pathlib import Path

    import torch

    from rlmath.config import load_config
    from rlmath.data import load_problems
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy, save_adapter
    from rlmath.prompts import PromptEncoder
    from rlmath.sampling import AdapterRef, HFSampler, SamplingRequest, build_sampler

    config = load_config(config_path, overrides)
    base = resolve_model(config.model.name_or_path)
    policy = load_policy(config, base)
    with torch.no_grad():  # a non-trivial adapter, as after a few updates
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 1e-3)
    adapter_dir = save_adapter(policy.model, Path(tempfile.mkdtemp()) / "adapter")
    adapter = AdapterRef("bench", 1, str(adapter_dir))
    prompt_ids = PromptEncoder(policy.tokenizer, config)([p.question for p in load_problems(config, "train")[:prompts]])
    request = SamplingRequest(n=n, temperature=1.0, max_tokens=max_tokens)

    def timed(sampler, ref) -> float:
        started = time.perf_counter()
        groups = sampler.generate(prompt_ids, request, ref)
        tokens = sum(len(c.token_ids) for g in groups for c in g)
        return tokens / (time.perf_counter() - started)

    results = {}
    hf = HFSampler(policy.model, policy.tokenizer, batch_size=256)
    results["hf_generate_lora"] = timed(hf, adapter)
    vllm = build_sampler(config, base)
    timed(vllm, None)  # warm-up
    results["vllm_base"] = timed(vllm, None)
    results["vllm_lora"] = timed(vllm, adapter)
    vllm.close()
    results["ratio_vllm_lora_over_hf"] = results["vllm_lora"] / results["hf_generate_lora"]
    results["ratio_vllm_lora_over_vllm_base"] = results["vllm_lora"] / results["vllm_base"]
    results = {"name": "sampling", "unit": "tokens/s", "prompts": prompts, "n": n, "max_tokens": max_tokens, **results}
    print(json.dumps(results, indent=2))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=2))
    return results
