"""Seconds to give the sampler a new adapter: rlmath's hand-over vs merge + save + restart from disk.

Ours, on a running in-process engine, medians over ``repeats`` new adapter versions:
- ``merged``: merge base + LoRA on the side and ``reload_weights`` in place (the CPU best mode);
- ``adapter``: save the adapter files and serve them as a new ``LoRARequest`` (first-use load
  included, via a one-token scoring call).
The peer is the usual way without either: ``merge_and_unload`` on a copy, ``save_pretrained`` to disk
and a new ``vllm.LLM`` on that folder. Lower is better, so the ratio is ours / peer.
    rlmath bench sync -c configs/default.yaml --out runs/bench_sync.json
"""

from __future__ import annotations

import copy
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rlmath.bench.report import finish
from rlmath.bench.sampling import _adapter, _engine
from rlmath.bench.setup import bench_model, nudge_adapter

PROBE_COMPLETION = [1, 2, 3]


def run(config, *, repeats: int, out=None, console=None) -> dict:
    model = bench_model(config, prompts=1)
    work = Path(tempfile.mkdtemp(prefix="rlmath-bench-sync-"))
    times = {mode: _handover_seconds(model, work, mode, repeats) for mode in ("merged", "adapter")}
    peer = _restart_from_disk_seconds(model, work)
    shutil.rmtree(work, ignore_errors=True)
    ours = statistics.median(times["merged"])
    result = {"name": "sync", "ours": round(ours, 3), "peer": round(peer, 2), "ratio": round(ours / peer, 4),
              "unit": "seconds", "ours_label": "in-place merged reload", "peer_label": "merge + save + new engine",
              "config": {"model": config.model.name_or_path, "dtype": config.model.dtype, "lora_r": config.lora.r,
                         "repeats": repeats},
              "merged_runs": times["merged"], "adapter_median": round(statistics.median(times["adapter"]), 3),
              "adapter_runs": times["adapter"], "speedup": round(peer / ours, 1)}
    rows = [("adapter files + new LoRARequest (s, median)", f"{result['adapter_median']:.3f}"),
            ("speed-up peer/ours", f"{result['speedup']:.1f}x")]
    return finish(result, out, console, rows=rows)


def _handover_seconds(model, work: Path, mode: str, repeats: int) -> list[float]:
    """Per new adapter version: (save files +) first call that serves it, minus nothing (one token scored)."""
    sampler = _engine(model, mode)
    prompt = model.prompts[0]
    try:
        sampler.completion_logprobs(prompt, PROBE_COMPLETION, None)  # warm the engine, untimed
        seconds = []
        for version in range(1, repeats + 1):
            nudge_adapter(model.policy.model, seed=100 + version)
            started = time.perf_counter()
            sampler.completion_logprobs(prompt, PROBE_COMPLETION, _adapter(model, work / mode, version))
            seconds.append(round(time.perf_counter() - started, 4))
    finally:
        sampler.close()
    return seconds


def _restart_from_disk_seconds(model, work: Path) -> float:
    """Merge a copy, save it with the tokenizer, start a new engine on it and score one token."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    sampling = model.config.sampling
    started = time.perf_counter()
    merged = copy.deepcopy(model.policy.model).merge_and_unload()
    merged.save_pretrained(work / "merged")
    model.policy.tokenizer.save_pretrained(work / "merged")
    del merged
    llm = LLM(model=str(work / "merged"), dtype=model.config.engine_dtype, seed=model.config.seed,
              max_model_len=sampling.max_model_len, gpu_memory_utilization=sampling.gpu_memory_utilization,
              enforce_eager=sampling.enforce_eager)
    llm.generate([TokensPrompt(prompt_token_ids=model.prompts[0])], SamplingParams(max_tokens=1), use_tqdm=False)
    elapsed = time.perf_counter() - started
    llm.llm_engine.engine_core.shutdown()
    return elapsed
