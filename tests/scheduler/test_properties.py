"""Properties on random small loops (hypothesis).

- Every schedule the product emits passes the independent verifier (solve() raises otherwise).
- The proven II equals the first feasible II of an exhaustive search (classic: <= 6 ops;
  joint with two warpgroups and hand-offs: <= 4 ops).
- The CP-SAT model and the verifier agree on every fixed schedule: with starts and warpgroups
  fixed, the model is feasible exactly when the verifier accepts the schedule with the least
  budgets and ring depths (registers and shared memory included).
"""

from __future__ import annotations

import itertools
from math import ceil

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from warpsched.scheduler import InfeasibleError, heuristic, solve
from warpsched.scheduler.api import assemble
from warpsched.scheduler.bounds import bounds
from warpsched.scheduler.config import SolverConfig
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model import build
from warpsched.scheduler.model.closure import least_solution
from warpsched.scheduler.search import canonical_groups
from warpsched.scheduler.verify import verify

UNITS = {"a": 1, "b": 2, "free": None}


@st.composite
def loops(
    draw,
    max_ops: int,
    units=("a", "b", "free"),
    with_values: bool = False,
    min_latency: int = 0,
    chain: bool = False,
):
    """A random loop body: a DAG of distance-0 edges plus loop-carried edges, every op in a cycle-free
    same-iteration order, so Problem.check() holds."""
    n = draw(st.integers(2, max_ops))
    ops = []
    for i in range(n):
        unit = draw(st.sampled_from(units))
        occ = draw(st.integers(1, 2)) if unit != "free" else 1
        issue = draw(st.integers(0, 2))
        space, rpt, nbytes = "none", 0, 0
        if with_values:
            space = draw(st.sampled_from(["none", "regs", "smem"]))
            rpt = draw(st.sampled_from([0, 8, 40])) if space == "regs" else 0
            nbytes = draw(st.sampled_from([0, 64, 4096])) if space != "none" else 0
        ops.append(
            Op(
                f"o{i}",
                unit,
                draw(st.integers(min_latency, 3)),
                occ,
                issue,
                space=space,
                regs_per_thread=rpt,
                bytes=nbytes,
            )
        )
    edges = []
    for j in range(1, n):
        for i in range(j):
            if (chain and i == j - 1) or draw(st.integers(0, 3)) == 0:
                edges.append(Edge(f"o{i}", f"o{j}", 0, draw(st.integers(0, 1))))
    for _ in range(draw(st.integers(1, 3))):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        edges.append(Edge(f"o{max(i, j)}", f"o{min(i, j)}", draw(st.integers(1, 2)), 0))
    return Problem.build("random", ops, edges)


def classic_machine() -> Machine:
    return Machine("random", units=dict(UNITS))


def joint_machine(**kw) -> Machine:
    return Machine(
        "random",
        units=dict(UNITS),
        sync_latency=2,
        smem_bytes=kw.pop("smem_bytes", 232448),
        register_file=kw.pop("register_file", 65536),
        max_warpgroups=2,
        register_overhead=8,
        **kw,
    )


def weight(problem, machine, e, groups) -> int:
    src = problem.op_by_name[e.src]
    cross = groups is not None and groups[e.src] != groups[e.dst]
    staging = ceil(2 * src.bytes / machine.smem_bytes_per_cycle) if src.space == "regs" else 0
    return src.latency + e.delay + ((machine.sync_latency + staging) if cross else 0)


