"""Build every shipped kernel into a cubin store (kernels/prebuilt.py) for the wheel (issue 20).

The wheel's build step (build_backend/warpsched_build.py) runs

    python -m warpsched.kernels.package.bundle STORE [--processes N]

which builds each buildable manifest entry the way the runtime would (kernels/driver.py, every variant
it tries), through the build cache, and writes the store: an index of every tried variant's report and
the cubin of each chosen one. One progress line per nvcc run on stderr. Exit 1, naming the kernel, when
one does not build or its chosen variant fails its SASS checks: a wheel never ships a kernel it would
refuse to load.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from warpsched.kernels import prebuilt
from warpsched.kernels.package import cubins, manifest
from warpsched.scheduler.errors import WarpschedError


def _build_entry(name: str) -> list[tuple[str, str, object, bool]]:
    """The tried variants of package entry `name` as prebuilt.write takes them."""
    from warpsched.kernels.driver import refusal, tried_variants

    entry = next(e for e in manifest.read() if e.name == name)
    schedule = manifest.load_schedule(entry)

    def say(message: str) -> None:
        print(f"warpsched: building {name}: {message}", file=sys.stderr, flush=True)

    tried = tried_variants(schedule, progress=say)
    kernel, report = tried[-1]
    if not report.sass_ok or refusal(report):
        raise WarpschedError(
            f"{name} does not build clean ({'; '.join(report.sass_problems) or refusal(report)}); the wheel "
            "does not ship it"
        )
    return [(k.source, k.entry, r, k.source == kernel.source) for k, r in tried]


def buildable_entries() -> list[str]:
    """The names of the shipped entries whose families have CUDA templates."""
    return [e.name for e in manifest.read() if not cubins.unsupported(manifest.load_schedule(e))]


def bundle(store: Path, processes: int = 1) -> tuple[Path, int]:
    """Build every buildable shipped kernel and write `store`; returns the index's path and the cubins."""
    names = buildable_entries()
    if processes > 1:
        with ProcessPoolExecutor(min(processes, len(names))) as pool:
            results = list(pool.map(_build_entry, names))
    else:
        results = [_build_entry(name) for name in names]
    builds = [build for result in results for build in result]
    return prebuilt.write(store, builds), sum(ship for *_, ship in builds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpsched.kernels.package.bundle", description=__doc__)
    parser.add_argument("store", type=Path, help="the folder to write (the package's prebuilt/ in the wheel)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="nvcc runs at once")
    args = parser.parse_args(argv)
    try:
        index, shipped = bundle(args.store, max(1, args.processes))
    except WarpschedError as exc:
        print(f"warpsched: cannot bundle the package's cubins: {exc}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in args.store.iterdir())
    print(
        f"warpsched: {shipped} cubins ({size / 1e6:.1f} MB) and their build reports written to {index.parent}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
