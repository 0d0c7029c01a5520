"""GPU check of configs/qwen2.5-math-1.5b.yaml without the Hub: a random-init model of the real shape.

Qwen2.5-Math-1.5B's weights cannot be downloaded on an offline GPU box, but step time, tokens/s and
peak memory depend on the architecture and the recipe's sizes, not on the weight values. This script
builds Qwen2.5-1.5B's architecture (hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960,
vocab 151936, tied embeddings) in bf16, puts the recipe's LoRA (r=64) on it, and measures:

- one GRPO update (rlmath's ``grpo_step``) over prompts_per_step × k rows of the recipe's lengths,
- HF ``generate`` tokens/s with the adapter active (EOS disabled, so every row runs to the limit),
- peak GPU memory of each.

Run on a CUDA machine from the repo root (it imports only rlmath.config/policy/algorithms):
    python benchmarks/gpu_qwen_step.py --out gpu.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

QWEN25_15B = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1536, "num_hidden_layers": 28,
    "num_attention_heads": 12, "num_key_value_heads": 2, "intermediate_size": 8960, "vocab_size": 151936,
    "tie_word_embeddings": True, "max_position_embeddings": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
    "hidden_act": "silu", "bos_token_id": 151643, "eos_token_id": 151643, "use_sliding_window": False,
}


def build_model(config):
    """Random-init Qwen2.5-1.5B in bf16 on the GPU, with the recipe's LoRA adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**QWEN25_15B), dtype=torch.bfloat16)
    model.config.use_cache = False
    lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def measure_step(model, config, rows: int, prompt_len: int, completion_len: int) -> dict:
    """One grpo_step over ``rows`` random rollouts of full length: the recipe's worst case."""
    from rlmath.algorithms.grpo import RolloutBatch, grpo_step

    vocab = QWEN25_15B["vocab_size"]
    prompts = [torch.randint(0, vocab, (prompt_len,)).tolist() for _ in range(rows)]
    completions = [torch.randint(0, vocab, (completion_len,)).tolist() for _ in range(rows)]
    batch = RolloutBatch(prompt_ids=prompts, completion_ids=completions,
                         sampler_logprobs=[[-12.0] * completion_len for _ in range(rows)],
                         advantages=torch.randn(rows))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.grpo.learning_rate)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    grpo_step(model, optimizer, batch, config.grpo, config.sampling.max_tokens, pad_id=0)
    torch.cuda.synchronize()
    return {"step_s": round(time.perf_counter() - started, 2), "rows": rows, "prompt_len": prompt_len,
            "completion_len": completion_len, "micro_batch_size": config.grpo.micro_batch_size,
            "step_peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def measure_generate(model, batch: int, prompt_len: int, new_tokens: int, output_logits: bool) -> dict:
    """HF generate with the adapter active; EOS off so every row produces ``new_tokens``."""
    vocab = QWEN25_15B["vocab_size"]
    ids = torch.randint(0, vocab, (batch, prompt_len), device="cuda")
    model.eval()
    model.config.use_cache = True
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=True, temperature=1.0, top_k=0,
                       output_logits=output_logits, return_dict_in_generate=True, eos_token_id=None,
                       pad_token_id=0)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    model.config.use_cache = False
    model.train()
    return {"batch": batch, "new_tokens": new_tokens, "output_logits": output_logits,
            "tokens_per_s": round(batch * new_tokens / elapsed, 1), "seconds": round(elapsed, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def main() -> None:
    from rlmath.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/qwen2.5-math-1.5b.yaml")
    parser.add_argument("--rows", type=int, default=None, help="rollout rows (default prompts_per_step x k)")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--completion-len", type=int, default=None, help="default sampling.max_tokens")
    parser.add_argument("--gen", default="32x512:1,256x512:0", help="batchxtokens:logits,... generate runs")
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute decoder activations")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    config = load_config(args.config, [])
    model = build_model(config)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "dtype": "bfloat16",
              "gradient_checkpointing": args.gradient_checkpointing,
              "lora_r": config.lora.r, "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    if not args.skip_step:
        rows = args.rows or config.grpo.prompts_per_step * config.sampling.num_generations
        result["step"] = measure_step(model, config, rows, args.prompt_len, args.completion_len or config.sampling.max_tokens)
        print(json.dumps(result["step"]), flush=True)
    result["generate"] = []
    for spec in filter(None, args.gen.split(",")):
        shape, logits = spec.split(":")
        batch, tokens = (int(x) for x in shape.split("x"))
        result["generate"].append(measure_generate(model, batch, args.prompt_len, tokens, logits == "1"))
        print(json.dumps(result["generate"][-1]), flush=True)
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
