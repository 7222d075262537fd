"""The quant_gemm family's grid: split K, the trips and bytes the whole-kernel prediction sees."""

from __future__ import annotations

import pytest

from warpsched.kernels.families.quant_gemm.geometry import (
    LEGACY_MIN_K_TILES,
    MIN_K_PER_SPLIT,
    WAVE_OVERHEAD_K,
    launch,
    legacy_split_k,
    split_k,
    split_runs,
)


def _makespan(ctas: int, k_tiles: int, sms: int, splits: int, tile_k: int) -> int:
    """What split_k minimises, written out: CTAs in whole waves, each its longest run plus the overhead."""
    runs = split_runs(k_tiles, splits)
    waves = -(-ctas * splits // sms)
    return waves * (max(runs) * tile_k + WAVE_OVERHEAD_K)


def test_split_k_fills_the_sms_where_a_split_pays():
    assert split_k(64, 64, 132) == 2 and split_k(32, 32, 132) == 4  # Llama decode: 8192 and 4096 rows
    assert split_k(48, 32, 132) == 2  # Llama-3-8B qkv (6144 rows)
    assert split_k(80, 64, 132) == 3  # Llama-3-70B qkv: 80 CTAs left 52 SMs idle; 240 in two waves
    assert split_k(448, 64, 132) == 1 and split_k(2, 8, 132) == 1  # full grid; too few K tiles
    assert split_k(32, 16, 132, 256) == 4  # 8B o at tile_k 256: runs of 1024 inputs
    for tile_k in (128, 256):
        for ctas in (1, 2, 3, 7, 32, 48, 64, 65, 80, 131, 132, 500):
            for k_tiles in (1, 8, 24, 32, 56, 64, 224, 1024):
                s = split_k(ctas, k_tiles, 132, tile_k)
                assert 1 <= s and (s == 1 or k_tiles * tile_k // s >= MIN_K_PER_SPLIT - tile_k)
                cheapest = min(
                    _makespan(ctas, k_tiles, 132, c, tile_k)
                    for c in range(1, max(1, k_tiles * tile_k // MIN_K_PER_SPLIT) + 1)
                )
                assert _makespan(ctas, k_tiles, 132, s, tile_k) <= 1.06 * cheapest  # within the gain asked
                runs = split_runs(k_tiles, s)
                assert sum(runs) == k_tiles and max(runs) - min(runs) <= 1


def test_the_legacy_split_is_what_the_backtested_kernels_ran():
    assert legacy_split_k(64, 64, 132) == 2 and legacy_split_k(80, 64, 132) == 1
    for ctas in (1, 2, 3, 7, 32, 64, 65, 131, 132, 500):
        for k_tiles in (1, 8, 24, 32, 56, 64, 224, 1024):
            s = legacy_split_k(ctas, k_tiles, 132)
            assert s & (s - 1) == 0
            if s > 1:
                assert ctas * s <= 132 and k_tiles % s == 0 and k_tiles // s >= LEGACY_MIN_K_TILES


def test_code_loads_conflict_as_the_dequant_layout_says():
    # perf-gap-2026-12 section 4.3 found 4-way for int4, 8-way for int8 in the 32-bit-field layout; the chunk
    # layout is conflict-free at tile_k 128 (int8's odd rows swap their vectors) and at 256 for int8
    from warpsched.kernels.families.quant_gemm.geometry import code_load_ways

    assert [code_load_ways({"bits": b, "tile_k": 128}) for b in range(1, 9)] == [1] * 8
    assert [code_load_ways({"bits": b, "tile_k": 256}) for b in range(1, 9)] == [2] * 7 + [1]  # 128-byte rows


def test_decode_splits_k_and_the_kernel_adds_the_splits():
    tile = {"bits": 4, "group_size": 128, "tile_n": 128, "tile_m": 16, "tile_k": 128, "fmt": "int"}
    decode = launch({"m": 1, "n": 8192, "k": 28672}, tile, 132)
    assert decode.grid == (64, 1, 2) and decode.trips == (112,) * 128 and not decode.extra_kernels
    assert decode.bytes > 8192 * 28672 // 2  # the packed weights at least
    uneven = launch({"m": 1, "n": 10240, "k": 8192}, tile, 132)  # 64 K tiles over 3 splits: 21, 21, 22
    assert uneven.grid == (80, 1, 3) and uneven.trips == (21,) * 80 + (21,) * 80 + (22,) * 80
    legacy = launch({"m": 1, "n": 8192, "k": 28672}, tile, 132, legacy=True)
    assert legacy.grid == (64, 1, 2) and len(legacy.extra_kernels) == 2  # two torch kernels summed them
    prefill = launch({"m": 2048, "n": 8192, "k": 28672}, {**tile, "tile_m": 256}, 132)
    assert prefill.grid == (64, 8, 1) and not prefill.extra_kernels


def test_a_last_k_tile_may_run_past_k_on_a_chunk_boundary():
    tile = {"bits": 4, "group_size": 128, "tile_n": 128, "tile_m": 16, "tile_k": 256, "fmt": "int"}
    odd = launch({"m": 1, "n": 256, "k": 2944}, tile, 132)  # 11.5 tiles of 256: 12, the last half zeros
    assert sum(odd.trips) == 2 * 12 and odd.bytes > 256 * 2944 // 2
    with pytest.raises(ValueError, match="multiple of 128"):
        launch({"m": 1, "n": 256, "k": 2900}, tile, 132)
    with pytest.raises(ValueError, match="multiple of 256"):  # the kernels before 2026-12-08 did not
        launch({"m": 1, "n": 256, "k": 2944}, tile, 132, legacy=True)
