"""The II search: proofs recorded per candidate, ranges for GPU-sized IIs, hints, reproducibility."""

from __future__ import annotations

import time

import pytest

from warpsched.scheduler import InfeasibleError, Problem, solve
from warpsched.scheduler.config import SolverConfig, load_config
from warpsched.scheduler.ir import Edge, Op
from warpsched.scheduler.schedule import Attempt, to_json
from warpsched.scheduler.search import proof_covers
from tests.conftest import toy_machine, twill_chain

SCALE = 256  # cycles per toy unit: GPU-sized IIs go through range attempts


def scaled_pingpong() -> Problem:
    ops, edges = [], []
    for sub in ("a", "b"):
        o, e = twill_chain(sub)
        ops += [
            Op(
                x.name,
                x.unit,
                x.latency * SCALE,
                x.occupancy * SCALE,
                x.issue * SCALE,
                kind=x.kind,
                space=x.space,
            )
            for x in o
        ]
        edges += e
    return Problem.build("pingpong_x256", ops, edges)


def test_gpu_sized_iis_are_proven_through_ranges():
    machine = toy_machine(warpgroups=1, sync=SCALE)
    r = solve(scaled_pingpong(), machine, mode="joint")
    s = r.schedule
    assert r.ii == 6 * SCALE and r.proven and r.verdict.ok
    assert any(a.ii_max > a.ii for a in s.attempts), "a range attempt proves many candidates at once"
    assert len(s.attempts) < 10  # not 512 one-cycle steps
    assert proof_covers(list(s.attempts), s.mii, s.ii)


def test_a_secondary_level_stops_once_it_stalls():
    """objective_stall ends a level that keeps improving slowly without a proof (attention d128's register
    level runs to any limit), long before objective_time_limit, keeping what it found."""
    from warpsched.models import build_model

    problem = build_model("attention_fwd", "h100")
    started = time.perf_counter()
    r = solve(problem, "h100", objective_time_limit=60.0, objective_stall=0.3, objectives=("registers",))
    elapsed = time.perf_counter() - started
    assert r.proven and r.verdict.ok and elapsed < 60.0
    assert [(o.name, o.status) for o in r.schedule.objectives] == [("registers", "FEASIBLE")]


def test_a_deterministic_run_ignores_the_wall_clock_stall(pingpong_toy):
    """objective_stall is wall clock: with deterministic_limit (the default preset with it overridden, as
    the rediscovery tests do) no level may depend on it; iteration latency never stalls."""
    from warpsched.scheduler.bounds import bounds
    from warpsched.scheduler.search import _Search

    machine = toy_machine(warpgroups=2)

    def stalls(config):
        search = _Search(pingpong_toy, machine, "joint", config, bounds(pingpong_toy, machine), None)
        return [search._stall(level) for level in ("makespan", "smem", "registers")]

    default = load_config("default")
    assert (
        stalls(default) == [None, default.objective_stall, default.objective_stall]
        and default.objective_stall
    )
    assert stalls(default.with_overrides(deterministic_limit=5.0)) == [None, None, None]


def test_classic_mode_proves_a_gpu_kernel_model_on_a_machine_with_warpgroups():
    """Classic places no warpgroups: the register-file check after a relaxed attempt must not ask for them
    (it raised AttributeError for `warpsched solve attention_fwd --mode classic`)."""
    from warpsched.models import build_model

    r = solve(build_model("attention_fwd", "h100"), "h100", mode="classic", config="deterministic")
    assert r.proven and r.verdict.ok and r.ii >= r.schedule.mii


def test_gpu_sized_pingpong_on_two_warpgroups():
    r = solve(scaled_pingpong(), toy_machine(warpgroups=2, sync=SCALE), mode="joint")
    assert r.ii == 4 * SCALE and r.proven and r.verdict.ok


def test_proof_chain_needs_every_lower_candidate():
    infeasible = Attempt(4, 4, "INFEASIBLE", 0.1, 0.1)
    unknown = Attempt(5, 5, "UNKNOWN", 1.0, 1.0)
    assert proof_covers([infeasible], 4, 5)
    assert not proof_covers([infeasible, unknown], 4, 6)
    assert proof_covers([Attempt(4, 9, "INFEASIBLE", 0.1, 0.1)], 4, 10)
    # a range that minimised II: OPTIMAL at 7 proves 4..6; a FEASIBLE one only up to its bound
    assert proof_covers([Attempt(4, 9, "OPTIMAL", 0.1, 0.1, bound=7.0, found_ii=7)], 4, 7)
    assert not proof_covers([Attempt(4, 9, "FEASIBLE", 0.1, 0.1, bound=6.0, found_ii=7)], 4, 7)


def test_timeouts_never_claim_optimality(pingpong_toy):
    # one worker, almost no time: whatever comes back must not claim what it did not prove
    r = solve(
        scaled_pingpong(),
        toy_machine(warpgroups=1, sync=SCALE),
        mode="joint",
        config=SolverConfig(num_workers=1, time_limit=0.05, total_time_limit=0.2),
    )
    s = r.schedule
    assert r.verdict.ok
    assert s.ii_proven_optimal == proof_covers(list(s.attempts), s.mii, s.ii)


def test_infeasible_everywhere_names_the_family():
    # a 200 KB tile held 12 cycles by a slow consumer: below II 12 it needs two slots, 400 KB
    ops = [Op("big", "tensor", 2, 2, 1, space="smem", bytes=200_000), Op("use", "tensor", 10, 2, 1)]
    machine = toy_machine(warpgroups=2)
    with pytest.raises(InfeasibleError) as err:
        solve(
            Problem.build("too_much_smem", ops, [Edge("big", "use")]),
            machine,
            mode="joint",
            max_ii=11,
            config=SolverConfig(num_workers=1),
        )
    assert "(5b) shared-memory" in str(err.value)


