"""The packed weight layout of the quantized GEMM kernels, and a float32 reference.

Layout (one for every bit width 1..8): a weight matrix of N output rows and K inputs is stored as
`uint8` of shape (N, K * bits / 8), each row a little-endian bit string (bit 0 of byte 0 first) of
`bits`-bit fields. Within every block of 16 inputs the codes are stored in the order
KERNEL_ORDER = (0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15): field p of a block holds
code k = 16 * block + KERNEL_ORDER[p]. That is the order in which wgmma's A-operand registers want
them: thread q of a quad holds inputs 2q, 2q + 1, 2q + 8, 2q + 9 of every 16, so its four codes are
one contiguous 4 * bits-bit field, read with one 32-bit shared-memory load (two and a funnel shift
when 3, 5, 6 or 7 bits cross a word) and unpacked with shifts and masks, the integers turned into
floats by the exponent trick (OR into 2^23, subtract) instead of a conversion instruction
(kernels/cuda/templates.py, `QUANT_HELPERS`). A TMA box of tile_k codes is a contiguous run of
tile_k * bits / 8 bytes per row. K must be a multiple of 16.

Codes mean (`fmt`):
- `int`: symmetric, w = (code - 2^(bits-1)) * scale;
- `int_zp`: with a zero point per group, w = (code - zero) * scale;
- a float eXmY (`e2m1` fp4, `e3m2`/`e2m3` fp6, `e4m3`/`e5m2` fp8): w = value(code) * scale, value with sign,
  exponent bias 2^(X-1)-1 and subnormals, no inf/nan.
Scales (and zero points) are (K / group_size, N) in the activation type, or (N,) channelwise
(group_size -1).
"""

from __future__ import annotations


import torch

from warpsched.models.quant_gemm import float_fields
from warpsched.scheduler.errors import InputError

KERNEL_ORDER = (
    0,
    1,
    8,
    9,
    2,
    3,
    10,
    11,
    4,
    5,
    12,
    13,
    6,
    7,
    14,
    15,
)  # field p of a 16-block holds code KERNEL_ORDER[p]
_ROWS_PER_CHUNK = 1024  # pack/unpack a block of rows at a time: the bit planes take bits bytes per weight


def _check_bits(bits: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise InputError(f"bits must be an integer from 1 to 8; got {bits!r}")


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes (N, K) in [0, 2^bits) into the kernels' uint8 layout (N, K * bits / 8)."""
    _check_bits(bits)
    if codes.dim() != 2:
        raise InputError(f"codes must be 2-D (N, K); got shape {tuple(codes.shape)}")
    n, k = codes.shape
    if k % 16:
        raise InputError(f"K = {k} is not a multiple of 16 (the layout orders codes in blocks of 16)")
    if codes.is_floating_point() or codes.is_complex():
        raise InputError(f"codes must be an integer tensor; got {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 1 << bits):
        raise InputError(
            f"codes must lie in [0, {1 << bits}) for {bits} bits; got {int(codes.min())}..{int(codes.max())}"
        )
    shifts = torch.arange(bits, device=codes.device)
    weights = (1 << torch.arange(8, device=codes.device)).to(torch.int32)
    out = torch.empty(n, k * bits // 8, dtype=torch.uint8, device=codes.device)
    order = _field_order(k, codes.device)
    for r in range(0, n, _ROWS_PER_CHUNK):
        c = codes[r : r + _ROWS_PER_CHUNK].to(torch.int32)[:, order]  # field p holds code order[p]
        planes = (c.unsqueeze(-1) >> shifts) & 1  # (rows, K, bits): bit b of code k is bit k * bits + b
        out[r : r + _ROWS_PER_CHUNK] = (planes.reshape(c.shape[0], -1, 8) * weights).sum(-1).to(torch.uint8)
    return out


def unpack(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """The integer codes (N, K) of a packed (N, K * bits / 8) uint8 tensor."""
    _check_bits(bits)
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise InputError(
            f"packed weights must be 2-D uint8; got {packed.dtype} of shape {tuple(packed.shape)}"
        )
    n, nbytes = packed.shape
    k = nbytes * 8 // bits
    out = torch.empty(n, k, dtype=torch.int32, device=packed.device)
    shifts = torch.arange(8, device=packed.device)
    weights = (1 << torch.arange(bits, device=packed.device)).to(torch.int32)
    for r in range(0, n, _ROWS_PER_CHUNK):
        p = packed[r : r + _ROWS_PER_CHUNK].to(torch.int32)
        planes = (p.unsqueeze(-1) >> shifts) & 1  # (rows, bytes, 8): the row's bit string
        out[r : r + _ROWS_PER_CHUNK, _field_order(k, packed.device)] = (
            (planes.reshape(p.shape[0], k, bits) * weights).sum(-1).to(torch.int32)
        )
    return out


def _field_order(k: int, device) -> torch.Tensor:
    """For every field p of a packed row, the code it holds: 16 * (p // 16) + KERNEL_ORDER[p % 16]."""
    p = torch.arange(k, device=device)
    return (p // 16) * 16 + torch.tensor(KERNEL_ORDER, device=device)[p % 16]


def float_values(fmt: str) -> torch.Tensor:
    """The value of every code of a float eXmY format (index = code), float32: sign, exponent with bias
    2^(X-1)-1, subnormals, no inf/nan (every code is a number)."""
    e_bits, m_bits = float_fields(fmt)
    codes = torch.arange(1 << (e_bits + m_bits + 1))
    sign = torch.where((codes >> (e_bits + m_bits)) & 1 == 1, -1.0, 1.0)
    exp = (codes >> m_bits) & ((1 << e_bits) - 1)
    man = (codes & ((1 << m_bits) - 1)).float()
    bias = (1 << (e_bits - 1)) - 1
    normal = (1 + man / (1 << m_bits)) * torch.exp2((exp - bias).float())
    subnormal = (man / (1 << m_bits)) * 2.0 ** (1 - bias)
    return sign * torch.where(exp == 0, subnormal, normal)


def dequantize(
    codes: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    *,
    bits: int,
    group_size: int,
    fmt: str = "int",
) -> torch.Tensor:
    """Float32 weights (N, K) of codes (N, K) with scales (K / group, N) or (N,) channelwise."""
    n, k = codes.shape
    if group_size == -1:
        scale = scales.float().reshape(n, 1).expand(n, k)
        zero = None if zeros is None else zeros.float().reshape(n, 1).expand(n, k)
    else:
        scale = scales.float().T.repeat_interleave(group_size, dim=1)
        zero = None if zeros is None else zeros.float().T.repeat_interleave(group_size, dim=1)
    if fmt == "int":
        return (codes.float() - (1 << (bits - 1))) * scale
    if fmt == "int_zp":
        return (codes.float() - zero) * scale
    return float_values(fmt).to(codes.device)[codes.long()] * scale
