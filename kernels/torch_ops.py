"""The kernels as torch custom ops, `torch.ops.warpsched.{gemm, quant_gemm, attention_fwd}`, so that they
trace under `torch.compile` (each has a fake implementation that gives the output's shape and type).

    import warpsched.kernels.torch_ops        # registers the ops once per process
    y = torch.ops.warpsched.quant_gemm(x, packed, scales, None, bits=4, group_size=128, fmt="int")
"""

from __future__ import annotations

import torch

from warpsched.kernels import runtime


@torch.library.custom_op("warpsched::gemm", mutates_args=())
def gemm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return runtime.gemm(a, b)


@gemm.register_fake
def _(a, b):
    return a.new_empty(a.shape[0], b.shape[0])


@torch.library.custom_op("warpsched::quant_gemm", mutates_args=())
def quant_gemm(x: torch.Tensor, packed_weight: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None, *,
               bits: int, group_size: int, fmt: str = "int") -> torch.Tensor:
    return runtime.quant_gemm(x, packed_weight, scales, zeros, bits=bits, group_size=group_size, fmt=fmt)


@quant_gemm.register_fake
def _(x, packed_weight, scales, zeros, *, bits, group_size, fmt="int"):
    return x.new_empty(x.shape[0], packed_weight.shape[0])


@torch.library.custom_op("warpsched::attention_fwd", mutates_args=())
def attention_fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
                  softmax_scale: float | None = None) -> torch.Tensor:
    return runtime.attention_fwd(q, k, v, causal=causal, softmax_scale=softmax_scale)


@attention_fwd.register_fake
def _(q, k, v, *, causal=False, softmax_scale=None):
    return torch.empty_like(q)
