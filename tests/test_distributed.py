"""The multi-process learner: two CPU ranks (gloo) take the same step as one process on the same batch,
as DDP, FSDP and DeepSpeed ZeRO-2.

SGD without clipping keeps the check sensitive to the gradient's scale: Adam's first step and a
clipped gradient would hide a loss normalised by the wrong count.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlmath.algorithms.grpo import RolloutBatch, distributed_grpo_step, grpo_step
from rlmath.checkpoint import is_complete
from rlmath.config import load_config
from rlmath.distributed import check_learner_config, shard_batch
from rlmath.errors import RLMathError
from rlmath.models import resolve_model
from rlmath.policy import freeze_reference, lora_state
from rlmath.sharding import check_sharding, shard, to_update_phase
from rlmath.zero import check_zero, zero_optimizer

ROOT = Path(__file__).resolve().parents[1]
GROUP = 2
STEPS = 2


def _config(loss_type: str, beta: float = 0.0):
    return load_config(ROOT / "configs/smoke.yaml", [f"grpo.loss_type={loss_type}", "grpo.max_grad_norm=1e9",
                                                     "grpo.micro_batch_size=3", f"grpo.beta={beta}"])


def _batch(groups: int) -> RolloutBatch:
    """Prompts and completions of different lengths, so the token-level (dapo) weights differ per rank."""
    generator = torch.Generator().manual_seed(0)
    prompts, completions = [], []
    for row in range(groups * GROUP):
        prompts.append(torch.randint(5, 1000, (4 + row % 3,), generator=generator).tolist())
        completions.append(torch.randint(5, 1000, (2 + (row * 5) % 7,), generator=generator).tolist())
    advantages = torch.randn(groups * GROUP, generator=generator)
    # about ln(vocab): a random model's log-probs, so the importance weights are near 1
    return RolloutBatch(prompts, completions, [[-10.8] * len(c) for c in completions], advantages)


def test_shard_keeps_whole_groups_and_behaviour_logprobs() -> None:
    """Rank 1 of 2 over 3 groups gets the last group, with its rows' stored behaviour log-probs."""
    batch = _batch(3)
    batch.old_logprobs = [[float(row)] * len(c) for row, c in enumerate(batch.completion_ids)]
    local = shard_batch(batch, GROUP, rank=1, world_size=2)
    assert local.completion_ids == batch.completion_ids[4:6]
    assert local.old_logprobs == batch.old_logprobs[4:6]
    assert torch.equal(local.advantages, batch.advantages[4:6])


@pytest.mark.parametrize("setting,message", [
    ("grpo.epochs=2", r"grpo.epochs=\d+, grpo.minibatches=\d+: the multi-process learner"),
    ("grpo.minibatches=2", r"grpo.epochs=\d+, grpo.minibatches=\d+: the multi-process learner"),
    # the in-process engine's group set-up waited forever for rank 1 (seen under accelerate launch --use_fsdp)
    ("sampling.sync=merged", r"sampling.sync=merged: not supported under a multi-process launch"),
])
def test_multi_process_learner_refuses_what_it_cannot_do(setting: str, message: str) -> None:
    """Global weights normalise over the whole batch: minibatch steps would take wrong gradients; an
    in-process vLLM engine would join the learner's process group."""
    config = load_config(ROOT / "configs/smoke.yaml", [setting])
    with pytest.raises(RLMathError, match=message):
        check_learner_config(config)
    check_learner_config(load_config(ROOT / "configs/smoke.yaml", []))  # one step per batch is fine


def test_global_weights_refuse_minibatch_steps() -> None:
    """grpo_step itself refuses given (global) weights with epochs × minibatches > 1, before any step."""
    config = load_config(ROOT / "configs/smoke.yaml", ["grpo.minibatches=2"])
    with pytest.raises(ValueError, match="multi-process learner takes one optimizer step"):
        grpo_step(None, None, _batch(2), config.grpo, 8, 0, weights=torch.ones(4))


def _policy(config, mode: str = "ddp"):
    """The policy and its optimiser as the learner holds them under ``mode`` (ddp, fsdp or deepspeed)."""
    from rlmath.policy import load_policy

    torch.manual_seed(0)  # same fresh adapter in every process
    policy = load_policy(config, resolve_model(config.model.name_or_path))
    if mode == "fsdp":  # before the optimiser: FSDP replaces the parameters with sharded ones
        _reference(policy.model, config)  # as rlmath.loop.prepare_learner: sharded with the layers
        shard(policy.model)
    optimizer = torch.optim.SGD([p for p in policy.model.parameters() if p.requires_grad], lr=0.5)
    if mode == "deepspeed":  # ZeRO-2 (accelerate's default stage here): SGD steps this rank's partition
        optimizer = zero_optimizer(policy.model, optimizer, config, dist.get_world_size())
    return policy, optimizer


