"""The quant_gemm family's grid: split K, the trips and bytes the whole-kernel prediction sees."""

from __future__ import annotations

from warpsched.kernels.families.quant_gemm.geometry import MIN_K_TILES_PER_SPLIT, launch, split_k


def test_split_k_fills_the_sms_with_whole_groups_and_long_runs():
    assert split_k(64, 64, 132) == 2 and split_k(32, 32, 132) == 4  # Llama decode: 8192 and 4096 rows
    assert split_k(448, 64, 132) == 1 and split_k(2, 8, 132) == 1
    for ctas in (1, 2, 3, 7, 32, 64, 65, 131, 132, 500):
        for k_tiles in (1, 8, 24, 32, 56, 64, 224, 1024):
            for per_group in (1, 2):
                s = split_k(ctas, k_tiles, 132, per_group)
                assert s & (s - 1) == 0
                if s > 1:
                    assert (
                        ctas * s <= 132
                        and k_tiles % (s * per_group) == 0
                        and k_tiles // s >= MIN_K_TILES_PER_SPLIT
                    )


def test_code_loads_conflict_as_the_dequant_layout_says():
    # perf-gap-2026-12 section 4.3 found 4-way for int4, 8-way for int8 in the 32-bit-field layout; the chunk
    # layout is conflict-free at tile_k 128 (int8's odd rows swap their vectors) and at 256 for int8
    from warpsched.kernels.families.quant_gemm.geometry import code_load_ways

    assert [code_load_ways({"bits": b, "tile_k": 128}) for b in range(1, 9)] == [1] * 8
    assert [code_load_ways({"bits": b, "tile_k": 256}) for b in range(1, 9)] == [2] * 7 + [1]  # 128-byte rows


def test_decode_splits_k_and_adds_the_two_reduction_kernels():
    tile = {"bits": 4, "group_size": 128, "tile_n": 128, "tile_m": 16, "tile_k": 128, "fmt": "int"}
    decode = launch({"m": 1, "n": 8192, "k": 28672}, tile, 132)
    assert decode.grid == (64, 1, 2) and decode.trips == (112,) * 128 and len(decode.extra_kernels) == 2
    assert decode.bytes > 8192 * 28672 // 2  # the packed weights at least
    prefill = launch({"m": 2048, "n": 8192, "k": 28672}, {**tile, "tile_m": 256}, 132)
    assert prefill.grid == (64, 8, 1) and not prefill.extra_kernels
