"""(6) Symmetry breaking: warpgroups are interchangeable, so number them by first use.

Value precedence over the ops in problem order: the first op sits on
warpgroup 0 and each later op on a warpgroup at most one above the largest
used so far. Every assignment has exactly one relabelling that satisfies this,
so no schedule is lost. (Mode `swp` fixes the warpgroups and needs none.)
"""

from __future__ import annotations

from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    if ctx.mode in ("swp", "classic") or ctx.warpgroups < 2:
        return
    m, v = ctx.model, ctx.vars
    names = [op.name for op in ctx.problem.ops]
    m.add(v.group[names[0]] == 0)
    top = v.group[names[0]]
    for n in names[1:]:
        m.add(v.group[n] <= top + 1)
        new_top = m.new_int_var(0, ctx.warpgroups - 1, f"top[{n}]")
        m.add_max_equality(new_top, [top, v.group[n]])
        top = new_top
