"""The packed weight layout (kernels/quant.py): pack and unpack are inverse for every bit width,
the bits sit where the kernel's `load_chunk` and `pair_bits` read them, and the float32 reference agrees
with the simulator's semantics."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsched.kernels.quant import CHUNK, bit_positions, dequantize, float_values, pack, unpack
from warpsched.scheduler.errors import InputError


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 8), rows=st.integers(1, 5), chunks=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_pack_and_unpack_are_inverse(bits, rows, chunks, seed):
    k = CHUNK * chunks
    codes = torch.randint(0, 1 << bits, (rows, k), generator=torch.Generator().manual_seed(seed))
    packed = pack(codes, bits)
    assert packed.dtype == torch.uint8 and packed.shape == (rows, k * bits // 8)
    assert torch.equal(unpack(packed, bits), codes.to(torch.int32))


@pytest.mark.parametrize("bits", range(1, 9))
def test_each_quad_thread_finds_its_pairs_16_bits_apart_in_its_own_words(bits):
    """What the kernel's load_chunk and pair_bits read: in chunk c of a row, thread q's words are
    4 * bits * c + bits * q + (0 .. bits - 1); pair i = 2 b + e (inputs 16 b + 2 q + 8 e and the next) has its
    first code at bits i * bits of the string of the words' low halves, its second at the same place in the
    high halves' string (at 8 bits odd rows hold the thread's second 16 bytes first)."""
    codes = torch.randint(0, 1 << bits, (3, 2 * CHUNK), generator=torch.Generator().manual_seed(bits))
    words = pack(codes, bits).numpy().view("<u4")
    mask = (1 << bits) - 1
    for n in range(3):
        for c in range(2):
            for q in range(4):
                mine = [int(x) for x in words[n, 4 * bits * c + bits * q :][:bits]]
                if bits == 8 and n % 2:  # odd rows: the thread's two 16-byte vectors swapped
                    mine = mine[4:] + mine[:4]
                low = sum((w & 0xFFFF) << (16 * j) for j, w in enumerate(mine))
                high = sum((w >> 16) << (16 * j) for j, w in enumerate(mine))
                for i in range(16):
                    k = CHUNK * c + 16 * (i // 2) + 2 * q + 8 * (i % 2)
                    got = ((low >> (i * bits)) & mask, (high >> (i * bits)) & mask)
                    assert got == (int(codes[n, k]), int(codes[n, k + 1]))
    for odd in (False, True):  # a permutation
        assert sorted(bit_positions(CHUNK, bits, odd=odd).tolist()) == list(range(CHUNK * bits))


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
        (lambda: pack(torch.tensor([[4] + [0] * 127]), 2), ["[0, 4)", "2 bits"]),
        (lambda: pack(torch.zeros(2, 64, dtype=torch.int64), 3), ["K = 64", "multiple of 128", "pad"]),
        (lambda: unpack(torch.zeros(2, 24, dtype=torch.uint8), 3), ["24 bytes", "128-input chunks"]),
        (lambda: pack(torch.zeros(2, 128), 4), ["integer tensor"]),
        (lambda: pack(torch.zeros(2, 8, dtype=torch.int64), 9), ["1 to 8"]),
        (lambda: unpack(torch.zeros(2, 8, dtype=torch.int32), 4), ["uint8"]),
    ],
)
def test_packing_mistakes_are_one_sentence(call, words):
    with pytest.raises(InputError) as exc:
        call()
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value)
