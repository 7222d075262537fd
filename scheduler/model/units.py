"""(2) Modulo unit capacity.

Per unit of finite capacity, the modulo reservation table never exceeds the
capacity. An op of occupancy `o` at row r is two fixed-size intervals, at r and
r + II, of length `o mod II` under one cumulative (no-overlap at capacity 1);
on the window [II, 2*II) they cover exactly its folded footprint, elsewhere a
subset, so the constraint is exact. Each full `II` in `o` takes one unit on
every row, which lowers the capacity left for the intervals.

At a fixed II, on capacity-1 units every pair of ops also gets the start
differences that keep them apart modulo II as a domain with holes (redundant
with the intervals; see classic.py, where this matters most).
"""

from __future__ import annotations

from warpsched.scheduler.model.holes import modulo_holes
from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    m, v = ctx.model, ctx.vars
    by_unit: dict[str, list] = {}
    for op in ctx.problem.ops:
        if ctx.machine.units.get(op.unit) is not None and op.occupancy > 0:
            by_unit.setdefault(op.unit, []).append(op)
    for unit, ops in by_unit.items():
        cap = ctx.machine.units[unit]
        intervals, full = [], 0
        for op in ops:
            if ctx.fixed_ii is not None:
                q, rem = divmod(op.occupancy, ctx.fixed_ii)
            else:
                q, rem = 0, op.occupancy
                ctx.enforce(m.add(v.ii >= op.occupancy))
            full += q
            if rem:
                intervals.append(ctx.interval(v.r[op.name], rem, f"{unit}[{op.name}]"))
                intervals.append(ctx.interval(ctx.row_plus_ii(op.name), rem, f"{unit}[{op.name}]+II"))
        left = cap - full
        if left < 0:
            ctx.enforce(m.add_bool_or([]))
            continue
        if left == 1:
            m.add_no_overlap(intervals)
        elif intervals:
            m.add_cumulative(intervals, [1] * len(intervals), left)
        if ctx.fixed_ii is not None and ctx.closure is not None and cap == 1 and ctx.enabled is None:
            modulo_holes(
                ctx.model, ctx.vars.t, [op for op in ops if op.occupancy <= ctx.fixed_ii], ctx.fixed_ii
            )
