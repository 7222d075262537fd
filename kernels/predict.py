"""The predicted time of a built kernel on a call shape: its SASS's steady-state trip (kernels/perf.py)
over the grid its family launches for that shape (kernels/families/<family>/geometry.py)."""

from __future__ import annotations

from pathlib import Path

from warpsched.kernels import perf
from warpsched.kernels.cuda import sass as sass_reader
from warpsched.kernels.families import FAMILIES
from warpsched.scheduler.errors import InputError


def shape_names(family: str) -> tuple[str, ...]:
    """What `--shape` lists for a family, in order (gemm M,N,K; attention B,H,N,D)."""
    return tuple(_family(family).geometry_module().SHAPE)


def parse_shape(family: str, text: str) -> dict:
    """`--shape 4096,4096,4096` as {m: 4096, ...}; one sentence when it does not fit the family."""
    names = shape_names(family)
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != len(names) or min(values, default=0) < 1:
        written = _family(family).geometry_module().SHAPE_TEXT
        raise InputError(
            f"--shape {text!r}: {family} takes {len(names)} positive whole numbers {written} "
            f"({', '.join(names)})"
        )
    return dict(zip(names, values))


def launch_for(family: str, shape: dict, tile: dict, chip: perf.Chip) -> perf.Launch:
    try:
        return _family(family).geometry_module().launch(shape, tile, chip.sms)
    except (ValueError, KeyError) as e:
        raise InputError(f"{family} cannot run shape {shape}: {e}") from None


def layout_facts(family: str, tile: dict) -> tuple[int, int]:
    """What SASS does not say and the family's layout does: the bank conflicts of its word-sized shared
    loads (1 without any) and the CTA's wgmma per trip (to tell an unrolled loop from one trip)."""
    geometry = _family(family).geometry_module()
    ways = geometry.code_load_ways(tile) if hasattr(geometry, "code_load_ways") else 1
    return ways, geometry.wgmma_per_trip(tile)


def trip_of(sass: str, entry: str, chip: perf.Chip, family: str, tile: dict) -> perf.TripTiming:
    loops = sass_reader.steady_loops(sass_reader.parse(sass, entry))
    return perf.trip_timing(loops, chip, str(tile.get("dtype", "bf16")), *layout_facts(family, tile))


def predict(
    family: str, tile: dict, shape: dict, sass: str, entry: str, machine: str, stages: int = 1
) -> perf.Prediction:
    """The time of one call of the kernel whose SASS is `sass` on `shape`, on `machine`."""
    chip = perf.load_chip(machine)
    trip = trip_of(sass, entry, chip, family, tile)
    return perf.predict(trip, launch_for(family, shape, tile, chip), chip, stages)


def sass_of(cubin: str) -> str:
    """The SASS the build kept beside a cubin (kernels/build.py)."""
    path = Path(cubin).with_name("kernel.sass")
    try:
        return path.read_text()
    except OSError:
        raise InputError(f"no SASS beside {cubin}; build the kernel again") from None


def _family(name: str):
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError(
            f"no kernel family {name!r}; the families are {', '.join(sorted(FAMILIES))}"
        ) from None
