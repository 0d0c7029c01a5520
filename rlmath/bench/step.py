"""Seconds per GRPO step: rlmath (sample, score, update, sync) vs TRL ``GRPOTrainer``, same work.

Both sides: the same base model and dtype, the same prompts (the config's training problems), k =
``sampling.num_generations``, ``sampling.max_tokens``, ``sampling.temperature``, LoRA rank/alpha/targets, learning rate,
micro-batch (TRL: per-device batch = ``grpo.micro_batch_size`` with gradient accumulation up to
prompts x k), beta = 0, and the same reward (``rlmath.rollout_scoring.score``). TRL samples with transformers
``generate`` (``use_vllm=False``: TRL's vLLM path needs ``trl[vllm]``, which pins another vLLM).
Steps after the first are timed (the first pays one-off start-up costs on both sides); medians.
    rlmath bench step -c configs/default.yaml --out runs/bench_step.json
"""

from __future__ import annotations

import statistics
import tempfile
import time

from rlmath.bench.report import finish
from rlmath.errors import RLMathError
from rlmath.prompts import chat_messages


def run(config, *, steps: int, out=None, console=None) -> dict:
    """``steps`` timed steps per side after one warm-up step; ratio = ours / peer (lower is better)."""
    output = tempfile.mkdtemp(prefix="rlmath-bench-step-")
    config = config.model_copy(update={"output_dir": output, "sft": config.sft.model_copy(update={"warm_start": False})})
    ours = _rlmath_steps(config, steps + 1)[1:]
    peer = _trl_steps(config, steps + 1, output)[1:]
    result = {"name": "step", "ours": round(statistics.median(ours), 2), "peer": round(statistics.median(peer), 2),
              "ratio": round(statistics.median(ours) / statistics.median(peer), 3), "unit": "seconds per step",
              "ours_label": f"rlmath GRPO ({config.sampling.backend}, sync={config.engine_sync})",
              "peer_label": "TRL GRPOTrainer (HF generate)", "ours_runs": ours, "peer_runs": peer,
              "config": {"model": config.model.name_or_path, "prompts": config.grpo.prompts_per_step,
                         "k": config.sampling.num_generations, "max_tokens": config.sampling.max_tokens,
                         "lora_r": config.lora.r, "micro_batch_size": config.grpo.micro_batch_size}}
    return finish(result, out, console)


def _rlmath_steps(config, count: int) -> list[float]:
    from rlmath.loop import one_training_step, setup
    from rlmath.run import sync_adapter

    trainer = setup(config)
    try:
        trainer.adapter = sync_adapter(trainer, step=0)
        seconds = []
        for step in range(1, count + 1):
            started = time.perf_counter()
            one_training_step(trainer, step)
            seconds.append(round(time.perf_counter() - started, 2))
        trainer.tracker.finish("FINISHED")
    finally:
        trainer.sampler.close()
    return seconds


def _trl_steps(config, count: int, output: str) -> list[float]:
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise RLMathError(f"bench step needs trl for the peer side ({exc})") from None
    import torch

    from rlmath.data import load_problems
    from rlmath.models import resolve_model
    from rlmath.rollout_scoring import score

    base = resolve_model(config.model.name_or_path)
    k, prompts = config.sampling.num_generations, config.grpo.prompts_per_step
    problems = load_problems(config, "train")[: prompts * count]
    data = Dataset.from_list(peer_rows(problems, config))

    def reward(completions, answer, **_):
        texts = [c[0]["content"] for c in completions]
        return score(list(answer), texts, [len(t) for t in texts], config.rewards, config.sampling.max_tokens).rewards

    per_device = min(config.grpo.micro_batch_size, prompts * k)
    args = GRPOConfig(output_dir=f"{output}/trl", per_device_train_batch_size=per_device,
                      gradient_accumulation_steps=max(1, prompts * k // per_device), num_generations=k,
                      max_completion_length=config.sampling.max_tokens, temperature=config.sampling.temperature,
                      learning_rate=config.grpo.learning_rate, beta=config.grpo.beta, loss_type=config.grpo.loss_type,
                      max_steps=count, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                      seed=config.seed, bf16=False, dataloader_num_workers=0)
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")
    timer = _StepTimer(TrainerCallback)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=getattr(torch, config.model.dtype))
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=data,
                          processing_class=AutoTokenizer.from_pretrained(base), peft_config=lora, callbacks=[timer.callback])
    trainer.train()
    return timer.seconds


def peer_rows(problems, config) -> list[dict]:
    """TRL's dataset rows: the chat messages rlmath's sampler prompts with (system prompt and template), and the gold."""
    return [{"prompt": chat_messages(p.question, config), "answer": p.answer} for p in problems]


class _StepTimer:
    """Wall time between TRL's on_step_begin and on_step_end (generation, scoring, update)."""

    def __init__(self, base) -> None:
        self.seconds: list[float] = []
        timer = self

        class Callback(base):
            def on_step_begin(self, *args, **kwargs):
                timer.started = time.perf_counter()

            def on_step_end(self, *args, **kwargs):
                timer.seconds.append(round(time.perf_counter() - timer.started, 2))

        self.callback = Callback()
