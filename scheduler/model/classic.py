"""A lean model for the hard part of classic modulo scheduling: is one small II feasible?

Families (1) and (2) only, stated the way CP-SAT proves infeasibility fastest
on the HatScheT graphs: starts relative to the anchor within their windows;
every dependence (on the reduced problem: every longest path between
resource-bound ops, closure.reduced_classic); and in the time-indexed form of
Eichenberger & Davidson (PLDI'97) one Boolean per start time (per row when
a window is wide) with a linear capacity per row of the modulo reservation
table; plus, on capacity-1 units, the pairwise start differences that keep two
ops apart modulo II, as domains with holes. No intervals: this form lets
presolve's probing see the conflicts. The general model (build.py) then
optimises the schedule at the II this one finds.

Decomposed by strongly connected component: an op in no recurrence can move later by whole
periods without limit, so only its row matters, and any row will do. Only the ops of recurrences
(`tied_ops`) get start times; the others on a finite unit are counted per unit, occupancy and
row (interchangeable, so the count is exact), and `starts_from` hands them rows in any order.
Every dependence into or out of a recurrence then holds after `closure.shifted_by_periods`
moves each component later by whole periods in topological order. II is feasible for this model
iff it is for the problem; a 3,000-op loop with a few recurrences becomes a model of tens of ops.
"""

from __future__ import annotations

import random
from collections import defaultdict

from ortools.sat.python import cp_model

import networkx as nx

from warpsched.scheduler.ir import Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model.build import BuiltModel
from warpsched.scheduler.model.closure import Closure, closure
from warpsched.scheduler.model.holes import modulo_holes, var_bounds
from warpsched.scheduler.model.variables import ModelVars, stage_bound

ROWS_UP_TO = 256  # the lean model is used for fixed IIs up to this
# and, above, for graphs of at least LARGE_OPS ops while their ops of recurrences times II stay within
# LEAN_ROWS_UP_TO: there counting the rest beats the general model's ranges (a GPU kernel's dozen ops at
# II ~3,000 are the other way round)
LARGE_OPS = 400
LEAN_ROWS_UP_TO = 100_000
TIME_LITERALS_UP_TO = 512  # one Boolean per start time when an op's window is at most this wide


def tied_ops(problem: Problem) -> dict[str, int]:
    """The ops of recurrences, each with the index of its strongly connected component (of more than
    one op, or with a self-edge)."""
    g = problem.graph
    tied: dict[str, int] = {}
    for i, scc in enumerate(nx.strongly_connected_components(g)):
        if len(scc) > 1 or any(g.has_edge(n, n) for n in scc):
            tied.update(dict.fromkeys(scc, i))
    return tied


def lean_at(problem: Problem, machine: Machine, ii: int, tied: dict[str, int] | None = None) -> bool:
    """Whether the lean model suits II: small IIs, or large graphs whose row terms stay few (per op of a
    recurrence and per counted (unit, occupancy) of the rest, its occupancy's rows)."""
    if ii <= ROWS_UP_TO:
        return True
    if len(problem.ops) < LARGE_OPS:
        return False
    tied = tied_ops(problem) if tied is None else tied
    limited = [op for op in problem.ops if machine.units.get(op.unit) is not None and op.occupancy % ii]
    counted = {(op.unit, op.occupancy % ii) for op in limited if op.name not in tied}
    placed = sum(op.occupancy % ii for op in limited if op.name in tied)
    return ii * (placed + sum(b for _, b in counted)) <= LEAN_ROWS_UP_TO


