"""An attention_fwd call's grid for a shape (the launch and the whole-kernel prediction both use it)."""

from __future__ import annotations

from warpsched.kernels.perf import Launch

SHAPE = ("batch", "heads", "seqlen", "head_dim")  # what `--shape B,H,N,D` names (self-attention, no GQA)
SHAPE_TEXT = "B,H,N,D"  # how --shape is written
CAUSAL_GROUP = 8  # (head, batch) pairs whose query tiles a causal launch orders longest first together


def launch_order(tiles: int, heads: int, batch: int, causal: bool, legacy: bool = False) -> list[tuple]:
    """(query tile, head, batch) of each CTA in launch order: query tiles fastest, or causal (not `legacy`:
    the kernels before 2026-12-08) the longest first, CAUSAL_GROUP (head, batch) pairs at a time so that
    their K and V stay in L2; the kernel's `causal_locals` compute the same from its linear block index."""
    pairs = heads * batch
    if not causal or legacy:
        return [(q, p % heads, p // heads) for p in range(pairs) for q in range(tiles)]
    out = []
    for group0 in range(0, pairs, CAUSAL_GROUP):
        members = range(group0, min(pairs, group0 + CAUSAL_GROUP))
        out += [(q, p % heads, p // heads) for q in reversed(range(tiles)) for p in members]
    return out


def key_blocks(row0: int, rows: int, n_q: int, n_kv: int, block_n: int, causal: bool) -> int:
    """Key blocks a CTA whose query rows start at `row0` visits: all of them, or with the causal mask
    (bottom-right aligned) those up to its last row's diagonal (the kernel's `iterations`)."""
    keys = min(n_kv, row0 + rows + n_kv - n_q) if causal else n_kv
    return -(-keys // block_n)


def launch(shape: dict, tile: dict, sms: int, legacy: bool = False) -> Launch:
    """Grid (ceil(N / (q_tiles * block_m)), heads, batch): each CTA takes q_tiles * block_m query rows, in
    `launch_order`."""
    b, h, n, d = shape["batch"], shape["heads"], shape["seqlen"], shape["head_dim"]
    n_kv, h_kv = shape.get("seqlen_kv", n), shape.get("heads_kv", h)
    if d != tile["head_dim"]:
        raise ValueError(
            f"head_dim {d} is not this kernel's {tile['head_dim']} (compile it with --param head_dim={d})"
        )
    if min(b, h, n, n_kv) < 1:
        raise ValueError("batch, heads and seqlen must be at least 1")
    rows = tile["q_tiles"] * tile["block_m"]
    causal = bool(tile.get("causal"))
    per_head = [key_blocks(x * rows, rows, n, n_kv, tile["block_n"], causal) for x in range(-(-n // rows))]
    visible = sum(min(n_kv, r + 1 + n_kv - n) for r in range(n)) if causal else n * n_kv
    order = launch_order(len(per_head), h, b, causal, legacy)
    return Launch(
        grid=(len(per_head), h, b),
        trips=tuple(per_head[q] for q, _, _ in order),
        flops=4 * b * h * visible * d,
        bytes=2 * d * (2 * b * h * n + 2 * b * h_kv * n_kv),
        store_bytes_per_cta=2 * rows * d,
    )


def wgmma_per_trip(tile: dict) -> int:
    """wgmma instructions a CTA issues per trip, over all its consumers: per query tile S = Q K^T (one
    per 16 of head_dim) and O += P V (one per 16 keys): how a SASS loop that ptxas unrolled is told apart
    from one trip."""
    return tile["q_tiles"] * (tile["head_dim"] // 16 + tile["block_n"] // 16)