def _full_lora_state(model) -> dict[str, torch.Tensor]:
    """Every rank: the LoRA weights, all-gathered where FSDP holds them as shards."""
    from torch.distributed.tensor import DTensor

    return {name: (param.full_tensor() if isinstance(param, DTensor) else param).detach().clone()
            for name, param in model.named_parameters() if "lora_" in name}


def _rank_main(rank: int, world_size: int, port: int, loss_type: str, groups: int, out: str,
               mode: str = "ddp", beta: float = 0.0) -> None:
    # what torchrun sets (DeepSpeed reads LOCAL_RANK)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        config = _config(loss_type, beta)
        policy, optimizer = _policy(config, mode)
        reference = _reference(policy.model, config)
        states, kls = [], []
        for _ in range(STEPS):  # a fresh batch per step, as in the loop: its behaviour log-probs are this step's
            local = shard_batch(_batch(groups), GROUP, rank, world_size)
            if mode == "fsdp":  # as rlmath.loop.learner_step: each layer reshards after its forward
                to_update_phase(policy.model)
            metrics = distributed_grpo_step(policy.model, optimizer, local, config.grpo, config.sampling.max_tokens,
                                            policy.tokenizer.pad_token_id, reference=reference)
            kls.append(metrics.get("kl", 0.0))
            if mode == "fsdp":  # each rank really holds half of every LoRA weight
                from torch.distributed.tensor import DTensor

                lora = [p for n, p in policy.model.named_parameters() if "lora_" in n]
                assert all(isinstance(p, DTensor) and p.to_local().numel() * 2 == p.numel() for p in lora)
            states.append(_full_lora_state(policy.model))
        torch.save({"states": states, "kl": kls}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _reference(model, config):
    """The KL reference as the loop freezes it (``grpo.beta > 0``): after the learner is set up, on every rank."""
    return freeze_reference(model, config.grpo.reference) if config.grpo.beta > 0 else None


def _single_process(loss_type: str, groups: int, beta: float = 0.0) -> list[dict[str, torch.Tensor]]:
    config = _config(loss_type, beta)
    policy, optimizer = _policy(config)
    reference = _reference(policy.model, config)
    states = []
    for _ in range(STEPS):
        grpo_step(policy.model, optimizer, _batch(groups), config.grpo, config.sampling.max_tokens,
                  policy.tokenizer.pad_token_id, reference=reference)
        states.append(lora_state(policy.model))
    return states


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(300)  # a rank left waiting in an all-gather would otherwise hang the suite
@pytest.mark.parametrize("mode", ["ddp", "fsdp", "deepspeed"])
@pytest.mark.parametrize("loss_type,groups", [("grpo", 4), ("dapo", 4), ("dr_grpo", 3), ("grpo", 1)])
def test_two_gloo_ranks_match_one_process(loss_type: str, groups: int, mode: str, tmp_path: Path) -> None:
    """3 groups over 2 ranks: uneven shards (4 rows and 2 rows) must still give the global step; 1 group: rank 1
    has no rows at all. Under FSDP each rank holds half of every weight, and the rank with fewer micro-batches
    runs zero-weight passes, or the busier rank's per-layer all-gathers would wait for it forever; under
    DeepSpeed ZeRO-2 every backward reduces its gradient buckets, and the engine averages where the step
    wants the sum."""
    ranks = _two_ranks(loss_type, groups, mode, tmp_path)
    single = _single_process(loss_type, groups)
    _assert_ranks_match(ranks, single)
    start = lora_state(_policy(_config(loss_type))[0].model)
    moved = max(float((single[-1][n] - start[n]).abs().max()) for n in start)
    assert moved > 1e-3  # the step really changed the adapter, so the comparison means something


def _two_ranks(loss_type: str, groups: int, mode: str, tmp_path: Path, beta: float = 0.0) -> list[dict]:
    """Each rank's LoRA weights after every step and its steps' KL metrics, from two gloo ranks under ``mode``."""
    mp.spawn(_rank_main, args=(2, _free_port(), loss_type, groups, str(tmp_path), mode, beta), nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]


def _assert_ranks_match(ranks: list[dict], single: list[dict[str, torch.Tensor]]) -> None:
    """Both ranks hold the same adapter after every step, and it is the one-process run's."""
    for step in range(STEPS):
        for name, expected in single[step].items():
            assert torch.equal(ranks[0]["states"][step][name], ranks[1]["states"][step][name]), (step, name)
            assert torch.allclose(ranks[0]["states"][step][name], expected, atol=1e-6, rtol=1e-5), (step, name)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["ddp", "fsdp", "deepspeed"])
