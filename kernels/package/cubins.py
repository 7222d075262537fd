"""The package's cubins on this machine, through the one build path (kernels/driver.py) and its cache:
shipped in the wheel (kernels/prebuilt.py) or built once here, found again without building."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warpsched.kernels.build import BuildReport, cached_report
from warpsched.kernels.cuda.render import supported
from warpsched.kernels.driver import build_schedule, kernel_for
from warpsched.scheduler.errors import WarpschedError
from warpsched.scheduler.schedule import Schedule


@dataclass(frozen=True)
class Cubin:
    path: str
    digest: str  # sha256 of the cubin's bytes
    sass_ok: bool
    sass_problems: tuple[str, ...]
    prebuilt: bool  # shipped in the installed wheel (kernels/prebuilt.py), not built on this machine


def unsupported(schedule: Schedule) -> str:
    """Why the schedule's family has no CUDA templates for it, or "" when it has."""
    try:
        supported(schedule.problem)
    except WarpschedError as exc:
        return str(exc)
    return ""


def digest_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cubin(report: BuildReport) -> Cubin:
    return Cubin(
        report.cubin, digest_of(report.cubin), report.sass_ok, tuple(report.sass_problems), report.prebuilt
    )


def lookup(schedule: Schedule) -> Cubin | None:
    """The cubin the wheel ships for `schedule`, else the one built for it with this toolchain, if any (no
    nvcc run). `BuildError` when the wheel ships none and there is no toolchain."""
    report = cached_report(kernel_for(schedule, build_now=False).source)
    return _cubin(report) if report is not None else None


def build(schedule: Schedule, label: str, stream: TextIO | None = None) -> Cubin:
    """Build `schedule`'s kernel (one progress line on `stream`, default stderr, when nvcc runs)."""
    stream = stream or sys.stderr
    # noqa: E731
    say = lambda message: print(f"warpsched: building {label}: {message}", file=stream, flush=True)
    return _cubin(build_schedule(schedule, progress=say).report)
