"""Golden cases with known optima (issue 2): each solve is proven and verified."""

from __future__ import annotations

import pytest

from warpsched.scheduler import InfeasibleError, Problem, solve
from warpsched.scheduler.ir import Edge, Op
from warpsched.scheduler.machine import Machine
from tests.conftest import toy_machine, twill_chain


def test_circt_loop_classic_proves_three(circt_loop):
    problem, machine = circt_loop
    r = solve(problem, machine, mode="classic")
    assert r.ii == 3 and r.proven and r.verdict.ok
    assert r.schedule.mii == 3


def test_circt_loop_heuristic_is_no_better_than_the_optimum(circt_loop):
    problem, machine = circt_loop
    r = solve(problem, machine, mode="heuristic")
    assert r.ii in (3, 4) and r.verdict.ok
    assert r.proven == (r.ii == 3)


def test_twill_toy_classic_hoists_the_next_gemm(twill_toy):
    r = solve(twill_toy, toy_machine(), mode="classic")
    s = r.schedule
    assert r.ii == 2 and r.proven and r.verdict.ok
    assert s.makespan == 4  # S0 P1|P2 O3: iteration latency 4, two stages
    assert s.stages == 2 and s.ops["S"].stage == 0 and s.ops["O"].stage == 1


def test_twill_toy_joint_one_synchronous_warpgroup_needs_three(twill_toy):
    r = solve(twill_toy, toy_machine(warpgroups=1), mode="joint")
    assert r.ii == 3 and r.proven and r.verdict.ok
    assert [(a.ii, a.status) for a in r.schedule.attempts][:1] == [(2, "INFEASIBLE")]


def test_twill_toy_joint_two_warpgroups_reach_two(twill_toy):
    r = solve(twill_toy, toy_machine(warpgroups=2), mode="joint")
    s = r.schedule
    assert r.ii == 2 and r.proven and r.verdict.ok
    assert len(s.warpgroups) == 2  # e.g. S, P on one and O on the other (Twill's answer), or S | P, O
    assert len({p.warpgroup for p in s.ops.values()}) == 2
    assert [o.value for o in s.objectives if o.name == "cross_edges"] == [1]


def test_twill_toy_async_gemms_reach_two_on_one_warpgroup():
    ops, edges = twill_chain(issue_s=0, issue_o=0)  # wgmma issue is short: FA3's intra-warpgroup overlap
    r = solve(Problem.build("twill_async", ops, edges), toy_machine(warpgroups=1), mode="joint")
    assert r.ii == 2 and r.proven and r.verdict.ok
    s = r.schedule
    assert s.ops["S"].stage < s.ops["O"].stage  # the next iteration's S is issued before this one's O


def test_pingpong_one_warpgroup_needs_six(pingpong_toy):
    r = solve(pingpong_toy, toy_machine(warpgroups=1), mode="joint")
    assert r.schedule.res_mii == 4
    assert r.ii == 6 and r.proven and r.verdict.ok


def test_pingpong_two_warpgroups_skew_by_one_slot(pingpong_toy):
    r = solve(pingpong_toy, toy_machine(warpgroups=2), mode="joint")
    s = r.schedule
    assert r.ii == 4 and r.proven and r.verdict.ok
    ga, gb = s.ops["Sa"].warpgroup, s.ops["Sb"].warpgroup
    assert ga != gb
    assert {s.ops[n].warpgroup for n in ("Sa", "Pa", "Oa")} == {ga}
    assert {s.ops[n].warpgroup for n in ("Sb", "Pb", "Ob")} == {gb}
    rows = sorted((s.ops[n].row, n) for n in ("Sa", "Sb", "Oa", "Ob"))
    assert [r for r, _ in rows] == [0, 1, 2, 3]  # the tensor core is busy every row
    assert abs(s.ops["Sa"].row - s.ops["Sb"].row) == 1  # skewed by one slot: ping-pong


@pytest.mark.parametrize("mode, expected", [("swp", 6), ("ws", 4), ("heuristic", 4)])
def test_pingpong_ablation_modes(pingpong_toy, mode, expected):
    r = solve(pingpong_toy, toy_machine(warpgroups=2), mode=mode)
    assert r.ii == expected and r.verdict.ok
    if mode != "heuristic":
        assert r.proven


def test_register_pressure_forces_a_split():
    """Two independent 128-register accumulators do not fit one 240-register warpgroup (twill.md 8.7)."""
    ops = [Op(f"mma{i}", "tensor", 4, 4, 1, space="regs", regs_per_thread=128) for i in range(2)]
    edges = [Edge(f"mma{i}", f"mma{i}", 1) for i in range(2)]
    problem = Problem.build("two_accumulators", ops, edges)
    one = toy_machine(warpgroups=1, reg_max=240)
    with pytest.raises(InfeasibleError) as err:
        solve(problem, one, mode="joint", max_ii=16)
    assert "registers" in str(err.value)
    two = solve(problem, toy_machine(warpgroups=2, reg_max=240), mode="joint")
    assert two.ii == 8 and two.proven and two.verdict.ok
    assert two.schedule.ops["mma0"].warpgroup != two.schedule.ops["mma1"].warpgroup


def test_a_load_waits_for_its_late_consumer_to_keep_its_ring_short():
    # A long chain pushes C five periods after A at II 2; the ring holds only two slots, so L must
    # be issued just before C, not as early as it could go. Windows built on the plain least
    # solution (every op as early as possible) once "proved" II 2 infeasible and returned 3.
    machine = Machine(
        "late_load",
        units={"tma": 1, "alu": 1},
        sync_latency=1,
        smem_bytes=2 * (1000 + 16),
        register_file=65536,
        max_warpgroups=2,
    )
    ops = [
        Op("A", "alu", latency=10, occupancy=1, issue=1),
        Op("L", "tma", latency=2, occupancy=1, issue=0, space="smem", bytes=1000),
        Op("C", "alu", latency=1, occupancy=1, issue=1),
    ]
    r = solve(Problem.build("late_load", ops, [Edge("A", "C"), Edge("L", "C")]), machine, mode="joint")
    s = r.schedule
    assert r.ii == 2 and r.proven and r.verdict.ok
    assert s.buffers["L"].depth <= 2 and s.start("C") - s.start("L") <= 2 * s.ii
