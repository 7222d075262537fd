"""Cycle costs of tile operations, from a machine model's `rates` and `latencies`.

Occupancy = work / rate (the unit is busy that long per issue); latency = occupancy plus the
unit's fill or round trip. Nothing here is a constant of its own: a new GPU is a new YAML file.
"""

from __future__ import annotations

from math import ceil

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import Machine

THREADS = 128  # a warpgroup


def rate(machine: Machine, key: str) -> float:
    try:
        return float(machine.rates[key])
    except KeyError:
        raise InputError(
            f"machine {machine.name!r} has no rate {key!r}, which this kernel model needs; add it to its "
            "YAML file"
        ) from None


def latency(machine: Machine, key: str) -> int:
    try:
        return int(machine.latencies[key])
    except KeyError:
        raise InputError(
            f"machine {machine.name!r} has no latency {key!r}, which this kernel model needs; add it to its "
            "YAML file"
        ) from None


def feature(machine: Machine, key: str, default: str) -> str:
    return machine.features.get(key, default)


def mma_cycles(machine: Machine, m: int, n: int, k: int, dtype: str) -> int:
    """Tensor-core occupancy of an m x n x k matrix product."""
    return ceil(2 * m * n * k / rate(machine, f"tensor_flops_{dtype}"))


def mma_issue(machine: Machine, k: int) -> int:
    """Cycles the issuing warpgroup spends on one MMA: Hopper issues one wgmma per k16 step;
    Blackwell's single-thread tcgen05.mma costs a fixed few."""
    if feature(machine, "mma", "wgmma") == "tcgen05":
        return latency(machine, "mma_issue")
    return latency(machine, "wgmma_issue_k16") * ceil(k / 16)


def mma_latency(machine: Machine, occupancy: int) -> int:
    fill = machine.latencies.get("wgmma_fill", machine.latencies.get("mma_fill", 0))
    return occupancy + int(fill)


def mufu_cycles(machine: Machine, n: int) -> int:
    return ceil(n / rate(machine, "mufu_ops"))


def fp32_cycles(machine: Machine, n: int) -> int:
    return ceil(n / rate(machine, "fp32_lanes"))


def tma_cycles(machine: Machine, nbytes: int, reused: bool) -> int:
    """Transfer time: operands other CTAs also read come from L2, the rest from HBM."""
    return ceil(nbytes / rate(machine, "l2_bytes" if reused else "hbm_bytes"))


def tma_latency(machine: Machine, nbytes: int, reused: bool) -> int:
    return latency(machine, "tma_l2" if reused else "tma_hbm") + tma_cycles(machine, nbytes, reused)


def tmem_cycles(machine: Machine, nbytes: int) -> int:
    return ceil(nbytes / rate(machine, "tmem_bytes"))


def regs(nbytes: int, threads: int = THREADS) -> int:
    """32-bit registers per thread to hold `nbytes` spread over a warpgroup."""
    return ceil(nbytes / threads / 4)


DTYPE_BYTES = {"bf16": 2, "fp16": 2}
