"""Attention forward (FlashAttention-2/3/4 style): one KV block of block_n keys per iteration.

`q_tiles` chains of block_m query rows share the K and V loads, so the solver can choose to
give each its own warpgroup and skew them (ping-pong) or overlap them otherwise. Per tile:

    S = Q K^T (gemm0) -> m = max(m, rowmax S) -> S' = S * scale - m -> P = exp2(S') (MUFU)
    -> l = l * alpha + rowsum P ;  O = O * alpha (rescale) ;  O += P V (gemm1)

with the running max m, sum l and the accumulator O carried to the next iteration. Q stays in
shared memory for the whole loop (reserved_smem).

Hopper (features.mma = wgmma): accumulators S and O live in the issuing warpgroup's registers;
gemm1 takes P from registers. Blackwell (tcgen05): a single thread issues the MMAs into tensor
memory; S is read with a blocking tcgen05.ld, P written back with tcgen05.st, and the O rescale
is a load, a multiply and a store of O in tensor memory, all blocking on their warpgroup.

Default tile sizes follow FlashAttention-3's tile_size_fwd_sm90 for 16-bit types (block_m = 64
rows per warpgroup, block_n = 192/176/80 for head dims 64/128/256, 128 when causal) and FA4's
128 x 128 on Blackwell. Causal masking touches only the diagonal block, which the lowering
peels into the prologue/epilogue, and GQA shares K/V between heads through L2: neither changes
the steady-state loop body scheduled here.
"""

from __future__ import annotations

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine

from warpsched.models import costs
from warpsched.models.kinds import OpKind
from warpsched.models.ops import tma_load
from warpsched.models.params import ModelSpec, Param

LOAD_K, LOAD_V = "load_k", "load_v"  # the TMA loads of a K and a V block

HEAD_DIMS = (64, 128, 256)
FA3_BLOCK_N = {64: 192, 128: 176, 256: 80}

PARAMS = (
    Param("head_dim", 128, "head dimension d", int, HEAD_DIMS),
    Param("dtype", "bf16", "Q/K/V type", str, ("bf16", "fp16")),
    Param("causal", False, "causal masking (changes the default block_n only)", bool),
    Param("gqa", 1, "query heads per K/V head (K/V come from L2 either way)", int, low=1, high=64),
    Param("q_tiles", 2, "query tiles (consumer chains) sharing each KV block", int, low=1, high=4, tile=True),
    Param(
        "block_m",
        None,
        "query rows per tile (default: 64 on Hopper, 128 on Blackwell)",
        int,
        low=64,
        high=256,
        tile=True,
    ),
    Param(
        "block_n",
        None,
        "keys per iteration (default: FlashAttention's choice for the head dim)",
        int,
        low=16,
        high=256,
        tile=True,
    ),
)


def build(
    machine: Machine,
    head_dim: int,
    dtype: str,
    causal: bool,
    gqa: int,
    q_tiles: int,
    block_m: int | None,
    block_n: int | None,
) -> Problem:
    blackwell = costs.feature(machine, "mma", "wgmma") == "tcgen05"
    bm = block_m or (128 if blackwell else 64)
    bn = block_n or (128 if blackwell or (causal and head_dim < 256) else FA3_BLOCK_N[head_dim])
    if bm % 64 or bn % 16:
        raise InputError(
            f"attention_fwd: block_m must be a multiple of 64 and block_n of 16; got {bm} and {bn}"
        )
    d, size = head_dim, costs.DTYPE_BYTES[dtype]
    ops, edges = [], []
    kv_bytes = bn * d * size
    for name in (LOAD_K, LOAD_V):
        ops.append(tma_load(machine, name, kv_bytes))
    chain = _blackwell_tile if blackwell else _hopper_tile
    for t in range(q_tiles):
        tile_ops, tile_edges = chain(machine, t, bm, bn, d, dtype)
        ops += tile_ops
        edges += tile_edges
    name = f"attention_fwd_d{d}_{dtype}{'_causal' if causal else ''}_{q_tiles}x{bm}x{bn}"
    return Problem.build(
        name,
        ops,
        edges,
        {
            "model": "attention_fwd",
            "head_dim": d,
            "dtype": dtype,
            "causal": causal,
            "gqa": gqa,
            "q_tiles": q_tiles,
            "block_m": bm,
            "block_n": bn,
        },
        reserved_smem=q_tiles * bm * d * size,
    )


