"""(5a) Registers per warpgroup within its `setmaxnreg` budget; budgets within the register file.

A register value u lives on its warpgroup from t_u until its last consumer on
the same warpgroup starts (or, handed to another warpgroup, until it is
written to the staging buffer), at least until its result is ready. A
lifetime L = q*II + rem keeps q copies alive on every row plus one more on
`rem` rows from r_u: a full-window interval of demand q*regs plus the
two-copy interval pair of family (2) with variable length `rem`. Per
warpgroup, a cumulative over these bounds the live registers by the budget
minus the reserved registers; the budgets are decisions from the legal
`setmaxnreg` values and together fit the register file.

The relaxed form (`Context.relaxed`) bounds each warpgroup's live profile by the largest
budget instead of its own, keeping the shared register file only over budgets that hold the
largest single value: CP-SAT decides it much faster (a cumulative whose capacity is a
variable tied to a sum is weak), and as a relaxation its INFEASIBLE is a proof; the search
then confirms each solution it finds in the full model (search.py).
"""

from __future__ import annotations

from math import ceil

from ortools.sat.python import cp_model

from warpsched.scheduler import evaluate
from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    m, v, mach = ctx.model, ctx.vars, ctx.machine
    reserved = mach.register_overhead
    room = mach.reg_max - reserved
    legal = cp_model.Domain.from_values(mach.budgets())
    caps, totals = {}, []
    for w in range(ctx.warpgroups):
        v.budget[w] = m.new_int_var_from_domain(legal, f"budget[{w}]")
        m.add(v.budget[w] == mach.reg_min).only_enforce_if(~v.used[w])
        in_use = m.new_int_var(0, mach.reg_max, f"budget_used[{w}]")
        m.add(in_use == v.budget[w]).only_enforce_if(v.used[w])
        m.add(in_use == 0).only_enforce_if(~v.used[w])
        totals.append(in_use)
        caps[w] = m.new_int_var(0, max(room, 0), f"live_cap[{w}]")
        ctx.enforce(m.add(caps[w] + reserved <= v.budget[w]).only_enforce_if(v.used[w]))
    v.register_total = m.new_int_var(0, mach.reg_max * ctx.warpgroups, "register_total")
    m.add(v.register_total == sum(totals))
    ctx.enforce(m.add(v.register_total * mach.warpgroup_threads <= mach.register_file))
    for op in ctx.problem.ops:  # a budget holds at least any one value that lives a cycle (cheap, implied)
        if op.space == "regs" and op.regs_per_thread > 0 and op.latency >= 1:
            for w, lit in v.x[op.name].items():
                ctx.enforce(m.add(v.budget[w] >= reserved + op.regs_per_thread).only_enforce_if(lit))

    held = []  # register-cycles per iteration: the secondary objective
    held_on: dict[int, list] = {
        w: [] for w in range(ctx.warpgroups)
    }  # per warpgroup: the register-cycles it holds
    intervals = {w: [] for w in range(ctx.warpgroups)}
    demands = {w: [] for w in range(ctx.warpgroups)}
    loose = ceil(2 * v.horizon / ctx.ii_lo) + 1
    for i_op, op in enumerate(ctx.problem.ops):
        if op.space != "regs" or op.regs_per_thread <= 0:
            continue
        n, t = op.name, v.t[op.name]
        reach = v.horizon + ctx.ii_hi * (1 + max([e.distance for e in ctx.problem.out_edges(n)], default=0))
        end = m.new_int_var(-v.horizon, reach, f"reg_end[{n}]")
        m.add(end >= t + op.latency)
        for i, e in enumerate(ctx.problem.edges):
            if e.src != n:
                continue
            if i not in v.cross:  # a self-edge: the value feeds its own op a later iteration
                m.add(end >= t + v.ii * e.distance)
                continue
            m.add(end >= v.t[e.dst] + v.ii * e.distance).only_enforce_if(~v.cross[i])
            m.add(end >= t + op.latency + evaluate.staging_cycles(op, mach)).only_enforce_if(v.cross[i])
        # More than `room // regs` full copies never fit; without the family (diagnosis) allow any.
        q_max = room // op.regs_per_thread if ctx.enabled is None else loose
        held.append(op.regs_per_thread * (end - t))
        if len(v.x[n]) == 1:
            held_on[next(iter(v.x[n]))].append(held[-1])
        elif ctx.fixed_ii is not None:
            for w, lit in v.x[n].items():  # the part of the profile on w, when n sits there
                part = m.new_int_var(0, op.regs_per_thread * (reach + v.horizon), f"held[{n},{w}]")
                m.add(part >= held[-1]).only_enforce_if(lit)
                held_on[w].append(part)
        q = m.new_int_var(0, q_max, f"reg_copies[{n}]")
        rem = m.new_int_var(0, ctx.ii_hi - 1, f"reg_rem[{n}]")
        if ctx.fixed_ii is None:
            m.add(rem <= v.ii - 1)
        m.add(end - t == ctx.times_ii(q, f"reg_qII[{n}]", q_max) + rem)
        r = v.r[n]
        for w, lit in v.x[n].items():
            intervals[w] += [
                ctx.interval(r, rem, f"live[{n},{w}]", lit),
                ctx.interval(ctx.row_plus_ii(n), rem, f"live[{n},{w}]+II", lit),
                ctx.interval(0, 2 * v.ii, f"live_full[{n},{w}]", lit),
            ]
            demands[w] += [op.regs_per_thread, op.regs_per_thread, op.regs_per_thread * q]
    if ctx.fixed_ii is not None:  # a used warpgroup holds at least reg_min registers all period long
        v.register_cycles = sum(held) + mach.reg_min * ctx.fixed_ii * sum(v.used.values())
        # The register file on average: a warpgroup's need is at least its reserve plus the mean of
        # its live profile, so the budgets' sum bounds the total of register-cycles. Implied by the
        # exact form, it guides the full model's search; the relaxed model goes without it (it
        # slows the search where the file is not tight).
        if not ctx.relaxed:
            per_thread = mach.register_file // mach.warpgroup_threads
            ctx.enforce(
                m.add(sum(held) + reserved * ctx.fixed_ii * sum(v.used.values()) <= per_thread * ctx.fixed_ii)
            )
        # Per warpgroup: the mean of its live profile fits its budget (the peak does). Implied, and in
        # the relaxation (budgets still share the file) it steers the search to placements whose
        # registers fit: B200 attention confirms in seconds, H100 d64 proves its bound.
        for w, terms in held_on.items():
            if terms:
                ctx.enforce(m.add(sum(terms) <= (v.budget[w] - reserved) * ctx.fixed_ii))
    for w in range(ctx.warpgroups):
        if intervals[w]:  # relaxed: each warpgroup within the largest budget, the file not shared
            m.add_cumulative(intervals[w], demands[w], room if ctx.relaxed else caps[w])
