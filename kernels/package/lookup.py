"""Finding a shipped schedule for a kernel call, so that the runtime need not solve at first use.

A shipped schedule is used only while it is *current*: its graph and machine are what the model
builder and the machine YAML give today. After a change of costs the package is stale, `find`
answers None (the caller solves) and the package tests fail until the package is regenerated. A pinned
entry (a schedule checked on a GPU, kept where the solver's own choice was wrong there) ships as it was
checked whatever the model says now: `ships`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warpsched.scheduler.errors import WarpschedError
from warpsched.scheduler.machine import Machine, load_machine, machine_to_dict
from warpsched.scheduler.schedule import Schedule, graph_to_json

from warpsched.kernels.package import manifest


def is_current(schedule: Schedule, machine: Machine | None = None) -> bool:
    """Whether `schedule` is still the problem its model builds on its machine (`machine`: the current
    model of that machine, loaded by name when not given)."""
    from warpsched.models import build_model

    source = dict(schedule.problem.source or {})
    model = source.pop("model", None)
    if model is None:
        return False
    try:
        machine = machine or load_machine(schedule.machine.name)
        problem = build_model(model, machine, **source)
    except WarpschedError:  # the model or machine no longer accepts these parameters
        return False
    return (
        graph_to_json(problem) == graph_to_json(schedule.problem)
        and problem.name == schedule.problem.name
        and machine_to_dict(machine) == machine_to_dict(schedule.machine)
    )


def ships(entry: manifest.Entry, schedule: Schedule, machine: Machine | None = None) -> bool:
    """Whether the package uses `entry`'s schedule: it is current, or it is pinned (the kernel a GPU checked;
    a cost change since does not make another schedule right)."""
    return entry.pinned or is_current(schedule, machine)


def shipped_tile(
    model: str,
    params: dict[str, Any] | None = None,
    machine: Machine | str = "h100",
    package: str | Path | None = None,
) -> dict:
    """The tile parameters the package chose for this problem (the sweep's best clean build), or {} when it
    ships none or a tile parameter is given in `params` (the caller's choice stands)."""
    from warpsched.models import build_model, get_spec

    params = dict(params or {})
    if set(params) & set(get_spec(model).tile_params):
        return {}
    machine = load_machine(machine) if isinstance(machine, str) else machine
    key = manifest.problem_key(build_model(model, machine, **params).source, machine.name)
    entry = next((e for e in manifest.read(package) if e.key == key), None)
    return dict(entry.tile) if entry is not None else {}


def find(
    model: str,
    params: dict[str, Any] | None = None,
    machine: Machine | str = "h100",
    package: str | Path | None = None,
) -> Schedule | None:
    """The shipped schedule of `model` with `params` on `machine`, or None when the package has none
    (or only a stale one). Parameters left out take the model's defaults, except tile parameters:
    without them any shipped tile matches. A bad parameter is an `InputError`, as in `build_model`."""
    from warpsched.models import build_model, get_spec

    params = dict(params or {})
    machine = load_machine(machine) if isinstance(machine, str) else machine
    key = manifest.problem_key(build_model(model, machine, **params).source, machine.name)
    spec = get_spec(model)
    resolved = spec.resolve(params)
    tiles = {n: resolved[n] for n in spec.tile_params if n in params and resolved[n] is not None}
    for entry in manifest.read(package):
        if entry.key == key and all(entry.tile.get(n) == v for n, v in tiles.items()):
            schedule = manifest.load_schedule(entry, package)
            return schedule if ships(entry, schedule, machine) else None
    return None
