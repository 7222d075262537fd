"""The lean classic model's decomposition by strongly connected component (scheduler/model/classic.py):
ops in no recurrence are counted per row, not placed, and the answer is the same as the general model's."""

from __future__ import annotations

import random

from ortools.sat.python import cp_model

from warpsched.scheduler import solve
from warpsched.scheduler.bounds import bounds
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model import build
from warpsched.scheduler.model.classic import build_classic, lean_at, tied_ops
from warpsched.scheduler.model.closure import shifted_by_periods

MACHINE = Machine("random", units={"a": 1, "b": 2, "free": None})


def random_loop(n: int, seed: int, recurrences: int = 2) -> Problem:
    """A DAG of short-range edges over units a (capacity 1), b (2) and an unlimited one, plus a few
    loop-carried edges back."""
    rng = random.Random(seed)
    ops = [
        Op(f"o{i}", unit, rng.randint(0, 3), rng.choice((1, 1, 2)) if unit != "free" else 1)
        for i, unit in enumerate(rng.choices(("a", "b", "free"), k=n))
    ]
    edges = {Edge(f"o{max(0, i - rng.randint(1, 4))}", f"o{i}", 0, rng.randint(0, 1)) for i in range(1, n)}
    for _ in range(recurrences):
        i = rng.randrange(1, n)
        edges.add(Edge(f"o{i}", f"o{max(0, i - rng.randint(1, 5))}", rng.randint(1, 2)))
    return Problem.build(f"random{seed}", ops, sorted(edges, key=lambda e: (e.src, e.dst, e.distance)))


def _status(model: cp_model.CpModel) -> str:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 20
    status = solver.solve(model)
    assert status in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE)
    return "feasible" if status != cp_model.INFEASIBLE else "infeasible"


def with_conflict(problem: Problem) -> Problem:
    """`problem` plus a recurrence of two ops on the capacity-1 unit that must start exactly one MII
    apart at II = MII (the same row: infeasible there) and have room from MII + 1 on."""
    gadget = [Op("g0", "a", 1), Op("g1", "a", 0)]
    k = bounds(Problem.build("p", [*problem.ops, *gadget], problem.edges), MACHINE).res_mii
    ops = [*problem.ops, Op("g0", "a", k), Op("g1", "a", 0)]
    return Problem.build(problem.name, ops, [*problem.edges, Edge("g0", "g1"), Edge("g1", "g0", 1)])


def test_the_decomposed_model_decides_every_ii_as_the_general_model_does():
    """Feasibility at MII .. MII + 2 on random loops (half of them with a recurrence that cannot start at
    MII): the lean model (ops in no recurrence only counted) and the general classic model (every op
    placed with its dependences) agree, both ways at least once."""
    seen = set()
    for seed in range(12):
        problem = random_loop(14, seed) if seed % 2 else with_conflict(random_loop(14, seed))
        mii = bounds(problem, MACHINE).mii
        for ii in range(mii, mii + 3):
            lean = _status(build_classic(problem, MACHINE, ii).model)
            general = _status(build(problem, MACHINE, "classic", ii, ii).model)
            assert lean == general, (seed, ii)
            seen.add(lean)
    assert seen == {"feasible", "infeasible"}


def test_only_the_ops_of_recurrences_get_start_times():
    problem = random_loop(600, seed=3, recurrences=20)
    tied = tied_ops(problem)
    assert 0 < len(tied) < len(problem.ops) // 10
    built = build_classic(problem, MACHINE, bounds(problem, MACHINE).mii + 2)
    assert set(built.vars.t) == set(tied)


def test_shifting_components_by_whole_periods_meets_every_dependence_and_keeps_rows():
    """A schedule whose components are moved earlier by random whole periods (each recurrence's own
    edges still hold, those between components not) is mended by moving components later again."""
    problem = random_loop(40, seed=5)
    r = solve(problem, MACHINE, mode="classic")
    ii = r.ii
    tied = tied_ops(problem)
    rng = random.Random(0)
    moved_by = {c: rng.randint(0, 5) for c in set(tied.values())}
    starts = {
        n: p.start - ii * (moved_by[tied[n]] if n in tied else rng.randint(0, 5))
        for n, p in r.schedule.ops.items()
    }
    lat = {op.name: op.latency for op in problem.ops}

    def broken(t):
        return [e for e in problem.edges if t[e.dst] < t[e.src] + lat[e.src] + e.delay - ii * e.distance]

    assert broken(starts)
    fixed = shifted_by_periods(problem, ii, starts)
    assert all(fixed[n] % ii == starts[n] % ii for n in starts)
    assert broken(fixed) == []


def test_gpu_sized_iis_of_a_small_graph_stay_with_the_general_model():
    """A kernel model's dozen ops at II ~3,000 solve as ranges in the general model; the lean model's
    rows pay only for large graphs (bench/large_graphs.py)."""
    small = random_loop(14, seed=1)
    large = random_loop(600, seed=3, recurrences=20)
    assert lean_at(small, MACHINE, 256) and not lean_at(small, MACHINE, 3000)
    assert lean_at(large, MACHINE, 3000)
