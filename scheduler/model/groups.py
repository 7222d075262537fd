"""Warpgroup variables: which warpgroup issues each op, which edges cross warpgroups.

These are definitions, not a constraint family: `x[v][w]` says op v sits on
warpgroup w, exactly one per op; `group[v]` is its index; `cross[e]` says the
ends of edge e sit on different warpgroups; `used[w]` says w holds an op.
The candidate warpgroups of an op come from the mode: `swp` puts every
variable-latency op on warpgroup 0 and everything else on one consumer.
"""

from __future__ import annotations

from warpsched.scheduler.ir import Problem
from warpsched.scheduler.model.variables import Context


def candidates(problem: Problem, mode: str, warpgroups: int) -> dict[str, list[int]]:
    if mode == "swp":
        has_vl = any(op.variable_latency for op in problem.ops)
        consumer = 1 if has_vl and warpgroups > 1 else 0
        return {op.name: [0] if op.variable_latency else [consumer] for op in problem.ops}
    return {op.name: list(range(warpgroups)) for op in problem.ops}


def build(ctx: Context) -> None:
    m, v, w_count = ctx.model, ctx.vars, ctx.warpgroups
    allowed = candidates(ctx.problem, ctx.mode, w_count)
    members: dict[int, list] = {w: [] for w in range(w_count)}
    for op in ctx.problem.ops:
        n = op.name
        v.x[n] = {w: m.new_bool_var(f"x[{n},{w}]") for w in allowed[n]}
        m.add_exactly_one(v.x[n].values())
        v.group[n] = m.new_int_var(min(allowed[n]), max(allowed[n]), f"group[{n}]")
        m.add(v.group[n] == sum(w * lit for w, lit in v.x[n].items()))
        for w, lit in v.x[n].items():
            members[w].append(lit)
    for w in range(w_count):
        v.used[w] = m.new_bool_var(f"used[{w}]")
        if members[w]:
            m.add_max_equality(v.used[w], members[w])
        else:
            m.add(v.used[w] == 0)
    for i, e in enumerate(ctx.problem.edges):
        if e.src == e.dst:
            continue
        c = m.new_bool_var(f"cross[{e.src}->{e.dst}#{i}]")
        m.add(v.group[e.src] == v.group[e.dst]).only_enforce_if(~c)
        m.add(v.group[e.src] != v.group[e.dst]).only_enforce_if(c)
        v.cross[i] = c
    v.cross_count = sum(v.cross.values())
