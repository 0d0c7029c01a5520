"""SFT warm start on worked solutions, and rejection-sampled self-generated data (tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlmath.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_algorithm_sft_trains_the_tiny_model_and_tracks_it(tmp_path: Path) -> None:
    from rich.console import Console

    from rlmath.algorithms.sft import run_sft
    from rlmath.models import resolve_model
    from rlmath.policy import load_policy

    config = load_config(ROOT / "configs/smoke.yaml", [f"output_dir={tmp_path}", "run_name=sft", "algorithm=sft",
                                                       "sampling.backend=hf", "sft.max_steps=3", "sft.batch_size=4"])
    run_dir = run_sft(config, Console(quiet=True))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r[key] for r in rows for key in ("sft/loss", "sft/train_loss") if key in r]
    assert losses and all(loss > 0 for loss in losses)
    assert any("eval/final/accuracy" in r for r in rows)
    report = json.loads((run_dir / "eval.json").read_text())
    assert [stage["name"] for stage in report["stages"]] == ["base", "final"]
    trained = load_policy(config, resolve_model(config.model.name_or_path), adapter=run_dir / "adapter")
    lora_b = [p for n, p in trained.model.named_parameters() if "lora_B" in n]
    assert any(float(p.detach().abs().max()) > 0 for p in lora_b)


def test_kept_items_keep_only_verified_shortest_solutions() -> None:
    from rlmath.data import Problem
    from rlmath.sampling import Completion
    from rlmath.self_data import kept_items

    problems = [Problem("1", "2+2?", "4", "add", 1), Problem("2", "3+3?", "6", "add", 1)]
    groups = [[Completion("long \\boxed{4}", [1, 2, 3], [], "stop"), Completion("\\boxed{4}", [1], [], "stop")],
              [Completion("\\boxed{7}", [1], [], "stop"), Completion("\\boxed{5}", [1], [], "stop")]]
    items = kept_items(problems, groups, [True, True, False, False], "tiny:llama")
    assert [(i["question"], i["solution"]) for i in items] == [("2+2?", "\\boxed{4}")]
    assert items[0]["meta"]["split"] == "train"


def test_self_generated_items_write_a_loadable_dataset(tmp_path: Path) -> None:
    import datasets

    from rlmath.data import Problem
    from rlmath.sampling import Completion
    from rlmath.self_data import kept_items
    from rlmath.synth.export import write_dataset

    items = kept_items([Problem("1", "2+2?", "4", "add", 1)], [[Completion("so \\boxed{4}", [1], [], "stop")]],
                       [True], "tiny:llama")
    write_dataset(items, tmp_path / "self", {"engine_version": "x", "rlmath_version": "x", "seed": 0, "command": "c",
                                             "check": "c", "retried": 0, "dropped_check": 0, "families": ["add"],
                                             "difficulty": [1, 1], "n_requested": 1, "generation_seconds": 0.0,
                                             "counts": {"train": 1, "test": 0}})
    loaded = datasets.load_from_disk(str(tmp_path / "self"))
    assert loaded["train"][0]["solution"] == "so \\boxed{4}"


def test_synth_from_model_with_nothing_verified_fails_cleanly(tmp_path: Path) -> None:
    """The random tiny model never answers correctly: a clear error, exit 1, no folder left behind."""
    out = tmp_path / "self"
    args = [sys.executable, "-m", "rlmath.cli", "synth", "--from-model", "-c", "configs/smoke.yaml", "--n", "4",
            "--k", "2", "--out", str(out), "--set", "sampling.backend=hf", "--set", f"output_dir={tmp_path}"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 1
    assert "none of 8 samples" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_train_command_picks_the_recipe_by_algorithm() -> None:
    from rich.console import Console

    from rlmath.algorithms.sft import run_sft
    from rlmath.cli import _recipe
    from rlmath.errors import RLMathError
    from rlmath.loop import run_training

    assert _recipe("sft") is run_sft and _recipe("grpo") is run_training
    config = load_config(ROOT / "configs/smoke.yaml", ["algorithm=sft", "tracking.mlflow=false"])
    with pytest.raises(RLMathError, match="'sft' is not the GRPO recipe"):
        run_training(config, Console(quiet=True))
