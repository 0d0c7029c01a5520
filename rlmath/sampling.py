"""Samplers: k completions per prompt with the current adapter, behind one small interface.

The loop only sees :class:`Sampler`. Two backends implement it:

- :class:`VLLMSampler`: an in-process ``vllm.LLM``. ``sampling.sync: adapter`` makes each adapter
  version a new ``LoRARequest(name, version, path)`` on saved files (no merge, no base reload);
  ``sampling.sync: merged`` loads base + LoRA merged in the trainer into the running engine
  (:mod:`rlmath.weight_sync`), so generation runs without LoRA kernels. The server backend
  (``/v1/load_lora_adapter``) is :mod:`rlmath.vllm_server`.
- :class:`HFSampler`: transformers ``generate`` on the trainer's own peft model, for machines
  without vLLM; its "sync" is free because it samples from the live weights.

Both also score given completions (``completion_logprobs``), which the adapter-sync probe uses today
and Pivotal Token Search will use to estimate p(success | prefix).
"""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

from rlmath.engine_watchdog import watch_engine
from rlmath.errors import RLMathError
from rlmath.sampler_types import AdapterRef, Completion, Sampler, SamplingRequest
from rlmath.vllm_kernels import cpu_kernel_engine_args

__all__ = ["AdapterRef", "Completion", "EngineCrashed", "HFSampler", "Sampler", "SamplingRequest", "VLLMSampler", "build_sampler",
           "max_tokens_from_lengths"]


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the duration of the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _engine_start_error(exc: Exception, fraction: float, kv_cache_setting: str | None = None,
                        limits: dict[str, int] | None = None) -> Exception:
    """vLLM's "not enough memory for the KV cache" is a config problem: name the key, not a traceback.

    In-process the engine raises the ValueError itself; with an engine subprocess the parent only sees
    "Engine core initialization failed" and the cause is in the engine's log above it.
    """
    message = " ".join(str(exc).split())
    if "max_num_batched_tokens" in message:  # vLLM's own rules (>= max_num_seqs, >= max_model_len)
        named = ", ".join(f"sampling.{name}={value}" for name, value in (limits or {}).items())
        return RLMathError(f"{named or 'sampling.max_num_batched_tokens'}: vLLM refused the engine's batch limits "
                           f"({message})")
    if "memory" in message.lower():
        cause = f"vLLM could not reserve its KV cache ({message})"
    elif "initialization failed" in message:
        cause = "the vLLM engine failed to start (its log above names the cause; most often the KV cache)"
    else:
        return exc
    if kv_cache_setting is not None:  # the value as configured: the byte count rounds it (0.0001 -> 9.99998e-05)
        return RLMathError(f"{kv_cache_setting}: {cause}. It must hold at least one "
                           "sequence of sampling.max_model_len tokens and fit in free RAM.")
    return RLMathError(f"sampling.gpu_memory_utilization={fraction}: {cause}. On CPU it is the fraction of all RAM "
                       "for the engine, counted after what this process already holds (the trainer's model): "
                       "raise it, or free memory.")


class EngineCrashed(RLMathError):
    """The vLLM engine died again after its one restart: the run checkpoints and stops with this message."""


def engine_died(exc: Exception) -> bool:
    """Is this the engine failing (worth one restart), rather than a bad request or a bug of ours?

    An engine core in its own process raises ``EngineDeadError`` once the client has noticed it is gone;
    a call that races that notice fails on the closed socket instead (``zmq.ZMQError``, ``OSError``). The
    in-process engine (``sync: merged``) surfaces a crash in its model runner as a ``RuntimeError``.
    """
    import zmq
    from vllm.v1.engine.exceptions import EngineDeadError

    died = (EngineDeadError, RuntimeError, zmq.ZMQError, OSError)
    return isinstance(exc, died) and not isinstance(exc, RLMathError)


