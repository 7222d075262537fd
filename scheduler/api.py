"""The solver experimentation API: `solve(problem, machine, mode=..., config=...)`.

The CLI is a thin layer over this. A result carries the schedule, the proof
record (attempts per candidate II) and the independent verifier's verdict.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from warpsched.scheduler import evaluate, heuristic, schedule as schedule_io
from warpsched.scheduler.bounds import Bounds, bounds
from warpsched.scheduler.config import SolverConfig, load_config
from warpsched.scheduler.errors import InfeasibleError, InputError, WarpschedError
from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine, load_machine
from warpsched.scheduler.model.build import Extra
from warpsched.scheduler.schedule import MODES, Attempt, Objective, Schedule
from warpsched.scheduler.search import Progress, StopSignal, solve_ii
from warpsched.scheduler.verify import Verdict, verify


class VerificationError(WarpschedError):
    """The independent verifier rejected a schedule the solver produced: a bug, never a user mistake."""


@dataclass(frozen=True)
class SolveResult:
    schedule: Schedule
    verdict: Verdict
    heuristic_ii: int | None

    @property
    def ii(self) -> int:
        return self.schedule.ii

    @property
    def proven(self) -> bool:
        return self.schedule.ii_proven_optimal

    def write_json(self, path: str | Path) -> None:
        schedule_io.write(self.schedule, path)


def solve(
    problem: Problem,
    machine: Machine | str = "h100",
    mode: str = "joint",
    config: SolverConfig | str = "default",
    extra: Extra | None = None,
    progress: Progress | None = None,
    stop: StopSignal | None = None,
    **overrides,
) -> SolveResult:
    """Schedule `problem` on `machine`; the minimum II first (proven where the record says so),
    then iteration latency, shared memory, registers and cross-warpgroup edges.

    `extra(model, vars)` may add constraints to every CP-SAT model built (vars is a
    `scheduler.model.ModelVars`) and return a linear expression to minimise right after
    iteration latency. `overrides` replace fields of the config (e.g. `time_limit=5`). `stop.stop()`, from
    another thread, ends the search early with the best schedule found so far (`schedule.interrupted`).
    """
    started = time.perf_counter()
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    machine = load_machine(machine) if isinstance(machine, str) else machine
    config = load_config(config) if isinstance(config, str) else config
    config = config.with_overrides(**overrides)
    if config.max_warpgroups is not None:
        machine = dataclasses.replace(machine, max_warpgroups=config.max_warpgroups)
    if mode not in ("classic", "heuristic") and not machine.has_warpgroups:
        raise InputError(
            f"machine {machine.name!r} has no warpgroups, so mode {mode!r} cannot place ops; use mode "
            "'classic'"
        )
    problem.check(machine)
    b = bounds(problem, machine)
    policy = ("joint" if machine.has_warpgroups else "classic") if mode == "heuristic" else mode
    heur = heuristic.schedule(
        problem, machine, policy, b.mii, max_ii=config.max_ii, budget_ratio=config.heuristic_budget
    )
    if mode == "heuristic":
        if heur is None:
            raise InfeasibleError(
                "the heuristic found no schedule for II "
                f"{b.mii}..{config.max_ii or heuristic.serial_ii(problem, machine)}; try mode 'joint', which "
                "also says why"
            )
        sched = assemble(
            problem,
            machine,
            mode,
            b,
            heur.ii,
            heur.starts,
            heur.groups,
            heur.ii == b.mii,
            (),
            (),
            time.perf_counter() - started,
            config,
        )
    else:
        outcome = solve_ii(problem, machine, mode, config, b, heur, extra, progress, stop, started)
        sol = outcome.solution
        sched = assemble(
            problem,
            machine,
            mode,
            b,
            sol.ii,
            sol.starts,
            sol.groups,
            outcome.proven,
            tuple(outcome.attempts),
            tuple(outcome.objectives),
            time.perf_counter() - started,
            config,
        )
        sched = dataclasses.replace(sched, interrupted=outcome.interrupted)
    verdict = verify(sched)
    if not verdict.ok:
        raise VerificationError(
            f"internal error: the verifier rejected the {mode} schedule of {problem.name!r}: "
            f"{verdict.violations[0]}"
        )
    sched = dataclasses.replace(sched, verified=True)
    return SolveResult(sched, verdict, heur.ii if heur else None)


def assemble(
    problem: Problem,
    machine: Machine,
    mode: str,
    b: Bounds,
    ii: int,
    starts: dict[str, int],
    groups: dict[str, int] | None,
    proven: bool,
    attempts: tuple[Attempt, ...],
    objectives: tuple[Objective, ...],
    seconds: float,
    config: SolverConfig,
) -> Schedule:
    """A `Schedule` from a solution: placements plus the least buffers and budgets it needs."""
    if groups is not None:
        bufs = evaluate.buffers(problem, machine, ii, starts, groups)
        plans = evaluate.warpgroup_plans(problem, machine, ii, starts, groups, grant=True) or {}
    else:
        bufs, plans = {}, {}
    return Schedule(
        problem=problem,
        machine=machine,
        mode=mode,
        ii=ii,
        mii=b.mii,
        res_mii=b.res_mii,
        rec_mii=b.rec_mii,
        ii_proven_optimal=proven,
        attempts=attempts,
        ops=evaluate.placements(ii, starts, groups),
        warpgroups=plans,
        buffers=bufs,
        smem_bytes=evaluate.smem_total(problem, bufs, machine) if groups is not None else 0,
        makespan=evaluate.makespan(problem, starts),
        solve_seconds=seconds,
        objectives=objectives,
        solver={
            "preset": config.name,
            "num_workers": config.num_workers,
            "random_seed": config.random_seed,
            "interleave_search": config.interleave_search,
            "time_limit": config.time_limit,
            "deterministic_limit": config.deterministic_limit,
        },
    )
