"""A quant_gemm call's grid for a shape: CTAs over N and M tiles, K split across CTAs when too few
CTAs would leave SMs idle (the launch and the whole-kernel prediction both use it)."""

from __future__ import annotations

from warpsched.kernels.perf import Launch

SHAPE = ("m", "n", "k")  # what `--shape M,N,K` names (x is M x K, the weights N x K)
SHAPE_TEXT = "M,N,K"  # how --shape is written
MIN_K_TILES_PER_SPLIT = 8  # enough trips for the pipeline's ramp-up and drain to stay small


def unsupported_zero_points(fmt: str, group_size: int) -> str:
    """Why the CUDA templates cannot compute `fmt` at `group_size`, or "" when they can: channelwise scales
    multiply the accumulator, where no zero point can be subtracted (the kernel would drop them silently)."""
    if fmt == "int_zp" and group_size == -1:
        return (
            "channelwise int_zp is not computed: the kernels take zero points with groups only (groups of "
            "32, 64 or 128), since channelwise scales multiply the accumulator, where no zero point can be "
            "subtracted"
        )
    return ""


def split_k(ctas: int, k_tiles: int, sms: int, tiles_per_group: int = 1) -> int:
    """How many runs of K tiles to give separate CTAs (1: no split): the largest power of two that keeps
    the grid within one CTA per SM (the kernels hold an SM each), divides the K tiles into runs of whole
    groups, and leaves each run MIN_K_TILES_PER_SPLIT tiles or more. Decode shapes (N / tile_n CTAs, often
    32 or 64 on 132 SMs) are what it is for; the split is deterministic (a float32 sum in a fixed order)."""
    splits = 1
    while (
        ctas * splits * 2 <= sms
        and k_tiles % (splits * 2 * tiles_per_group) == 0
        and k_tiles // (splits * 2) >= MIN_K_TILES_PER_SPLIT
    ):
        splits *= 2
    return splits


def launch(shape: dict, tile: dict, sms: int) -> Launch:
    """Grid (N / tile_n, ceil(M / tile_m), splits); with splits > 1 the kernel writes float32 partials
    that two more kernels sum and convert."""
    m, n, k = shape["m"], shape["n"], shape["k"]
    bits, group = tile["bits"], tile["group_size"]
    tn, tm, tk = tile["tile_n"], tile["tile_m"], tile["tile_k"]
    for what, size, step in (("N", n, tn), ("K", k, tk)):
        if size < 1 or size % step:
            raise ValueError(f"{what} = {size} is not a positive multiple of the tile {step}")
    if m < 1:
        raise ValueError(f"M = {m} must be at least 1")
    ctas = (n // tn) * -(-m // tm)
    splits = split_k(ctas, k // tk, sms, group // tk if group > tk else 1)
    grid = (n // tn, -(-m // tm), splits)
    scale_rows = 1 if group == -1 else k // group
    side = 2 * (2 if tile.get("fmt") == "int_zp" else 1) * scale_rows * n
    partials = splits * m * n * 4 if splits > 1 else 0
    return Launch(
        grid=grid,
        trips=((k // tk) // splits,) * (ctas * splits),
        flops=2 * m * n * k,
        bytes=n * k * bits // 8 + side + 2 * m * k + (partials or 2 * m * n),
        store_bytes_per_cta=tn * min(tm, m) * (4 if splits > 1 else 2),
        extra_kernels=(partials + 4 * m * n, 4 * m * n + 2 * m * n) if splits > 1 else (),
    )


def code_load_ways(tile: dict) -> int:
    """Bank conflicts of the dequant's loads of codes (templates.QUANT_LAYOUT, `load_chunk`): the most
    distinct words one of the 32 banks serves in one pass of a load. Lane l reads the `bits` words of quad
    thread l % 4 in a chunk of row 16 w + l / 4 (+ 8 h), rows tile_k * bits / 8 bytes apart, with 128-bit
    loads at 4 and 8 bits (a pass: 8 lanes; at 8 bits odd rows hold a thread's two vectors swapped), 64-bit
    at 2 and 6 (16 lanes), 32-bit otherwise (32 lanes)."""
    bits, tile_k = tile["bits"], tile["tile_k"]
    row_words = tile_k * bits // 32
    width = 4 if bits % 4 == 0 else 2 if bits % 2 == 0 else 1
    worst = 1
    for load in range(bits // width):
        for first in range(0, 32, 32 // width):
            banks: dict[int, set[int]] = {}
            for lane in range(first, first + 32 // width):
                vector = load ^ (lane // 4 % 2) if bits % 8 == 0 else load  # 8 bits: odd rows swap vectors
                start = (lane // 4) * row_words + (lane % 4) * bits + vector * width
                for word in range(start, start + width):
                    banks.setdefault(word % 32, set()).add(word)
            worst = max(worst, *(len(w) for w in banks.values()))
    return worst


def wgmma_per_trip(tile: dict) -> int:
    """wgmma instructions a CTA issues per trip, over all its consumers (one per 64 weight rows and 16 of
    K): how a SASS loop that ptxas unrolled is told apart from one trip."""
    return tile["tile_n"] // 64 * (tile["tile_k"] // 16)
