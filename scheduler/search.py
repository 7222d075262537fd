"""The II search with proofs, then the secondary objectives (DESIGN.md section 3).

II steps up from MII (and, once a candidate times out, bisects between it and the best II found). Each
attempt is one CP-SAT solve: a single candidate
II, or a range of candidates solved with II as a variable and minimised (one
INFEASIBLE answer then proves a whole range; an OPTIMAL one proves every
smaller II in it infeasible). An II is proven optimal only if every candidate
below it is covered by such proofs; a timed-out candidate breaks the chain and
the result says so. The heuristic's II, when it has one, bounds the search
from above, and its schedule seeds every attempt as a complete hint.

At the chosen II the remaining objectives are solved lexicographically, each
level fixing the optimum of the one before.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from math import ceil
from typing import Callable

from ortools.sat.python import cp_model

from warpsched.scheduler import evaluate, heuristic
from warpsched.scheduler.bounds import Bounds
from warpsched.scheduler.config import SolverConfig
from warpsched.scheduler.errors import InfeasibleError, Interrupted, WarpschedError
from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model import FAMILIES, BuiltModel, build
from warpsched.scheduler.model.build import Extra
from warpsched.scheduler.model.classic import build_classic, lean_at, tied_ops
from warpsched.scheduler.model.closure import (
    complete_starts,
    least_solution,
    reduced_classic,
    shifted_by_periods,
)
from warpsched.scheduler.schedule import Attempt, Objective

Progress = Callable[[str], None]


class StopSignal:
    """Stops a running search from another thread (the CLI's Ctrl-C): the CP-SAT solve in progress stops
    within a fraction of a second, no new one starts, and the search returns the best schedule found so far
    (marked interrupted, claimed optimal in nothing)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._running: set[cp_model.CpSolver] = set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def stop(self) -> None:
        with self._lock:
            self._event.set()
            for solver in self._running:
                solver.stop_search()

    def solve(
        self, solver: cp_model.CpSolver, model: cp_model.CpModel, callback: "_StallStop | None" = None
    ) -> int:
        """`solver.solve(model)`, stoppable; UNKNOWN at once when a stop was asked for already."""
        with self._lock:
            if self._event.is_set():
                return cp_model.UNKNOWN
            self._running.add(solver)
        try:
            if callback is None:
                return solver.solve(model)
            with callback.watching(solver):
                return solver.solve(model, callback)
        finally:
            with self._lock:
                self._running.discard(solver)


class _StallStop(cp_model.CpSolverSolutionCallback):
    """Stops a solve once it has gone `stall` wall seconds, and as long again as it took to find it, without
    a better solution than its last (never before the first): a secondary level keeps the best schedule it
    has once CP-SAT stops improving it, instead of running to its limit, and a level still improving late
    gets the time it took so far."""

    def __init__(self, stall: float):
        super().__init__()
        self.stall = stall
        self.start = 0.0  # when the watched solve began (watching sets it)
        self.last: float | None = None

    def on_solution_callback(self) -> None:
        self.last = time.perf_counter()

    @contextlib.contextmanager
    def watching(self, solver: cp_model.CpSolver):
        done = threading.Event()
        self.start = time.perf_counter()

        def watch() -> None:
            while not done.wait(min(0.05, self.stall / 4)):
                last = self.last
                if last is not None and time.perf_counter() - last > max(self.stall, last - self.start):
                    solver.stop_search()
                    return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


@dataclass
class Solution:
    ii: int
    starts: dict[str, int]
    groups: dict[str, int] | None
    register_file_binds: bool = False  # the relaxed model's schedule did not fit the register file


@dataclass
class SearchOutcome:
    solution: Solution
    attempts: list[Attempt]
    objectives: list[Objective]
    proven: bool
    interrupted: bool = False


@dataclass
class _Search:
    problem: Problem
    machine: Machine
    mode: str
    config: SolverConfig
    bounds: Bounds
    heuristic: heuristic.HeuristicResult | None
    extra: Extra | None = None
    progress: Progress | None = None
    stop: StopSignal = field(default_factory=StopSignal)
    attempts: list[Attempt] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    _tied: dict[str, int] | None = None  # classic mode: the ops of recurrences (classic.tied_ops)

    # -- budget and reporting -------------------------------------------------
    def remaining(self) -> float:
        """Wall seconds left of the whole search (`total_time_limit`); 0 once a stop is asked for."""
        if self.stop.requested:
            return 0.0
        return self.config.total_time_limit - (time.perf_counter() - self.started)

    def limit(self, cap: float) -> float:
        """The wall limit of one CP-SAT solve: `cap`, within what is left of the whole search."""
        return max(0.01, min(cap, self.remaining()))

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(f"[{time.perf_counter() - self.started:7.2f}s] {message}")

    # -- one CP-SAT solve ------------------------------------------------------
    def _solver(self, limit: float) -> cp_model.CpSolver:
        s = _cp_solver()
        p = s.parameters
        p.num_workers = self.config.num_workers
        p.random_seed = self.config.random_seed
        p.max_time_in_seconds = max(0.01, limit)
        if self.config.deterministic_limit is not None:
            p.max_deterministic_time = self.config.deterministic_limit
        if self.config.interleave_search:
            p.interleave_search = True
        p.log_search_progress = self.config.log_search
        return s

    def _run(
        self, built: BuiltModel, objective: str | None, limit: float, label: str, stall: float | None = None
    ) -> tuple[int, cp_model.CpSolver]:
        """One CP-SAT solve; `objective` None is a pure feasibility question (what proofs need); `stall`
        stops it that many wall seconds after its last better solution."""
        built.model.clear_objective()
        expr = built.objective(objective) if objective else None
        if expr is not None and not isinstance(expr, int):
            built.model.minimize(expr)
        solver = self._solver(limit)
        ticker = _Ticker(self, label)
        try:
            status = self.stop.solve(solver, built.model, _StallStop(stall) if stall else None)
        finally:
            ticker.stop()
        return status, solver

    # -- hints -----------------------------------------------------------------
    def _hint(self, built: BuiltModel, solution: Solution | None) -> None:
        built.model.clear_hints()
        if solution is None or not self.config.hint:
            return
        v = built.vars
        if v.anchor is not None:  # the lean classic model: the anchor in stage 0
            if v.anchor not in solution.starts:
                return
            shift = solution.ii * (solution.starts[v.anchor] // solution.ii)
            starts = {n: t - shift for n, t in solution.starts.items()}
        elif len(solution.starts) == len(self.problem.ops):  # the least solution lies in the model's windows
            starts = least_solution(
                self.problem, self.machine, self.mode, solution.ii, solution.starts, solution.groups
            )
        else:
            starts = solution.starts
        fixes = [(v.t[n], t) for n, t in starts.items() if n in v.t]
        if solution.groups is not None and v.x:
            for n, g in solution.groups.items():
                fixes += [(lit, int(w == g)) for w, lit in v.x[n].items()]
        probe = built.model.clone()
        probe.clear_objective()
        for var, value in fixes:
            probe.add(probe.get_int_var_from_proto_index(var.index) == value)
        s = _cp_solver()
        s.parameters.num_workers = 1
        s.parameters.max_time_in_seconds = self.limit(2.0)
        if self.stop.solve(s, probe) in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            _hint_all(built.model, s.response_proto.solution)  # complete hint
        else:
            for var, value in fixes:  # the hint breaks this model (another II): hint the decisions only
                built.model.add_hint(var, value)

    def _lean(self, ii: int) -> bool:
        """Classic mode: whether the lean model (classic.py) suits II (a researcher's objective needs the
        general model whatever it says)."""
        if self._tied is None:
            self._tied = tied_ops(self.problem)
        return lean_at(self.problem, self.machine, ii, self._tied)

    def _solution(self, built: BuiltModel, solver: cp_model.CpSolver) -> Solution:
        v = built.vars
        ii = solver.value(v.ii) if not isinstance(v.ii, int) else v.ii
        if built.starts_from is not None:
            starts = built.starts_from(solver.value)
        else:
            starts = {n: solver.value(t) for n, t in v.t.items()}
        shift = ii * (
            min(starts.values()) // ii
        )  # whole periods: the first stage is 0 (rows and stages keep)
        starts = {n: t - shift for n, t in starts.items()}
        groups = {n: solver.value(g) for n, g in v.group.items()} if v.group else None
        return Solution(ii, starts, groups)

    def _heuristic_solution(self) -> Solution | None:
        h = self.heuristic
        if h is None:
            return None
        groups = h.groups
        if groups is not None and self.mode in ("joint", "ws"):
            groups = canonical_groups(self.problem, groups)
        return Solution(h.ii, h.starts, groups)

    # -- attempts --------------------------------------------------------------
    def _solve(self, built: BuiltModel, lo: int, hi: int, hint: Solution | None, label: str):
        """One solve of `built` over [lo, hi]; returns (status, solver, seconds, found II or None, bound or
        None)."""
        self._hint(built, hint)
        ranged = hi > lo
        limit = self.limit(self.config.time_limit)
        t0 = time.perf_counter()
        status, solver = self._run(built, "ii" if ranged else None, limit, label)
        seconds = time.perf_counter() - t0
        feasible = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        found = (int(solver.value(built.vars.ii)) if ranged else lo) if feasible else None
        bound = float(solver.best_objective_bound) if ranged and status != cp_model.INFEASIBLE else None
        return status, solver, seconds, found, bound

    def _record(
        self,
        lo: int,
        hi: int,
        status: int,
        solver,
        seconds: float,
        found=None,
        bound=None,
        relaxed: bool = False,
    ) -> Attempt:
        att = Attempt(
            lo, hi, solver.status_name(status), seconds, solver.deterministic_time, bound, found, relaxed
        )
        self.attempts.append(att)
        label = f"II {lo}..{hi}" if hi > lo else f"II {lo}"
        self.say(
            f"{label}{' (relaxed)' if relaxed else ''}: {att.status}"
            + (f", best II {found}" if found is not None and hi > lo else "")
            + f" ({seconds:.2f}s)"
        )
        return att

    def attempt(self, lo: int, hi: int, hint: Solution | None) -> "_Outcome":
        """Candidates lo..hi: which are proven infeasible, and a solution of the full model if one is found.

        Classic IIs go to the lean model (classic.py). Otherwise the relaxed model (no shared
        register file) answers first: its INFEASIBLE is a proof, and a solution it finds is
        confirmed in the full model, hinted with it.
        """
        ranged = hi > lo
        label = f"II {lo}..{hi}" if ranged else f"II {lo}"
        self.say(f"{label}: solving")
        if self.mode == "classic" and not ranged and self.extra is None and self._lean(lo):
            reduced = reduced_classic(self.problem, self.machine, lo) or self.problem
            built = build_classic(reduced, self.machine, lo)
            status, solver, seconds, found, _ = self._solve(built, lo, lo, hint, label)
            self._record(lo, lo, status, solver, seconds)
            if found is None:
                return _Outcome(lo if status == cp_model.INFEASIBLE else lo - 1, lo + 1)
            starts = shifted_by_periods(reduced, lo, self._solution(built, solver).starts)
            first = lo * (min(starts.values()) // lo)  # whole periods: the first stage is 0 again
            starts = {n: t - first for n, t in starts.items()}
            return _Outcome(lo - 1, lo + 1, Solution(lo, starts, None))  # optimise() completes the rest
        relaxed = build(self.problem, self.machine, self.mode, lo, hi, extra=self.extra, relaxed=True)
        status, solver, seconds, found, bound = self._solve(relaxed, lo, hi, hint, label)
        self._record(lo, hi, status, solver, seconds, found if ranged else None, bound, relaxed=True)
        if status == cp_model.INFEASIBLE:
            proven_to = hi
        else:
            proven_to = (
                lo - 1 if bound is None else min(hi, ceil(bound - 1e-9) - 1)
            )  # the relaxation's bound holds
        if found is None:
            return _Outcome(
                proven_to, max(proven_to + 1, lo + (0 if ranged else 1)), stalled=ranged and proven_to < lo
            )
        candidate = self._solution(relaxed, solver)
        binds = (  # classic places no warpgroups: no register file to bind
            candidate.groups is not None
            and evaluate.fits(self.problem, self.machine, found, candidate.starts, candidate.groups)
            is not None
        )
        full = build(self.problem, self.machine, self.mode, found, found, extra=self.extra)
        c_status, c_solver, c_seconds, c_found, _ = self._solve(
            full, found, found, candidate, f"II {found} (full register file)"
        )
        self._record(found, found, c_status, c_solver, c_seconds)
        if c_found is not None:
            solution = self._solution(full, c_solver)
            solution.register_file_binds = binds
            return _Outcome(proven_to, proven_to + 1, solution)
        if c_status == cp_model.INFEASIBLE and proven_to >= found - 1:
            proven_to = found
        return _Outcome(proven_to, found + 1)

    def find_ii(self) -> Solution:
        """Step II up from MII while every lower candidate is proven infeasible; returns the best feasible
        solution found (the least II). Once a candidate stays open (a timeout: no proof can follow) and a
        schedule bounds the search from above, bisect between the open candidate and the best II found:
        feasibility first, a handful of attempts instead of one per cycle."""
        h = self._heuristic_solution()
        upper = h.ii if h is not None else None
        limit = self.config.max_ii or (
            upper if upper is not None else heuristic.serial_ii(self.problem, self.machine)
        )
        floor_for_ranges = range_floor(self.problem, self.machine, self.mode)
        ii, ranges_ok = self.bounds.mii, True
        chain = True  # every candidate below ii is proven infeasible
        best: Solution | None = None
        while ii <= limit and self.remaining() > 0:
            if upper is not None and ii >= upper:
                break  # every lower candidate was tried
            hi = upper - 1 if upper is not None else limit
            use_range = (
                ranges_ok
                and chain  # a range proves a stretch of candidates: worth it only while a proof can follow
                and ii > self.bounds.mii
                and ii >= floor_for_ranges
                and hi - ii + 1 > self.config.range_threshold
                and not (self.mode == "classic" and self._lean(ii))
            )  # classic: one at a time, with the lean model
            bisect = not chain and upper is not None
            at = (ii + upper) // 2 if bisect else ii
            out = self.attempt(at, hi if use_range else at, h)
            if out.solution is not None:
                best = out.solution
                if chain and best.ii <= out.proven_to + 1:
                    return best  # nothing below it is left open
                upper, h = out.solution.ii, out.solution
            if out.stalled:
                ranges_ok = False  # a range timed out without progress: go one II at a time
            if bisect:
                # below a schedule found at `at` the lower half stays to search; without one, the upper
                if out.solution is None:
                    ii = max(out.resume, at + 1)
                continue
            chain = chain and out.proven_to >= out.resume - 1
            ii = max(out.resume, ii + (0 if out.stalled else 1))
        if best is not None or h is not None:
            return min((x for x in (best, h) if x is not None), key=lambda x: x.ii)
        raise self._no_schedule(limit)

    def _no_schedule(self, limit: int) -> WarpschedError:
        if self.stop.requested:
            return Interrupted(
                f"interrupted after {time.perf_counter() - self.started:.1f}s, before any schedule was found"
            )
        if any(a.status != "INFEASIBLE" for a in self.attempts):
            return InfeasibleError(
                f"no schedule was found for II {self.bounds.mii}..{limit} within the time limit and some "
                "candidates timed out; "
                f"raise the time limit (--time-limit) or try the 'deterministic' preset"
            )
        culprits = self.diagnose(limit)
        if culprits:
            what = " and ".join(FAMILIES[c][0] for c in culprits)
            return InfeasibleError(
                f"no schedule exists for any II from {self.bounds.mii} to {limit}: {what} cannot be met; "
                f"{_advice(culprits)}"
            )
        return InfeasibleError(
            f"no schedule exists for any II from {self.bounds.mii} to {limit}; the constraint families "
            f"are only infeasible together"
        )

    def diagnose(self, ii: int) -> list[str]:
        """Which constraint families make II infeasible, from CP-SAT's assumptions core."""
        if self.remaining() <= 0:
            return []  # no time left to say why
        built = build(self.problem, self.machine, self.mode, ii, ii, diagnose=True, extra=self.extra)
        built.model.add_assumptions(list(built.switches.values()))
        solver = self._solver(self.limit(30.0))
        solver.parameters.num_workers = 1  # cores come from the single-thread core-based search
        status = self.stop.solve(solver, built.model)
        if status != cp_model.INFEASIBLE:
            return []
        core = set(solver.sufficient_assumptions_for_infeasibility())
        names = [name for name, lit in built.switches.items() if lit.index in core]
        return [n for n in names if n != "dependences"] or names

    # -- secondary objectives -----------------------------------------------------
    def optimise(self, solution: Solution) -> tuple[Solution, list[Objective]]:
        """Lexicographic levels at the chosen II.

        Solved in the relaxed model (registers.py) first: when its final schedule also fits the
        shared register file, every level's optimum is the full model's too (the full model's
        schedules are a subset); otherwise the levels are solved again in the full model.
        """
        levels = list(self.config.objectives)
        if "user" not in levels:  # a researcher's objective comes right after iteration latency unless placed
            levels.insert(1 if levels[:1] == ["makespan"] else 0, "user")
        for relaxed in (False,) if solution.register_file_binds else (True, False):
            result, objectives = self._levels(solution, levels, relaxed)
            if (
                result.groups is None
                or evaluate.fits(self.problem, self.machine, result.ii, result.starts, result.groups) is None
            ):
                return result, objectives
            self.say(
                "the relaxed optimum does not fit the shared register file; solving the levels in the full "
                "model"
            )
        return solution, []

    def _levels(
        self, solution: Solution, levels: list[str], relaxed: bool
    ) -> tuple[Solution, list[Objective]]:
        built = build(
            self.problem, self.machine, self.mode, solution.ii, solution.ii, extra=self.extra, relaxed=relaxed
        )
        self._hint(built, solution)
        objectives: list[Objective] = []
        solver = None
        for level in levels:
            expr = built.objective(level)
            if expr is None or isinstance(expr, int):
                continue
            if self.remaining() <= 0:
                self.say(
                    f"II {solution.ii} {level}: not solved (the time limit was reached or the search was "
                    "stopped)"
                )
                break
            if solver is not None:
                _hint_all(built.model, solver.response_proto.solution)
            status, new = self._run(
                built,
                level,
                self.limit(self.config.objective_time_limit),
                f"II {solution.ii} {level}",
                self._stall(level),
            )
            if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                self.say(
                    f"II {solution.ii} {level}: {new.status_name(status)}; keeping the previous level's "
                    "schedule"
                )
                break
            solver = new
            objectives.append(self._record_level(level, built, solver))
            self._fix(built, level, solver)
            solution = self._solution(built, solver)
        return solution, objectives

    def _stall(self, level: str) -> float | None:
        """The level's objective_stall: none for iteration latency (its late improvements are common) and
        none in a deterministic run (the stall is wall clock)."""
        if level == "makespan" or self.config.deterministic_limit is not None:
            return None
        return self.config.objective_stall

    def _record_level(self, level: str, built: BuiltModel, solver: cp_model.CpSolver) -> Objective:
        value = int(round(solver.objective_value))
        status = solver.status_name(solver.response_proto.status)
        obj = Objective(level, value, float(solver.best_objective_bound), status)
        self.say(f"{level} = {value} ({status})")
        return obj

    def _fix(self, built: BuiltModel, level: str, solver: cp_model.CpSolver) -> None:
        built.model.add(built.objective(level) <= int(round(solver.objective_value)))

    def run(self) -> SearchOutcome:
        solution = self.find_ii()
        solution, objectives = self.optimise(solution)
        if len(solution.starts) < len(
            self.problem.ops
        ):  # a classic solution no level completed (each timed out)
            solution = Solution(
                solution.ii, complete_starts(self.problem, solution.ii, solution.starts), solution.groups
            )
        interrupted = self.stop.requested
        proven = not interrupted and proof_covers(self.attempts, self.bounds.mii, solution.ii)
        return SearchOutcome(solution, self.attempts, objectives, proven, interrupted)


@dataclass
class _Outcome:
    proven_to: int  # every candidate up to here (from the attempt's lo) is proven infeasible
    resume: int  # the next candidate to try
    solution: Solution | None = None  # a solution of the full model
    stalled: bool = False  # a range that decided nothing


class _Ticker:
    """Prints a heartbeat every few seconds while one long CP-SAT attempt runs."""

    def __init__(self, search: _Search, label: str, every: float = 5.0):
        self.search, self.label, self.every = search, label, every
        self.t0 = time.perf_counter()
        self.done = threading.Event()
        self.thread = None
        if search.progress is not None:
            self.thread = threading.Thread(target=self._beat, daemon=True)
            self.thread.start()

    def _beat(self) -> None:
        while not self.done.wait(self.every):
            self.search.say(f"{self.label}: still solving ({time.perf_counter() - self.t0:.0f}s)")

    def stop(self) -> None:
        self.done.set()


def _cp_solver() -> cp_model.CpSolver:
    """A CP-SAT solver that leaves SIGINT to Python: its own handler aborts the process when the solve runs
    outside the main thread (the CLI's Ctrl-C goes through `StopSignal` instead)."""
    solver = cp_model.CpSolver()
    solver.parameters.catch_sigint_signal = False
    return solver


def _hint_all(model: cp_model.CpModel, values) -> None:
    model.clear_hints()
    for index, value in enumerate(values):
        model.add_hint(model.get_int_var_from_proto_index(index), value)


def canonical_groups(problem: Problem, groups: dict[str, int]) -> dict[str, int]:
    """Relabel warpgroups by first use in op order (the symmetry breaking's canonical form)."""
    relabel: dict[int, int] = {}
    for op in problem.ops:
        relabel.setdefault(groups[op.name], len(relabel))
    return {n: relabel[g] for n, g in groups.items()}


def range_floor(problem: Problem, machine: Machine, mode: str) -> int:
    """Smallest II at which the range model is exact: no op's occupancy or issue exceeds II."""
    occ = [op.occupancy for op in problem.ops if machine.units.get(op.unit) is not None]
    iss = [op.issue for op in problem.ops] if mode != "classic" else []
    return max(occ + iss + [1])


def proof_covers(attempts: list[Attempt], mii: int, ii: int) -> bool:
    """True iff every candidate in [mii, ii) is proven infeasible by some attempt."""
    covered: set[int] = set()
    for a in attempts:
        if a.status == "INFEASIBLE":
            covered.update(range(a.ii, a.ii_max + 1))
        elif a.found_ii is not None and a.bound is not None:
            covered.update(range(a.ii, min(a.ii_max, ceil(a.bound - 1e-9) - 1) + 1))
    return all(c in covered for c in range(mii, ii))


def _advice(culprits: list[str]) -> str:
    tips = {
        "registers": "give the warpgroups more room (more warpgroups, smaller register tiles) or relax the "
        "register reservation",
        "smem": "shrink the tiles that live in shared memory or their number",
        "issue": "some op's issue time exceeds every candidate II; split it or raise the limit",
        "units": "an op's occupancy exceeds its unit's capacity at every candidate II",
        "placement": "the mode's placement rules cannot hold; allow more warpgroups or use mode joint",
        "dependences": "a recurrence with hand-offs is longer than the limit; raise --max-ii",
    }
    return "; ".join(tips[c] for c in culprits if c in tips)


def solve_ii(
    problem: Problem,
    machine: Machine,
    mode: str,
    config: SolverConfig,
    bounds: Bounds,
    heur: heuristic.HeuristicResult | None,
    extra: Extra | None = None,
    progress: Progress | None = None,
    stop: StopSignal | None = None,
    started: float | None = None,
) -> SearchOutcome:
    """The II search and the secondary levels; `started` (a `time.perf_counter()` value, default now) is when
    the
    whole solve began, so that `total_time_limit` bounds the solve, not only this search."""
    search = _Search(problem, machine, mode, config, bounds, heur, extra, progress, stop or StopSignal())
    if started is not None:
        search.started = started
    return search.run()
