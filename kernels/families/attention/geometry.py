"""An attention_fwd call's grid for a shape (the launch and the whole-kernel prediction both use it)."""

from __future__ import annotations

from warpsched.kernels.perf import Launch

SHAPE = ("batch", "heads", "seqlen", "head_dim")  # what `--shape B,H,N,D` names (self-attention, no GQA)
SHAPE_TEXT = "B,H,N,D"  # how --shape is written


def key_blocks(row0: int, rows: int, n_q: int, n_kv: int, block_n: int, causal: bool) -> int:
    """Key blocks a CTA whose query rows start at `row0` visits: all of them, or with the causal mask
    (bottom-right aligned) those up to its last row's diagonal (the kernel's `iterations`)."""
    keys = min(n_kv, row0 + rows + n_kv - n_q) if causal else n_kv
    return -(-keys // block_n)


def launch(shape: dict, tile: dict, sms: int) -> Launch:
    """Grid (ceil(N / (q_tiles * block_m)), heads, batch): each CTA takes q_tiles * block_m query rows."""
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
    return Launch(
        grid=(len(per_head), h, b),
        trips=tuple(per_head) * (h * b),
        flops=4 * b * h * visible * d,
        bytes=2 * d * (2 * b * h * n + 2 * b * h_kv * n_kv),
        store_bytes_per_cta=2 * rows * d,
    )


def wgmma_per_trip(tile: dict) -> int:
    """wgmma instructions a CTA issues per trip, over all its consumers: per query tile S = Q K^T (one
    per 16 of head_dim) and O += P V (one per 16 keys): how a SASS loop that ptxas unrolled is told apart
    from one trip."""
    return tile["q_tiles"] * (tile["head_dim"] // 16 + tile["block_n"] // 16)