def stages_exist(problem, machine, ii, rows, groups) -> bool:
    """With rows fixed, integer stages exist iff the difference constraints have no positive cycle."""
    names = [op.name for op in problem.ops]
    step = []
    for e in problem.edges:
        need = weight(problem, machine, e, groups) - ii * e.distance - rows[e.dst] + rows[e.src]
        step.append((e.src, e.dst, -(-need // ii)))  # k_dst - k_src >= ceil(need / ii)
    k = {n: 0 for n in names}
    for _ in range(len(names) + 1):
        changed = False
        for u, v, s in step:
            if k[u] + s > k[v]:
                k[v], changed = k[u] + s, True
        if not changed:
            return True
    return False


def fits_rows(problem, ii, rows, key_of, cap_of, length_of) -> bool:
    use: dict = {}
    for op in problem.ops:
        key, length = key_of(op), length_of(op)
        if key is None or length == 0:
            continue
        for j in range(length):
            slot = (key, (rows[op.name] + j) % ii)
            use[slot] = use.get(slot, 0) + 1
            if use[slot] > cap_of(key):
                return False
    return True


def brute_force_ii(problem, machine, mii, groups_options, limit) -> int | None:
    for ii in range(mii, limit + 1):
        for groups in groups_options:
            for combo in itertools.product(range(ii), repeat=len(problem.ops)):
                rows = {op.name: r for op, r in zip(problem.ops, combo)}
                if not fits_rows(
                    problem,
                    ii,
                    rows,
                    lambda o: o.unit if UNITS[o.unit] else None,
                    lambda k: UNITS[k],
                    lambda o: o.occupancy,
                ):
                    continue
                if groups is not None and not fits_rows(
                    problem, ii, rows, lambda o: groups[o.name], lambda k: 1, lambda o: o.issue
                ):
                    continue
                if stages_exist(problem, machine, ii, rows, groups):
                    return ii
    return None


FAST = SolverConfig(
    num_workers=1, time_limit=10, total_time_limit=30, objective_time_limit=2, objectives=("makespan",)
)


@settings(
    max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 40)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(loops(max_ops=5, units=("a", "a", "b", "free"), min_latency=1, chain=True))
def test_classic_ii_matches_exhaustive_search(problem):
    machine = classic_machine()
    r = solve(problem, machine, mode="classic", config=FAST)
    assert r.verdict.ok and r.proven
    expected = brute_force_ii(problem, machine, r.schedule.mii, [None], r.ii)
    event(f"II above MII: {r.ii > r.schedule.mii}")
    assert expected == r.ii


def group_options(problem):
    names = [op.name for op in problem.ops]
    seen = set()
    for labels in itertools.product(range(2), repeat=len(names)):
        canon = tuple(canonical_groups(problem, dict(zip(names, labels))).values())
        if canon not in seen:
            seen.add(canon)
            yield dict(zip(names, canon))


@settings(
    max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 25)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(loops(max_ops=4, units=("a", "free")))
def test_joint_ii_matches_exhaustive_search(problem):
    machine = joint_machine()
    r = solve(problem, machine, mode="joint", config=FAST)
    assert r.verdict.ok and r.proven
    expected = brute_force_ii(problem, machine, r.schedule.mii, list(group_options(problem)), r.ii)
    event(f"II above MII: {r.ii > r.schedule.mii}, warpgroups used: {len(r.schedule.warpgroups)}")
    assert expected == r.ii


@settings(
    max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 60)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(loops(max_ops=5, with_values=True), st.integers(1, 8), st.data())
def test_model_and_verifier_agree_on_fixed_schedules(problem, ii, data):
    # A tight register file and shared memory make families (5a) and (5b) bite.
    machine = joint_machine(register_file=128 * 80, smem_bytes=3 * 4112, reg_max=72)
    ii = max(ii, bounds(problem, machine).mii)
    names = [op.name for op in problem.ops]
    groups = canonical_groups(problem, {n: data.draw(st.integers(0, 1), label=f"group {n}") for n in names})
    starts = {n: data.draw(st.integers(0, 3 * ii), label=f"start {n}") for n in names}
    if data.draw(st.booleans(), label="start from IMS"):  # valid for (1)-(3): (5a)/(5b) decide
        ims = heuristic.modulo_schedule(problem, machine, ii, groups)
        if ims is not None:
            late = data.draw(st.sampled_from(names), label="delayed op")
            starts = {
                n: t + (ii * data.draw(st.integers(0, 2), label="delay") if n == late else 0)
                for n, t in ims.items()
            }
    # The model's starts are those of the least solution (every op as early as its row allows,
    # no edge stretched): compare both sides on that form of the drawn schedule.
    starts = least_solution(problem, machine, "joint", ii, starts, groups)
    b = bounds(problem, machine)
    sched = assemble(problem, machine, "joint", b, ii, starts, groups, False, (), (), 0.0, FAST)
    accepted = verify(sched).ok
    event(f"accepted={accepted}")

    built = build(problem, machine, "joint", ii, ii)
    v = built.vars
    for n in names:
        built.model.add(v.t[n] == starts[n])
        built.model.add(v.group[n] == groups[n])
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 10
    status = solver.solve(built.model)
    assert status in (cp_model.OPTIMAL, cp_model.FEASIBLE, cp_model.INFEASIBLE)
    assert (status != cp_model.INFEASIBLE) == accepted, verify(sched).violations[:1]


BRUTE_FORCE_BUDGET = 200_000  # candidate schedules the capacities oracle may verify for one example


def brute_force_with_capacities(problem, machine, mii, limit, max_stage=2) -> int | None:
    """The least II in [mii, limit) at which some schedule with stages <= max_stage passes the verifier
    (shared memory, registers and all): an independent oracle of the solver's infeasibility proofs."""
    b = bounds(problem, machine)
    names = [op.name for op in problem.ops]
    options = list(group_options(problem))
    for ii in range(mii, limit):
        for combo in itertools.product(range(ii), repeat=len(names)):
            rows = dict(zip(names, combo))
            for stages in itertools.product(range(max_stage + 1), repeat=len(names)):
                if min(stages) != 0:
                    continue
                starts = {n: k * ii + rows[n] for n, k in zip(names, stages)}
                for groups in options:
                    sched = assemble(
                        problem, machine, "joint", b, ii, starts, groups, False, (), (), 0.0, FAST
                    )
                    if verify(sched).ok:
                        return ii
    return None


@settings(
    max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", 30)),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(loops(max_ops=3, with_values=True))
def test_joint_proofs_hold_under_tight_capacities(problem):
    # A tight register file and shared memory: lifetimes decide feasibility, so a start window
    # that moves an op too early (or too late) shows up as a smaller II found here.
    machine = joint_machine(register_file=128 * 80, smem_bytes=3 * 4112, reg_max=72)
    try:
        r = solve(problem, machine, mode="joint", config=FAST)
    except InfeasibleError:
        return
    assert r.verdict.ok
    if r.proven:
        # the oracle enumerates rows x stages x warpgroups: keep to examples it finishes in seconds
        n = len(problem.ops)
        assume(sum(ii**n for ii in range(r.schedule.mii, r.ii)) * 3**n * 2**n <= BRUTE_FORCE_BUDGET)
        smaller = brute_force_with_capacities(problem, machine, r.schedule.mii, r.ii)
        event(f"II above MII: {r.ii > r.schedule.mii}")
        assert smaller is None, f"II {smaller} passes the verifier but the solver proved II {r.ii} optimal"
