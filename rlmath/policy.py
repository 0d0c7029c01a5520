"""The trainer's side of the model: base weights + a peft LoRA adapter, and per-token log-probs.

Everything here is plain torch/peft with no single-process assumption (no global state, the model
is an argument), so the update step can later run under ``accelerate launch``.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from rlmath.config import Config
from rlmath.errors import RLMathError
from rlmath.hardware import resolve_bfloat16
from rlmath.sharding import is_sharded, state_to_save
from rlmath.sync_mode import launched_processes


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
    if config.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    saved = adapter or config.lora.init_adapter
    if saved is not None:
        saved = Path(saved)
        if not (saved / "adapter_config.json").is_file():
            raise RLMathError(f"adapter: {saved} has no adapter_config.json (not a peft adapter folder)")
        require_fitting_adapter(saved, base_path)
        try:
            peft_model = PeftModel.from_pretrained(model, str(saved), is_trainable=trainable)
        except (RuntimeError, ValueError, KeyError) as exc:  # size mismatch, missing target modules
            reason = str(exc).strip().splitlines()[-1][:300]
            raise RLMathError(f"adapter: {saved} does not fit the base model {base_path} ({reason}); "
                              f"was it trained on another model?") from None
    else:
        layers = None
        if config.lora.top_layers is not None:
            total = model.config.num_hidden_layers
            layers = list(range(max(total - config.lora.top_layers, 0), total))
        lora = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                          target_modules=list(config.lora.target_modules), layers_to_transform=layers,
                          task_type="CAUSAL_LM")
        peft_model = get_peft_model(model, lora)
    return Policy(model=peft_model, tokenizer=tokenizer, base_path=base_path)


def require_fitting_adapter(adapter: Path, base_path: str) -> None:
    """Refuse, naming the tensor, a saved LoRA adapter whose modules or shapes the base model lacks.

    Read from the adapter's tensor headers and the base built on the meta device: nothing is loaded, so
    ``rlmath eval`` can refuse before it opens a run, and vLLM never sees an adapter it would choke on.
    """
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    weights = Path(adapter) / "adapter_model.safetensors"
    if not Path(base_path).is_dir() or not weights.is_file():
        return  # a hub id base, or a .bin adapter: peft's own load is the check
    with torch.device("meta"):
        modules = dict(AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base_path)).named_modules())
    with safe_open(str(weights), "pt") as tensors:
        for key in tensors.keys():
            name, _, kind = key.rpartition(".lora_")
            module = modules.get(name.removeprefix("base_model.model."))
            shape = tensors.get_slice(key).get_shape()
            if module is None:
                problem = f"the base has no module {name.removeprefix('base_model.model.')}"
            elif kind.startswith("A") and hasattr(module, "in_features") and shape[1] != module.in_features:
                problem = f"{key} expects inputs of {shape[1]}, the base layer takes {module.in_features}"
            elif kind.startswith("B") and hasattr(module, "out_features") and shape[0] != module.out_features:
                problem = f"{key} has {shape[0]} outputs, the base layer {module.out_features}"
            else:
                continue
            raise RLMathError(f"adapter: {adapter} does not fit the base model {base_path}: {problem} "
                              f"(was it trained on another model?)")


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


@dataclass
class PackedBatch:
    """Prompts left-padded to P, completions right-padded to T, so every row's completion sits at P..P+T-1.

    That alignment lets the lm_head run over the last T positions only: the (L, V) product over
    prompt positions is pure waste.
    """

    ids: torch.Tensor  # (B, P+T)
    attention: torch.Tensor  # (B, P+T)
    positions: torch.Tensor  # (B, P+T), 0 at each row's first real token, as the sampler sees it
    mask: torch.Tensor  # (B, T) 1.0 on real completion tokens
    width: int  # T


def pack_batch(prompts: Sequence[list[int]], completions: Sequence[list[int]], pad_id: int,
               device: torch.device | str = "cpu", multiple_of: int = 1) -> PackedBatch:
    """Build the batch on CPU, then move it to ``device`` (the model's: CUDA for the GPU recipe).

    ``multiple_of`` widens the prompt side (more left padding, masked) until P+T is a multiple of it,
    so the passes see a few shapes rather than one per length; the completion side stays exact.
    """
    width = max(1, max(len(c) for c in completions))
    prompt_width = max(len(p) for p in prompts)
    prompt_width += -(prompt_width + width) % multiple_of
    ids = torch.full((len(prompts), prompt_width + width), pad_id, dtype=torch.long)  # (B, P+T)
    attention = torch.zeros_like(ids)
    mask = torch.zeros((len(prompts), width), dtype=torch.float32)  # (B, T)
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        start = prompt_width - len(prompt)
        ids[row, start:prompt_width] = torch.tensor(prompt, dtype=torch.long)
        attention[row, start:prompt_width] = 1
        if completion:
            ids[row, prompt_width:prompt_width + len(completion)] = torch.tensor(completion, dtype=torch.long)
            attention[row, prompt_width:prompt_width + len(completion)] = 1
            mask[row, : len(completion)] = 1.0
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    return PackedBatch(ids.to(device), attention.to(device), positions.to(device), mask.to(device), width)


LOGPROB_CHUNK = 32
"""Completion positions per lm_head chunk: only (B, 32, V) logits exist at once, forward and backward."""


def token_logprobs(model, batch: PackedBatch, temperature: float = 1.0) -> torch.Tensor:
    """log p(completion token t | everything before it): (B, T).

    ``temperature`` divides the logits as the sampler did (T=0, greedy, counts as 1): the policy being
    optimised is the one that produced the rollouts, so its log-probs must be at the sampling temperature.

    The full-vocabulary logits are the largest tensor of the update ((B, T, V): 7 GiB in float32 for
    the GPU recipe's micro-batch), so the decoder runs once and the lm_head + log-softmax run over
    chunks of positions under activation checkpointing: backward recomputes one chunk at a time.
    """
    from torch.utils.checkpoint import checkpoint

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with base_precision(model):
        hidden = base.get_decoder()(input_ids=batch.ids, attention_mask=batch.attention,
                                    position_ids=batch.positions).last_hidden_state  # (B, P+T, H)
    hidden = hidden[:, -batch.width - 1:-1]  # (B, T, H): positions P-1 .. P+T-2 predict the completion
    scale = 1.0 / temperature if temperature > 0 else 1.0
    targets = batch.ids[:, -batch.width:]  # (B, T)
    head = base.get_output_embeddings()
    chunks = [checkpoint(_chunk_logprobs, head, hidden[:, i:i + LOGPROB_CHUNK], targets[:, i:i + LOGPROB_CHUNK],
                         scale, use_reentrant=False)
              for i in range(0, batch.width, LOGPROB_CHUNK)]
    return torch.cat(chunks, dim=1)


def _chunk_logprobs(head, hidden: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """Log-probs of ``targets`` (B, C) from hidden states (B, C, H), with float32 log-softmax at 1/scale temperature."""
    with torch.autocast(hidden.device.type, enabled=False):  # float32 logits under an update's autocast
        logits = head(hidden.to(head.weight.dtype)).float() * scale  # (B, C, V)
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def model_device(model) -> torch.device:
    """Where the model's weights live: batches are built there."""
    return next(model.parameters()).device


def updates_in_bfloat16(model, autocast: str) -> bool:
    """Does ``grpo.autocast`` put this model's update under bfloat16 (``bfloat16_if_fast``: where its device is fast at it)?"""
    return resolve_bfloat16(autocast, otherwise="none", device_type=model_device(model).type) == "bfloat16"


def bfloat16_base_wanted(config: Config, model) -> bool:
    """``grpo.frozen_base: auto`` resolved: the update runs under bfloat16 autocast, in one process, and the
    trainer is not also the sampler (HF ``generate`` runs the model without autocast)."""
    return (config.algorithm == "grpo" and config.grpo.frozen_base == "auto" and launched_processes() == 1
            and not is_sharded(model) and config.sampling.backend != "hf"
            and updates_in_bfloat16(model, config.grpo.autocast))


def hold_base_in_bfloat16(model) -> None:
    """Cast the frozen base weight of every LoRA-wrapped layer to bfloat16, in place.

    Why it is exact: under the update's bfloat16 autocast every matrix multiply casts its float32 weight to
    bfloat16 first, so a weight stored in bfloat16 gives the same products, log-probs and gradients (the
    LoRA weights, norms, embedding and log-softmax stay float32). Why it saves: the float32 weights are
    mapped from the model's safetensors file (0.5 GiB resident for the embedded model once touched); the
    remaining frozen tensors are copied out of that mapping too, so the file is unmapped as a whole.
    """
    from peft.tuners.lora import LoraLayer

    cast = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLayer):
                weight = module.get_base_layer().weight
                if weight.dtype == torch.float32:
                    weight.data = weight.data.to(torch.bfloat16)
                    cast += 1
        if cast:
            for param in model.parameters():
                if not param.requires_grad and param.dtype == torch.float32:
                    param.data = param.data.clone()


def holds_bfloat16_base(model) -> bool:
    """Does this model hold its LoRA-wrapped base weights in bfloat16 (:func:`hold_base_in_bfloat16`)?"""
    from peft.tuners.lora import LoraLayer

    layer = next((m for m in model.modules() if isinstance(m, LoraLayer)), None)
    return layer is not None and layer.get_base_layer().weight.dtype == torch.bfloat16


def base_precision(model):
    """bfloat16 autocast for a forward outside the update's own (the sync probe) on a model whose float32
    inputs would otherwise meet bfloat16 base weights; a no-op everywhere else."""
    device = model_device(model).type
    if torch.is_autocast_enabled(device) or not holds_bfloat16_base(model):
        return nullcontext()
    return torch.autocast(device, dtype=torch.bfloat16)


def training_precision(model, autocast: str):
    """The autocast context of the GRPO update's forward passes (``grpo.autocast``).

    A no-op for ``none`` (and for ``bfloat16_if_fast`` on a device without bfloat16 units). Entered around
    the passes themselves, never installed on ``model.forward``: trl's own ``bf16=True`` leaves
    accelerate's autocast wrapped around ``model.forward`` after training, which put the sync probe
    2.8 nats off the served adapter.
    """
    return torch.autocast(model_device(model).type, dtype=torch.bfloat16, enabled=updates_in_bfloat16(model, autocast))


def sequence_logprobs(model, prompts: Sequence[list[int]], completions: Sequence[list[int]], pad_id: int,
                      temperature: float = 1.0) -> list[torch.Tensor]:
    """Per-token log-probs of each completion given its prompt: a list of (T_i,) tensors."""
    batch = pack_batch(prompts, completions, pad_id, device=model_device(model))
    logprobs = token_logprobs(model, batch, temperature)  # (B, T)
    return [logprobs[row, : len(c)].cpu() for row, c in enumerate(completions)]


def save_adapter(model, path: Path) -> Path:
    """Write the trainable adapter's files only (no merge, no frozen reference copy): what vLLM's
    LoRARequest and the Hub consume."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path), selected_adapters=[POLICY_ADAPTER], state_dict=state_to_save(model))
    return path


POLICY_ADAPTER = "default"  # peft's name for the adapter being trained
REFERENCE_ADAPTER = "reference"  # the frozen copy made by ``freeze_reference``


@dataclass(frozen=True)
class Reference:
    """What KL-regularised (GRPO with beta > 0) and preference (DPO) losses compare against.

    ``stage_start``: a frozen copy of the adapter as it stood when the stage began (after an SFT warm
    start this is the SFT model, not the pre-SFT base); ``base``: the base model with LoRA switched off.
    """

    kind: str  # "stage_start" | "base"


def freeze_reference(model, kind: str = "stage_start") -> Reference:
    """Snapshot the reference policy now; call it once at the start of a stage.

    ``stage_start`` adds a second peft adapter holding a detached copy of the trained adapter's weights,
    with ``requires_grad`` off (a second LoRA, not a second model: a few MB). Calling it again re-snapshots,
    except on a model FSDP has sharded: its reference is made before sharding (``rlmath.loop.prepare_learner``)
    so that its weights are sharded with their layers, a sharded layer cannot take a new adapter, and no
    update has run in between, so a later call returns that reference as it is.
    """
    if kind == "base":
        return Reference("base")
    if kind != "stage_start":
        raise RLMathError(f"grpo.reference: unknown {kind!r} (stage_start | base)")
    if is_sharded(model):
        if REFERENCE_ADAPTER not in model.peft_config:
            raise RLMathError("grpo.reference: under FSDP the reference adapter must be frozen before the layers "
                              "are sharded (rlmath.loop.prepare_learner does)")
        return Reference("stage_start")
    if REFERENCE_ADAPTER in model.peft_config:
        model.delete_adapter(REFERENCE_ADAPTER)
    model.add_adapter(REFERENCE_ADAPTER, model.peft_config[POLICY_ADAPTER])
    model.set_adapter(POLICY_ADAPTER)  # add_adapter leaves the policy active; be explicit
    marker = f".{POLICY_ADAPTER}."
    live = {name: param for name, param in model.named_parameters() if marker in name}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if f".{REFERENCE_ADAPTER}." in name:
                param.copy_(live[name.replace(f".{REFERENCE_ADAPTER}.", marker)])
                param.requires_grad_(False)
    return Reference("stage_start")


@contextmanager
def reference_active(model, reference: Reference):
    """Run the enclosed forward passes as the reference policy, then restore the trained adapter."""
    if reference.kind == "base":
        with model.disable_adapter():
            yield
        return
    model.set_adapter(REFERENCE_ADAPTER, inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(POLICY_ADAPTER)


def reference_logprobs(model, reference: Reference, batch: PackedBatch, temperature: float = 1.0) -> torch.Tensor:
    """(B, T) log-probs of the packed completions under the reference policy, without gradients."""
    with torch.no_grad(), reference_active(model, reference):
        return token_logprobs(model, batch, temperature)


def lora_state(model) -> dict[str, torch.Tensor]:
    """A detached copy of the LoRA weights: tests use it to prove training changed them."""
    return {name: param.detach().clone() for name, param in model.named_parameters() if "lora_" in name}
