"""Sweep configs (`solver_configs/sweeps/*.yaml`, `solver_configs/precompiled.yaml`): grids of kernel
model parameters x machines, expanded into the points a sweep solves.

```yaml
name: quant_gemm_tiles      # default: the file's stem
preset: deterministic       # solver preset, name or path (default deterministic: same config, same choices)
solver: {deterministic_limit: 10}   # overrides of the preset's settings (optional)
mode: joint                 # joint (default), swp, ws or heuristic
machines: [h100]            # default machines of every grid
grids:
  - model: quant_gemm
    machines: [h100]        # optional, replaces the default
    params:                 # a value or a list of values per parameter; the grid is their product
      bits: [2, 4]
      tile_n: [64, 128]
      "tile_m, consumers": [[16, 1], [32, 2]]   # parameters that vary together: one row per point
```

A point whose parameters the model refuses (a tile_k that does not divide the group size) is
skipped with its reason; a config whose grid has no valid point at all, an unknown key, model,
parameter or value is an `InputError` naming the file.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warpsched.scheduler.config import SolverConfig, config_from_dict, load_config
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import Machine, config_root, load_machine
from warpsched.scheduler.yaml_files import read_yaml

MODES = ("joint", "swp", "ws", "heuristic")
TOP_KEYS = ("name", "preset", "solver", "mode", "machines", "grids")
GRID_KEYS = ("model", "machines", "params")


@dataclass(frozen=True)
class Point:
    """One solve: a model's full parameters (as its problem records them) on one machine."""

    index: int
    model: str
    machine: Machine
    params: dict  # problem.source without "model": build_model(model, machine, **params) rebuilds it
    config: SolverConfig
    mode: str
    compile: bool = False

    def describe(self) -> str:
        return f"{self.model} on {self.machine.name} " + " ".join(f"{k}={v}" for k, v in self.params.items())


@dataclass(frozen=True)
class Skipped:
    model: str
    machine: str
    params: dict  # as the grid gave them
    reason: str


@dataclass(frozen=True)
class SweepConfig:
    name: str
    origin: str  # the config file, relative to the repository when inside it
    solver: SolverConfig  # the preset with the config's overrides, the same for every point
    mode: str
    points: tuple[Point, ...]
    skipped: tuple[Skipped, ...]


def origin_of(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(config_root().resolve().parent))
    except ValueError:
        return path.name


def load_sweep(path: str | Path) -> SweepConfig:
    """A sweep config from a YAML path, or by the name of a shipped one (`precompiled`,
    `quant_gemm_tiles`)."""
    path = Path(path)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        shipped = [config_root() / f"{path}.yaml", config_root() / "sweeps" / f"{path}.yaml"]
        path = next((p for p in shipped if p.exists()), path)
    return sweep_from_dict(
        read_yaml(path, "sweep config"), str(path), origin_of(path), default_name=path.stem
    )


def sweep_from_dict(
    data: Any, where: str = "sweep config", origin: str = "", default_name: str = "sweep"
) -> SweepConfig:
    from warpsched.models import build_model, get_spec

    what = f"sweep config {where!r}" if where != "sweep config" else where
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a YAML mapping with a grids list (see solver_configs/sweeps/)")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise InputError(f"{what} has unknown key {unknown[0]!r}; its keys are {', '.join(TOP_KEYS)}")
    preset = data.get("preset", "deterministic")
    overrides = data.get("solver") or {}
    if not isinstance(overrides, dict):
        raise InputError(
            f"{what}: solver must be a mapping of preset settings to override, e.g. "
            f"{{deterministic_limit: 10}}"
        )
    base = load_config(str(preset))
    config = (
        config_from_dict({**base.to_json(), **overrides}, origin=f"{what} (solver)") if overrides else base
    )
    mode = data.get("mode", "joint")
    if mode not in MODES:
        raise InputError(
            f"{what}: mode {mode!r} is not one a kernel can be built from; use one of {', '.join(MODES)}"
        )
    default_machines = _machines(data.get("machines", ["h100"]), what)
    grids = data.get("grids")
    if not isinstance(grids, list) or not grids:
        raise InputError(f"{what} needs a non-empty grids list, each grid a mapping with model and params")
    points: list[Point] = []
    skipped: list[Skipped] = []
    seen: set = set()
    for g, grid in enumerate(grids, 1):
        where_g = f"{what}, grid {g}"
        if not isinstance(grid, dict) or "model" not in grid:
            raise InputError(f"{where_g} must be a mapping with a model (and params, machines)")
        unknown = sorted(set(grid) - set(GRID_KEYS))
        if unknown:
            raise InputError(f"{where_g} has unknown key {unknown[0]!r}; a grid has {', '.join(GRID_KEYS)}")
        model = str(grid["model"])
        spec = get_spec(model)
        machines = _machines(grid["machines"], where_g) if "machines" in grid else default_machines
        axes = _axes(grid.get("params") or {}, spec, where_g)
        valid = 0
        for machine in machines:
            for combo in itertools.product(*(values for _, values in axes)):
                given = {
                    name: value for (names, _), row in zip(axes, combo) for name, value in zip(names, row)
                }
                try:
                    source = dict(build_model(model, machine, **given).source)
                except InputError as exc:
                    skipped.append(Skipped(model, machine.name, given, str(exc)))
                    continue
                valid += 1
                source.pop("model")
                identity = (model, machine.name, tuple(source.items()))
                if identity in seen:  # two grids (or defaults) name the same point: solve it once
                    continue
                seen.add(identity)
                points.append(Point(len(points), model, machine, source, config, mode))
        if not valid:
            first = next(s.reason for s in reversed(skipped) if s.model == model)
            raise InputError(f"{where_g} has no valid point: {first.rstrip('.')}")
    return SweepConfig(
        str(data.get("name", default_name)), origin or where, config, mode, tuple(points), tuple(skipped)
    )


def _machines(value: Any, what: str) -> tuple[Machine, ...]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"{what}: machines must be a list of machine names, e.g. [h100]")
    return tuple(load_machine(n) for n in names)


def _axes(params: Any, spec, what: str) -> list[tuple[tuple[str, ...], list[tuple]]]:
    """Per key of `params`, (parameter names, rows of values): one name for `bits: [2, 4]`, several
    for `"tile_m, consumers": [[16, 1], [32, 2]]`. Every value is checked against the model's declaration."""
    if not isinstance(params, dict):
        raise InputError(
            f"{what}: params must be a mapping of parameter names to a value or a list of values"
        )
    known = {p.name: p for p in spec.params}
    axes = []
    for key, raw in params.items():
        names = tuple(n.strip() for n in str(key).split(","))
        for name in names:
            if name not in known:
                raise InputError(
                    f"{what}: {spec.name} has no parameter {name!r}; its parameters are {', '.join(known)}"
                )
        values = raw if isinstance(raw, list) else [raw]
        if not values:
            raise InputError(f"{what}: {key} has an empty list of values; give at least one")
        rows = []
        for value in values:
            row = value if len(names) > 1 else [value]
            if len(names) > 1 and (not isinstance(value, list) or len(value) != len(names)):
                raise InputError(
                    f"{what}: every value of {key!r} must be a list of {len(names)} values, one per "
                    f"parameter; got {value!r}"
                )
            try:
                rows.append(
                    tuple(
                        known[n].convert(v, spec.name) if v is not None else None for n, v in zip(names, row)
                    )
                )
            except InputError as exc:
                raise InputError(f"{what}: {exc}") from None
        axes.append((names, rows))
    return axes