def test_two_gloo_ranks_with_a_kl_reference_match_one_process(mode: str, tmp_path: Path) -> None:
    """``grpo.beta > 0``: the frozen reference adapter, made after the learner is set up as the loop makes it,
    gives both ranks the one-process step. Under ZeRO-2 the engine has wrapped the model before the reference
    adapter exists, so the adapter must get neither gradients nor a partition of the optimizer. Under FSDP the
    reference is sharded with its layers and its forward all-gathers them: rank 1 (one group against rank 0's
    two, so fewer micro-batches) must run the reference forward in its zero-weight passes too. The first
    step starts at the reference (KL 0); the second starts away from it, so the KL term is non-zero and
    changes the step (against the same run with beta 0)."""
    beta = 0.5
    ranks = _two_ranks("grpo", 3, mode, tmp_path, beta)
    single = _single_process("grpo", 3, beta)
    _assert_ranks_match(ranks, single)
    assert all(abs(r["kl"][0]) < 1e-8 and r["kl"][1] > 1e-6 for r in ranks), [r["kl"] for r in ranks]
    frozen = [n for n in single[0] if ".reference." in n]
    assert frozen and all(torch.equal(ranks[0]["states"][1][n], ranks[0]["states"][0][n]) for n in frozen)
    without_kl = _single_process("grpo", 3)
    assert all(torch.allclose(single[0][n], without_kl[0][n], atol=1e-7) for n in without_kl[0])
    changed = max(float((single[1][n] - without_kl[1][n]).abs().max()) for n in without_kl[1])
    assert changed > 1e-4  # the KL term acted on the second step


LAUNCH = {"ddp": ["--multi_gpu"], "fsdp": ["--use_fsdp", "--fsdp_version", "2"],
          "deepspeed": ["--use_deepspeed", "--zero_stage", "2"]}


@pytest.mark.slow
@pytest.mark.timeout(1000)  # the launch itself times out at 900 s
@pytest.mark.parametrize("mode,beta", [("ddp", 0.0), ("fsdp", 0.0), ("fsdp", 0.1), ("deepspeed", 0.0),
                                       ("deepspeed", 0.1)])
