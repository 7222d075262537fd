"""The package's files: `manifest.json` beside one schedule file per problem under `schedules/`.

A problem is a kernel model, a machine and the parameters that say what is computed (dtype, bits,
head_dim, ...); the tile parameters (how it is computed) are what a sweep chooses, so each problem
has exactly one entry. The manifest is written sorted by entry name, without timestamps, so that
regenerating an unchanged package changes no line of it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warpsched.scheduler import schedule as schedule_io
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.schedule import Schedule
from warpsched.scheduler.yaml_files import read_text

FORMAT = "warpsched.package/1"
PACKAGE_DIR = Path(__file__).resolve().parent  # the shipped package: kernels/package
MANIFEST = "manifest.json"
SCHEDULES = "schedules"


@dataclass(frozen=True)
class ProblemKey:
    """What a kernel computes: model, machine and the problem (non-tile) parameters in declaration order."""

    model: str
    machine: str
    params: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        """A stable file-name-safe name, e.g.
        `quant_gemm_h100_bits4_fmtint_group_size128_dtypebf16_m16_k4096`."""
        parts = [self.model, self.machine] + [f"{k}{str(v).lower()}" for k, v in self.params]
        return re.sub(r"[^A-Za-z0-9_.-]", "-", "_".join(parts))

    def describe(self) -> str:
        return f"{self.model} on {self.machine} (" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"


def problem_key(source: dict, machine: str) -> ProblemKey:
    """The key of a kernel model's problem from its `problem.source`."""
    from warpsched.models import split_source

    problem, _ = split_source(source)
    return ProblemKey(str(source["model"]), machine, tuple(problem.items()))


@dataclass(frozen=True)
class Entry:
    """One manifest line: the problem, the tile chosen for it and what the sweep measured."""

    key: ProblemKey
    tile: dict
    schedule: str  # the schedule file, relative to the package directory
    schedule_digest: str  # kernels.cuda.render.schedule_digest of that file's schedule
    ii: int
    ii_proven_optimal: bool
    makespan: int
    predicted_cycles_per_kmac: float  # II per 1000 useful multiply-accumulates (kernels/sweep.py)
    points: int  # grid points compared for this problem
    origin: str  # the sweep config that chose it

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def pinned(self) -> bool:
        """Chosen by hand after a GPU check (package_writer.pinned_entry), not by a sweep."""
        return self.origin[: len(PINNED)] == PINNED

    @property
    def params(self) -> dict:
        """Every model parameter of the chosen schedule: the problem's and the tile's."""
        return {**dict(self.key.params), **self.tile}

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "model": self.key.model,
            "machine": self.key.machine,
            "problem": dict(self.key.params),
            "tile": self.tile,
            "schedule": self.schedule,
            "schedule_digest": self.schedule_digest,
            "ii": self.ii,
            "ii_proven_optimal": self.ii_proven_optimal,
            "makespan": self.makespan,
            "predicted_cycles_per_kmac": self.predicted_cycles_per_kmac,
            "points": self.points,
            "origin": self.origin,
        }

    @staticmethod
    def from_json(data: Any, origin: str) -> "Entry":
        try:
            key = ProblemKey(data["model"], data["machine"], tuple(data["problem"].items()))
            return Entry(
                key,
                dict(data["tile"]),
                data["schedule"],
                data["schedule_digest"],
                data["ii"],
                bool(data["ii_proven_optimal"]),
                data["makespan"],
                data["predicted_cycles_per_kmac"],
                data["points"],
                data["origin"],
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                f"package manifest {origin} has a malformed entry ({exc!s}); regenerate it with warpsched "
                "sweep"
            ) from None


PINNED = "pinned: "  # how a pinned entry's origin starts


def read(directory: str | Path | None = None) -> tuple[Entry, ...]:
    """The entries of the package in `directory` (default: the shipped one), sorted by name."""
    path = Path(directory or PACKAGE_DIR) / MANIFEST
    if not path.exists():
        raise InputError(
            f"there is no package manifest at {str(path)!r}; fill the package with warpsched sweep "
            "CONFIG.yaml --package DIR"
        )
    try:
        data = json.loads(read_text(path, "package manifest"))
    except json.JSONDecodeError as exc:
        raise InputError(f"package manifest {str(path)!r} is not valid JSON ({exc})") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("entries"), list)
    ):
        raise InputError(
            f"{str(path)!r} is not a warpsched package manifest (expected format {FORMAT!r} with an entries "
            "list)"
        )
    return tuple(sorted((Entry.from_json(e, repr(str(path))) for e in data["entries"]), key=lambda e: e.name))


def load_schedule(entry: Entry, directory: str | Path | None = None) -> Schedule:
    return schedule_io.read(Path(directory or PACKAGE_DIR) / entry.schedule)
