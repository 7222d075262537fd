"""The variables of the joint model and the context every constraint family builds on.

For a candidate II (a constant, or a variable over a range of candidates) each
op v gets a start `t[v] = II * k[v] + r[v]` with stage `k[v]` and row
`r[v] in [0, II)`, and (all modes but `classic`) a warpgroup `group[v]` with
one Boolean `x[v][w]` per candidate warpgroup. Researchers reach all of these
through `ModelVars` in their own constraints (see `scheduler.solve(extra=...)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ortools.sat.python import cp_model

from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine

if TYPE_CHECKING:
    from warpsched.scheduler.model.closure import Closure

Expr = cp_model.LinearExprT


@dataclass
class ModelVars:
    ii: int | cp_model.IntVar
    t: dict[str, cp_model.IntVar]
    k: dict[str, cp_model.IntVar]
    r: dict[str, cp_model.IntVar]
    makespan: cp_model.IntVar
    horizon: int  # every start plus its latency lies in [0, horizon] ([-horizon, horizon] in classic.py)
    anchor: str | None = None  # classic.py only: the op pinned to stage 0, the others relative to it
    group: dict[str, cp_model.IntVar] = field(default_factory=dict)
    x: dict[str, dict[int, cp_model.IntVar]] = field(default_factory=dict)
    cross: dict[int, cp_model.IntVar] = field(
        default_factory=dict
    )  # edge index -> "ends on different warpgroups"
    used: dict[int, cp_model.IntVar] = field(default_factory=dict)
    budget: dict[int, cp_model.IntVar] = field(default_factory=dict)  # setmaxnreg value of warpgroup w
    depth: dict[str, cp_model.IntVar] = field(default_factory=dict)  # ring depth of an smem value
    staging_depth: dict[str, cp_model.IntVar] = field(default_factory=dict)
    smem_total: cp_model.IntVar | int = 0
    register_total: cp_model.IntVar | int = 0  # sum of the used warpgroups' budgets
    register_cycles: cp_model.LinearExprT | int = 0  # registers per thread times cycles held, per iteration
    cross_count: cp_model.LinearExprT = 0
    shifted_rows: dict[str, cp_model.IntVar] = field(default_factory=dict)


@dataclass
class Context:
    """What a constraint family's `build` receives."""

    problem: Problem
    machine: Machine
    mode: str
    model: cp_model.CpModel
    vars: ModelVars
    ii_lo: int
    ii_hi: int
    warpgroups: int  # size of the warpgroup pool (0 in classic)
    enabled: cp_model.IntVar | None = (
        None  # diagnosis: the family's constraints hold only if this literal does
    )
    closure: Closure | None = None  # longest paths at II (the range's largest), when not diagnosing
    relaxed: bool = False  # registers.py: drop the shared register file (a relaxation)

    @property
    def fixed_ii(self) -> int | None:
        return self.ii_lo if self.ii_lo == self.ii_hi else None

    def enforce(self, ct: cp_model.Constraint) -> cp_model.Constraint:
        if self.enabled is not None:
            ct.only_enforce_if(self.enabled)
        return ct

    def row_plus_ii(self, name: str) -> Expr:
        """`r[name] + II`: the second copy of an op's modulo interval (a variable when II is)."""
        if self.fixed_ii is not None:
            return self.vars.r[name] + self.fixed_ii
        cache = self.vars.shifted_rows
        if name not in cache:
            cache[name] = self.model.new_int_var(self.ii_lo, 2 * self.ii_hi - 1, f"r+II[{name}]")
            self.model.add(cache[name] == self.vars.r[name] + self.vars.ii)
        return cache[name]

    def times_ii(self, var: cp_model.IntVar, name: str, upper: int) -> Expr:
        """`II * var` as a linear expression (a product variable when II is a variable)."""
        if self.fixed_ii is not None:
            return self.fixed_ii * var
        prod = self.model.new_int_var(0, upper * self.ii_hi, name)
        self.model.add_multiplication_equality(prod, [var, self.vars.ii])
        return prod

    def presence(self, *lits: cp_model.IntVar) -> cp_model.IntVar | bool:
        """The conjunction of `lits` and the family's enable literal, as one literal."""
        lits = [lit for lit in lits if lit is not True] + ([self.enabled] if self.enabled is not None else [])
        if not lits:
            return True
        if len(lits) == 1:
            return lits[0]
        both = self.model.new_bool_var("")
        self.model.add_bool_and(lits).only_enforce_if(both)
        self.model.add_bool_or([~lit for lit in lits]).only_enforce_if(~both)
        return both

    def interval(self, start: Expr, size: Expr, name: str, *presence: cp_model.IntVar):
        lit = self.presence(*presence)
        if isinstance(size, int):
            if lit is True:
                return self.model.new_fixed_size_interval_var(start, size, name)
            return self.model.new_optional_fixed_size_interval_var(start, size, lit, name)
        end = self.model.new_int_var(-self.vars.horizon, 4 * self.ii_hi + self.vars.horizon, f"{name}.end")
        self.model.add(end == start + size)
        if lit is True:
            return self.model.new_interval_var(start, size, end, name)
        return self.model.new_optional_interval_var(start, size, end, lit, name)