def test_accelerate_launch_two_cpu_ranks_trains_with_one_tracked_run(mode: str, beta: float, tmp_path: Path) -> None:
    """The real launcher: rank 0 runs the loop and is the only one writing a run folder and an mlflow run.

    Not ``--cpu``: accelerate starts one process for it (this test once passed that way, with no second
    rank); rlmath tells accelerate itself that there is no GPU, so ``--multi_gpu`` and ``--use_fsdp`` run
    two gloo ranks. Under FSDP rank 0 samples with vLLM, fed the adapter it saves from the weights it
    gathers after each update, and the sync probe compares that engine with the gathered trainer: rank 1
    once held zeros for the base weights (transformers loads them on rank 0 only under an FSDP launch),
    and half of every layer rank 0 gathered was rank 1's zeros. Under DeepSpeed (``--use_deepspeed``, the
    launch deepspeed_zero2.yaml describes) every update goes through the ZeRO-2 engine; with ``grpo.beta > 0``
    rank 0 and the follower each freeze the KL reference after the engine wraps the model (under FSDP before
    sharding), and rank 0 checkpoints it.
    """
    import mlflow

    launch = LAUNCH[mode]
    # under FSDP the smoke config's vLLM engine, in its own process (sampling.sync=adapter)
    sampling = ["sampling.backend=vllm" if mode == "fsdp" else "sampling.backend=hf"]
    args = [str(Path(sys.executable).parent / "accelerate"), "launch", *launch, "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rlmath.cli", "train",
            "-c", "configs/smoke.yaml", "--set", *sampling, "--set", f"grpo.beta={beta}", "--set", f"output_dir={tmp_path}",
            "--set", "run_name=ddp"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # rank 0 prints it twice (the eval report's footer and the CLI's last line); a second printing rank would double it
    assert (result.stdout + result.stderr).count("run folder:") == 2
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and (p / "config.yaml").exists()] == ["ddp"]
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "grad_norm" in r] == [1, 2]  # both steps went through learner_step
    learner = {(r["learner/ranks"], r["learner/sharded"]) for r in rows if "grad_norm" in r}
    assert learner == {(2.0, float(mode == "fsdp"))}
    assert {r.get("learner/zero_stage") for r in rows if "grad_norm" in r} == {2.0 if mode == "deepspeed" else None}
    if mode == "fsdp":  # probed after the step-0 sync and after each update, within the smoke tolerance
        assert [r["step"] for r in rows if "sync/probe_max_abs_diff" in r] == [0, 1, 2]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("rlmath-smoke").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    # rank 0 alone checkpoints: step 0 and the last step, each written once and complete
    assert sorted(p.name for p in tmp_path.glob("ddp/checkpoint-*")) == ["checkpoint-0", "checkpoint-2"]
    assert all(is_complete(p) for p in tmp_path.glob("ddp/checkpoint-*"))
    assert not list(tmp_path.glob("ddp/.checkpoint-*"))
    # rank 0 froze the KL reference beside the adapter (the random smoke model's rewards carry no signal,
    # so its KL stays 0 here: test_two_gloo_ranks_with_a_kl_reference_match_one_process checks the term)
    assert (tmp_path / "ddp/checkpoint-2/adapters/reference").is_dir() == (beta > 0)


def test_resume_under_a_multi_process_launch_is_refused_before_anything_loads(tmp_path: Path, monkeypatch) -> None:
    """Every rank refuses --resume (only rank 0 holds a checkpoint's state); one process resumes instead."""
    from rich.console import Console

    from rlmath import loop

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr(loop, "start_learner", lambda: True)
    monkeypatch.setattr(loop, "setup", no_model)
    monkeypatch.setattr(loop, "follow_training", no_model)
    config = load_config(ROOT / "configs/smoke.yaml", ["sampling.backend=hf"])
    with pytest.raises(RLMathError, match=r"--resume .*not supported under a multi-process launch.*as one process"):
        loop.run_training(config, Console(quiet=True), resume=tmp_path / "run")


DEEPSPEED = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}


@pytest.mark.parametrize("env,setting,message", [
    ({**DEEPSPEED, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, None, "zero_stage 3 is not supported .*fsdp.yaml"),
    ({**DEEPSPEED, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "1"}, None, "zero_stage 1 is not supported .*zero2.yaml"),
    ({**DEEPSPEED, "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE": "cpu"}, None,
     "offload_optimizer_device is not supported"),
    ({**DEEPSPEED, "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE": "cpu"}, None, "offload_param_device is not supported"),
    ({**DEEPSPEED, "ACCELERATE_DEEPSPEED_CONFIG_FILE": "ds.json"}, None, "deepspeed_config_file is not supported"),
    ({"ACCELERATE_USE_FSDP": "true", "FSDP_OFFLOAD_PARAMS": "true"}, None, "fsdp_offload_params is not supported"),
])
def test_sharded_learner_refuses_what_it_cannot_do_before_loading(env, setting, message, monkeypatch) -> None:
    """What accelerate's config asks for and rlmath's learner does not do is refused by name, not ignored."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RLMathError, match=message):
        _check_launch(load_config(ROOT / "configs/smoke.yaml", [setting] if setting else []))
    for key in env:
        monkeypatch.delenv(key)
    for key, value in DEEPSPEED.items():
        monkeypatch.setenv(key, value)
    _check_launch(load_config(ROOT / "configs/smoke.yaml", []))  # plain ZeRO-2 is fine
    _check_launch(load_config(ROOT / "configs/smoke.yaml", ["grpo.beta=0.1"]))  # and so is its KL reference
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    _check_launch(load_config(ROOT / "configs/smoke.yaml", []))  # plain FSDP (or DDP) is fine
    _check_launch(load_config(ROOT / "configs/smoke.yaml", ["grpo.beta=0.1"]))  # and so is its KL reference


def _check_launch(config) -> None:
    """The launch checks ``rlmath.loop.run_training`` makes on every rank before loading a model."""
    check_sharding(config)
    check_zero()
