"""Dense GEMM main loop: one K-block of a tile_m x tile_n output tile per iteration.

Ops: TMA loads of the A (tile_m x tile_k) and B (tile_n x tile_k) tiles (from L2: other CTAs
read the same rows and columns) and one warpgroup MMA per consumer slice of tile_m / consumers
rows, each accumulating into its registers across iterations (a distance-1 self edge).
"""

from __future__ import annotations

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine

from warpsched.models import costs
from warpsched.models.kinds import OpKind
from warpsched.models.ops import charge_ring_sync, tma_load
from warpsched.models.params import ModelSpec, Param

LOAD_A, LOAD_B = "load_a", "load_b"  # the TMA loads of the A and B operands (the rings are named after them)

PARAMS = (
    Param("dtype", "bf16", "operand type (fp32 accumulation)", str, ("bf16", "fp16")),
    Param("tile_m", 128, "rows of the output tile", int, low=64, high=256, tile=True),
    Param("tile_n", 256, "columns of the output tile (the wgmma N)", int, low=8, high=256, tile=True),
    Param("tile_k", 64, "K-block per iteration", int, low=16, high=256, tile=True),
    Param("consumers", 2, "MMA slices of tile_m (64 rows each on Hopper)", int, low=1, high=4, tile=True),
)


def build(machine: Machine, dtype: str, tile_m: int, tile_n: int, tile_k: int, consumers: int) -> Problem:
    if tile_m % (64 * consumers) or tile_k % 16 or tile_n % 8:
        raise InputError(
            f"gemm: tile_m must be a multiple of 64 * consumers ({64 * consumers}), tile_k of 16 and tile_n "
            "of 8; "
            f"got {tile_m} x {tile_n} x {tile_k} with {consumers} consumers"
        )
    size = costs.DTYPE_BYTES[dtype]
    ops, edges = [], []
    for name, rows in ((LOAD_A, tile_m), (LOAD_B, tile_n)):
        nbytes = rows * tile_k * size
        ops.append(tma_load(machine, name, nbytes))
    rows = tile_m // consumers
    occ = costs.mma_cycles(machine, rows, tile_n, tile_k, dtype)
    acc = rows * tile_n * 4
    in_regs = costs.feature(machine, "accumulators", "regs") == "regs"  # Blackwell: tensor memory
    for c in range(consumers):
        mma = f"mma{c}"
        ops.append(
            Op(
                mma,
                "tensor",
                costs.mma_latency(machine, occ),
                occ,
                costs.mma_issue(machine, tile_k),
                kind=OpKind.MMA,
                index=c,
                bytes=acc if in_regs else 0,
                space="regs" if in_regs else "none",
                regs_per_thread=costs.regs(acc) if in_regs else 0,
            )
        )
        edges += [Edge(LOAD_A, mma), Edge(LOAD_B, mma), Edge(mma, mma, 1)]
    ops = charge_ring_sync(machine, ops, edges)
    return Problem.build(
        f"gemm_{dtype}_{tile_m}x{tile_n}x{tile_k}",
        ops,
        edges,
        {
            "model": "gemm",
            "dtype": dtype,
            "tile_m": tile_m,
            "tile_n": tile_n,
            "tile_k": tile_k,
            "consumers": consumers,
        },
    )


def work(source: dict) -> int:
    """Multiply-accumulates per iteration: the whole tile_m x tile_n x tile_k block."""
    return source["tile_m"] * source["tile_n"] * source["tile_k"]


SPEC = ModelSpec(
    "gemm", "dense bf16/fp16 GEMM main loop (TMA A and B, wgmma, register accumulators)", PARAMS, build, work
)
