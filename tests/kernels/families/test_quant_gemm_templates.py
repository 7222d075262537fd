"""The paired integer dequantization of the quant_gemm template (issue 17 item 1, in part), evaluated on the
CPU: its constants and LOP3 truth tables are read from the template text and applied bit by bit to every code
of every width it takes, with bf16/fp16 arithmetic emulated exactly; the result must be the bits the float
path (and kernels.quant.dequantize) gives. No GPU runs it here; the GPU tests check it end to end."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from warpsched.kernels.families.quant_gemm import templates as F

HELPERS = F.QUANT_HELPERS.replace("{{", "{").replace("}}", "}")


def _lop3(a: int, b: int, c: int, lut: int) -> int:
    """PTX lop3.b32: bit i of the result is bit (a_i b_i c_i) of the truth table (a 0xf0, b 0xcc, c 0xaa)."""
    out = 0
    for i in range(32):
        index = ((a >> i) & 1) << 2 | ((b >> i) & 1) << 1 | ((c >> i) & 1)
        out |= ((lut >> index) & 1) << i
    return out


def _constants(helpers: str = HELPERS):
    """{dtype: (widest width, magic)}, the two LOP3 truth tables and where the second code is shifted to."""
    paired = re.search(
        r"PAIRED = FMT == 0 && BITS <= \(cute::is_same_v<Element, cutlass::half_t> \? (\d+) : (\d+)\)",
        helpers,
    )
    magic = re.search(r"half \? (0x[0-9a-f]+)u : (0x[0-9a-f]+)u", helpers)
    luts = [int(x, 16) for x in re.findall(r"lop3\.b32 %0, %1, %2, %3, (0x[0-9a-f]+);", helpers)]
    shift = re.search(r'"r"\(x << \((\d+) - BITS\)\)', helpers)
    assert paired and magic and shift and len(luts) == 2
    limits = {"fp16": (int(paired[1]), int(magic[1], 16)), "bf16": (int(paired[2]), int(magic[2], 16))}
    return limits, (luts, int(shift[1]))


def _as(bits16: np.ndarray, dtype: str) -> torch.Tensor:
    raw = torch.from_numpy(bits16.astype(np.int16))
    return raw.view(torch.float16 if dtype == "fp16" else torch.bfloat16)


def _pair(x: int, bits: int, magic: int, ops) -> tuple[int, int]:
    """dequant_pair's two 16-bit halves before the arithmetic, from the template's own operations."""
    (first, second), shift = ops
    mask = (1 << bits) - 1
    v = _lop3(x, mask, magic * 0x10001, first)
    v = _lop3((x << (shift - bits)) & 0xFFFFFFFF, mask << 16, v, second)
    return v & 0xFFFF, v >> 16


def _mismatches(dtype: str, helpers: str = HELPERS) -> list[tuple[int, float]]:
    """(bits, scale) where the paired path's bits differ from the float path's."""
    limits, luts = _constants(helpers)
    widest, magic = limits[dtype]
    torch_dtype = torch.float16 if dtype == "fp16" else torch.bfloat16
    rng = np.random.default_rng(0)
    scales = torch.tensor(rng.uniform(1e-3, 2.0, 64), dtype=torch.float32).to(torch_dtype)
    bad = []
    for bits in range(1, widest + 1):
        offset = 1 << (bits - 1)
        codes = np.arange(1 << bits)
        pairs = [_pair(int(a) | int(b) << bits, bits, magic, luts) for a, b in zip(codes, codes[::-1])]
        lo = _as(np.array([p[0] for p in pairs]), dtype)
        hi = _as(np.array([p[1] for p in pairs]), dtype)
        bias = _as(np.array([magic + offset]), dtype)
        for s in scales:
            # HADD2 (exact: small integers) then HMUL2 (one rounding of the exact product), as on sm_90
            got_lo = ((lo.float() - bias.float()).to(torch_dtype).float() * s.float()).to(torch_dtype)
            got_hi = ((hi.float() - bias.float()).to(torch_dtype).float() * s.float()).to(torch_dtype)
            want_lo = ((torch.from_numpy(codes).float() - offset) * s.float()).to(torch_dtype)
            want_hi = ((torch.from_numpy(codes[::-1].copy()).float() - offset) * s.float()).to(torch_dtype)
            if not (torch.equal(got_lo, want_lo) and torch.equal(got_hi, want_hi)):
                bad.append((bits, float(s)))
    return bad


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_paired_dequantization_gives_the_float_paths_bits(dtype):
    limits, _ = _constants()
    assert limits[dtype][0] == (8 if dtype == "fp16" else 7)  # the widths whose codes fit the mantissa
    assert _mismatches(dtype) == []


@pytest.mark.parametrize(
    "change",
    [
        ("0x4300u", "0x4280u"),  # a power of two whose ulp is not 1
        ('"r"(x << (16 - BITS))', '"r"(x << (15 - BITS))'),  # the second code one bit off
        ("0xea;", "0xe8;"),  # (a & b) & c instead of | c: the magic number lost
        ("? 8 : 7", "? 8 : 8"),  # int8 in bf16: its codes overflow the mantissa
    ],
)
def test_a_broken_template_is_caught(change):
    broken = HELPERS.replace(*change, 1)
    assert broken != HELPERS
    assert _mismatches("bf16", broken)
