"""Writing the precompiled kernel package (kernels/package/): the sweep's choices and pinned schedules,
as manifest entries beside their schedule files. Reading it (kernels.package) needs nothing of this."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from warpsched.kernels.cuda.render import schedule_digest
from warpsched.kernels.package.manifest import (
    FORMAT,
    MANIFEST,
    PINNED,
    SCHEDULES,
    Entry,
    ProblemKey,
    problem_key,
    read,
)
from warpsched.models import predicted_time, split_source
from warpsched.scheduler import schedule as schedule_io
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.schedule import Schedule


def entry_for(
    key: ProblemKey, schedule: Schedule, predicted_cycles_per_mac, points: int, origin: str
) -> Entry:
    """The manifest entry of `schedule` chosen for problem `key` (the sweep's choices and pinned
    schedules)."""
    _, tile = split_source(schedule.problem.source)
    return Entry(
        key,
        tile,
        f"{SCHEDULES}/{key.name}.json",
        schedule_digest(schedule),
        schedule.ii,
        schedule.ii_proven_optimal,
        schedule.makespan,
        round(float(predicted_cycles_per_mac * 1000), 6),
        points,
        origin,
    )


def pinned_entry(schedule: Schedule, why: str) -> Entry:
    """An entry for one schedule chosen by hand rather than by a sweep: one that was checked on a GPU
    where the deterministic solve's own choice for the problem was not right (`why` says where and how);
    its origin is PINNED + why. Keep pinned problems out of the sweep catalog, which would replace them."""
    key = problem_key(schedule.problem.source, schedule.machine.name)
    return entry_for(
        key,
        schedule,
        predicted_time(schedule.problem.source, schedule.ii),
        1,
        why if why.startswith(PINNED) else PINNED + why,
    )


def write(directory: str | Path, chosen: list[tuple[Entry, Schedule]]) -> Path:
    """Add (or replace, by problem) the `chosen` entries and their schedule files; other entries stay."""
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"package directory {str(folder)!r} is a file; give a folder")
    (folder / SCHEDULES).mkdir(parents=True, exist_ok=True)
    entries = {e.name: e for e in (read(folder) if (folder / MANIFEST).exists() else ())}
    for entry, schedule in chosen:
        # no wall-clock record in the package: regenerating it gives the same bytes on any machine, under any
        # load (the sweep's results JSON keeps each solve's time)
        schedule_io.write(dataclasses.replace(schedule, solve_seconds=0.0), folder / entry.schedule)
        entries[entry.name] = entry
    manifest = {"format": FORMAT, "entries": [entries[n].to_json() for n in sorted(entries)]}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path
