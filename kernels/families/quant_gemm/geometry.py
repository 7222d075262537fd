"""A quant_gemm call's grid for a shape: CTAs over N and M tiles, K split across CTAs when too few
CTAs would leave SMs idle (the launch and the whole-kernel prediction both use it)."""

from __future__ import annotations

from warpsched.kernels.perf import Launch
from warpsched.models.quant_gemm import CHUNK

SHAPE = ("m", "n", "k")  # what `--shape M,N,K` names (x is M x K, the weights N x K)
SHAPE_TEXT = "M,N,K"  # how --shape is written
MIN_K_PER_SPLIT = 1024  # inputs: enough trips for the pipeline's ramp-up and drain to stay small
WAVE_OVERHEAD_K = 1024  # a CTA's start (setup, first loads) and end (epilogue), as inputs of K, for split_k
SPLIT_GAIN = 0.05  # the least saving for which split_k splits
LEGACY_MIN_K_TILES = 8  # legacy_split_k's shortest run


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


def split_k(ctas: int, k_tiles: int, sms: int, tile_k: int = CHUNK) -> int:
    """How many runs of K tiles to give separate CTAs (1: no split), the kernel adding their partial sums
    itself (QUANT_EPILOGUE): the count that minimises the waves of CTAs times each CTA's inputs of K plus
    WAVE_OVERHEAD_K (a CTA's start and end), runs of at least MIN_K_PER_SPLIT inputs; a split must save
    SPLIT_GAIN of that, so a grid that already fills the SMs stays whole. Decode shapes are what it is for:
    48 CTAs of 32 K tiles of 128 split 2 ways, Llama-3-70B's qkv (80 CTAs of 64) 3 ways over two waves."""

    def cost(splits: int) -> int:
        return -(-ctas * splits // sms) * (-(-k_tiles // splits) * tile_k + WAVE_OVERHEAD_K)

    best = 1
    for splits in range(2, max(1, k_tiles * tile_k // MIN_K_PER_SPLIT) + 1):
        if cost(splits) < cost(best) and cost(splits) <= (1 - SPLIT_GAIN) * cost(1):
            best = splits
    return best


def legacy_split_k(ctas: int, k_tiles: int, sms: int) -> int:
    """The split of kernels built before 2026-12-08 (their H100 rows are backtested): the largest power of
    two that keeps the grid within one CTA per SM with equal runs of at least 8 tiles,
    the partials added by two torch kernels after the launch."""
    splits = 1
    while (
        ctas * splits * 2 <= sms
        and k_tiles % (splits * 2) == 0
        and k_tiles // (splits * 2) >= LEGACY_MIN_K_TILES
    ):
        splits *= 2
    return splits


def split_runs(k_tiles: int, splits: int) -> list[int]:
    """The K tiles of each split as the kernel divides them (split z starts at z * k_tiles / splits)."""
    return [(z + 1) * k_tiles // splits - z * k_tiles // splits for z in range(splits)]


def launch(shape: dict, tile: dict, sms: int, legacy: bool = False) -> Launch:
    """Grid (N / tile_n, ceil(M / tile_m), splits) over ceil(K / tile_k) K tiles (K a multiple of the
    packed layout's chunk); with splits > 1 each CTA writes float32 partials and the last split of a tile
    adds them (`legacy`: the kernels before 2026-12-08, whose partials two more kernels
    summed and converted)."""
    m, n, k = shape["m"], shape["n"], shape["k"]
    bits, group = tile["bits"], tile["group_size"]
    tn, tm, tk = tile["tile_n"], tile["tile_m"], tile["tile_k"]
    if n < 1 or n % tn:
        raise ValueError(f"N = {n} is not a positive multiple of the tile {tn}")
    if k < 1 or k % (tk if legacy else CHUNK):  # a last K tile past K reads zeros (the TMA's fill)
        raise ValueError(f"K = {k} is not a positive multiple of {tk if legacy else CHUNK}")
    if m < 1:
        raise ValueError(f"M = {m} must be at least 1")
    if group > tk:
        raise ValueError(f"groups of {group} span K tiles of {tk}; a split could cut one")
    ctas = (n // tn) * -(-m // tm)
    k_tiles = -(-k // tk)
    splits = legacy_split_k(ctas, k_tiles, sms) if legacy else split_k(ctas, k_tiles, sms, tk)
    grid = (n // tn, -(-m // tm), splits)
    scale_rows = 1 if group == -1 else k // group
    side = 2 * (2 if tile.get("fmt") == "int_zp" else 1) * scale_rows * n
    partials = splits * m * n * 4 if splits > 1 else 0
    extra = (partials + 4 * m * n, 4 * m * n + 2 * m * n) if legacy and splits > 1 else ()
    written = partials if legacy else 2 * partials + 2 * m * n  # in the kernel: partials out and back, then Y
    return Launch(
        grid=grid,
        trips=tuple(t for t in split_runs(k_tiles, splits) for _ in range(ctas)),
        flops=2 * m * n * k,
        bytes=n * k * bits // 8 + side + 2 * m * k + (written if splits > 1 else 2 * m * n),
        store_bytes_per_cta=tn * min(tm, m) * (4 if splits > 1 else 2),
        extra_kernels=extra,
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


def field_layout_load_ways(tile: dict) -> int:
    """code_load_ways of the kernels built before the chunk layout (2026-12-07; their H100 rows are
    backtested): 32-bit loads of a 4 * bits-bit field, lane l reading row 16 w + l / 4 (+ 8 h) at input
    4 (l % 4) of a 16-input block, rows tile_k * bits / 8 bytes apart."""
    bits, tile_k = tile["bits"], tile["tile_k"]
    banks: dict[int, set[int]] = {}
    for lane in range(32):
        word = ((lane // 4) * tile_k * bits + 4 * (lane % 4) * bits) >> 5
        banks.setdefault(word % 32, set()).add(word)
    return max(len(w) for w in banks.values())


def wgmma_per_trip(tile: dict) -> int:
    """wgmma instructions a CTA issues per trip, over all its consumers (one per 64 weight rows and 16 of
    K): how a SASS loop that ptxas unrolled is told apart from one trip."""
    return tile["tile_n"] // 64 * (tile["tile_k"] // 16)