def test_deterministic_preset_reproduces_the_schedule(pingpong_toy):
    machine = toy_machine(warpgroups=2)
    cfg = load_config("deterministic")
    a = to_json(solve(pingpong_toy, machine, config=cfg).schedule)
    b = to_json(solve(pingpong_toy, machine, config=cfg).schedule)
    for key in ("ii", "ops", "warpgroups", "buffers", "objectives"):
        assert a[key] == b[key]


def test_user_constraints_and_objective_reach_the_model(pingpong_toy):
    machine = toy_machine(warpgroups=2)

    def pin_sa_late(model, v):
        model.add(v.t["Sa"] - v.t["Sb"] >= 1)  # Sa after Sb
        return v.makespan * 0 + v.cross_count

    r = solve(pingpong_toy, machine, extra=pin_sa_late)
    s = r.schedule
    assert r.ii == 4 and r.proven and r.verdict.ok
    assert s.ops["Sa"].start > s.ops["Sb"].start
    assert [o.name for o in s.objectives][:2] == ["makespan", "user"]


def test_heuristic_hint_is_used_and_optimum_can_beat_it(circt_loop):
    problem, machine = circt_loop
    r = solve(problem, machine, mode="classic")
    assert r.heuristic_ii is not None and r.ii <= r.heuristic_ii


# ------------------------------------------------------------------ time limits and levels that time out

GRAPHS = {  # classic: the II search places the resource-bound ops only, the levels complete the rest
    "stencil3d/graph9": "classic",
    "md_grid/graph2": "classic",
    "viterbi/graph4": "classic",
    "bfs_queue/graph1": "classic",
    "twill_toy": "joint",
    "gemm": "joint",
}


def _problem(name: str):
    from warpsched.models import build_model
    from warpsched.scheduler import load_hatschet, load_problem
    from tests.conftest import DATA

    if "/" in name:
        return load_hatschet(DATA / "hatschet" / f"{name}.graphml")
    if name == "gemm":
        return build_model("gemm", "h100"), None
    return load_problem(name)


@pytest.mark.parametrize("first_unknown", range(5))
@pytest.mark.parametrize("graph", GRAPHS)
def test_a_level_that_ends_unknown_never_loses_ops(graph, first_unknown, monkeypatch):
    """Every secondary level from `first_unknown` on ends UNKNOWN (as a time limit makes it): the schedule
    still
    places every op, the verifier accepts it, and the II keeps its proof."""
    from ortools.sat.python import cp_model

    from warpsched.scheduler import search
    from warpsched.scheduler.config import LEVELS

    run = search._Search._run
    levels_seen: list[str] = []

    def timing_out(self, built, objective, limit, label, stall=None):
        if objective in LEVELS:
            levels_seen.append(objective)
            if len(levels_seen) > first_unknown:
                return cp_model.UNKNOWN, cp_model.CpSolver()
        return run(self, built, objective, limit, label, stall)

    monkeypatch.setattr(search._Search, "_run", timing_out)
    problem, machine = _problem(graph)
    r = solve(problem, machine or "h100", mode=GRAPHS[graph])
    assert set(r.schedule.ops) == {op.name for op in problem.ops}
    assert r.verdict.ok and r.proven
    assert len(r.schedule.objectives) == min(first_unknown, len(levels_seen))
    assert min(p.stage for p in r.schedule.ops.values()) == 0


def test_the_time_limit_bounds_the_whole_solve():
    """--time-limit S: the heuristic, every attempt and the levels within 10 % + 0.5 s (attention under the
    deterministic preset needs minutes for its first candidate II)."""
    import time

    from warpsched.models import build_model

    started = time.perf_counter()
    r = solve(
        build_model("attention_fwd", "h100"), "h100", config="deterministic", total_time_limit=3, time_limit=3
    )
    took = time.perf_counter() - started
    assert took <= 3 * 1.1 + 0.5, took
    assert r.verdict.ok and not r.proven and any(a.status == "UNKNOWN" for a in r.schedule.attempts)


def test_after_a_timeout_the_search_bisects_towards_the_least_feasible_ii(monkeypatch):
    """A candidate that times out breaks the proof chain; the search then bisects between it and the best
    II found instead of stepping one cycle per attempt. Simulated attempts: MII 100 times out, every II
    from 160 on has a schedule, the heuristic's is 400."""
    from warpsched.scheduler import search
    from warpsched.scheduler.bounds import Bounds

    tried = []

    def attempt(self, lo, hi, hint):
        tried.append((lo, hi))
        if lo >= 160:
            return search._Outcome(lo - 1, lo + 1, search.Solution(lo, {}, None))
        return search._Outcome(lo - 1, lo + 1)  # open: neither proven infeasible nor solved

    monkeypatch.setattr(search._Search, "attempt", attempt)
    monkeypatch.setattr(search._Search, "_heuristic_solution", lambda self: search.Solution(400, {}, None))
    config = SolverConfig(range_threshold=10**6)  # single candidates only
    s = search._Search(scaled_pingpong(), toy_machine(), "joint", config, Bounds(100, 1), None)
    found = s.find_ii()
    assert found.ii == 160
    assert tried[0] == (100, 100) and len(tried) <= 12  # one open candidate, then about log2(300) more