def _softmax_ops(machine: Machine, t: int, bm: int, bn: int, d: int, s_value: tuple[int, str]) -> list[Op]:
    """Row max, scale-and-subtract, exp2, row sum and the O rescale of tile t (CUDA cores and MUFU)."""
    elems = bm * bn
    alu = costs.fp32_cycles(machine, elems)
    fp32 = costs.latency(machine, "fp32")
    reduce = costs.latency(machine, "shuffle_reduce")
    row = bm * 4  # one fp32 per query row
    exp_occ = costs.mufu_cycles(machine, elems)
    s_bytes, s_space = s_value
    return [
        Op(
            f"max{t}",
            "alu",
            alu + reduce + fp32,
            alu,
            alu + reduce,
            kind=OpKind.ROW_MAX,
            index=t,
            bytes=row,
            space="regs",
            regs_per_thread=costs.regs(row),
        ),
        Op(
            f"scale{t}",
            "alu",
            alu + fp32,
            alu,
            alu,
            kind=OpKind.SCALE,
            index=t,
            bytes=s_bytes,
            space=s_space,
            regs_per_thread=costs.regs(s_bytes),
        ),
        Op(
            f"exp{t}",
            "mufu",
            exp_occ + costs.latency(machine, "mufu"),
            exp_occ,
            exp_occ,
            kind=OpKind.EXP2,
            index=t,
            bytes=elems * 2,
            space="regs",
            regs_per_thread=costs.regs(elems * 2),
        ),
        Op(
            f"sum{t}",
            "alu",
            alu + reduce + fp32,
            alu,
            alu + reduce,
            kind=OpKind.ROW_SUM,
            index=t,
            bytes=row,
            space="regs",
            regs_per_thread=costs.regs(row),
        ),
    ]


def _hopper_tile(
    machine: Machine, t: int, bm: int, bn: int, d: int, dtype: str
) -> tuple[list[Op], list[Edge]]:
    s_bytes, o_bytes = bm * bn * 4, bm * d * 4
    g0 = costs.mma_cycles(machine, bm, bn, d, dtype)
    g1 = costs.mma_cycles(machine, bm, d, bn, dtype)
    rescale = costs.fp32_cycles(machine, bm * d)
    ops = [
        Op(
            f"gemm0_{t}",
            "tensor",
            costs.mma_latency(machine, g0),
            g0,
            costs.mma_issue(machine, d),
            kind=OpKind.WGMMA_QK,
            index=t,
            bytes=s_bytes,
            space="regs",
            regs_per_thread=costs.regs(s_bytes),
        )
    ]
    ops += _softmax_ops(machine, t, bm, bn, d, (s_bytes, "regs"))
    ops += [
        Op(
            f"rescale{t}",
            "alu",
            rescale + costs.latency(machine, "fp32"),
            rescale,
            rescale,
            kind=OpKind.RESCALE_O,
            index=t,
            bytes=o_bytes,
            space="regs",
            regs_per_thread=costs.regs(o_bytes),
        ),
        Op(
            f"gemm1_{t}",
            "tensor",
            costs.mma_latency(machine, g1),
            g1,
            costs.mma_issue(machine, bn),
            kind=OpKind.WGMMA_PV,
            index=t,
            bytes=o_bytes,
            space="regs",
            regs_per_thread=costs.regs(o_bytes),
        ),
    ]
    g0n, g1n = f"gemm0_{t}", f"gemm1_{t}"
    mx, sc, ex, sm, rs = (f"{k}{t}" for k in ("max", "scale", "exp", "sum", "rescale"))
    edges = [
        Edge(LOAD_K, g0n),
        Edge(g0n, mx),
        Edge(g0n, sc),
        Edge(mx, sc),
        Edge(sc, ex),
        Edge(ex, sm),
        Edge(mx, sm),
        Edge(mx, mx, 1),
        Edge(sm, sm, 1),
        Edge(ex, g1n),
        Edge(LOAD_V, g1n),
        Edge(mx, rs),
        Edge(g1n, rs, 1),
        Edge(rs, g1n),
    ]
    return ops, edges


