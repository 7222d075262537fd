"""(1) Dependences: t_v + II*distance >= t_u + latency_u + delay (+ hand-off if the ends sit on different
warpgroups).

The hand-off is one mbarrier round (`sync_latency`) plus, for a register
value, staging it through shared memory (DESIGN.md 3.1). The longest paths
between resource-bound ops, which these constraints imply, are added too.
"""

from __future__ import annotations

from warpsched.scheduler import evaluate
from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    v, ops = ctx.vars, ctx.problem.op_by_name
    for i, e in enumerate(ctx.problem.edges):
        src = ops[e.src]
        lhs = v.t[e.dst] + v.ii * e.distance
        rhs = v.t[e.src] + src.latency + e.delay
        if i in v.cross:
            rhs = rhs + evaluate.handoff(src, ctx.machine) * v.cross[i]
        ctx.enforce(ctx.model.add(lhs >= rhs))
    if ctx.closure is not None:  # implied: longest paths between resource-bound ops (see closure.py)
        for (u, w), length in ctx.closure.pairs.items():
            ctx.enforce(ctx.model.add(v.t[w] - v.t[u] >= length))
