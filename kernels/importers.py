"""Importers of GPTQ and AWQ checkpoints into the kernels' packed layout (kernels/quant.py).

    w = warpsched.kernels.importers.from_gptq(qweight, qzeros, scales, g_idx, bits=4)
    y = w.matmul(x)          # kernels.quant_gemm on the GPU: x @ W.T of the original layer

GPTQ (AutoGPTQ / exllama, "v1" checkpoints, 2, 3, 4 or 8 bits): `qweight` int32 (K * bits / 32, N) holds
the codes along K as one little-endian bit string per column (code k in bits k * bits .. k * bits +
bits - 1 of the column's words; 3-bit codes cross words, 32 codes per 3 words), `qzeros` int32
(groups, N * bits / 32) the zero points along N the same way, stored minus one, `scales` (groups, N), `g_idx`
(K,) the group of every
input channel; w[k, n] = scales[g_idx[k], n] * (code - (qzero + 1)). Act-order checkpoints (`g_idx`
not sorted) are made static here: the input channels are permuted so that groups are contiguous,
and the caller permutes the activations the same way (`perm`, once per layer: `matmul` does it, or
fold it into the previous layer's output channels) instead of a g_idx gather in the kernel.

AWQ (llm-awq / AutoAWQ GEMM checkpoints, 4-bit): `qweight` int32 (K, N / 8) packs 8 codes along N in
the interleaved order [0, 2, 4, 6, 1, 3, 5, 7] (nibble i holds column 8 c + order[i]), `qzeros` int32
(groups, N / 8) likewise, `scales` (groups, N); w[k, n] = (code - zero) * scales[k // group, n].

A checkpoint whose zero points are all 2^(bits-1) becomes the symmetric `int` format (no zeros tensor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from warpsched.kernels.quant import pack
from warpsched.scheduler.errors import InputError

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble i of a word holds column order[i] of its eight


@dataclass(frozen=True)
class QuantizedWeight:
    packed: torch.Tensor  # uint8 (N, K * bits / 8), kernels/quant.py's layout
    scales: torch.Tensor  # (K / group_size, N)
    zeros: torch.Tensor | None  # (K / group_size, N), for fmt "int_zp"
    bits: int
    group_size: int
    fmt: str
    perm: torch.Tensor | None  # input-channel order the activations must be given in (act-order), or None

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T of the imported layer, with the generated kernel (x (M, K) on an sm_90 GPU)."""
        from warpsched.kernels.families.quant_gemm.launch import quant_gemm

        x = x if self.perm is None else x[:, self.perm.to(x.device)].contiguous()
        return quant_gemm(
            x, self.packed, self.scales, self.zeros, bits=self.bits, group_size=self.group_size, fmt=self.fmt
        )


def _unpack_stream(words: torch.Tensor, bits: int, dim: int) -> torch.Tensor:
    """Codes of `bits` bits read from int32 `words` as one little-endian bit string along `dim` (GPTQ:
    word w's bit b is bit 32 w + b of the string; code j is its bits bits * j ..)."""
    moved = (words.to(torch.int64) & 0xFFFFFFFF).movedim(dim, -1)  # (..., words)
    stream = ((moved.unsqueeze(-1) >> torch.arange(32, device=words.device)) & 1).to(torch.uint8).flatten(-2)
    fields = stream.unflatten(-1, (-1, bits)).to(torch.int64)  # (..., codes, bits), least significant first
    return (fields << torch.arange(bits, device=words.device)).sum(-1).movedim(-1, dim)


def _awq_columns(fields: torch.Tensor) -> torch.Tensor:
    """AWQ's columns from its nibbles in word order: nibble i of each word of eight holds column
    AWQ_ORDER[i]."""
    inverse = [AWQ_ORDER.index(j) for j in range(8)]
    return fields.unflatten(-1, (-1, 8))[..., inverse].flatten(-2)


