"""bench/gpu_bench.py's pure parts against hand-computed numbers (no GPU needed)."""

from __future__ import annotations

from tests.bench.conftest import bench_script

import math
import os

import pytest


@pytest.fixture(scope="module")
def gb():
    os.environ.pop("GPU_BENCH_DRY_RUN", None)  # the real shape tables
    return bench_script("gpu_bench")


def test_flop_and_byte_counts(gb):
    assert gb.gemm_flops(4096, 4096, 4096) == 137_438_953_472  # 2 * 4096^3
    assert gb.gemm_bytes(4096, 4096, 4096) == 100_663_296  # three 4096^2 bf16 matrices
    # Llama-3-8B o projection, M = 1, int4, group 128: 8 MiB of codes, 32 x 4096 bf16 scales, x and y rows
    assert gb.quant_bytes(1, 4096, 4096, 4, 128) == 8_388_608 + 262_144 + 8_192 + 8_192
    assert gb.quant_bytes(1, 4096, 4096, 3, 128) == 6_291_456 + 262_144 + 16_384  # 1536 bytes a row
    assert (
        gb.int4pack_bytes(1, 4096, 4096, 128) == 8_388_608 + 2 * 262_144 + 16_384
    )  # scale and zero per group
    assert (
        gb.quant_bytes(2048, 6144, 4096, 8, 128)
        == 6144 * 4096 + 32 * 6144 * 2 + (2048 * 4096 + 2048 * 6144) * 2
    )
    # FA3's count at seqlen 16k, d 128: 4 * 1 * 16 * 16384^2 * 128, causal half of it
    assert gb.attention_flops(1, 16, 16384, 128, False) == 2_199_023_255_552
    assert gb.attention_flops(1, 16, 16384, 128, True) == 1_099_511_627_776
    assert gb.attention_bytes(1, 16, 16384, 128) == 4 * 16 * 16384 * 128 * 2
    assert gb.tflops(2e12, 1.0) == pytest.approx(2000.0)  # 2 TFLOP in a millisecond
    assert gb.tbps(3e9, 1.0) == pytest.approx(3.0)


def test_shape_tables(gb):
    # Llama-3-8B: hidden 4096, 32 + 2 * 8 heads of 128, intermediate 14336; 3.3-70B: 8192, 64 + 2 * 8, 28672
    assert gb.LLAMA_SHAPES["llama3-8b"] == {
        "qkv": (6144, 4096),
        "o": (4096, 4096),
        "gate_up": (28672, 4096),
        "down": (4096, 14336),
    }
    assert gb.LLAMA_SHAPES["llama3.3-70b"] == {
        "qkv": (10240, 8192),
        "o": (8192, 8192),
        "gate_up": (57344, 8192),
        "down": (8192, 28672),
    }
    assert gb.fa3_shape(512, 64) == (32, 32, 512, 64)
    assert gb.fa3_shape(16384, 256) == (1, 8, 16384, 256)
    with pytest.raises(ValueError):
        gb.fa3_shape(3000, 128)
    full, quick = gb.quant_cases(False), gb.quant_cases(True)
    assert len(full) == 2 * 4 * 8 * 4 and len(quick) == 4 * 4 * 4
    assert full[: len(quick)] == quick  # a run cut short still covers the quick set
    assert {c["m"] for c in full} == {1, 16, 128, 2048} and {c["bits"] for c in full} == set(range(1, 9))
    attn = gb.attention_cases(False)
    assert len(attn) == 2 * 3 * 6 and len(gb.attention_cases(True)) == 2 * 3 * 3
    assert all(c["batch"] * c["seqlen"] == 16384 and c["heads"] * c["head_dim"] == 2048 for c in attn)
    assert [c["m"] for c in gb.gemm_cases(False)] == [2048, 4096, 8192, 16384]


