"""The gemm family's grid for a call shape."""

from __future__ import annotations

import pytest

from warpsched.kernels.families.gemm.geometry import launch

TILE = {"tile_m": 128, "tile_n": 256, "tile_k": 64, "dtype": "bf16"}


def test_one_cta_per_c_tile_over_all_of_k():
    g = launch({"m": 4096, "n": 4096, "k": 8192}, TILE, 132)
    assert g.grid == (32, 16, 1) and g.trips == (128,) * 512
    assert g.flops == 2 * 4096 * 4096 * 8192 and g.bytes == 2 * (2 * 4096 * 8192 + 4096 * 4096)


def test_a_shape_the_tile_does_not_divide_is_refused():
    with pytest.raises(ValueError, match="M = 100"):
        launch({"m": 100, "n": 256, "k": 64}, TILE, 132)