class VLLMSampler:
    """vLLM's offline engine, synced by adapter files (``sync="adapter"``) or merged weights (``"merged"``).

    ``adapter``: each version is a ``LoRARequest`` on saved files; the base is never reloaded.
    ``merged``: the engine runs without LoRA; the first call that names a new adapter version merges
    the live ``weights_model`` (the trainer's peft model) and reloads the engine in place
    (:mod:`rlmath.weight_sync`), so that version means "the trainer's weights when it was first used".
    The engine runs in-process then (``VLLM_ENABLE_V1_MULTIPROCESSING=0``): the weights are handed over
    as tensors, not pickled to a worker.
    """

    def __init__(self, model_path: str, *, dtype: str, seed: int, max_model_len: int,
                 gpu_memory_utilization: float, max_lora_rank: int, enforce_eager: bool,
                 sync: str = "adapter", weights_model=None, kv_cache: tuple[str, int] | None = None,
                 scheduler_limits: dict[str, int] | None = None) -> None:
        if sync == "merged":
            if weights_model is None:
                raise RLMathError("sampling.sync=merged needs the trainer's policy model")
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RLMathError(f"sampling.backend: vllm is not importable ({exc}); use sampling.backend=hf") from None
        self.sync = sync
        self._weights_model = weights_model
        self._loaded: int | None = None  # adapter version whose merged weights the engine holds; None = base
        self.sync_seconds: list[float] = []  # one entry per in-place reload (merged mode)
        self.restarts = 0  # engine restarts after a crash; one is allowed per run
        self._kv_cache_setting = kv_cache[0] if kv_cache else None  # "sampling.kv_cache_gib=1", for errors
        self._scheduler_limits = scheduler_limits or {}
        lora = {} if sync == "merged" else {"enable_lora": True, "max_lora_rank": max_lora_rank, "max_loras": 1}
        kv_cache = {} if kv_cache is None else {"kv_cache_memory_bytes": kv_cache[1]}
        kernels = cpu_kernel_engine_args() if sync == "merged" else {}  # the engine runs in this process then
        # processed_logprobs: the log-prob of each sampled token under the distribution it was drawn
        # from (after temperature and top-p), which is what the importance-sampling correction needs.
        self._engine_args = dict(model=model_path, dtype=dtype, seed=seed, max_model_len=max_model_len,
                                 gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                                 enable_prefix_caching=True, logprobs_mode="processed_logprobs", **lora, **kv_cache,
                                 **kernels, **self._scheduler_limits)
        self._llm = self._start_engine(LLM)

    def _start_engine(self, engine_class):
        """The engine (merged mode: in-process, set only while it starts), watched for a silent death."""
        in_process = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"} if self.sync == "merged" else {}
        try:
            with _environment(in_process):
                llm = engine_class(**self._engine_args)
        except (ValueError, RuntimeError) as exc:
            raise _engine_start_error(exc, self._engine_args["gpu_memory_utilization"], self._kv_cache_setting,
                                      self._scheduler_limits) from None
        watch_engine(llm)
        return llm

    def _on_engine(self, call):
        """Run ``call(lora_request)`` on the engine; a crashed engine is restarted once per run, then it is fatal.

        The restarted engine holds the base weights, so the adapter is served again from scratch
        (merged mode reloads the merged weights on the retry).
        """
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - only an engine failure is retried, the rest re-raised
            if not engine_died(exc):
                raise
            cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        if self.restarts >= 1:
            raise EngineCrashed(f"the vLLM engine crashed again after its one restart ({cause})") from None
        from vllm import LLM

        self.restarts += 1
        self.close()
        self._loaded = None
        self._llm = self._start_engine(LLM)
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            if not engine_died(exc):
                raise
            raise EngineCrashed(f"the vLLM engine crashed again right after its restart ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())})") from None

    def _serve(self, adapter: AdapterRef | None):
        """The LoRARequest to pass (adapter mode), or None after loading merged weights if needed."""
        if self.sync == "adapter":
            from vllm.lora.request import LoRARequest

            return None if adapter is None else LoRARequest(adapter.name, adapter.version, adapter.path)
        version = None if adapter is None else adapter.version
        if version != self._loaded:
            from rlmath.weight_sync import reload_engine

            self.sync_seconds.append(reload_engine(self._llm, self._weights_model, with_adapter=adapter is not None))
            self._loaded = version
        return None

    def generate(self, prompts, request, adapter):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # Per-request seeds fail on CPU ("CPU Generator does not use offset"): the engine seed rules.
        params = SamplingParams(n=request.n, temperature=request.temperature, top_p=request.top_p,
                                max_tokens=request.max_tokens, logprobs=0)
        inputs = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self._on_engine(lambda: self._llm.generate(inputs, params, lora_request=self._serve(adapter),
                                                             use_tqdm=False))
        return [[_from_vllm(c) for c in out.outputs] for out in outputs]

    def completion_logprobs(self, prompt, completion, adapter):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        full = [TokensPrompt(prompt_token_ids=list(prompt) + list(completion))]
        out = self._on_engine(lambda: self._llm.generate(full, params, lora_request=self._serve(adapter),
                                                         use_tqdm=False))[0]
        scored = out.prompt_logprobs[len(prompt):]  # one dict per completion token
        return [entry[tok].logprob for entry, tok in zip(scored, completion)]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.llm_engine.engine_core.shutdown()
        self._llm = None