def test_rotation_and_names(gb, tmp_path):
    l2 = 50 * 2**20
    assert gb.rotation_count(8 * 2**20, l2) == 13  # 13 x 8 MiB >= 2 x 50 MiB
    assert gb.rotation_count(2**30, l2) == 2
    assert gb.rotation_count(1, l2) == 64
    assert gb.device_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert gb.device_slug("NVIDIA H200") == "h200"
    assert gb.device_slug("NVIDIA H100 PCIe") == "h100"
    assert gb.device_slug("NVIDIA GH200 480GB") == "gh200"
    assert gb.device_slug("Tesla V100-SXM2-16GB") == "v100"
    assert gb.device_slug("NVIDIA GeForce RTX 4090") == "geforce-rtx-4090"
    assert gb.result_path("h100", "2026-11-24", tmp_path) == tmp_path / "h100-2026-11-24.json"
    assert (
        gb.plot_path("h200", "2026-11-24", "quant_gemm", tmp_path)
        == tmp_path / "h200-2026-11-24-quant_gemm.png"
    )
    assert gb.geomean([1.0, 4.0, None]) == pytest.approx(2.0)


def test_bit_packing_by_hand(gb):
    torch = pytest.importorskip("torch")
    codes = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 0]], dtype=torch.uint8)
    # sum code_k << 3k = 0x1F58D1, little-endian
    assert gb.bitstring_pack(codes, 3).tolist() == [[0xD1, 0x58, 0x1F]]
    assert gb.bitstring_pack(torch.tensor([[1, 2, 15, 0]], dtype=torch.uint8), 4).tolist() == [[0x21, 0x0F]]
    assert gb.bitstring_pack(torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1]], dtype=torch.uint8), 1).tolist() == [
        [0x81]
    ]
    # the kernels' layout: thread 0's first word holds pairs (0, 1), (8, 9), (16, 17), (24, 25), their first
    # codes in the low half and second codes in the high half (4 bits, code k = k % 16: 0x8080 and 0x9191)
    codes = (torch.arange(128) % 16).to(torch.uint8)[None]
    assert gb.pack_bits_reference(codes, 4).tolist()[0][:4] == [0x80, 0x80, 0x91, 0x91]
    try:
        from warpsched.kernels.quant import pack
    except ImportError:
        return
    g = torch.Generator().manual_seed(1)
    for bits in range(1, 9):
        c = torch.randint(0, 2**bits, (5, 256), dtype=torch.uint8, generator=g)
        assert torch.equal(pack(c, bits), gb.pack_bits_reference(c, bits)), bits


