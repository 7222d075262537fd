"""Machine models: functional units, warpgroups, registers, shared memory (DESIGN.md section 2).

A machine is read from `solver_configs/machines/<name>.yaml`; every number there
carries its source in a comment. Model builders read `rates` and `latencies`
so that a new GPU is a new YAML file, not new code.
"""

from __future__ import annotations

import os
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.yaml_files import resolve, read_yaml


def config_root() -> Path:
    """The folder of machine models, presets and problem files: `$WARPSCHED_CONFIG_DIR` if set, else the
    shipped `warpsched.solver_configs` package data."""
    override = os.environ.get("WARPSCHED_CONFIG_DIR")
    if override:
        return Path(override)
    return Path(str(resources.files("warpsched.solver_configs")))


@dataclass(frozen=True)
class Machine:
    """One SM of a GPU as the scheduler sees it.

    `units` maps a functional unit to its capacity (None: unlimited). A
    warpgroup is `warpgroup_threads` threads; its `setmaxnreg` budget is a
    multiple of `reg_step` in [`reg_min`, `reg_max`] registers per thread, of
    which `register_overhead` are taken by addresses, counters and barrier
    phases. `sync_latency` is one cross-warpgroup hand-off (an mbarrier round);
    a register value handed across warpgroups is also staged through shared
    memory at `smem_bytes_per_cycle`. Each ring slot costs
    `ring_slot_overhead` bytes of mbarriers beside its payload.
    """

    name: str
    units: dict[str, int | None]
    sync_latency: int = 0
    smem_bytes: int = 0
    smem_bytes_per_cycle: int = 128
    ring_slot_overhead: int = 16
    register_file: int = 0
    warpgroup_threads: int = 128
    reg_min: int = 24
    reg_max: int = 256
    reg_step: int = 8
    register_overhead: int = 0
    max_warpgroups: int = 0
    clock_ghz: float = 1.0
    rates: dict[str, float] = field(default_factory=dict, compare=False)
    latencies: dict[str, int] = field(default_factory=dict, compare=False)
    features: dict[str, str] = field(
        default_factory=dict, compare=False
    )  # what kernel models build on (mma kind, ...)
    # cycles a synchronisation costs the warp that issues it (the YAML's chip.sync: mbarrier_wait, arrive,
    # named_barrier, fence, ...); model builders charge them to the ops that synchronise
    sync_costs: dict[str, int] = field(default_factory=dict, compare=False)
    description: str = ""

    def capacity(self, unit: str) -> int | None:
        return self.units[unit]

    @property
    def has_warpgroups(self) -> bool:
        return self.max_warpgroups > 0

    def budgets(self) -> list[int]:
        """Every legal `setmaxnreg` value."""
        return list(range(self.reg_min, self.reg_max + 1, self.reg_step))


def available_machines() -> list[str]:
    return sorted(p.stem for p in (config_root() / "machines").glob("*.yaml"))


def load_machine(name_or_path: str | Path) -> Machine:
    """Load a machine by name (`h100`) or from a YAML path."""
    path = resolve(name_or_path, config_root() / "machines", "machine")
    return machine_from_dict(read_yaml(path, "machine"), origin=str(path))


