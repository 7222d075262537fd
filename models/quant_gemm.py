"""Weight-only quantized GEMM, Y = X * dequant(W): one K-block per iteration.

On Hopper the dequantized weights are the register (A) operand of wgmma, so the kernel
computes Y^T = W^T X^T: the MMA's M is a tile of tile_n weight rows (output features), its N
the tile_m batch rows, activations the shared-memory (B) operand. Per iteration:

- load_w: TMA of the packed weight tile, tile_n * tile_k * bits / 8 bytes (HBM: at a batch no
  larger than tile_m no other CTA reads these weights; L2 otherwise);
- load_s: TMA of the group scales (and zero points) the tile needs (none for channelwise
  scales, which stay in shared memory for the whole loop);
- load_x: TMA of the activation tile (L2: every CTA along N reads it);
- dequant{c}: CUDA-core unpacking of the consumer's slice into bf16/fp16 registers;
- mma{c}: wgmma with the dequantized slice from registers, accumulating across iterations.

The solver decides whether each dequant sits in its MMA's warpgroup (register pressure) or in
a warpgroup of its own that hands the tile over through shared memory (hand-off latency and a
staging ring).

Dequantization costs what its CUDA template compiles to: instructions per weight by pipe, counted
in the SASS of a reference kernel per format and width (solver_configs/template_costs.yaml, written by
`warpsched costs`; group size 128, which the other group sizes are charged too).
"""

from __future__ import annotations

import re
from fractions import Fraction
from math import ceil

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine

from warpsched.models import costs
from warpsched.models.kinds import OpKind
from warpsched.models.ops import charge_ring_sync, tma_load
from warpsched.models.params import ModelSpec, Param

LOAD_W, LOAD_X, LOAD_S = "load_w", "load_x", "load_s"  # packed weights, activations, scales (and zeros)

FLOAT_FORMATS = {"e2m1": 4, "e3m2": 6, "e2m3": 6, "e4m3": 8, "e5m2": 8}
FORMATS = ("int", "int_zp") + tuple(FLOAT_FORMATS)
GROUPS = (32, 64, 128, -1)
CHUNK = 128  # inputs per chunk of a packed row (kernels/quant.py): K and the CUDA tile_k are multiples of it


def float_fields(fmt: str) -> tuple[int, int]:
    """(exponent bits, mantissa bits) of a float eXmY format."""
    if fmt not in FLOAT_FORMATS:
        raise InputError(f"unknown float format {fmt!r}; use one of {', '.join(FLOAT_FORMATS)}")
    e_bits, m_bits = map(int, re.fullmatch(r"e(\d)m(\d)", fmt).groups())
    return e_bits, m_bits


PARAMS = (
    Param(
        "bits",
        None,
        "weight bits, 1..8 (default: 4 for integers, the format's width for floats)",
        int,
        low=1,
        high=8,
    ),
    Param("fmt", "int", "int (symmetric), int_zp (zero point), or a float eXmY", str, FORMATS),
    Param("group_size", 128, "weights per scale along K (-1: channelwise)", int, GROUPS),
    Param("dtype", "bf16", "activation and scale type", str, ("bf16", "fp16")),
    Param("m", 16, "batch rows (tokens)", int, low=1, high=8192),
    Param("k", 4096, "reduction length (a layer's input features)", int, low=16, high=1 << 20),
    Param(
        "tile_n", 128, "weight rows per tile (the wgmma M; 64 per consumer)", int, low=64, high=256, tile=True
    ),
    Param("tile_k", 128, "K-block per iteration", int, low=16, high=512, tile=True),
    Param(
        "tile_m",
        None,
        "batch rows per tile (the wgmma N; default: the batch rounded up to 8..256)",
        int,
        low=8,
        high=256,
        tile=True,
    ),
    Param("consumers", None, "MMA slices of tile_n (default: tile_n / 64)", int, low=1, high=4, tile=True),
)


def weight_bits(bits: int | None, fmt: str) -> int:
    if fmt in FLOAT_FORMATS:
        if bits is not None and bits != FLOAT_FORMATS[fmt]:
            raise InputError(
                f"quant_gemm: fmt {fmt} has {FLOAT_FORMATS[fmt]} bits; drop bits or set "
                f"bits={FLOAT_FORMATS[fmt]}"
            )
        return FLOAT_FORMATS[fmt]
    return 4 if bits is None else bits


def dequant_key(fmt: str, bits: int) -> str:
    """The key of a format's dequantization template in the template costs (one per float format, one per
    width of the integer formats)."""
    return f"quant_gemm.dequant.{fmt}" if fmt in FLOAT_FORMATS else f"quant_gemm.dequant.{fmt}{bits}"


