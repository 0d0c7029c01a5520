"""``bfloat16_if_fast``: bfloat16 only where the machine computes it natively.

The default config once hard-wired a bfloat16 vLLM engine and a bfloat16 GRPO update, tuned on a CPU with
AVX512-BF16; on an AVX2-only CPU torch emulates bfloat16 (a matmul at 1.2 GFLOPS against 134 in
float32) and the demo's first evaluation had not finished after 10 minutes.
"""

from __future__ import annotations

import pytest
import torch

from rlmath import hardware
from rlmath.config import load_config
from rlmath.hardware import BFLOAT16_CPU_FLAGS, cpu_flags, fast_bfloat16, resolve_bfloat16
from rlmath.policy import training_precision, updates_in_bfloat16


@pytest.fixture(params=[True, False], ids=["bfloat16-units", "no-bfloat16-units"])
def machine(request, monkeypatch) -> bool:
    """Pretend the machine does (or does not) have bfloat16 matrix units."""
    monkeypatch.setattr(hardware, "fast_bfloat16", lambda device_type=None: request.param)
    return request.param


@pytest.mark.parametrize(("value", "otherwise", "fast", "expected"), [
    ("bfloat16_if_fast", "float32", True, "bfloat16"),
    ("bfloat16_if_fast", "float32", False, "float32"),
    ("bfloat16_if_fast", "none", False, "none"),
    ("bfloat16", "float32", False, "bfloat16"),   # an explicit choice is honoured, fast or not
    ("float32", "float32", True, "float32"),
    ("none", "none", True, "none"),
])
def test_resolve_picks_bfloat16_only_where_it_is_fast(monkeypatch, value, otherwise, fast, expected) -> None:
    monkeypatch.setattr(hardware, "fast_bfloat16", lambda device_type=None: fast)
    assert resolve_bfloat16(value, otherwise) == expected


def test_the_engine_precision_follows_the_machine(machine) -> None:
    config = load_config(None, ["sampling.dtype=bfloat16_if_fast"])
    assert config.engine_dtype == ("bfloat16" if machine else "float32")
    assert config.probe_tolerance == (1.0 if machine else 0.1)  # the float32 engine keeps the tight probe


def test_the_update_autocast_follows_the_machine(machine) -> None:
    model = torch.nn.Linear(4, 4)  # a CPU model: the device the trainer's autocast is asked about
    assert updates_in_bfloat16(model, "bfloat16_if_fast") is machine
    with training_precision(model, "bfloat16_if_fast"):
        assert torch.is_autocast_enabled("cpu") is machine
    with training_precision(model, "none"):
        assert not torch.is_autocast_enabled("cpu")


def test_the_default_config_asks_for_bfloat16_only_where_fast() -> None:
    config = load_config("configs/default.yaml", [])
    assert config.sampling.dtype == "bfloat16_if_fast"
    assert config.grpo.autocast == "bfloat16_if_fast"


def test_cpu_flags_are_read_from_the_first_flags_line(tmp_path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()


def test_torchs_probe_agrees_with_the_kernels_flags_on_this_machine() -> None:
    """On Linux the CPU's own flags and torch's probe must tell the same story (whichever this machine is)."""
    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags on this OS")
    assert fast_bfloat16("cpu") == bool(flags & set(BFLOAT16_CPU_FLAGS))
