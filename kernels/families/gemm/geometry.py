"""A gemm call's grid for a shape (the launch and the whole-kernel prediction both use it)."""

from __future__ import annotations

from warpsched.kernels.perf import Launch

SHAPE = ("m", "n", "k")  # what `--shape M,N,K` names
SHAPE_TEXT = "M,N,K"  # how --shape is written


def launch(shape: dict, tile: dict, sms: int) -> Launch:
    """One CTA per tile_m x tile_n block of C, in launch order (M tiles fastest), each over all of K."""
    m, n, k = shape["m"], shape["n"], shape["k"]
    tm, tn, tk = tile["tile_m"], tile["tile_n"], tile["tile_k"]
    for what, size, step in (("M", m, tm), ("N", n, tn), ("K", k, tk)):
        if size < 1 or size % step:
            raise ValueError(f"{what} = {size} is not a positive multiple of the tile {step}")
    grid = (m // tm, n // tn, 1)
    return Launch(
        grid=grid,
        trips=(k // tk,) * (grid[0] * grid[1]),
        flops=2 * m * n * k,
        bytes=2 * (m * k + n * k + m * n),
        store_bytes_per_cta=2 * tm * tn,
    )


def wgmma_per_trip(tile: dict) -> int:
    """wgmma instructions a CTA issues per trip, over all its consumers (one per 64 rows and 16 of K):
    how a SASS loop that ptxas unrolled is told apart from one trip."""
    return tile["tile_m"] // 64 * (tile["tile_k"] // 16)
