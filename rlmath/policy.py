"""The trainer's side of the model: base weights + a peft LoRA adapter, and per-token log-probs.

Everything here is plain torch/peft with no single-process assumption (no global state, the model
is an argument), so the update step can later run under ``accelerate launch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from rlmath.config import Config
from rlmath.errors import RLMathError


@dataclass
class Policy:
    model: object  # peft.PeftModel
    tokenizer: object
    base_path: str


def load_policy(config: Config, base_path: str, adapter: str | Path | None = None, trainable: bool = True) -> Policy:
    """Base model + LoRA: a fresh adapter from ``config.lora``, or a saved one (``adapter`` or ``lora.init_adapter``)."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, config.model.dtype)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    model.config.use_cache = False
    saved = adapter or config.lora.init_adapter
    if saved is not None:
        saved = Path(saved)
        if not (saved / "adapter_config.json").is_file():
            raise RLMathError(f"adapter: {saved} has no adapter_config.json (not a peft adapter folder)")
        peft_model = PeftModel.from_pretrained(model, str(saved), is_trainable=trainable)
    else:
        lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                          target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, lora)
    return Policy(model=peft_model, tokenizer=tokenizer, base_path=base_path)


def left_pad(sequences: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompts for generation: ids (B, P) and attention mask (B, P)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids, mask


def pack_batch(prompts: Sequence[list[int]], completions: Sequence[list[int]], pad_id: int):
    """Right-pad prompt+completion rows; return ids (B, L), attention (B, L), completion mask (B, L-1).

    The completion mask is aligned with next-token log-probs: position t scores token t+1.
    """
    lengths = [len(p) + len(c) for p, c in zip(prompts, completions)]
    width = max(lengths)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # (B, L)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)  # (B, L)
    target_mask = torch.zeros((len(prompts), width - 1), dtype=torch.float32)  # (B, L-1)
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        seq = list(prompt) + list(completion)
        ids[row, : len(seq)] = torch.tensor(seq)
        attention[row, : len(seq)] = 1
        target_mask[row, len(prompt) - 1 : len(seq) - 1] = 1.0
    return ids, attention, target_mask


def token_logprobs(model, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """log p(token t+1 | tokens ≤ t) for every position: (B, L-1), computed without the full (B, L, V) log-softmax copy."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()  # (B, L-1, V)
    targets = ids[:, 1:]  # (B, L-1)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return picked - torch.logsumexp(logits, dim=-1)


def sequence_logprobs(model, prompts: Sequence[list[int]], completions: Sequence[list[int]], pad_id: int) -> list[torch.Tensor]:
    """Per-token log-probs of each completion given its prompt: a list of (T_i,) tensors."""
    ids, attention, mask = pack_batch(prompts, completions, pad_id)
    logprobs = token_logprobs(model, ids, attention)  # (B, L-1)
    return [logprobs[row][mask[row].bool()] for row in range(len(prompts))]


def save_adapter(model, path: Path) -> Path:
    """Write the adapter files only (no merge): what vLLM's LoRARequest and the Hub consume."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    return path


def lora_state(model) -> dict[str, torch.Tensor]:
    """A detached copy of the LoRA weights: tests use it to prove training changed them."""
    return {name: param.detach().clone() for name, param in model.named_parameters() if "lora_" in name}
