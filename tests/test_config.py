"""Every shipped config loads; overrides and errors name the key (torchtune's test_configs idea)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlmath.config import Config, ConfigError, dump_config, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_round_trips(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    copy = tmp_path / "resolved.yaml"
    copy.write_text(dump_config(config))
    assert load_config(copy) == config


def test_shipped_configs_include_default_and_smoke() -> None:
    assert {"default.yaml", "smoke.yaml"} <= {p.name for p in CONFIGS}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["grpo.steps=7"], ("grpo", "steps", 7)),
        (["sampling.temperature=0.5"], ("sampling", "temperature", 0.5)),
        (["data.families=[add,mul]"], ("data", "families", ["add", "mul"])),
        (["grpo.loss_type=dapo"], ("grpo", "loss_type", "dapo")),
        (["output_dir=/tmp/x"], (None, "output_dir", "/tmp/x")),
    ],
)
def test_set_overrides_reach_the_typed_tree(overrides, expected) -> None:
    section, key, value = expected
    config = load_config(None, overrides)
    node = config if section is None else getattr(config, section)
    assert getattr(node, key) == value


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["grpo.stepz=3"], "grpo.stepz: unknown key"),
        (["grpo.steps=many"], "grpo.steps"),
        (["sampling.backend=tpu"], "sampling.backend"),
        (["lora.r=0"], "lora.r"),
        (["nonsense=1"], "nonsense: unknown key"),
        (["noequals"], "KEY=VALUE"),
    ],
)
def test_bad_overrides_name_the_key(overrides, named) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(None, overrides)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_defaults_are_the_embedded_model() -> None:
    assert Config().model.name_or_path.startswith("embedded:")


@pytest.mark.parametrize("bad", ["grpo.stepz=3", "grpo.steps=abc"])
def test_cli_exits_2_naming_the_key_without_traceback(bad: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "rlmath.cli", "train", "-c", "configs/smoke.yaml", "--set", bad],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2
    assert bad.split("=")[0] in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_reward_name_is_rejected_at_load_time() -> None:
    with pytest.raises(ConfigError, match="rewards.weights"):
        load_config(None, ["rewards.weights={correct: 1.0, vibes: 2.0}"])


def test_unknown_family_is_rejected_at_load_time() -> None:
    with pytest.raises(ConfigError, match="data.families"):
        load_config(None, ["data.families=[add,calculus_of_doom]"])


@pytest.mark.parametrize(("overrides", "engine", "tolerance"), [
    ([], "float32", 0.1),                                             # engine in the trainer's precision
    (["sampling.dtype=bfloat16"], "bfloat16", 1.0),                   # bfloat16 rounding alone exceeds 0.1
    (["sampling.dtype=bfloat16", "grpo.probe_tolerance=0.3"], "bfloat16", 0.3),  # an explicit value wins
    (["model.dtype=bfloat16"], "bfloat16", 0.1),                      # auto follows the model
])
def test_engine_precision_and_the_probe_tolerance_that_goes_with_it(overrides, engine, tolerance) -> None:
    config = load_config(None, overrides)
    assert config.engine_dtype == engine
    assert config.probe_tolerance == tolerance