def _blackwell_tile(
    machine: Machine, t: int, bm: int, bn: int, d: int, dtype: str
) -> tuple[list[Op], list[Edge]]:
    s_bytes, p_bytes, o_bytes = bm * bn * 4, bm * bn * 2, bm * d * 4
    g0 = costs.mma_cycles(machine, bm, bn, d, dtype)
    g1 = costs.mma_cycles(machine, bm, d, bn, dtype)
    issue = costs.mma_issue(machine, d)
    wait = costs.latency(machine, "tmem_latency")

    def tmem(name, kind, nbytes, regs_out):
        occ = costs.tmem_cycles(machine, nbytes)  # blocking: the warpgroup waits for the transfer
        return Op(
            name,
            "tmem",
            occ + wait,
            occ,
            occ + wait,
            kind=kind,
            index=t,
            bytes=nbytes if regs_out else 0,
            space="regs" if regs_out else "none",
            regs_per_thread=costs.regs(nbytes) if regs_out else 0,
        )

    rescale = costs.fp32_cycles(machine, bm * d)
    ops = [
        Op(
            f"mma_s{t}",
            "tensor",
            costs.mma_latency(machine, g0),
            g0,
            issue,
            kind=OpKind.TCGEN05_QK,
            index=t,
            issuer="thread",
        ),
        tmem(f"ld_s{t}", OpKind.TMEM_LOAD_S, s_bytes, True),
    ]
    ops += _softmax_ops(machine, t, bm, bn, d, (s_bytes, "regs"))
    ops += [
        tmem(f"st_p{t}", OpKind.TMEM_STORE_P, p_bytes, False),
        Op(
            f"mma_o{t}",
            "tensor",
            costs.mma_latency(machine, g1),
            g1,
            issue,
            kind=OpKind.TCGEN05_PV,
            index=t,
            issuer="thread",
        ),
        tmem(f"ld_o{t}", OpKind.TMEM_LOAD_O, o_bytes, True),
        Op(
            f"rescale{t}",
            "alu",
            rescale + costs.latency(machine, "fp32"),
            rescale,
            rescale,
            kind=OpKind.RESCALE_O,
            index=t,
            bytes=o_bytes,
            space="regs",
            regs_per_thread=costs.regs(o_bytes),
        ),
        tmem(f"st_o{t}", OpKind.TMEM_STORE_O, o_bytes, False),
    ]
    ms, ls, mx, sc, ex, sm, sp, mo, lo, rs, so = (
        f"{k}{t}"
        for k in ("mma_s", "ld_s", "max", "scale", "exp", "sum", "st_p", "mma_o", "ld_o", "rescale", "st_o")
    )
    edges = [
        Edge(LOAD_K, ms),
        Edge(ms, ls),
        Edge(ls, mx),
        Edge(ls, sc),
        Edge(mx, sc),
        Edge(sc, ex),
        Edge(ex, sm),
        Edge(mx, sm),
        Edge(mx, mx, 1),
        Edge(sm, sm, 1),
        Edge(ex, sp),
        Edge(sp, mo),
        Edge(LOAD_V, mo),
        Edge(mo, lo, 1),
        Edge(mx, rs),
        Edge(lo, rs),
        Edge(rs, so),
        Edge(so, mo),
    ]
    return ops, edges


def work(source: dict) -> int:
    """Multiply-accumulates per iteration: S = Q K^T and O += P V for every query tile, 2 x block_m x block_n
    x d each."""
    return 2 * source["q_tiles"] * source["block_m"] * source["block_n"] * source["head_dim"]


SPEC = ModelSpec(
    "attention_fwd",
    "FlashAttention forward main loop (K/V TMA, QK^T, online softmax, PV)",
    PARAMS,
    build,
    work,
)
