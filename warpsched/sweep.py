"""`warpsched sweep CONFIG.yaml`: solve (and compile) a grid, pick the best predicted schedule per
problem, fill the precompiled package.

Points (kernels/sweep_config.py) run on local worker processes (`workers`; one runs them in this
process) or, with `dask`, as tasks on a Dask distributed cluster; either way every point is the
same call, `solve_point`, and the results are read back in point order, so the choices depend on the
config alone (with a deterministic preset, the default).

A *problem* is a model, a machine and the parameters that say what is computed
(kernels/package/manifest.py `ProblemKey`); its points differ in tile parameters. The best point
has the least **predicted time**: cycles per unit of useful work, `II / work`, where `work` is the
multiply-accumulates one iteration contributes to the output (the model's `work`: a GEMM tile's
tile_m x tile_n x tile_k; quant_gemm counts only the batch rows a tile really holds; attention both
GEMMs of every Q tile). In steady state one iteration starts every II cycles, so this is the time
per unit of output with one CTA per SM; prologue, epilogue, occupancy and wave quantization are
not modelled. Ties go to the shorter iteration (makespan: a shorter pipeline fill), then to less
shared memory, then to the earlier point of the config. With `compile`, a point of a family that
has CUDA templates is eligible only if it renders and builds clean (registers, no spills, SASS).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Callable, Iterable
from urllib.parse import urlsplit

from warpsched.scheduler.errors import InfeasibleError, InputError, WarpschedError
from warpsched.scheduler.schedule import Schedule, from_json, to_json

from warpsched import package_writer
from warpsched.kernels.package import manifest
from warpsched.models import get_spec, predicted_time
from warpsched.sweep_config import Point, SweepConfig

Progress = Callable[[str], None]
DASK_TIMEOUT = 10.0  # seconds to reach a Dask scheduler


@dataclass(frozen=True)
class PointResult:
    index: int
    # "solved", "infeasible" (no II up to the limit), "invalid" (the solver refused the input) or "crashed"
    # (its worker process died: a crash in native code, CP-SAT's or the compiler's)
    status: str
    reason: str
    schedule: dict | None  # the schedule file's JSON
    build: dict | None  # with compile: {"status": "clean" | "failed" | "unsupported", "reason", ...}
    seconds: float

    @property
    def eligible(self) -> bool:
        return self.status == "solved" and (
            self.build is None or self.build["status"] in ("clean", "unsupported")
        )


@dataclass(frozen=True)
class Choice:
    key: manifest.ProblemKey
    point: Point
    schedule: Schedule
    predicted: Fraction  # cycles per multiply-accumulate
    candidates: int  # the problem's points
    eligible: int  # of which solved (and, with compile, built clean or had no templates)


@dataclass(frozen=True)
class SweepResult:
    config: SweepConfig
    results: tuple[PointResult, ...]  # in point order
    choices: tuple[Choice, ...]  # sorted by problem name
    unresolved: tuple[tuple[manifest.ProblemKey, str], ...]  # problems without an eligible point, and why
    seconds: float


def solve_point(point: Point) -> PointResult:
    """Solve one point (and compile it when asked); what local workers and Dask tasks run."""
    from warpsched.models import build_model
    from warpsched.scheduler.api import solve

    started = time.perf_counter()
    problem = build_model(point.model, point.machine, **point.params)
    try:
        result = solve(problem, point.machine, mode=point.mode, config=point.config)
    except InfeasibleError as exc:
        return PointResult(point.index, "infeasible", str(exc), None, None, time.perf_counter() - started)
    except InputError as exc:
        return PointResult(point.index, "invalid", str(exc), None, None, time.perf_counter() - started)
    build = _compile(result.schedule) if point.compile else None
    return PointResult(
        point.index, "solved", "", to_json(result.schedule), build, time.perf_counter() - started
    )


def _compile(schedule: Schedule) -> dict:
    from warpsched.kernels.build import BuildError
    from warpsched.kernels.cuda.render import supported
    from warpsched.kernels.driver import build_schedule
    from warpsched.kernels.package.cubins import digest_of

    try:
        supported(schedule.problem)
    except InputError as exc:
        return {"status": "unsupported", "reason": str(exc)}
    try:
        built = build_schedule(schedule)
    except (InputError, BuildError) as exc:
        return {"status": "failed", "reason": str(exc)}
    report = built.report
    out = {
        "status": "clean" if report.sass_ok else "failed",
        "reason": "; ".join(report.sass_problems),
        "cubin_sha256": digest_of(report.cubin),
        "registers": report.registers,
        "spill_bytes": report.spill_stores + report.spill_loads,
    }
    cycles = _trip_from_sass(schedule, built)
    if cycles is not None:
        out["cycles_per_trip"] = cycles
    return out


def _trip_from_sass(schedule: Schedule, built) -> float | None:
    """One steady-state trip of the built kernel, from its SASS (kernels/perf.py); None on a machine
    without a chip model."""
    from warpsched.kernels import perf, predict

    try:
        chip = perf.load_chip(schedule.machine.name)
    except InputError:
        return None
    family = str(schedule.problem.source.get("model"))
    try:
        sass = predict.sass_of(built.report.cubin)
        return round(predict.trip_of(sass, built.kernel.entry, chip, family, built.kernel.tile).cycles, 1)
    except InputError:  # a SASS the reader does not understand: ranked by its II, as without a build
        return None


def ranked_time(schedule: Schedule, build: dict | None) -> Fraction:
    """Cycles per useful multiply-accumulate: the built kernel's trip from its SASS when the sweep built
    it, else the schedule's II (what the solver's model predicts)."""
    cycles = (build or {}).get("cycles_per_trip")
    if cycles is None:
        return predicted_time(schedule.problem.source, schedule.ii)
    return Fraction(cycles).limit_denominator(10) / Fraction(
        get_spec(str(schedule.problem.source["model"])).work(schedule.problem.source)
    )


def default_workers(sweep: SweepConfig) -> int:
    """As many worker processes as the cores hold solves of the preset's CP-SAT threads."""
    return max(1, (os.cpu_count() or 1) // max(1, sweep.solver.num_workers))


def run_sweep(
    sweep: SweepConfig,
    workers: int | None = None,
    dask: str | None = None,
    compile: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Solve every point of `sweep` and choose per problem (see the module docstring)."""
    if workers is not None and workers < 1:
        raise InputError(f"--processes must be at least 1, not {workers}")
    if compile:
        from warpsched.kernels.build import toolchain_version

        toolchain_version()  # a missing nvcc is one sentence now, not a failure per point
    points = tuple(replace(p, compile=compile) for p in sweep.points)
    client = (
        dask_client(dask) if dask else None
    )  # an address that does not answer is one sentence before any work
    say = progress or (lambda message: None)
    started = time.perf_counter()
    workers = workers or default_workers(sweep)
    where = (
        f"the Dask cluster at {dask}"
        if dask
        else f"{workers} local worker process{'es' if workers > 1 else ''}"
    )
    say(f"sweep {sweep.name}: {len(points)} points ({len(sweep.skipped)} skipped) on {where}")
    for s in sweep.skipped:
        say(
            f"  skipped {s.model} on {s.machine} "
            + " ".join(f"{k}={v}" for k, v in s.params.items())
            + f": {s.reason}"
        )
    results: dict[int, PointResult] = {}

    def collect(result: PointResult) -> None:
        results[result.index] = result
        point = points[result.index]
        say(
            f"[{time.perf_counter() - started:7.1f}s] {len(results)}/{len(points)} {point.describe()}: "
            + _outcome(point, result)
        )

    if client is not None:
        _run_dask(points, client, collect)
    else:
        _run_local(points, workers, collect)
    ordered = tuple(results[i] for i in range(len(points)))
    choices, unresolved = choose(points, ordered)
    return SweepResult(sweep, ordered, choices, unresolved, time.perf_counter() - started)


def _outcome(point: Point, result: PointResult) -> str:
    if result.status != "solved":
        return f"{result.status} ({result.reason}) in {result.seconds:.1f}s"
    schedule = from_json(result.schedule)
    text = (
        f"II {schedule.ii} ({'proven' if schedule.ii_proven_optimal else 'not proven'}), "
        f"{float(ranked_time(schedule, result.build) * 1000):.4g} cycles/kMAC"
        + (" (from its SASS)" if (result.build or {}).get("cycles_per_trip") else "")
        + f" in {result.seconds:.1f}s"
    )
    if result.build is not None:
        text += f", build {result.build['status']}" + (
            f" ({result.build['reason']})" if result.build["status"] == "failed" else ""
        )
    return text


def choose(points: tuple[Point, ...], results: tuple[PointResult, ...]):
    """Per problem the eligible point of least (predicted time, makespan, shared memory, index)."""
    groups: dict[manifest.ProblemKey, list[int]] = {}
    for point in points:
        groups.setdefault(
            manifest.problem_key({"model": point.model, **point.params}, point.machine.name), []
        ).append(point.index)
    choices, unresolved = [], []
    for key in sorted(groups, key=lambda k: k.name):
        ranked = []
        for i in groups[key]:
            if results[i].eligible:
                schedule = from_json(results[i].schedule)
                ranked.append(
                    (
                        (
                            ranked_time(schedule, results[i].build),
                            schedule.makespan,
                            schedule.smem_bytes,
                            i,
                        ),
                        schedule,
                    )
                )
        if not ranked:
            why = "; ".join(sorted({_why(results[i]) for i in groups[key]}))
            built_clean = " and built clean" if any(results[i].build for i in groups[key]) else ""
            unresolved.append(
                (
                    key,
                    f"no point solved{built_clean}: {why}",
                )
            )
            continue
        (predicted, _, _, best), schedule = min(ranked, key=lambda item: item[0])
        choices.append(Choice(key, points[best], schedule, predicted, len(groups[key]), len(ranked)))
    return tuple(choices), tuple(unresolved)


def _why(result: PointResult) -> str:
    if result.status != "solved":
        return result.reason
    return result.build["reason"] if result.build else ""


def package_entries(result: SweepResult) -> list[tuple[manifest.Entry, Schedule]]:
    """The manifest entries (and schedules) of the sweep's choices."""
    return [
        (
            package_writer.entry_for(c.key, c.schedule, c.predicted, c.candidates, result.config.origin),
            c.schedule,
        )
        for c in result.choices
    ]


def results_json(result: SweepResult) -> dict:
    """Every point of the sweep, for `--out`: parameters, status, II, proof, predicted time, build."""
    chosen = {c.point.index for c in result.choices}
    points = []
    for point, r in zip(result.config.points, result.results):
        row = {
            "index": point.index,
            "model": point.model,
            "machine": point.machine.name,
            "params": point.params,
            "status": r.status,
            "reason": r.reason,
            "seconds": round(r.seconds, 3),
            "chosen": point.index in chosen,
        }
        if r.schedule is not None:
            s = from_json(r.schedule)
            row.update(
                ii=s.ii,
                ii_proven_optimal=s.ii_proven_optimal,
                makespan=s.makespan,
                smem_bytes=s.smem_bytes,
                predicted_cycles_per_kmac=round(float(ranked_time(s, r.build) * 1000), 6),
            )
        if r.build is not None:
            row["build"] = r.build
        points.append(row)
    return {
        "sweep": result.config.name,
        "config": result.config.origin,
        "solver": result.config.solver.to_json(),
        "points": points,
        "unresolved": [{"problem": k.describe(), "reason": why} for k, why in result.unresolved],
    }


def _run_local(
    points: Iterable[Point],
    workers: int,
    collect: Callable[[PointResult], None],
    solve: Callable[[Point], PointResult] = solve_point,
) -> None:
    """`solve` (a module-level function: the workers import it) on every point, `workers` processes at
    once; a point whose process dies is reported as crashed and the others still run."""
    points = list(points)
    if workers == 1 or len(points) <= 1:
        for point in points:
            collect(solve(point))
        return
    # spawn: fresh interpreters, as on a cluster (no inherited CP-SAT threads or locks)
    pending = {p.index: p for p in points}
    with ProcessPoolExecutor(max_workers=min(workers, len(points)), mp_context=_SPAWN) as pool:
        futures = {pool.submit(solve, p): p for p in points}
        try:
            for future in as_completed(futures):
                collect(future.result())
                del pending[futures[future].index]
        except BrokenProcessPool:  # a worker died in native code: its points are retried one by one below
            for future, point in futures.items():
                if point.index in pending and future.done() and not future.exception():
                    collect(future.result())
                    del pending[point.index]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    for point in pending.values():
        collect(_alone(point, solve))


_SPAWN = multiprocessing.get_context("spawn")


def _alone(point: Point, solve: Callable[[Point], PointResult]) -> PointResult:
    """`solve` in a process of its own, after a worker died: the point that kills its process is
    reported as crashed, the others are solved."""
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=_SPAWN) as pool:
        try:
            return pool.submit(solve, point).result()
        except BrokenProcessPool:
            return PointResult(
                point.index,
                "crashed",
                "its worker process died (a crash in native code: OR-Tools' CP-SAT or the compiler); run the "
                "point alone with `warpsched solve` to see it",
                None,
                None,
                time.perf_counter() - started,
            )


def dask_client(address: str, timeout: float = DASK_TIMEOUT):
    """A `distributed.Client` of the scheduler at `address`, or a one-sentence `InputError`."""
    try:
        import distributed
    except ImportError:
        raise InputError("--dask needs the distributed package; pip install distributed") from None
    url = address if "://" in address else f"tcp://{address}"
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or not port:
            raise InputError(
                f"--dask {address!r} is not a Dask scheduler address; give HOST:PORT or tcp://HOST:PORT"
            )
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise InputError(
                f"no Dask scheduler answers at {url} ({exc.strerror or exc}); start one (dask scheduler) "
                f"or check the address"
            ) from None
    try:
        return distributed.Client(url, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"the Dask scheduler at {url} did not accept a client ({exc}); check that it is a Dask scheduler"
        ) from None


def _run_dask(points: Iterable[Point], client, collect: Callable[[PointResult], None]) -> None:
    import distributed

    try:
        futures = [client.submit(solve_point, p, pure=False) for p in points]
        for future in distributed.as_completed(futures, loop=client.loop):
            try:
                result = future.result()
            except ImportError as exc:
                raise WarpschedError(
                    f"a Dask worker cannot import warpsched ({exc}); install it on every worker "
                    f"(pip install warpsched or the repository)"
                ) from None
            collect(result)
    finally:
        client.close()
