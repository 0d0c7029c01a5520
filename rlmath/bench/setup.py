"""What the model benches share: a policy with a non-trivial adapter and the config's own prompts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlmath.config import Config


@dataclass
class BenchModel:
    config: Config
    base: str  # the resolved base model folder
    policy: object
    prompts: list[list[int]]  # chat-encoded training prompts


def bench_model(config: Config, prompts: int) -> BenchModel:
    """Resolve the model, load the policy with a perturbed adapter (as after some updates), encode prompts."""
    from rlmath.data import load_problems
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy
    from rlmath.prompts import PromptEncoder

    base = resolve_model(config.model.name_or_path)
    torch.manual_seed(config.seed)
    policy = load_policy(config, base)
    nudge_adapter(policy.model, seed=config.seed)
    questions = [p.question for p in load_problems(config, "train")[:prompts]]
    return BenchModel(config, base, policy, PromptEncoder(policy.tokenizer, config)(questions))


def nudge_adapter(model, seed: int, scale: float = 1e-3) -> None:
    """Move the LoRA B matrices (zero at init) so the adapter really changes outputs: a stand-in update."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)


def with_sampling(config: Config, **changes) -> Config:
    """The same config with some ``sampling`` keys changed (backend, sync)."""
    return config.model_copy(update={"sampling": config.sampling.model_copy(update=changes)})