def _from_vllm(output) -> Completion:
    logprobs = [step[tok].logprob for step, tok in zip(output.logprobs or [], output.token_ids)]
    return Completion(text=output.text, token_ids=list(output.token_ids), logprobs=logprobs,
                      finish_reason=output.finish_reason or "stop")


def _chosen_logprobs(step_scores, tokens):
    """Log-prob of each generated token under the processed scores it was sampled from (logits after
    temperature and top-p, as vLLM's ``processed_logprobs``), one step at a time so no (B, T, V)
    log-softmax copy is ever built. Returns (B, T)."""
    import torch

    columns = [torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens[:, t:t + 1]).squeeze(-1)
               for t, logits in enumerate(step_scores)]  # T x (B,)
    return torch.stack(columns, dim=1)


class HFSampler:
    """transformers ``generate`` on a (peft) model; ``adapter=None`` samples the base with LoRA disabled."""

    def __init__(self, model, tokenizer, *, batch_size: int = 32) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def _adapter_context(self, adapter: AdapterRef | None):
        if adapter is None and hasattr(self.model, "disable_adapter"):
            return self.model.disable_adapter()
        return contextlib.nullcontext()

    def generate(self, prompts, request, adapter):
        results: list[list[Completion]] = []
        for start in range(0, len(prompts), max(1, self.batch_size // request.n)):
            results.extend(self._generate_batch(prompts[start:start + max(1, self.batch_size // request.n)],
                                                request, adapter))
        return results

    def _generate_batch(self, prompts, request, adapter):
        import torch

        from rlmath.policy import left_pad

        input_ids, attention = left_pad(prompts, self.tokenizer.pad_token_id)  # (B, P)
        greedy = request.temperature == 0.0
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad(), self._adapter_context(adapter):
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, max_new_tokens=request.max_tokens,
                do_sample=not greedy, temperature=None if greedy else request.temperature,
                top_p=None if greedy else request.top_p, top_k=None if greedy else 0,
                num_return_sequences=request.n, return_dict_in_generate=True,
                # Per-step scores cost T x (B, V) floats: only sampled rollouts need them (behaviour log-probs).
                output_scores=not greedy, pad_token_id=self.tokenizer.pad_token_id,
            )
        self.model.train(was_training)
        new = out.sequences[:, input_ids.shape[1]:]  # (B*n, T)
        chosen = _chosen_logprobs(out.scores, new) if not greedy else torch.zeros(new.shape)  # (B*n, T)
        completions = [self._to_completion(new[i], chosen[i]) for i in range(new.shape[0])]
        return [completions[i * request.n:(i + 1) * request.n] for i in range(len(prompts))]

    def _to_completion(self, tokens, logprobs) -> Completion:
        """Cut after the first EOS but keep it (as vLLM does): stopping is an action the policy takes,
        so its token and log-prob are trained like any other. The text stays without it."""
        eos = self.tokenizer.eos_token_id
        ids = tokens.tolist()
        finish = "length"
        text_ids = ids
        if eos in ids:
            ids = ids[: ids.index(eos) + 1]
            text_ids = ids[:-1]
            finish = "stop"
        return Completion(text=self.tokenizer.decode(text_ids, skip_special_tokens=True), token_ids=ids,
                          logprobs=logprobs[: len(ids)].tolist(), finish_reason=finish)

    def completion_logprobs(self, prompt, completion, adapter):
        import torch

        from rlmath.policy import sequence_logprobs

        with torch.no_grad(), self._adapter_context(adapter):
            return sequence_logprobs(self.model, [prompt], [completion], self.tokenizer.pad_token_id)[0].tolist()

    def close(self) -> None:
        self.model = None


def max_tokens_from_lengths(lengths: Sequence[int], percentile: float, slack: float, ceiling: int) -> int:
    """Rollout cap derived from the data: the ``percentile`` of worked-solution token lengths × ``slack``,
    +1 for the EOS token, never above ``ceiling``. A cap below the solutions' own length truncates the
    very answers the reward looks for.

    >>> max_tokens_from_lengths([40, 50, 60], 100, 1.5, 256)
    91
    >>> max_tokens_from_lengths([40, 50, 60], 100, 1.5, 64)
    64
    """
    import numpy as np

    if not lengths:
        return ceiling
    return min(ceiling, int(np.ceil(np.percentile(lengths, percentile) * slack)) + 1)


def build_sampler(config, base_path: str, policy=None) -> Sampler:
    """The configured backend; the HF backend samples from ``policy`` (the live trainer model)."""
    sampling = config.sampling
    if sampling.backend == "hf":
        if policy is None:
            raise RLMathError("sampling.backend=hf needs the trainer's policy model")
        return HFSampler(policy.model, policy.tokenizer)
    if sampling.backend == "vllm_server":
        from rlmath.vllm_server import build_server_sampler  # it builds on this module's types

        return build_server_sampler(config, base_path)
    return VLLMSampler(base_path, dtype=config.engine_dtype, seed=config.seed, max_model_len=sampling.max_model_len,
                       gpu_memory_utilization=sampling.gpu_memory_utilization, max_lora_rank=sampling.max_lora_rank,
                       enforce_eager=sampling.enforce_eager, sync=config.engine_sync,
                       weights_model=policy.model if policy is not None else None, kv_cache=kv_cache_size(sampling, base_path, config.engine_dtype),
                       scheduler_limits=scheduler_limits(sampling))


def kv_cache_size(sampling, model_path: str, dtype: str) -> tuple[str, int] | None:
    """The engine's KV cache as (the setting that asked for it, bytes); ``None``: vLLM sizes it from
    ``gpu_memory_utilization``. A size in tokens is what a step's rollouts need whatever the engine's dtype:
    1 GiB holds ~23k tokens of the embedded model in float32 and ~46k in bfloat16."""
    if sampling.kv_cache_gib is not None:
        return f"sampling.kv_cache_gib={sampling.kv_cache_gib:g}", int(sampling.kv_cache_gib * 2**30)
    if sampling.kv_cache_tokens is not None:
        tokens = sampling.kv_cache_tokens
        return f"sampling.kv_cache_tokens={tokens}", tokens * kv_bytes_per_token(model_path, dtype)
    return None


def kv_bytes_per_token(model_path: str, dtype: str) -> int:
    """Bytes one token takes in the KV cache: keys and values of every layer's KV heads (the embedded
    SmolLM2-135M in bfloat16: 30 layers x 2 x 3 heads x 64 x 2 bytes = 23,040, as vLLM counts it)."""
    import torch
    from transformers import AutoConfig

    model = AutoConfig.from_pretrained(model_path)
    heads = model.num_attention_heads
    head_dim = getattr(model, "head_dim", None) or model.hidden_size // heads
    kv_heads = getattr(model, "num_key_value_heads", None) or heads
    element = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    return model.num_hidden_layers * 2 * kv_heads * head_dim * element


def scheduler_limits(sampling) -> dict[str, int]:
    """The engine's batch limits that the config sets; the rest stay vLLM's defaults."""
    limits = {"max_num_seqs": sampling.max_num_seqs, "max_num_batched_tokens": sampling.max_num_batched_tokens}
    return {name: value for name, value in limits.items() if value is not None}
