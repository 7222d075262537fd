"""quant_gemm's entry point as a torch custom op with a fake implementation (shape and type only), so that it
traces under torch.compile; registered when warpsched.kernels.torch_ops is imported."""

from __future__ import annotations

import torch

from warpsched.kernels.families.quant_gemm import launch


@torch.library.custom_op("warpsched::quant_gemm", mutates_args=())
def quant_gemm(
    x: torch.Tensor,
    packed_weight: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    *,
    bits: int,
    group_size: int,
    fmt: str = "int",
) -> torch.Tensor:
    return launch.quant_gemm(x, packed_weight, scales, zeros, bits=bits, group_size=group_size, fmt=fmt)


@quant_gemm.register_fake
def _(x, packed_weight, scales, zeros, *, bits, group_size, fmt="int"):
    return x.new_empty(x.shape[0], packed_weight.shape[0])
