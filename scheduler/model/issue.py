"""(3) Warpgroup issue: the ops of one warpgroup never overlap their issue cycles modulo II.

An async op (wgmma, TMA) holds its warpgroup only for its short `issue`; a
synchronous one (CUDA-core math) for its full cost. Optional intervals per
candidate warpgroup, present when the op sits there, two copies (r, r + II) as
in family (2), one no-overlap per warpgroup.
"""

from __future__ import annotations

from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    m, v = ctx.model, ctx.vars
    per_group: dict[int, list] = {w: [] for w in range(ctx.warpgroups)}
    for op in ctx.problem.ops:
        if op.issue <= 0:
            continue
        if ctx.fixed_ii is not None and op.issue > ctx.fixed_ii:
            ctx.enforce(m.add_bool_or([]))  # no warpgroup can issue it within one II
            continue
        if ctx.fixed_ii is None:
            ctx.enforce(m.add(v.ii >= op.issue))
        r = v.r[op.name]
        for w, lit in v.x[op.name].items():
            per_group[w].append(ctx.interval(r, op.issue, f"issue[{op.name},{w}]", lit))
            per_group[w].append(
                ctx.interval(ctx.row_plus_ii(op.name), op.issue, f"issue[{op.name},{w}]+II", lit)
            )
    for intervals in per_group.values():
        if len(intervals) > 2:
            m.add_no_overlap(intervals)
