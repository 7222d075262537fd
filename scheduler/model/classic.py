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
"""

from __future__ import annotations

import random

from ortools.sat.python import cp_model

from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model.build import BuiltModel
from warpsched.scheduler.model.closure import Closure, closure
from warpsched.scheduler.model.holes import modulo_holes, var_bounds
from warpsched.scheduler.model.variables import ModelVars, stage_bound

ROWS_UP_TO = 256  # the lean model is used for fixed IIs up to this
TIME_LITERALS_UP_TO = 512  # one Boolean per start time when an op's window is at most this wide


def build_classic(problem: Problem, machine: Machine, ii: int):
    paths = closure(problem, machine, ii)
    m = cp_model.CpModel()
    horizon = ii * (stage_bound(problem, machine, "classic", ii) + 2)
    windows = {op.name: _window(op.name, paths, horizon, ii) for op in problem.ops}
    t = {n: m.new_int_var(lo, max(lo, hi), f"t[{n}]") for n, (lo, hi) in windows.items()}
    if paths.positive_cycle or any(lo > hi for lo, hi in windows.values()):
        m.add_bool_or([])  # some op has no start consistent with the recurrences at this II
    for (u, v), length in _differences(problem, paths, ii):  # (1)
        m.add(t[v] - t[u] >= length)
    by_unit: dict[str, list] = {}
    for op in problem.ops:
        if machine.units.get(op.unit) is not None and op.occupancy > 0:
            by_unit.setdefault(op.unit, []).append(op)
    for unit, ops in by_unit.items():  # (2)
        cap = machine.units[unit] - sum(op.occupancy // ii for op in ops)
        if cap < 0:
            m.add_bool_or([])
            continue
        rows = {op.name: _rows(m, t[op.name], ii, op.name) for op in ops}
        for x in range(ii):
            used = [rows[op.name][(x - j) % ii] for op in ops for j in range(op.occupancy % ii)]
            if used:
                m.add(sum(used) <= cap)
        if machine.units[unit] == 1:
            modulo_holes(m, t, [op for op in ops if op.occupancy <= ii], ii)
    v = ModelVars(
        ii=ii, t=t, k={}, r={}, makespan=None, horizon=horizon, anchor=paths.anchor
    )  # feasibility only
    return BuiltModel(m, v, ii, ii)


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
