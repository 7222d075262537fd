"""FlashAttention's `flash_attn_func` calling convention over kernels.attention_fwd, for code written
against the flash-attn package:

    from warpsched.integrations.flash_attn import flash_attn_func
    out = flash_attn_func(q, k, v, causal=True)            # q (B, N, H, d), k and v (B, N_kv, H_kv, d)

The layout is FlashAttention's (batch, seqlen, heads, head_dim); the kernel reads (batch, heads, seqlen,
head_dim), so q, k and v are each copied into that layout and the output copied back (four copies; a
kernel that reads the (B, N, H, d) layout through its TMA maps would save them). Causal masking is aligned to
the bottom right, as flash-attn's since 2.1. What the kernels do not have (dropout, a sliding window,
ALiBi, soft-capping, returning the attention probabilities) is refused in one sentence, and so are
variable-length batches (`flash_attn_varlen_func`): the kernel gives every (batch, head) one sequence length
and its TMA maps one tensor per call, so packed sequences with `cu_seqlens` need per-tile sequence offsets
and key bounds in the kernel's prologue (no new schedule model, but a new launch geometry and masking
templates), which it does not have yet.
"""

from __future__ import annotations

from warpsched.kernels.families.attention.launch import attention_fwd
from warpsched.kernels.runtime import KernelError


def flash_attn_func(
    q,
    k,
    v,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    softcap: float = 0.0,
    alibi_slopes=None,
    deterministic: bool = False,
    return_attn_probs: bool = False,
):
    """softmax(q k^T * softmax_scale) v for q (B, N, H, d), k and v (B, N_kv, H_kv, d) with H_kv dividing H;
    the output is (B, N, H, d). `deterministic` is accepted: the forward pass always is."""
    refused = {
        "dropout": dropout_p != 0.0,
        "sliding window": tuple(window_size) != (-1, -1),
        "soft-capping": softcap != 0.0,
        "ALiBi": alibi_slopes is not None,
        "returned attention probabilities": return_attn_probs,
    }
    for what, asked in refused.items():
        if asked:
            raise KernelError(f"warpsched attention has no {what}; call it without")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if getattr(t, "dim", lambda: 0)() != 4:
            raise KernelError(f"{name} must be a 4-D tensor (batch, seqlen, heads, head_dim)")
    out = attention_fwd(
        q.transpose(1, 2).contiguous(),
        k.transpose(1, 2).contiguous(),
        v.transpose(1, 2).contiguous(),
        causal=causal,
        softmax_scale=softmax_scale,
    )
    return out.transpose(1, 2).contiguous()  # flash-attn's output is contiguous; callers view it


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *args, **kwargs):
    """flash-attn's variable-length entry point, refused: see the module's docstring."""
    raise KernelError(
        "warpsched attention has no variable-length batches (cu_seqlens) yet: call flash_attn_func once per "
        "sequence, or on a batch of sequences of one length"
    )
