"""``sampling.sync: auto``: the default config's fast CPU hand-over, and a multi-process launch that still starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlmath.config import load_config
from rlmath.distributed import check_learner_config
from rlmath.errors import RLMathError
from rlmath.sync_mode import resolve_sync

DEFAULT = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


@pytest.fixture
def one_cpu_process(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("one_cpu_process")
def test_auto_merges_in_one_cpu_process_and_hands_over_adapters_elsewhere(monkeypatch) -> None:
    assert resolve_sync("auto") == "merged"
    monkeypatch.setenv("WORLD_SIZE", "2")  # accelerate launch / torchrun
    assert resolve_sync("auto") == "adapter"
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_sync("auto") == "adapter"


@pytest.mark.usefixtures("one_cpu_process")
def test_explicit_modes_are_kept_whatever_the_launch(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert (resolve_sync("merged"), resolve_sync("adapter")) == ("merged", "adapter")


@pytest.mark.usefixtures("one_cpu_process")
def test_default_config_samples_merged_alone_and_passes_the_multi_process_check(monkeypatch) -> None:
    """The demo's config used to need ``--set sampling.sync=adapter`` before ``accelerate launch`` would start it."""
    config = load_config(DEFAULT, ["sft.warm_start=false"])
    assert config.engine_sync == "merged"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert config.engine_sync == "adapter"
    check_learner_config(config)  # no refusal
    explicit = load_config(DEFAULT, ["sft.warm_start=false", "sampling.sync=merged"])
    with pytest.raises(RLMathError, match="sampling.sync=merged: not supported under a multi-process launch"):
        check_learner_config(explicit)
