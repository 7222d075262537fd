"""The II search: proofs recorded per candidate, ranges for GPU-sized IIs, hints, reproducibility."""

from __future__ import annotations

import pytest

from scheduler import InfeasibleError, Problem, solve
from scheduler.config import SolverConfig, load_config
from scheduler.ir import Edge, Op
from scheduler.schedule import Attempt, to_json
from scheduler.search import proof_covers
from tests.conftest import toy_machine, twill_chain

SCALE = 256  # cycles per toy unit: GPU-sized IIs go through range attempts


def scaled_pingpong() -> Problem:
    ops, edges = [], []
    for sub in ("a", "b"):
        o, e = twill_chain(sub)
        ops += [Op(x.name, x.unit, x.latency * SCALE, x.occupancy * SCALE, x.issue * SCALE, kind=x.kind, space=x.space) for x in o]
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
    r = solve(scaled_pingpong(), toy_machine(warpgroups=1, sync=SCALE), mode="joint",
              config=SolverConfig(num_workers=1, time_limit=0.05, total_time_limit=0.2))
    s = r.schedule
    assert r.verdict.ok
    assert s.ii_proven_optimal == proof_covers(list(s.attempts), s.mii, s.ii)


def test_infeasible_everywhere_names_the_family():
    # a 200 KB tile held 12 cycles by a slow consumer: below II 12 it needs two slots, 400 KB
    ops = [Op("big", "tensor", 2, 2, 1, space="smem", bytes=200_000),
           Op("use", "tensor", 10, 2, 1)]
    machine = toy_machine(warpgroups=2)
    with pytest.raises(InfeasibleError) as err:
        solve(Problem.build("too_much_smem", ops, [Edge("big", "use")]), machine, mode="joint",
              max_ii=11, config=SolverConfig(num_workers=1))
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
