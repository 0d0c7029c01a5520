"""``rlmath synth --from-model -c CONFIG``: the model's own verified reasoning as training data.

Rejection sampling (as in STaR / Phi-4's self-generated data): sample k solutions per training
problem from the configured model (with ``lora.init_adapter`` if set), keep only the completions
that ``rewards`` verifies against the gold answer, and write them in the engine's own format, so
the result feeds ``algorithm: sft`` like any synthetic dataset. It lives above ``synth`` (which
imports nothing of the trainer) because it needs the sampler and the policy. One kept solution per problem (the
shortest verified one) keeps a problem the model finds easy from dominating the data.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from rlmath.config import Config
from rlmath.data import load_problems
from rlmath.errors import RLMathError
from rlmath.models import resolve_model
from rlmath.policy import load_policy
from rlmath.prompts import PromptEncoder
from rlmath.rollout_scoring import score_groups
from rlmath.sampling import AdapterRef, SamplingRequest, build_sampler
from rlmath.synth import engine
from rlmath.synth.command import rlmath_version
from rlmath.synth.export import write_dataset


def sample_verified(config: Config, out: Path, n: int, k: int, console=None) -> Path:
    """Sample ``k`` per problem for ``n`` training problems; write the verified ones to ``out``."""
    started = time.perf_counter()
    problems = load_problems(config, "train")[:n]
    base = resolve_model(config.model.name_or_path)
    policy = load_policy(config, base, trainable=False)
    adapter = AdapterRef("init", 1, str(Path(config.lora.init_adapter).resolve())) if config.lora.init_adapter else None
    sampler = build_sampler(config, base, policy)
    try:
        request = SamplingRequest(n=k, temperature=config.sampling.temperature, top_p=config.sampling.top_p,
                                  max_tokens=config.sampling.max_tokens)
        groups = sampler.generate(PromptEncoder(policy.tokenizer, config)([p.question for p in problems]), request,
                                  adapter)
    finally:
        sampler.close()
    samples = sum(len(group) for group in groups)
    scored = score_groups([p.answer for p in problems], groups, config.rewards, config.sampling.max_tokens)
    items = kept_items(problems, groups, scored.correct, config.model.name_or_path)
    if not items:
        raise RLMathError(f"--from-model: none of {samples} samples from {config.model.name_or_path} verified "
                          f"on {len(problems)} problems; nothing written to {out}")
    stats = _stats(config, n, k, len(problems), items, time.perf_counter() - started)
    write_dataset(items, out, stats)
    if console is not None:
        console.print(f"kept {len(items)} of {len(problems)} problems with a verified solution "
                      f"({samples} samples, {sum(scored.correct)} correct) -> {out}")
    return out


def kept_items(problems, groups, correct: list[bool], model: str) -> list[dict]:
    """The shortest verified completion per problem, as an engine-format item (split: train)."""
    items, index = [], 0
    for problem, group in zip(problems, groups):
        verified = [c for c, ok in zip(group, correct[index:index + len(group)]) if ok]
        index += len(group)
        if not verified:
            continue
        best = min(verified, key=lambda c: len(c.token_ids))
        items.append({"id": f"{problem.id}-self", "family": problem.family, "difficulty": problem.difficulty,
                      "question": problem.question, "answer": problem.answer, "solution": best.text.strip(),
                      "meta": {"template": "from-model", "surface": 0, "surfaces": 1, "kind": "self-generated",
                               "instance": problem.id, "split": "train", "params": model, "attempt": 0}})
    return items


def _stats(config: Config, n: int, k: int, problems: int, items: list[dict], seconds: float) -> dict:
    """The card's stats, in the engine's stats schema so the same card writer works."""
    return {"engine_version": engine.ENGINE_VERSION, "rlmath_version": rlmath_version(), "seed": config.data.train_seed,
            "n_requested": n, "families": list(config.data.families), "difficulty": [config.data.difficulty] * 2,
            "check": "rewards.verify_batch on model samples", "retried": 0, "dropped_check": problems - len(items),
            "command": "rlmath synth --from-model " + shlex.join([f"--n={n}", f"--k={k}"]),
            "generation_seconds": round(seconds, 3), "counts": {"train": len(items), "test": 0},
            "source_model": config.model.name_or_path, "adapter": config.lora.init_adapter}
