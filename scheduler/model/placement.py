"""(4) Placement rules.

A warpgroup that holds a variable-latency op (TMA) holds no fixed-latency op:
the dynamic warp scheduler absorbs the variance only if the waiting happens on
a warpgroup of its own (Twill's VARIABLE LATENCY rule). Mode `ws` keeps every
op that is not streaming (a variable-latency op with no in-edges) in one stage:
warp specialization without cross-iteration overlap. (Mode `swp` restricts the
candidate warpgroups in `groups.candidates`.)
"""

from __future__ import annotations

from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    m, v, problem = ctx.model, ctx.vars, ctx.problem
    vl = [op.name for op in problem.ops if op.variable_latency]
    fixed = [op.name for op in problem.ops if not op.variable_latency]
    if vl and fixed:
        for w in range(ctx.warpgroups):
            holds_vl = m.new_bool_var(f"holds_vl[{w}]")
            holds_fixed = m.new_bool_var(f"holds_fixed[{w}]")
            for n in vl:
                if w in v.x[n]:
                    m.add_implication(v.x[n][w], holds_vl)
            for n in fixed:
                if w in v.x[n]:
                    m.add_implication(v.x[n][w], holds_fixed)
            ctx.enforce(m.add_bool_or([~holds_vl, ~holds_fixed]))
    if ctx.mode == "ws":
        staged = [
            op.name for op in problem.ops if not (op.variable_latency and not problem.in_edges(op.name))
        ]
        for a, b in zip(staged, staged[1:]):
            ctx.enforce(m.add(v.k[a] == v.k[b]))
