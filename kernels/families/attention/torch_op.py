"""attention's entry point as a torch custom op with a fake implementation (shape and type only), so that it
traces under torch.compile; registered when warpsched.kernels.torch_ops is imported."""

from __future__ import annotations

import torch

from warpsched.kernels.families.attention import launch


@torch.library.custom_op("warpsched::attention_fwd", mutates_args=())
def attention_fwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    softmax_scale: float | None = None,
) -> torch.Tensor:
    return launch.attention_fwd(q, k, v, causal=causal, softmax_scale=softmax_scale)


@attention_fwd.register_fake
def _(q, k, v, *, causal=False, softmax_scale=None):
    return torch.empty_like(q)
