"""GPTQ and AWQ checkpoints imported into the kernels' layout give the same Y as dequantizing the
checkpoint by its own definition and multiplying in float32 (act-order included)."""

from __future__ import annotations

import pytest
import torch

from warpsched.kernels.importers import AWQ_ORDER, from_awq, from_gptq
from warpsched.kernels.quant import dequantize, unpack
from warpsched.scheduler.errors import InputError


def _words(codes: torch.Tensor, bits: int, along: int, order=None) -> torch.Tensor:
    """Pack codes into int32 words the way the checkpoints do, one field at a time (an independent
    reference)."""
    per = 32 // bits
    codes = codes.to(torch.int64)
    if along == 0:  # GPTQ qweight: fields run along rows
        rows, cols = codes.shape
        out = torch.zeros(rows // per, cols, dtype=torch.int64)
        for i in range(per):
            out |= codes[i::per] << (bits * i)
    else:
        rows, cols = codes.shape
        out = torch.zeros(rows, cols // per, dtype=torch.int64)
        for i in range(per):
            j = order[i] if order else i  # field i holds element order[i] of each run of `per`
            out |= codes[:, j::per] << (bits * i)
    return torch.where(out >= 2**31, out - 2**32, out).to(torch.int32)


def _words3(codes: torch.Tensor, along: int) -> torch.Tensor:
    """GPTQ's 3-bit words, written out the way its packer does it (an independent reference): per 32 codes
    three words; codes 0..9 in word 0 bits 0..29, code 10 split (2 low bits at 30, its top bit at word 1
    bit 0), codes 11..20 from word 1 bit 1, code 21 split (low bit at 31, two bits at word 2 bits 0..1),
    codes 22..31 from word 2 bit 2."""
    c = codes.to(torch.int64) if along == 0 else codes.to(torch.int64).T
    out = torch.zeros(c.shape[0] // 32 * 3, c.shape[1], dtype=torch.int64)
    for run in range(c.shape[0] // 32):
        x, w = c[32 * run : 32 * run + 32], out[3 * run : 3 * run + 3]
        for j in range(10):
            w[0] |= x[j] << (3 * j)
            w[1] |= x[11 + j] << (3 * j + 1)
            w[2] |= x[22 + j] << (3 * j + 2)
        w[0] |= (x[10] & 3) << 30
        w[1] |= x[10] >> 2
        w[1] |= (x[21] & 1) << 31
        w[2] |= x[21] >> 1
    out = out if along == 0 else out.T.contiguous()
    return torch.where(out >= 2**31, out - 2**32, out).to(torch.int32)


def _close(a, b) -> bool:
    return float((a - b).norm() / b.norm()) < 1e-5


def _our_y(w, x):
    weights = dequantize(
        unpack(w.packed, w.bits), w.scales, w.zeros, bits=w.bits, group_size=w.group_size, fmt=w.fmt
    )
    xx = x if w.perm is None else x[:, w.perm]
    return xx @ weights.T


@pytest.mark.parametrize(
    "bits, act_order, sym",
    [
        (4, False, False),
        (4, True, False),
        (2, True, False),
        (8, False, True),
        (3, True, False),
        (3, False, True),
    ],
)
def test_gptq_import_gives_the_checkpoints_y(bits, act_order, sym):
    g = torch.Generator().manual_seed(bits + 2 * act_order)
    k, n, group = 512, 64, 128
    groups = k // group
    q = torch.randint(0, 1 << bits, (k, n), generator=g)
    z = (
        torch.full((groups, n), 1 << (bits - 1))
        if sym
        else torch.randint(0, 1 << bits, (groups, n), generator=g)
    )
    scales = torch.rand(groups, n, generator=g) + 0.1
    g_idx = torch.arange(k) // group
    if act_order:
        g_idx = g_idx[torch.randperm(k, generator=g)]
    x = torch.randn(3, k, generator=g)
    w_ckpt = scales[g_idx] * (q - z[g_idx]).float()  # GPTQ's own dequantization, (K, N)
    pack_words = _words3 if bits == 3 else (lambda c, along: _words(c, bits, along))
    imported = from_gptq(pack_words(q, 0), pack_words((z - 1) % (1 << bits), 1), scales, g_idx, bits=bits)
    assert (imported.perm is not None) == act_order and imported.fmt == ("int" if sym else "int_zp")
    assert _close(_our_y(imported, x), x @ w_ckpt)


def test_awq_import_gives_the_checkpoints_y():
    g = torch.Generator().manual_seed(7)
    k, n, group = 256, 64, 64
    q = torch.randint(0, 16, (k, n), generator=g)
    z = torch.randint(0, 16, (k // group, n), generator=g)
    scales = torch.rand(k // group, n, generator=g) + 0.1
    x = torch.randn(2, k, generator=g)
    w_ckpt = (q - z.repeat_interleave(group, 0)).float() * scales.repeat_interleave(group, 0)
    imported = from_awq(_words(q, 4, 1, AWQ_ORDER), _words(z, 4, 1, AWQ_ORDER), scales)
    assert imported.group_size == group and imported.perm is None
    assert _close(_our_y(imported, x), x @ w_ckpt)


def test_import_mistakes_are_one_sentence():
    with pytest.raises(InputError, match="bits 2, 3, 4 and 8"):
        from_gptq(
            torch.zeros(4, 8, dtype=torch.int32),
            torch.zeros(1, 1, dtype=torch.int32),
            torch.zeros(1, 8),
            bits=5,
        )
    with pytest.raises(InputError, match="runs of 3 int32 words"):
        from_gptq(
            torch.zeros(4, 32, dtype=torch.int32),
            torch.zeros(1, 3, dtype=torch.int32),
            torch.zeros(1, 32),
            bits=3,
        )
    with pytest.raises(InputError, match="qzeros has shape"):
        from_awq(
            torch.zeros(64, 1, dtype=torch.int32), torch.zeros(2, 2, dtype=torch.int32), torch.zeros(1, 8)
        )


@pytest.mark.gpu
def test_an_imported_gptq_act_order_layer_runs_on_the_gpu():
    g = torch.Generator().manual_seed(3)
    k, n, group = 1024, 256, 128
    q = torch.randint(0, 16, (k, n), generator=g)
    z = torch.randint(0, 16, (k // group, n), generator=g)
    scales = ((torch.rand(k // group, n, generator=g) + 0.5) / 8).to(torch.bfloat16)
    g_idx = (torch.arange(k) // group)[torch.randperm(k, generator=g)]
    w = from_gptq(_words(q, 4, 0), _words((z - 1) % 16, 4, 1), scales, g_idx, bits=4)
    w = type(w)(w.packed.cuda(), w.scales.cuda(), w.zeros.cuda(), w.bits, w.group_size, w.fmt, w.perm)
    x = torch.randn(16, k, generator=g).to(torch.bfloat16).cuda()
    ref = x.float() @ (scales.float()[g_idx] * (q - z[g_idx]).float()).cuda()
    y = w.matmul(x)
    assert float((y.float() - ref).norm() / ref.norm()) < 1e-2
