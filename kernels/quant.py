"""The packed weight layout of the quantized GEMM kernels, and a float32 reference.

Layout (one for every bit width 1..8): a weight matrix of N output rows and K inputs is stored as
`uint8` of shape (N, K * bits / 8), row after row; K is a multiple of CHUNK = 128. A row is a run of
chunks of 128 inputs, each 16 * bits bytes = 4 * bits little-endian 32-bit words, and in every chunk
thread q (0..3) of a quad owns the `bits` words q * bits .. q * bits + bits - 1: the 32 codes wgmma's
A-operand registers want in that thread (inputs 16 b + 2 q + 8 e and 16 b + 2 q + 8 e + 1 of the eight
16-input blocks b, e = 0, 1), as 16 pairs i = 2 b + e. The low 16-bit halves of the thread's words form
one bit string that holds the first code of every pair, the high halves another with the second code,
each at bits i * bits .. i * bits + bits - 1 of its string (bit t of a string is bit t % 16 of word
t // 16, plus 16 for the high halves). So the two codes of a pair sit 16 bits apart, at the same place
in the two halves of one register (a code of 3, 5, 6 or 7 bits can run into the next word), and a thread
reads all its codes of a chunk with one vector load (128-bit at 4 bits, two at 8; at 8 bits odd rows
swap a thread's two 16-byte vectors, so that the two rows a quarter-warp reads use different banks). The
kernel then turns a pair into two 16-bit floats with one LOP3 (the codes into the mantissa of a power of
two), one HSUB2 and the scale's HMUL2, shifting a word only when the next codes are out of the
mantissa's reach (kernels/families/quant_gemm/templates.py, `QUANT_HELPERS`). A TMA box of tile_k
codes (a multiple of 128) is a contiguous run of tile_k * bits / 8 bytes per row.

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

from warpsched.models.quant_gemm import CHUNK, float_fields
from warpsched.scheduler.errors import InputError

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
    if k % CHUNK:
        raise InputError(
            f"K = {k} is not a multiple of {CHUNK} (the layout gives each thread its codes in chunks of "
            f"{CHUNK} inputs); pad the input channels with zero weights"
        )
    if codes.is_floating_point() or codes.is_complex():
        raise InputError(f"codes must be an integer tensor; got {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 1 << bits):
        raise InputError(
            f"codes must lie in [0, {1 << bits}) for {bits} bits; got {int(codes.min())}..{int(codes.max())}"
        )
    shifts = torch.arange(bits, device=codes.device)
    weights = (1 << torch.arange(8, device=codes.device)).to(torch.int32)
    where = _even_and_odd_positions(k, bits, codes.device)
    out = torch.empty(n, k * bits // 8, dtype=torch.uint8, device=codes.device)
    for r in range(0, n, _ROWS_PER_CHUNK):  # an even number of rows at a time: row r + i is odd when i is
        c = codes[r : r + _ROWS_PER_CHUNK].to(torch.int32)
        planes = ((c.unsqueeze(-1) >> shifts) & 1).reshape(
            c.shape[0], -1
        )  # bit b of code k: column k * bits + b
        row_bits = torch.empty_like(planes)
        row_bits[0::2, where[0]] = planes[0::2]
        row_bits[1::2, where[1]] = planes[1::2]
        out[r : r + _ROWS_PER_CHUNK] = (row_bits.reshape(c.shape[0], -1, 8) * weights).sum(-1).to(torch.uint8)
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
    if nbytes * 8 % bits or k % CHUNK:
        raise InputError(
            f"a packed row of {nbytes} bytes is not a whole number of {CHUNK}-input chunks at {bits} bits"
        )
    out = torch.empty(n, k, dtype=torch.int32, device=packed.device)
    shifts = torch.arange(8, device=packed.device)
    weights = (1 << torch.arange(bits, device=packed.device)).to(torch.int32)
    where = _even_and_odd_positions(k, bits, packed.device)
    for r in range(0, n, _ROWS_PER_CHUNK):
        p = packed[r : r + _ROWS_PER_CHUNK].to(torch.int32)
        row_bits = ((p.unsqueeze(-1) >> shifts) & 1).reshape(p.shape[0], -1)  # the row's bit string
        for odd in (0, 1):
            mine = row_bits[odd::2, where[odd]].reshape(-1, k, bits)
            out[r + odd : r + _ROWS_PER_CHUNK : 2] = (mine * weights).sum(-1)
    return out


def _even_and_odd_positions(k: int, bits: int, device) -> list[torch.Tensor]:
    """bit_positions of even and of odd rows (the same tensor but at 8 bits, where odd rows swap vectors)."""
    even = bit_positions(k, bits, device)
    return [even, bit_positions(k, bits, device, odd=True) if bits % 8 == 0 else even]


def bit_positions(k: int, bits: int, device=None, *, odd: bool = False) -> torch.Tensor:
    """Where bit b of code k sits in its packed row's bit string (bit j in byte j // 8 at j % 8), as a
    tensor of k * bits positions ordered (k, b): the layout above, spelled out; `odd` for odd rows, where
    8-bit codes swap a thread's two 16-byte vectors (rows n and n + 1 then read different banks)."""
    code = torch.arange(k, device=device).repeat_interleave(bits)
    b = torch.arange(bits, device=device).repeat(k)
    chunk, inner = code // CHUNK, code % CHUNK
    block, lane = inner // 16, inner % 16
    quad, e, second = (lane % 8) // 2, lane // 8, lane % 2
    t = (2 * block + e) * bits + b  # bit of the thread's low- or high-half string
    mine = t // 16  # which of the thread's words
    if odd and bits % 8 == 0:
        mine = mine ^ 4  # the other 16-byte vector of the thread's two
    word = chunk * 4 * bits + quad * bits + mine
    return 32 * word + t % 16 + 16 * second


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