def build_classic(problem: Problem, machine: Machine, ii: int):
    tied = tied_ops(problem)
    loose = [op for op in problem.ops if op.name not in tied]
    m = cp_model.CpModel()
    # each recurrence moves by whole periods on its own: each has its own anchor in [0, II) and windows
    parts = [
        Problem.build(
            f"{problem.name}#{c}",
            [op for op in problem.ops if tied.get(op.name) == c],
            [e for e in problem.edges if tied.get(e.src) == c == tied.get(e.dst)],
        )
        for c in sorted(set(tied.values()))
    ]
    closures = [closure(part, machine, ii) for part in parts]
    windows, horizon = {}, ii
    for part, paths in zip(parts, closures):
        reach = ii * (stage_bound(part, machine, "classic", ii) + 2)
        horizon = max(horizon, reach)
        windows.update({op.name: _window(op.name, paths, reach, ii) for op in part.ops})
    t = {n: m.new_int_var(lo, max(lo, hi), f"t[{n}]") for n, (lo, hi) in windows.items()}
    if any(c.positive_cycle for c in closures) or any(lo > hi for lo, hi in windows.values()):
        m.add_bool_or([])  # some op has no start consistent with the recurrences at this II
    for part, paths in zip(parts, closures):
        for (u, v), length in _differences(part, paths, ii):  # (1)
            m.add(t[v] - t[u] >= length)
    largest = max(zip(parts, closures), key=lambda pc: len(pc[0].ops), default=(None, None))[1]
    lat = {op.name: op.latency for op in problem.ops}
    if any(e.src == e.dst and lat[e.src] + e.delay > ii * e.distance for e in problem.edges):
        m.add_bool_or([])  # a self-recurrence longer than II (below RecMII), wherever it sits
    by_unit: dict[str, list[Op]] = defaultdict(list)
    for op in problem.ops:
        if machine.units.get(op.unit) is not None and op.occupancy > 0:
            by_unit[op.unit].append(op)
    counts: dict[tuple[str, int], list] = {}  # (unit, occupancy) -> loose ops starting per row
    for unit, ops in by_unit.items():  # (2)
        cap = machine.units[unit] - sum(op.occupancy // ii for op in ops)
        if cap < 0:
            m.add_bool_or([])
            continue
        mine = [op for op in ops if op.name in tied]
        rows = {op.name: _rows(m, t[op.name], ii, op.name) for op in mine}
        held: dict[int, int] = defaultdict(int)
        for op in ops:
            if op.name not in tied and op.occupancy % ii:
                held[op.occupancy % ii] += 1
        for b, n in held.items():
            counts[unit, b] = [m.new_int_var(0, min(n, cap), f"loose[{unit},{b}]@{x}") for x in range(ii)]
            m.add(sum(counts[unit, b]) == n)
        for x in range(ii):
            used = [rows[op.name][(x - j) % ii] for op in mine for j in range(op.occupancy % ii)]
            used += [counts[unit, b][(x - j) % ii] for b in held for j in range(b)]
            if used:
                m.add(sum(used) <= cap)
        if machine.units[unit] == 1:
            modulo_holes(m, t, [op for op in mine if op.occupancy <= ii], ii)
    v = ModelVars(
        ii=ii, t=t, k={}, r={}, makespan=None, horizon=horizon, anchor=largest.anchor if largest else None
    )  # feasibility only
    built = BuiltModel(m, v, ii, ii)
    built.starts_from = lambda value: {
        **{n: value(var) for n, var in t.items()},
        **_loose_rows(loose, counts, ii, value),
    }
    return built


def _loose_rows(loose: list[Op], counts: dict, ii: int, value) -> dict[str, int]:
    """Rows for the ops in no recurrence, as many per (unit, occupancy) and row as the solution counts."""
    free: dict[tuple[str, int], list[int]] = {
        key: [x for x, var in enumerate(per_row) for _ in range(value(var))]
        for key, per_row in counts.items()
    }
    out = {}
    for op in loose:
        key = (op.unit, op.occupancy % ii)
        out[op.name] = free[key].pop() if free.get(key) else 0
    return out


def _differences(problem: Problem, paths: Closure, ii: int) -> list[tuple[tuple[str, str], int]]:
    """Every dependence and implied longest path as `t_v - t_u >= length`, strongest per pair.

    Shuffled with a fixed seed: in the lexicographic order a reduced problem yields, CP-SAT's
    presolve misses the conflicts it finds in under a second otherwise (aes2/graph4, II 25:
    > 60 s against 0.9 s, measured with several seeds and orders).
    """
    lat = {op.name: op.latency for op in problem.ops}
    best: dict[tuple[str, str], int] = dict(paths.pairs)
    for e in problem.edges:
        if e.src != e.dst:
            key, length = (e.src, e.dst), lat[e.src] + e.delay - ii * e.distance
            best[key] = max(best.get(key, length), length)
    items = sorted(best.items())
    random.Random(0).shuffle(items)
    return items


def _window(name: str, paths: Closure, horizon: int, ii: int) -> tuple[int, int]:
    lo, hi = max(-horizon, paths.lower.get(name, -horizon)), min(horizon, paths.upper.get(name, horizon))
    return (max(lo, 0), min(hi, ii - 1)) if name == paths.anchor else (lo, hi)


def _rows(m: cp_model.CpModel, t: cp_model.IntVar, ii: int, name: str) -> list:
    """Per row x, a 0/1 expression: the op starts at row x."""
    lo, hi = var_bounds(t)
    if hi - lo + 1 <= TIME_LITERALS_UP_TO:
        at = {tau: m.new_bool_var(f"start[{name}]={tau}") for tau in range(lo, hi + 1)}
        m.add_exactly_one(at.values())
        m.add(t == sum(tau * lit for tau, lit in at.items()))
        return [sum(lit for tau, lit in at.items() if tau % ii == x) for x in range(ii)]
    row = [m.new_bool_var(f"row[{name}]={x}") for x in range(ii)]
    m.add_exactly_one(row)
    stage = m.new_int_var(lo // ii - 1, hi // ii + 1, f"k[{name}]")
    m.add(t == ii * stage + sum(x * lit for x, lit in enumerate(row)))
    return row
