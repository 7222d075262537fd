"""Solver presets (`solver_configs/solvers/*.yaml`) and the knobs of the II search.

Every run is reproducible from its config: explicit `num_workers` and
`random_seed`; `interleave_search` plus `deterministic_limit` make CP-SAT's
search independent of timing and worker scheduling (preset `deterministic`).
Wall-clock limits are safety caps only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import config_root
from warpsched.scheduler.yaml_files import read_yaml, resolve

LEVELS = ("makespan", "smem", "registers", "cross_edges", "user")


@dataclass(frozen=True)
class SolverConfig:
    name: str = "default"
    num_workers: int = 2
    random_seed: int = 0
    interleave_search: bool = False
    time_limit: float = 20.0  # wall seconds per CP-SAT attempt (safety cap)
    deterministic_limit: float | None = None  # deterministic seconds per attempt
    total_time_limit: float = 120.0  # wall seconds for the whole II search
    objective_time_limit: float = 2.0  # wall seconds per secondary objective level
    # wall seconds a secondary level after iteration latency may go without a better schedule (and at least
    # as long again as its last one took) before it stops, keeping its best (None: only
    # objective_time_limit stops it); wall clock, so ignored where deterministic_limit is set
    objective_stall: float | None = None
    range_threshold: int = 4  # more candidate IIs than this are solved as one range with II as a variable
    max_ii: int | None = None  # search limit when no heuristic schedule bounds it
    objectives: tuple[str, ...] = ("makespan", "smem", "registers", "cross_edges")
    hint: bool = True
    log_search: bool = False
    heuristic_budget: int = 6
    max_warpgroups: int | None = None  # override the machine's warpgroup pool

    def with_overrides(self, **kw) -> "SolverConfig":
        return replace(self, **{k: v for k, v in kw.items() if v is not None}).checked()

    def checked(self, origin: str = "the solver settings") -> "SolverConfig":
        """This config, or an `InputError` naming the first setting out of range."""

        def whole(name, low, optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InputError(f"{origin}: {name} is {value!r}; it must be a whole number >= {low}")

        def seconds(name, optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise InputError(f"{origin}: {name} is {value!r}; it must be a positive number of seconds")

        whole("num_workers", 1)
        whole("random_seed", 0)
        whole("range_threshold", 1)
        whole("heuristic_budget", 1)
        whole("max_ii", 1, optional=True)
        whole("max_warpgroups", 1, optional=True)
        for name in ("time_limit", "total_time_limit", "objective_time_limit"):
            seconds(name)
        seconds("deterministic_limit", optional=True)
        seconds("objective_stall", optional=True)
        bad = [o for o in self.objectives if o not in LEVELS]
        if bad:
            raise InputError(f"{origin} names unknown objective {bad[0]!r}; use some of {', '.join(LEVELS)}")
        return self

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def available_presets() -> list[str]:
    return sorted(p.stem for p in (config_root() / "solvers").glob("*.yaml"))


def load_config(name_or_path: str | Path = "default") -> SolverConfig:
    path = resolve(name_or_path, config_root() / "solvers", "solver preset")
    return config_from_dict(read_yaml(path, "solver preset") or {}, origin=str(path))


def config_from_dict(data: dict, origin: str = "solver preset") -> SolverConfig:
    if not isinstance(data, dict):
        raise InputError(f"{origin} must be a YAML mapping of solver settings")
    known = {f.name: f for f in fields(SolverConfig)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise InputError(
                f"{origin} sets unknown option {key!r}; known options: {', '.join(sorted(known))}"
            )
        if key == "objectives":
            if not isinstance(value, (list, tuple)):
                raise InputError(
                    f"{origin}: objectives must be a list such as [makespan, smem, registers, cross_edges]"
                )
            value = tuple(value)
        kwargs[key] = value
    return SolverConfig(**kwargs).checked(origin)
