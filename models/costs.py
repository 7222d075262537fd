"""Cycle costs of tile operations, from a machine model's `rates` and `latencies`.

Occupancy = work / rate (the unit is busy that long per issue); latency = occupancy plus the
unit's fill or round trip. Nothing here is a constant of its own: a new GPU is a new YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import ceil
from pathlib import Path

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import Machine, config_root
from warpsched.scheduler.yaml_files import read_yaml

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


# the rate (per SM per cycle) that sets how long one warpgroup instruction holds each pipe: 128 threads over
# that many lanes; a shared-memory access moves 4 bytes per thread
PIPE_RATES = {"fma": "fp32_lanes", "alu": "int32_lanes", "mufu": "mufu_ops", "cvt": "cvt_ops"}
TEMPLATE_COSTS = "template_costs.yaml"


@dataclass(frozen=True)
class TemplateCost:
    """One op's CUDA-core work as the SASS of its template has it (kernels/template_costs.py)."""

    instructions: int  # per thread (= per warp): the warpgroup's issue cycles, one per cycle per warp
    pipes: dict  # pipe -> cycles that pipe is busy

    @property
    def occupancy(self) -> int:
        """Cycles the op holds the SM's CUDA cores: each sub-partition dispatches one warp instruction per
        cycle, and no pipe does more than its rate."""
        return max(self.instructions, *self.pipes.values())


def template(machine: Machine, key: str, elements: int) -> TemplateCost:
    """The cost of CUDA op template `key` over `elements` values held by one warpgroup, from its instruction
    counts per element (solver_configs/template_costs.yaml) and the machine's per-pipe rates."""
    per_element = _template_costs(config_root() / TEMPLATE_COSTS).get(key)
    if per_element is None:
        raise InputError(
            f"no instruction counts for the CUDA template {key!r} in {TEMPLATE_COSTS}; regenerate them with "
            "`warpsched costs`"
        )
    per_thread = elements / THREADS
    counts = {pipe: n * per_thread for pipe, n in per_element.items()}
    pipes = {
        pipe: ceil(counts[pipe] * THREADS / rate(machine, PIPE_RATES[pipe]))
        for pipe in PIPE_RATES
        if pipe in counts
    }
    if "shared" in counts:
        pipes["shared"] = ceil(counts["shared"] * THREADS * 4 / rate(machine, "smem_bytes"))
    return TemplateCost(ceil(sum(counts.values())), pipes)


def _template_costs(path: Path) -> dict[str, dict[str, float]]:
    return _read_template_costs(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=4)
def _read_template_costs(path: Path, _mtime: int) -> dict[str, dict[str, float]]:
    data = read_yaml(path, "template costs")
    return {key: entry["per_element"] for key, entry in data.get("templates", {}).items()}


def regs(nbytes: int, threads: int = THREADS) -> int:
    """32-bit registers per thread to hold `nbytes` spread over a warpgroup."""
    return ceil(nbytes / threads / 4)


DTYPE_BYTES = {"bf16": 2, "fp16": 2}