def build(
    machine: Machine,
    bits: int | None,
    fmt: str,
    group_size: int,
    dtype: str,
    m: int,
    k: int,
    tile_n: int,
    tile_k: int,
    tile_m: int | None,
    consumers: int | None,
) -> Problem:
    bits = weight_bits(bits, fmt)
    if group_size != -1 and k % group_size:
        raise InputError(
            f"quant_gemm: group_size {group_size} does not divide k = {k}; use a group size that divides K "
            "or -1 (channelwise)"
        )
    if k % tile_k or tile_k % 16:
        raise InputError(f"quant_gemm: tile_k {tile_k} must be a multiple of 16 dividing k = {k}")
    if group_size != -1 and group_size % tile_k and tile_k % group_size:
        raise InputError(f"quant_gemm: group_size {group_size} and tile_k {tile_k} must divide one another")
    consumers = consumers or max(1, tile_n // 64)
    if tile_n % (64 * consumers):
        raise InputError(
            f"quant_gemm: tile_n {tile_n} must be a multiple of 64 * consumers ({64 * consumers})"
        )
    tm = tile_m or min(256, max(8, 1 << (m - 1).bit_length()))
    if tm % 8:
        raise InputError(f"quant_gemm: tile_m {tm} must be a multiple of 8 (the wgmma N)")
    size = costs.DTYPE_BYTES[dtype]
    weights_shared = m > tm  # other CTAs along M read the same weights: L2

    ops = [
        tma_load(machine, LOAD_W, ceil(tile_n * tile_k * bits / 8), weights_shared),
        tma_load(machine, LOAD_X, tm * tile_k * size, True),
    ]
    per_scale = size * (2 if fmt == "int_zp" else 1)
    reserved = 0
    if group_size == -1:
        reserved = tile_n * per_scale  # channelwise scales stay in shared memory
    else:
        ops.append(
            tma_load(machine, LOAD_S, tile_n * per_scale * max(1, tile_k // group_size), weights_shared)
        )
    rows = tile_n // consumers
    elems = rows * tile_k
    deq = costs.template(machine, dequant_key(bits=bits, fmt=fmt), elems)
    mma_occ = costs.mma_cycles(machine, rows, tm, tile_k, dtype)
    w_bytes, acc = elems * size, rows * tm * 4
    edges = []
    for c in range(consumers):
        dq, mma = f"dequant{c}", f"mma{c}"
        ops += [
            Op(
                dq,
                "alu",
                deq.occupancy + costs.latency(machine, "fp32"),
                deq.occupancy,
                deq.instructions,
                kind=OpKind.DEQUANT,
                index=c,
                bytes=w_bytes,
                space="regs",
                regs_per_thread=costs.regs(w_bytes),
            ),
            Op(
                mma,
                "tensor",
                costs.mma_latency(machine, mma_occ),
                mma_occ,
                costs.mma_issue(machine, tile_k),
                kind=OpKind.WGMMA_RS,
                index=c,
                bytes=acc,
                space="regs",
                regs_per_thread=costs.regs(acc),
            ),
        ]
        edges += [Edge(LOAD_W, dq), Edge(dq, mma), Edge(LOAD_X, mma), Edge(mma, mma, 1)]
        if group_size != -1:
            edges.append(Edge(LOAD_S, dq))
    name = f"quant_gemm_{fmt}{bits}_g{group_size}_{dtype}_m{m}_{tile_n}x{tm}x{tile_k}"
    ops = charge_ring_sync(machine, ops, edges)
    return Problem.build(
        name,
        ops,
        edges,
        {
            "model": "quant_gemm",
            "bits": bits,
            "fmt": fmt,
            "group_size": group_size,
            "dtype": dtype,
            "m": m,
            "k": k,
            "tile_n": tile_n,
            "tile_k": tile_k,
            "tile_m": tm,
            "consumers": consumers,
        },
        reserved_smem=reserved,
    )


def work(source: dict) -> Fraction:
    """Useful multiply-accumulates per iteration: tile_n x tile_k times the batch rows a tile holds on
    average (m / ceil(m / tile_m): rows padded past the batch are wasted work)."""
    m, tile_m = source["m"], source["tile_m"]
    return Fraction(m, -(-m // tile_m)) * source["tile_n"] * source["tile_k"]


SPEC = ModelSpec(
    "quant_gemm",
    "weight-only quantized GEMM, 1..8-bit int or float weights, dequant into wgmma registers",
    PARAMS,
    build,
    work,
)
