"""attention_fwd on torch tensors: check the call, load the kernel of its configuration (the shipped
schedule, else a
solve that says so) and launch it. Every mistake is one `KernelError` sentence; none reaches the driver."""

from __future__ import annotations

import ctypes
import math

from warpsched.kernels import runtime as rt


def softmax_scale_log2(head_dim: int, softmax_scale: float | None) -> float:
    """The kernel's `scale_log2`: softmax_scale (default 1/sqrt(d)) times log2(e), for exp2."""
    return (1.0 / math.sqrt(head_dim) if softmax_scale is None else softmax_scale) * math.log2(math.e)


def attention_fwd(
    q,
    k,
    v,
    *,
    causal: bool = False,
    softmax_scale: float | None = None,
    return_lse: bool = False,
    runtime: rt.KernelRuntime | None = None,
):
    """softmax(q k^T * scale) v for q (B, H, N, d), k and v (B, H_kv, N_kv, d) with H_kv dividing H (GQA),
    bf16 or fp16, d in 64/128/256; the output is (B, H, N, d) like scaled_dot_product_attention, and with
    `return_lse` also the log-sum-exp of every query row's scaled scores, (B, H, N) float32."""
    torch = rt.torch_module()
    runtime = runtime or rt.default_runtime()
    rt.require_sm90()
    for name, t in (("q", q), ("k", k), ("v", v)):
        rt.check_operand(name, t, (torch.bfloat16, torch.float16), dims=4)
    if not q.dtype == k.dtype == v.dtype:
        raise rt.KernelError(f"q, k and v are {q.dtype}, {k.dtype}, {v.dtype}; give them one type")
    b, h, n, d = q.shape
    if k.shape != v.shape or k.shape[0] != b or k.shape[3] != d:
        raise rt.KernelError(
            f"k {tuple(k.shape)} and v {tuple(v.shape)} must both be (batch {b}, kv_heads, seqlen, head_dim "
            f"{d})"
        )
    hkv, nkv = k.shape[1], k.shape[2]
    if h % hkv:
        raise rt.KernelError(f"{hkv} K/V heads do not divide {h} query heads")
    if d not in (64, 128, 256):
        raise rt.KernelError(f"head_dim {d} is not supported; use 64, 128 or 256")
    if n < 1 or nkv < 1:
        raise rt.KernelError("q and k need at least one row each")
    if causal and nkv < n:
        raise rt.KernelError(
            f"causal attention needs at least as many keys as queries (the mask is aligned to the bottom "
            f"right, as FlashAttention's); got {nkv} keys for {n} queries"
        )
    loaded = runtime.load(
        "attention_fwd", {"head_dim": d, "dtype": rt.dtype_names()[q.dtype], "causal": bool(causal)}
    )
    bm, bn, tiles = loaded.tile["block_m"], loaded.tile["block_n"], loaded.tile["q_tiles"]
    out = torch.empty_like(q)
    if return_lse and not loaded.tile.get("lse"):
        raise rt.KernelError(
            "this head_dim's schedule keeps the row maximum away from the output's warpgroup; "
            "return_lse is not available for it"
        )
    lse = torch.empty(b, h, n, dtype=torch.float32, device=q.device) if return_lse else None
    maps = (
        rt.tensor_map(q, [d, n, b * h], [64, bm, 1]),
        rt.tensor_map(k, [d, nkv, b * hkv], [64, bn, 1]),
        rt.tensor_map(v, [d, nkv, b * hkv], [64, bn, 1]),
    )
    runtime.launch(
        loaded,
        (-(-n // (bm * tiles)), h, b),
        (
            *maps,
            out.data_ptr(),
            0 if lse is None else lse.data_ptr(),
            n,
            nkv,
            h,
            hkv,
            softmax_scale_log2(d, softmax_scale),
        ),
        (
            None,
            None,
            None,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_float,
        ),
    )
    return (out, lse) if return_lse else out