def _finish(
    codes_kn: torch.Tensor,
    zeros: torch.Tensor,
    scales: torch.Tensor,
    bits: int,
    group_size: int,
    perm: torch.Tensor | None,
) -> QuantizedWeight:
    codes = codes_kn.T.contiguous()  # (N, K): a row per output feature
    if perm is not None:
        codes = codes[:, perm]
    zeros = zeros.to(scales.dtype)
    if group_size == codes.shape[1]:  # one group over all of K: channelwise, scales (N,)
        scales, zeros, group_size = scales[0], zeros[0], -1
    if bool((zeros == (1 << (bits - 1))).all()):
        return QuantizedWeight(pack(codes, bits), scales.contiguous(), None, bits, group_size, "int", perm)
    return QuantizedWeight(
        pack(codes, bits), scales.contiguous(), zeros.contiguous(), bits, group_size, "int_zp", perm
    )


def _check(name: str, t: torch.Tensor, shape: tuple, dtype=None) -> None:
    if tuple(t.shape) != tuple(shape):
        raise InputError(f"{name} has shape {tuple(t.shape)}; expected {tuple(shape)}")
    if dtype is not None and t.dtype != dtype:
        raise InputError(f"{name} is {t.dtype}; expected {dtype}")


def from_gptq(
    qweight: torch.Tensor,
    qzeros: torch.Tensor,
    scales: torch.Tensor,
    g_idx: torch.Tensor | None = None,
    *,
    bits: int = 4,
) -> QuantizedWeight:
    """A GPTQ layer (2, 3, 4 or 8 bits) in the kernels' layout; act-order becomes a static input
    permutation."""
    if bits not in (2, 3, 4, 8):
        raise InputError(f"GPTQ import covers bits 2, 3, 4 and 8 (GPTQ's own widths); got {bits}")
    if qweight.dim() != 2 or (qweight.shape[0] * 32) % bits:
        raise InputError(
            f"qweight has shape {tuple(qweight.shape)}; GPTQ's {bits}-bit rows come in runs of "
            f"{bits // math.gcd(bits, 32)} int32 words (32 codes)"
        )
    k, n = qweight.shape[0] * 32 // bits, qweight.shape[1]
    groups = scales.shape[0]
    _check("qweight", qweight, (k * bits // 32, n), torch.int32)
    _check("scales", scales, (groups, n))
    if (n * bits) % 32:
        raise InputError(f"N = {n} output features do not fill whole int32 words of {bits}-bit zero points")
    _check("qzeros", qzeros, (groups, n * bits // 32), torch.int32)
    if k % groups:
        raise InputError(f"{groups} groups do not divide K = {k}")
    group_size = k // groups
    codes = _unpack_stream(qweight, bits, dim=0)  # (K, N)
    zeros = ((_unpack_stream(qzeros, bits, dim=1) + 1) & ((1 << bits) - 1)).to(
        torch.float32
    )  # stored minus one
    perm = None
    if g_idx is not None:
        _check("g_idx", g_idx, (k,))
        if (
            int(g_idx.min()) < 0
            or int(g_idx.max()) >= groups
            or bool((torch.bincount(g_idx.long(), minlength=groups) != group_size).any())
        ):
            raise InputError(
                f"g_idx must give each of the {groups} groups exactly {group_size} input channels"
            )
        if bool((g_idx.long() != torch.arange(k, device=g_idx.device) // group_size).any()):
            perm = torch.argsort(g_idx.long(), stable=True)  # act-order: make every group contiguous
    return _finish(codes, zeros, scales, bits, group_size, perm)


def from_awq(qweight: torch.Tensor, qzeros: torch.Tensor, scales: torch.Tensor) -> QuantizedWeight:
    """An AWQ (GEMM layout, 4-bit) layer in the kernels' layout."""
    k, n = qweight.shape[0], qweight.shape[1] * 8
    groups = scales.shape[0]
    _check("qweight", qweight, (k, n // 8), torch.int32)
    _check("scales", scales, (groups, n))
    _check("qzeros", qzeros, (groups, n // 8), torch.int32)
    if k % groups:
        raise InputError(f"{groups} groups do not divide K = {k}")
    codes = _awq_columns(_unpack_stream(qweight, 4, dim=1))  # (K, N)
    zeros = _awq_columns(_unpack_stream(qzeros, 4, dim=1)).to(torch.float32)
    return _finish(codes, zeros, scales, 4, k // groups, None)
