"""The sampler interface and its value types, below every backend.

:mod:`rlmath.sampling` (in-process vLLM, HF) and :mod:`rlmath.vllm_server` (``vllm serve`` replicas)
both implement :class:`Sampler`; keeping the types here lets ``build_sampler`` dispatch to the server
backend without an import cycle. ``rlmath.sampling`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class AdapterRef:
    """A saved adapter version: vLLM needs a unique integer id per version it should (re)load."""

    name: str
    version: int
    path: str


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    logprobs: list[float]  # sampler's log-prob of each sampled token, (T,)
    finish_reason: str  # "stop" or "length"


@dataclass(frozen=True)
class SamplingRequest:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 128


class Sampler(Protocol):
    def generate(self, prompts: Sequence[list[int]], request: SamplingRequest,
                 adapter: AdapterRef | None) -> list[list[Completion]]: ...

    def completion_logprobs(self, prompt: list[int], completion: list[int],
                            adapter: AdapterRef | None) -> list[float]: ...

    def close(self) -> None: ...
