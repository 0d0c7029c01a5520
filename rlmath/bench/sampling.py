"""Output tokens/s: vLLM (each sync mode, the sync cost included) vs transformers ``generate``.

Both sides sample the same prompts, k and lengths at T=1 with the same non-trivial adapter active.
Each timed vLLM round first hands the engine a new adapter version (adapter mode: save the files and
serve a new ``LoRARequest``; merged mode: merge + in-place reload), so the sync is paid every round as
in training. Engine start-up is reported, not timed into the rate. Medians over ``repeats`` rounds:
    rlmath bench sampling -c configs/default.yaml --out runs/bench_sampling.json
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rlmath.bench.report import finish
from rlmath.bench.setup import BenchModel, bench_model, nudge_adapter, with_sampling

MODES = ("adapter", "merged")


def run(config, *, prompts: int, n: int, max_tokens: int, repeats: int, modes=MODES, out=None, console=None) -> dict:
    from rlmath.sampling import HFSampler, SamplingRequest

    model = bench_model(config, prompts)
    request = SamplingRequest(n=n, temperature=1.0, max_tokens=max_tokens)
    work = Path(tempfile.mkdtemp(prefix="rlmath-bench-"))
    hf, live = HFSampler(model.policy.model, model.policy.tokenizer), _adapter(model, work, version=0)
    hf_rates = [_rate(lambda: hf.generate(model.prompts, request, live)) for _ in range(repeats)]  # live weights: no sync
    results = {"hf_generate": statistics.median(hf_rates)}
    extras = {"hf_generate_runs": hf_rates}
    version = 0
    for mode in modes:
        rates, start_s = [], time.perf_counter()
        sampler = _engine(model, mode)
        extras[f"vllm_{mode}_start_s"] = round(time.perf_counter() - start_s, 1)
        try:
            version += 1
            sampler.generate(model.prompts[:2], request, _adapter(model, work, version))  # warm-up, untimed
            for _ in range(repeats):
                version += 1
                nudge_adapter(model.policy.model, seed=version)  # a new adapter each round: the sync is real
                rates.append(_rate(lambda s=sampler, v=version: s.generate(model.prompts, request, _adapter(model, work, v))))
        finally:
            sampler.close()
        results[f"vllm_{mode}"] = statistics.median(rates)
        extras[f"vllm_{mode}_runs"] = rates
    best = max(modes, key=lambda m: results[f"vllm_{m}"])
    result = {"name": "sampling", "ours": round(results[f"vllm_{best}"], 1), "peer": round(results["hf_generate"], 1),
              "ratio": round(results[f"vllm_{best}"] / results["hf_generate"], 2), "unit": "output tokens/s",
              "ours_label": f"vLLM sync={best} ({config.engine_dtype}), sync included", "peer_label": "HF generate",
              "config": {"model": config.model.name_or_path, "dtype": config.model.dtype, "engine_dtype": config.engine_dtype,
                         "prompts": len(model.prompts),
                         "n": n, "max_tokens": max_tokens, "temperature": 1.0, "repeats": repeats, "lora_r": config.lora.r},
              "best_mode": best, **{k: round(v, 1) for k, v in results.items()}, **extras}
    rows = [(f"vLLM sync={m} (tokens/s, median)", f"{results[f'vllm_{m}']:.1f}") for m in modes]
    return finish(result, out, console, rows=rows)


def _engine(model: BenchModel, mode: str):
    from rlmath.sampling import build_sampler

    return build_sampler(with_sampling(model.config, backend="vllm", sync=mode), model.base, model.policy)


def _adapter(model: BenchModel, work: Path, version: int):
    """Save the live adapter as ``version`` (the adapter-mode hand-over writes these files every sync)."""
    from rlmath.policy import save_adapter
    from rlmath.sampling import AdapterRef

    return AdapterRef("bench", version, str(save_adapter(model.policy.model, work / f"v{version}")))


def _rate(generate) -> float:
    """Output tokens/s of one call, the adapter save/sync inside it included."""
    started = time.perf_counter()
    groups = generate()
    return sum(len(c.token_ids) for g in groups for c in g) / (time.perf_counter() - started)
