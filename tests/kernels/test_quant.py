"""The packed weight layout (kernels/quant.py): pack and unpack are inverse for every bit width,
the bits sit where the kernel's `code_at` reads them, and the float32 reference agrees with the
simulator's semantics."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsched.kernels.quant import KERNEL_ORDER, dequantize, float_values, pack, unpack
from warpsched.scheduler.errors import InputError


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 8), rows=st.integers(1, 5), blocks=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_pack_and_unpack_are_inverse(bits, rows, blocks, seed):
    k = 16 * blocks
    codes = torch.randint(0, 1 << bits, (rows, k), generator=torch.Generator().manual_seed(seed))
    packed = pack(codes, bits)
    assert packed.dtype == torch.uint8 and packed.shape == (rows, k * bits // 8)
    assert torch.equal(unpack(packed, bits), codes.to(torch.int32))


@pytest.mark.parametrize("bits", range(1, 9))
def test_each_quad_threads_four_codes_are_one_field(bits):
    """What the kernel's field_at reads: in block b of 16 inputs, thread q of a quad finds inputs 2q, 2q+1,
    2q+8, 2q+9 as the four consecutive bits-wide fields starting at bit (16 b + 4 q) * bits of the row."""
    codes = torch.randint(0, 1 << bits, (3, 64), generator=torch.Generator().manual_seed(bits))
    packed = pack(codes, bits).numpy()
    for n in range(3):
        row = int.from_bytes(packed[n].tobytes(), "little")  # the row's bit string
        for b in range(4):
            for q in range(4):
                field = row >> ((16 * b + 4 * q) * bits)
                got = [(field >> (e * bits)) & ((1 << bits) - 1) for e in range(4)]
                assert got == [int(codes[n, 16 * b + 2 * q + d]) for d in (0, 1, 8, 9)]
    assert KERNEL_ORDER == tuple(2 * q + d for q in range(4) for d in (0, 1, 8, 9))


@pytest.mark.parametrize("fmt, dtype", [("e4m3", "float8_e4m3fn"), ("e5m2", "float8_e5m2")])
def test_float8_codes_mean_what_torch_says(fmt, dtype):
    """Every code torch gives a finite value to means that value; ours has no inf/nan, so torch's few special
    codes (e4m3fn: exponent and mantissa all ones; e5m2: exponent all ones) are numbers here."""
    codes = torch.arange(256, dtype=torch.uint8)
    theirs = codes.view(getattr(torch, dtype)).float()
    ours = float_values(fmt)
    finite = theirs.isfinite()
    assert int((~finite).sum()) == (2 if fmt == "e4m3" else 8)
    assert torch.equal(ours[finite], theirs[finite]) and ours.isfinite().all()
    assert float(ours[0x7F]) == (480.0 if fmt == "e4m3" else 114688.0)  # the special codes as plain numbers


def test_small_float_codes_by_hand():
    assert float_values("e2m1").tolist()[:8] == [0, 0.5, 1, 1.5, 2, 3, 4, 6]  # the OCP fp4 values
    assert float_values("e2m1").tolist()[8:] == [-0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
    assert (
        float_values("e3m2").tolist()[:4] == [0, 0.0625, 0.125, 0.1875] and float_values("e3m2").max() == 28
    )
    assert float_values("e2m3").tolist()[:2] == [0, 0.125] and float_values("e2m3").max() == 7.5


def test_dequantize_groups_and_channels():
    codes = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    scales = torch.tensor([[1.0, 2.0], [10.0, 20.0]])  # (K / group, N), group 2
    w = dequantize(codes, scales, None, bits=2, group_size=2)  # int: code - 2
    assert w.tolist() == [[-2, -1, 0, 10], [2, 0, -20, -40]]
    zeros = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert dequantize(codes, scales, zeros, bits=2, group_size=2, fmt="int_zp")[0].tolist() == [-1, 0, 20, 30]
    assert dequantize(codes, torch.tensor([1.0, 2.0]), None, bits=2, group_size=-1)[1].tolist() == [
        2,
        0,
        -2,
        -4,
    ]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: pack(torch.tensor([[4] + [0] * 15]), 2), ["[0, 4)", "2 bits"]),
        (lambda: pack(torch.zeros(2, 24, dtype=torch.int64), 3), ["K = 24", "multiple of 16"]),
        (lambda: pack(torch.zeros(2, 16), 4), ["integer tensor"]),
        (lambda: pack(torch.zeros(2, 8, dtype=torch.int64), 9), ["1 to 8"]),
        (lambda: unpack(torch.zeros(2, 8, dtype=torch.int32), 4), ["uint8"]),
    ],
)
def test_packing_mistakes_are_one_sentence(call, words):
    with pytest.raises(InputError) as exc:
        call()
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value)
