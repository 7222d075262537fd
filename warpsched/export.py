"""`warpsched export --hatschet DIR`: every shipped kernel's main-loop graph as a HatScheT instance (issue 19
item 4), so that other modulo schedulers can be compared on GPU-shaped loops, with a README table of the
IIs our classic solver proves for them.

One instance per package entry (the shipped problem with its chosen tile, on its machine):
`<entry>.graphml` and `<entry>_RM.xml` as scheduler/hatschet.py writes them, and `README.md`. The
instance is the kernel model's classic modulo scheduling problem (units, latencies, occupancies and
dependences; no warpgroups, registers or shared memory); where a unit's ops hold it for different times
HatScheT cannot say so, and the instance gives each occupancy its own resource (a relaxation, named in
the table beside both IIs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from warpsched.kernels.package import manifest
from warpsched.models import build_model
from warpsched.scheduler import load_hatschet, load_machine, solve
from warpsched.scheduler.hatschet import write_hatschet


@dataclass(frozen=True)
class Exported:
    name: str
    graphml: Path
    ops: int
    edges: int
    resources: int
    relaxed_units: tuple[str, ...]  # units split per occupancy (a relaxation); () when exact
    ii: int  # the instance's classic II, as our solver finds it
    ii_proven: bool
    model_ii: int  # the kernel model's classic II
    model_ii_proven: bool
    shipped_ii: int  # the shipped (joint) schedule's II: warpgroups, registers and shared memory included


def export(
    directory: str | Path, package: str | Path | None = None, progress: Callable[[str], None] | None = None
) -> tuple[Exported, ...]:
    """Write every entry of the package (default: the shipped one) as a HatScheT instance into
    `directory`, solve each in classic mode (deterministic preset) and write the README table."""
    out = Path(directory)
    rows = []
    for entry in manifest.read(package):
        if progress is not None:
            progress(f"exporting and solving {entry.name}")
        problem = build_model(entry.key.model, entry.key.machine, **entry.params)
        machine = load_machine(entry.key.machine)
        graphml, _, relaxed = write_hatschet(problem, machine, out / f"{entry.name}.graphml")
        instance, resources = load_hatschet(graphml)
        mine = solve(instance, resources, mode="classic", config="deterministic").schedule
        model = solve(problem, machine, mode="classic", config="deterministic").schedule
        rows.append(
            Exported(
                entry.name,
                graphml,
                len(instance.ops),
                len(instance.edges),
                len(resources.units),
                relaxed,
                mine.ii,
                mine.ii_proven_optimal,
                model.ii,
                model.ii_proven_optimal,
                entry.ii,
            )
        )
    (out / "README.md").write_text(readme(rows, package))
    return tuple(rows)


def _ii(ii: int, proven: bool) -> str:
    return f"{ii}" if proven else f"{ii} (not proven)"


def readme(rows: list[Exported], package: str | Path | None = None) -> str:
    lines = [
        "# warpsched's GPU loop graphs as HatScheT instances",
        "",
        "Written by `warpsched export --hatschet DIR` (warpsched/export.py) from "
        + ("the shipped kernel package:" if package is None else f"the package {Path(package).name}:"),
        "one `<name>.graphml` and `<name>_RM.xml` per kernel, the main loop of the kernel as its model",
        "builds it for its machine (cycles on one SM), for classic modulo scheduling. Edge delays hold",
        "the source's latency (every resource has latency 0); a resource's blockingTime is how long an op",
        "holds it. HatScheT gives every op on a resource one blocking time: where a unit's ops hold it",
        "for different times, each occupancy became its own resource with the unit's limit, a relaxation",
        "(column *split*), so that instance's II may be below the kernel model's.",
        "",
        "IIs from warpsched's classic mode (OR-Tools CP-SAT, deterministic preset), proven optimal unless",
        "marked. *model* is the kernel model's own classic II; *shipped* is the II of the shipped schedule,",
        "which also places warpgroups, registers and shared memory (joint mode).",
        "",
        "| instance | ops | edges | resources | split | II | model | shipped |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.ops} | {r.edges} | {r.resources} | {', '.join(r.relaxed_units) or '-'} | "
            f"{_ii(r.ii, r.ii_proven)} | {_ii(r.model_ii, r.model_ii_proven)} | {r.shipped_ii} |"
        )
    return "\n".join(lines) + "\n"
