"""The attention family on an H100/H200: its kernels match torch (d64/128/256, GQA, odd lengths, causal,
LSE)."""

from __future__ import annotations

import math

import pytest

from tests.kernels.conftest import relative_error


@pytest.mark.gpu
@pytest.mark.parametrize(
    "d, n, heads, kv_heads, causal",
    [
        (128, 1024, 4, 4, False),
        (128, 1000, 4, 2, False),
        (64, 512, 2, 1, False),
        (256, 384, 2, 2, False),
        (128, 1000, 2, 2, True),
        (64, 640, 2, 1, True),
    ],
)
def test_attention_matches_torch_on_the_gpu(d, n, heads, kv_heads, causal):
    import torch

    from warpsched import kernels

    g = torch.Generator(device="cuda").manual_seed(d)
    q = torch.randn(2, heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(2, kv_heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(2, kv_heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    o = kernels.attention_fwd(q, k, v, causal=causal, softmax_scale=0.5 / math.sqrt(d))
    rep = heads // kv_heads
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.float(),
        k.float().repeat_interleave(rep, 1),
        v.float().repeat_interleave(rep, 1),
        is_causal=causal,
        scale=0.5 / math.sqrt(d),
    )
    assert o.shape == q.shape and relative_error(o, ref) < 1e-2
    if not causal and kv_heads == heads:
        o2, lse = kernels.attention_fwd(q, k, v, softmax_scale=0.5 / math.sqrt(d), return_lse=True)
        scores = (q.float() @ k.float().transpose(-1, -2)) * (0.5 / math.sqrt(d))
        assert torch.equal(o2, o) and (lse - torch.logsumexp(scores, dim=-1)).abs().max().item() < 1e-2
