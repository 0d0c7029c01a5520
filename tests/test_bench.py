"""Every `rlmath bench` verb runs end to end on the tiny model and writes the documented result shape.

The benches themselves are measurements (numbers go in the README, never asserted here); these tests
only keep each documented command from breaking silently, as `bench sampling` once did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlmath.bench.verifier import CASES_FILE
from rlmath.cli import app

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/smoke.yaml")
KEYS = {"name", "ours", "peer", "ratio", "unit", "machine", "config"}


def _bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "result.json"
    result = CliRunner().invoke(app, ["bench", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert KEYS <= set(data) and data["name"] == args[0]
    assert data["ours"] > 0 and data["peer"] > 0 and data["ratio"] == pytest.approx(data["ours"] / data["peer"], rel=0.05)
    return data


def test_verifier_cases_ship_inside_the_package() -> None:
    assert CASES_FILE.is_file() and "rlmath/bench/data" in CASES_FILE.as_posix()


def test_bench_sampling_rejects_an_unknown_mode() -> None:
    result = CliRunner().invoke(app, ["bench", "sampling", "-c", SMOKE, "--modes", "fused"])
    assert result.exit_code == 2 and "--modes" in result.output


@pytest.mark.slow
def test_bench_verifier(tmp_path) -> None:
    data = _bench(tmp_path, "verifier")
    assert data["cases"] > 100 and data["unit"] == "items/s"


@pytest.mark.slow
def test_bench_sampling_with_an_hf_backend_config(tmp_path) -> None:
    # The old failure: a config whose backend is hf made the "vLLM" side an HF sampler without a policy.
    data = _bench(tmp_path, "sampling", "-c", SMOKE, "--set", "sampling.backend=hf", "--prompts", "2", "--n", "2",
                  "--max-tokens", "4", "--repeats", "1")
    assert {"vllm_adapter", "vllm_merged", "hf_generate"} <= set(data) and data["best_mode"] in {"adapter", "merged"}


@pytest.mark.slow
def test_bench_sync(tmp_path) -> None:
    data = _bench(tmp_path, "sync", "-c", SMOKE, "--repeats", "1")
    assert len(data["merged_runs"]) == 1 and data["adapter_median"] > 0


@pytest.mark.slow
def test_bench_memory(tmp_path) -> None:
    data = _bench(tmp_path, "memory", "-c", SMOKE, "--set", "sft.warm_start=false", "--set", "eval.limit=2")
    assert data["unit"] == "GiB peak RSS" and data["peer"] == 4.0


@pytest.mark.slow
def test_bench_step(tmp_path) -> None:
    data = _bench(tmp_path, "step", "-c", SMOKE, "--set", "grpo.prompts_per_step=1", "--set", "sampling.num_generations=2",
                  "--set", "sampling.max_tokens=4", "--steps", "1")
    assert len(data["ours_runs"]) == 1 and len(data["peer_runs"]) == 1


def test_bench_step_peer_prompts_as_rlmath_does() -> None:
    """TRL's side gets the same chat messages as rlmath's sampler (it once got the bare question, no template)."""
    from rlmath.bench.step import peer_rows
    from rlmath.config import load_config
    from rlmath.data import Problem

    config = load_config(SMOKE, ["model.system_prompt=Reason step by step."])
    row, = peer_rows([Problem(id="q1", question="What is 2 + 3?", answer="5")], config)
    assert row["answer"] == "5" and row["prompt"][0] == {"role": "system", "content": "Reason step by step."}
    assert row["prompt"][1]["role"] == "user"
    assert row["prompt"][1]["content"] == config.prompt.template.format(question="What is 2 + 3?") != "What is 2 + 3?"