def stage_bound(problem: Problem, machine: Machine, mode: str, ii: int, ii_hi: int | None = None) -> int:
    """Largest stage the canonical form of any feasible schedule can need (DESIGN.md 3.1): a
    simple path takes at most one step per op (closure.stage_limits, without the structure)."""
    from warpsched.scheduler.model.closure import op_steps

    return sum(op_steps(problem, machine, mode, ii, ii_hi).values())


def new_vars(
    problem: Problem,
    machine: Machine,
    mode: str,
    model: cp_model.CpModel,
    ii_lo: int,
    ii_hi: int,
    windows: dict[str, tuple[int, int]] | None,
) -> ModelVars:
    """Starts of the least solution: every start >= 0 and every stage within the op's stage limit.

    The least solution of every feasible row/warpgroup choice has these (DESIGN.md 3.1,
    closure.stage_limits), so no feasible II is cut off. `windows` (the limits propagated along
    the dependences, closure.least_windows) narrow the domains; they are left out when a
    diagnosis must be able to switch the dependences off.
    """
    ii = ii_lo if ii_lo == ii_hi else model.new_int_var(ii_lo, ii_hi, "II")
    kmax = stage_bound(problem, machine, mode, ii_lo, ii_hi) + 1
    horizon = ii_hi * (kmax + 1)
    t, k, r = {}, {}, {}
    empty = False
    for op in problem.ops:
        n = op.name
        lo, hi = (0, horizon) if windows is None else windows[n]
        if lo > hi:
            empty, hi = True, lo
        k[n] = model.new_int_var(lo // ii_hi, max(lo // ii_hi, hi // ii_lo), f"k[{n}]")
        r[n] = model.new_int_var(0, ii_hi - 1, f"r[{n}]")
        t[n] = model.new_int_var(lo, hi, f"t[{n}]")
        if isinstance(ii, int):
            model.add(t[n] == ii * k[n] + r[n])
        else:
            model.add(r[n] <= ii - 1)
            kii = model.new_int_var(0, horizon, f"kII[{n}]")
            model.add_multiplication_equality(kii, [k[n], ii])
            model.add(t[n] == kii + r[n])
    if empty:
        model.add_bool_or([])  # some op has no start consistent with the recurrences at this II
    longest = max(op.latency for op in problem.ops)
    first = model.new_int_var(0, horizon, "first_start")
    last = model.new_int_var(0, horizon + longest, "last_end")
    model.add_min_equality(first, list(t.values()))
    for op in problem.ops:
        model.add(last >= t[op.name] + op.latency)
    makespan = model.new_int_var(0, 2 * horizon + longest, "makespan")
    model.add(makespan == last - first)
    return ModelVars(ii=ii, t=t, k=k, r=r, makespan=makespan, horizon=horizon + longest)
