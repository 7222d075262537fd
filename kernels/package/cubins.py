"""The package's cubins on this machine: built once with kernels/build.py, found again by a record.

kernels/build.py caches a cubin by the hash of its source and toolchain; beside it this module keeps
one record per package kernel (`$WARPSCHED_CACHE/package/<hash>.json`: the cubin's path and the
sha256 of its bytes), so that listing the package says what is built without building anything.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warpsched.scheduler.errors import WarpschedError
from warpsched.scheduler.schedule import Schedule


@dataclass(frozen=True)
class Cubin:
    path: str
    digest: str  # sha256 of the cubin's bytes
    sass_ok: bool
    sass_problems: tuple[str, ...]


def renderable(schedule: Schedule, build_now: bool = False):
    """(the kernel to build, "") when its family has CUDA templates, else (None, why not). Which variant
    is built (kernels.driver.kernel_for) is decided by building it (`build_now`) or from an
    earlier build."""
    from warpsched.kernels.build import BuildError
    from warpsched.kernels.cuda.render import supported
    from warpsched.kernels.driver import kernel_for

    try:
        supported(schedule.problem)
        return kernel_for(schedule, build_now=build_now), ""
    except BuildError:
        raise  # the toolchain, not the schedule: the caller reports it
    except WarpschedError as exc:
        return None, str(exc)


def records_dir() -> Path:
    from warpsched.kernels.build import cache_dir

    return cache_dir().parent / "package"


def _record_path(source: str, toolchain: str) -> Path:
    return records_dir() / (hashlib.sha256((toolchain + "\0" + source).encode()).hexdigest()[:24] + ".json")


def digest_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lookup(kernel, toolchain: str) -> Cubin | None:
    """The cubin built for `kernel` (a RenderedKernel) with `toolchain`, if its record and bytes are intact."""
    record = _record_path(kernel.source, toolchain)
    if not record.exists():
        return None
    try:
        data = json.loads(record.read_text())
        cubin = Cubin(data["path"], data["digest"], bool(data["sass_ok"]), tuple(data["sass_problems"]))
    except (ValueError, KeyError, TypeError):
        return None
    if not Path(cubin.path).exists() or digest_of(cubin.path) != cubin.digest:
        return None
    return cubin


def build(kernel, label: str, stream: TextIO | None = None) -> Cubin:
    """Build `kernel` (one progress line on `stream`, default stderr; nvcc runs only if kernels/build.py has no cubin for it)
    and record its cubin. Raises kernels.build.BuildError when the toolchain is missing or fails."""
    from warpsched.kernels.build import build as nvcc_build, cache_dir, toolchain_version

    toolchain = toolchain_version()
    started = time.perf_counter()
    stream = stream or sys.stderr
    print(f"warpsched: building {label} for sm_90a (once; cached in {cache_dir().parent})", file=stream, flush=True)
    report = nvcc_build(kernel.source, kernel.entry)
    cubin = Cubin(report.cubin, digest_of(report.cubin), report.sass_ok, tuple(report.sass_problems))
    record = _record_path(kernel.source, toolchain)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"label": label, "path": cubin.path, "digest": cubin.digest, "sass_ok": cubin.sass_ok,
                                  "sass_problems": list(cubin.sass_problems), "toolchain": toolchain,
                                  "seconds": round(time.perf_counter() - started, 2)}) + "\n")
    return cubin