def test_int4_baseline_convention(gb):
    """tinygemm dequantizes (q - 8) * scale + zero: with zero 0 it is our symmetric int4 (CPU kernel)."""
    torch = pytest.importorskip("torch")
    if not hasattr(torch, "_weight_int4pack_mm_for_cpu"):
        pytest.skip("this torch has no CPU int4pack kernel")
    g = torch.Generator().manual_seed(0)
    n, k, group = 32, 256, 128
    codes = torch.randint(0, 16, (n, k), dtype=torch.uint8, generator=g)
    scales = (torch.rand((k // group, n), generator=g) + 0.5).to(torch.bfloat16)
    x = torch.randn((4, k), generator=g).to(torch.bfloat16)
    w = gb.dequant_reference(codes, scales, 4, group)
    assert w[0, 0].item() == pytest.approx((codes[0, 0].item() - 8) * scales[0, 0].float().item())
    packed, sz = gb.int4pack_operands(codes, scales)
    assert (
        packed.shape == (n, k // 2) and packed[0, 0].item() == (codes[0, 0].item() << 4) | codes[0, 1].item()
    )
    assert sz.shape == (k // group, n, 2)
    y = torch._weight_int4pack_mm_for_cpu(
        x, torch._convert_weight_to_int4pack_for_cpu(codes.to(torch.int32), 8), group, sz
    )
    ref = x.float() @ w.t()
    assert float((y.float() - ref).norm() / ref.norm()) < 1e-2


def test_ratios_and_table(gb):
    row = {
        "family": "quant_gemm",
        "model": "llama3-8b",
        "layer": "o",
        "n": 4096,
        "k": 4096,
        "m": 1,
        "group_size": 128,
    }
    report = {
        "device": "h100",
        "device_name": "NVIDIA H100 80GB HBM3",
        "date": "2026-11-24",
        "torch": "2.11",
        "quick": True,
        "copy_tbps": 3.0,
        "gpu_tests": "1 passed",
        "wall_s": 1.0,
        "families": {
            "quant_gemm": {
                "cases": 2,
                "not_run": 0,
                "meta": {"copy_tbps": 3.0},
                "rows": [
                    {
                        **row,
                        "index": 0,
                        "bits": 4,
                        "impl": "warpsched",
                        "status": "ok",
                        "ms": 0.004,
                        "tbps": 2.25,
                        "tflops": 8.0,
                    },
                    {
                        **row,
                        "index": 0,
                        "bits": 4,
                        "impl": "torch.matmul bf16",
                        "status": "ok",
                        "ms": 0.016,
                        "tbps": 2.1,
                        "tflops": 2.0,
                    },
                    {
                        **row,
                        "index": 0,
                        "bits": 4,
                        "impl": "torch int4pack (tinygemm)",
                        "status": "ok",
                        "ms": 0.006,
                        "tbps": 1.5,
                        "tflops": 5.0,
                    },
                    {
                        **row,
                        "index": 1,
                        "bits": 2,
                        "impl": "warpsched",
                        "status": "skipped",
                        "reason": "KernelError: no",
                    },
                ],
            }
        },
    }
    gb.add_ratios(report)
    ours = report["families"]["quant_gemm"]["rows"][0]
    assert ours["speedup_vs_bf16"] == pytest.approx(4.0)  # 0.016 ms / 0.004 ms
    assert ours["speedup_vs_int4pack"] == pytest.approx(1.5)
    assert ours["copy_frac"] == pytest.approx(0.75)  # 2.25 of 3.0 TB/s
    text = gb.table(report)
    assert "4.00x|0.75" in text and "skipped: warpsched x1: KernelError: no" in text


def test_main_without_a_gpu(gb, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert gb.main([]) == 0
    assert "skipped: no GPU" in capsys.readouterr().out
    assert math.isfinite(gb.TOLERANCE["gemm"])


def test_rows_json_names_each_timed_row_its_kernel_and_shape(gb, tmp_path):
    report = {
        "families": {
            "gemm": {
                "rows": [
                    {
                        "impl": "warpsched",
                        "index": 0,
                        "case": "c",
                        "m": 256,
                        "n": 512,
                        "k": 64,
                        "ms": 1.5,
                        "status": "ok",
                        "kernel_id": "abc",
                    },
                    {"impl": "torch.matmul", "index": 0, "case": "c", "m": 256, "n": 512, "k": 64, "ms": 1.0},
                    {
                        "impl": "warpsched",
                        "index": 1,
                        "case": "d",
                        "m": 1,
                        "n": 1,
                        "k": 1,
                        "status": "failed",
                    },
                ]
            },
            "attention_fwd": {
                "rows": [
                    {
                        "impl": "warpsched",
                        "index": 0,
                        "case": "a",
                        "batch": 1,
                        "heads": 2,
                        "seqlen": 128,
                        "head_dim": 64,
                        "causal": True,
                        "ms": 0.1,
                        "status": "ok",
                        "kernel_id": "def",
                    }
                ]
            },
        }
    }
    gb.write_rows(report, tmp_path, "x.json")
    import json

    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [r["kernel_id"] for r in rows] == ["abc", "def"]
    assert rows[0]["shape"] == {"m": 256, "n": 512, "k": 64} and rows[0]["measured_ms"] == 1.5
    assert rows[1]["shape"] == {"batch": 1, "heads": 2, "seqlen": 128, "head_dim": 64}