def machine_from_dict(data: Any, origin: str = "machine") -> Machine:
    if not isinstance(data, dict):
        raise InputError(f"{origin} must be a YAML mapping with at least 'name' and 'units'")
    for key in ("name", "units"):
        if key not in data:
            raise InputError(f"{origin} has no {key!r}; a machine needs 'name' and 'units'")
    units = data["units"]
    if not isinstance(units, dict) or not units:
        raise InputError(f"{origin}: 'units' must map each functional unit to its capacity")
    caps: dict[str, int | None] = {}
    for unit, cap in units.items():
        if isinstance(cap, dict):
            cap = cap.get("capacity")
        if cap is None or cap == -1 or cap == "unlimited":
            caps[str(unit)] = None
        elif isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0:
            caps[str(unit)] = cap
        else:
            raise InputError(
                f"{origin}: unit {unit!r} has capacity {cap!r}; use a whole number >= 0, or 'unlimited' "
                "(also written -1)"
            )
    regs = data.get("registers", {}) or {}
    wgs = data.get("warpgroups", {}) or {}
    for key, value in (
        ("registers", regs),
        ("warpgroups", wgs),
        ("rates", data.get("rates") or {}),
        ("latencies", data.get("latencies") or {}),
        ("features", data.get("features") or {}),
    ):
        if not isinstance(value, dict):
            raise InputError(
                f"{origin}: {key!r} must be a mapping (e.g. registers: "
                f"{{file: 65536, min: 24, max: 256, step: 8}}), not {value!r}"
            )
    kwargs = dict(
        name=str(data["name"]),
        units=caps,
        sync_latency=data.get("sync_latency", 0),
        smem_bytes=data.get("smem_bytes", 0),
        smem_bytes_per_cycle=data.get("smem_bytes_per_cycle", 128),
        ring_slot_overhead=data.get("ring_slot_overhead", 16),
        register_file=regs.get("file", data.get("register_file", 0)),
        reg_min=regs.get("min", 24),
        reg_max=regs.get("max", 256),
        reg_step=regs.get("step", 8),
        register_overhead=regs.get("reserved", 0),
        max_warpgroups=wgs.get("max", data.get("max_warpgroups", 0)),
        warpgroup_threads=wgs.get("threads", data.get("warpgroup_threads", 128)),
    )
    for key, value in kwargs.items():
        if key in ("name", "units"):
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{origin}: {key} is {value!r}; it must be a whole number >= 0")
    if kwargs["reg_step"] <= 0 or kwargs["smem_bytes_per_cycle"] <= 0 or kwargs["warpgroup_threads"] <= 0:
        raise InputError(
            f"{origin}: registers.step, smem_bytes_per_cycle and warpgroups.threads must be positive"
        )
    if kwargs["max_warpgroups"] and kwargs["reg_min"] * kwargs["warpgroup_threads"] > kwargs["register_file"]:
        raise InputError(
            f"{origin}: even one warpgroup at the minimum register budget does not fit the register file; "
            "check registers.file"
        )
    return Machine(
        **kwargs,
        clock_ghz=float(data.get("clock_ghz", 1.0)),
        rates=dict(data.get("rates", {}) or {}),
        latencies=dict(data.get("latencies", {}) or {}),
        features={str(k): str(v) for k, v in (data.get("features") or {}).items()},
        sync_costs=_sync_costs(data, origin),
        description=str(data.get("description", "")),
    )


def machine_to_dict(m: Machine) -> dict:
    """The machine as the schedule file records it (DESIGN.md section 5)."""
    return {
        "name": m.name,
        "units": dict(m.units),
        "sync_latency": m.sync_latency,
        "smem_bytes": m.smem_bytes,
        "smem_bytes_per_cycle": m.smem_bytes_per_cycle,
        "ring_slot_overhead": m.ring_slot_overhead,
        "register_file": m.register_file,
        "registers": {
            "min": m.reg_min,
            "max": m.reg_max,
            "step": m.reg_step,
            "reserved": m.register_overhead,
        },
        "max_warpgroups": m.max_warpgroups,
        "warpgroup_threads": m.warpgroup_threads,
        "clock_ghz": m.clock_ghz,
    }


def _sync_costs(data: dict, origin: str) -> dict[str, int]:
    chip = data.get("chip") or {}
    sync = chip.get("sync") or {} if isinstance(chip, dict) else None
    if not isinstance(sync, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in sync.values()
    ):
        raise InputError(f"{origin}: chip.sync must map each synchronisation to whole cycles >= 0")
    return {str(k): v for k, v in sync.items()}
