"""`precompiled()`: what the package ships and what of it is built on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warpsched.scheduler.errors import InputError

from warpsched.kernels.package import cubins, manifest
from warpsched.kernels.package.lookup import is_current, ships


@dataclass(frozen=True)
class PackagedKernel:
    name: str
    model: str
    params: dict  # every model parameter of the shipped schedule (the problem's and the chosen tile's)
    machine: str
    ii: int
    ii_proven_optimal: bool
    schedule_digest: str
    cubin_digest: str | None  # sha256 of the cubin's bytes; None until built here or shipped
    cubin_file: str | None  # the cubin in the wheel or the build cache, None until built
    built: bool
    prebuilt: bool  # its cubin came with the installed wheel: loading it runs no compiler
    buildable: bool  # its family has CUDA templates (kernels.cuda.render.supported)
    current: bool  # the schedule is still what its model builds on its machine (else regenerate the package)
    note: str  # why it is not buildable, not built or not clean; "" when all is well
    schedule_file: str


def precompiled(
    build: bool = False,
    package: str | Path | None = None,
    names: tuple[str, ...] | None = None,
) -> tuple[PackagedKernel, ...]:
    """The kernels of the package (default: the shipped one), sorted by name. With `build`, the cubins
    of the buildable entries (only those in `names`, when given) that are not built yet are built
    first, one progress line each on stderr; a missing toolchain is then a `BuildError`. Entries of
    families without CUDA templates are listed as not buildable, never an error."""
    from warpsched.kernels.build import BuildError

    directory = Path(package or manifest.PACKAGE_DIR)
    entries = manifest.read(directory)
    if names is not None:
        unknown = sorted(set(names) - {e.name for e in entries})
        if unknown:
            raise InputError(f"the package has no kernel {unknown[0]!r}; warpsched precompiled lists them")
    out = []
    for entry in entries:
        schedule = manifest.load_schedule(entry, directory)
        note = cubins.unsupported(schedule)
        buildable, cubin = not note, None
        if buildable:
            try:
                cubin = cubins.lookup(schedule)
                if cubin is None and build and (names is None or entry.name in names):
                    cubin = cubins.build(schedule, entry.name)
            except BuildError as exc:
                if build:
                    raise
                note = f"not built: {exc}"
            if cubin is None and not note:
                note = (
                    "not built yet: warpsched precompiled --build (or "
                    "warpsched.kernels.precompiled(build=True)) builds it"
                )
            elif cubin is not None and not cubin.sass_ok:
                note = "built, but its SASS check failed: " + "; ".join(cubin.sass_problems)
        current = ships(entry, schedule)
        if current and not is_current(schedule):
            note = "pinned as checked on a GPU; the model's costs changed since (not re-solved)"
        if not current:
            note = (
                "stale: the model or machine changed since it was solved; regenerate the package with "
                "warpsched sweep"
            )
        out.append(
            PackagedKernel(
                entry.name,
                entry.key.model,
                entry.params,
                entry.key.machine,
                entry.ii,
                entry.ii_proven_optimal,
                entry.schedule_digest,
                cubin.digest if cubin else None,
                cubin.path if cubin else None,
                cubin is not None,
                cubin is not None and cubin.prebuilt,
                buildable,
                current,
                note,
                str(directory / entry.schedule),
            )
        )
    return tuple(out)
