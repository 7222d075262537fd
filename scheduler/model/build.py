"""Assemble the joint model for one candidate II (or a range of them) from the constraint families."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ortools.sat.python import cp_model

from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.model.closure import closure, least_windows
from warpsched.scheduler.model import dependences, groups, issue, placement, registers, smem, symmetry, units
from warpsched.scheduler.model.variables import Context, ModelVars, new_vars

# Constraint families in DESIGN.md order; the names are what a diagnosis reports.
FAMILIES = {
    "dependences": ("(1) dependences and cross-warpgroup hand-offs", dependences.build),
    "units": ("(2) modulo capacity of the functional units", units.build),
    "issue": ("(3) warpgroup issue slots", issue.build),
    "placement": ("(4) placement rules (variable-latency isolation, mode restrictions)", placement.build),
    "registers": ("(5a) registers per warpgroup and the register file", registers.build),
    "smem": ("(5b) shared-memory ring depths and capacity", smem.build),
}
CLASSIC_FAMILIES = ("dependences", "units")

Extra = Callable[[cp_model.CpModel, ModelVars], "cp_model.LinearExprT | None"]


@dataclass
class BuiltModel:
    model: cp_model.CpModel
    vars: ModelVars
    ii_lo: int
    ii_hi: int
    switches: dict[str, cp_model.IntVar] = field(
        default_factory=dict
    )  # family -> enable literal (diagnosis only)
    reduced: bool = False  # built on a reduction of the problem (closure.reduced_classic)
    relaxed: bool = False  # without the shared register file: solutions need confirming
    user_objective: cp_model.LinearExprT | None = None
    # classic.py: the starts of a solution, given the solver's `value` (ops in no recurrence get rows only)
    starts_from: Callable | None = None

    def objective(self, name: str) -> cp_model.LinearExprT:
        v = self.vars
        return {
            "ii": v.ii,
            "makespan": v.makespan,
            "smem": v.smem_total,
            "registers": v.register_cycles,
            "cross_edges": v.cross_count,
            "user": self.user_objective,
        }[name]


def build(
    problem: Problem,
    machine: Machine,
    mode: str,
    ii_lo: int,
    ii_hi: int | None = None,
    diagnose: bool = False,
    extra: Extra | None = None,
    relaxed: bool = False,
) -> BuiltModel:
    """The model at II in [ii_lo, ii_hi] (one II when ii_hi is None or equal); `relaxed` drops the
    shared register file (registers.py), so its INFEASIBLE proves the full model's."""
    ii_hi = ii_lo if ii_hi is None else ii_hi
    model = cp_model.CpModel()
    classic = mode == "classic"
    pool = 0 if classic else machine.max_warpgroups
    # Windows and implied pairs come from the dependences: a diagnosis, which may switch
    # those off, must not have them baked into the domains.
    paths = None if diagnose else closure(problem, machine, ii_hi)
    windows = None if diagnose else least_windows(problem, machine, mode, ii_lo, ii_hi)
    vars_ = new_vars(problem, machine, mode, model, ii_lo, ii_hi, windows)
    ctx = Context(problem, machine, mode, model, vars_, ii_lo, ii_hi, pool, closure=paths, relaxed=relaxed)
    if not classic:
        groups.build(ctx)
    built = BuiltModel(model, vars_, ii_lo, ii_hi, relaxed=relaxed)
    for name in CLASSIC_FAMILIES if classic else FAMILIES:
        ctx.enabled = model.new_bool_var(f"enable[{name}]") if diagnose else None
        if diagnose:
            built.switches[name] = ctx.enabled
        FAMILIES[name][1](ctx)
    ctx.enabled = None
    if not classic:
        symmetry.build(ctx)
    if extra is not None:
        built.user_objective = extra(model, vars_)
    return built
