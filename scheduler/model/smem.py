"""(5b) Shared-memory rings: depth of every ring solved, total within the CTA's shared memory.

An smem value (a TMA-loaded tile) gets a ring; a register value with a
consumer on another warpgroup gets a staging ring. A slot is held from the
producer's start until the last consumer of the ring has finished with it
(+ one hand-off to release it across warpgroups); with round-robin slots a
depth D is enough iff D * II >= that hold. Each slot costs its payload plus
the full/empty mbarrier pair.
"""

from __future__ import annotations

from math import ceil

from warpsched.scheduler.model.variables import Context


def build(ctx: Context) -> None:
    m, v, mach, problem = ctx.model, ctx.vars, ctx.machine, ctx.problem
    ops = problem.op_by_name
    horizon = 2 * v.horizon  # the longest distance between two starts
    loose = ceil(2 * horizon / ctx.ii_lo) + 2
    slot_cost = []
    for op in problem.ops:
        n = op.name
        out = [(i, e) for i, e in enumerate(problem.edges) if e.src == n]
        ring = op.space == "smem" and op.bytes > 0
        staged = op.space == "regs" and any(i in v.cross for i, _ in out)
        if not (ring or staged):
            continue  # (a ring with no consumer still takes one slot: hold 0, depth 1)
        d_max = mach.smem_bytes // (op.bytes + mach.ring_slot_overhead) if ctx.enabled is None else loose
        span = (
            horizon
            + ctx.ii_hi * max([e.distance for _, e in out], default=0)
            + max([ops[e.dst].latency for _, e in out], default=0)
            + mach.sync_latency
        )
        hold = m.new_int_var(0, span, f"hold[{n}]")
        depth = m.new_int_var(0 if staged else 1, max(d_max, 1), f"depth[{n}]")
        for i, e in out:
            release = v.t[e.dst] + v.ii * e.distance + ops[e.dst].latency - v.t[n]
            if ring:
                m.add(hold >= release + mach.sync_latency * v.cross[i] if i in v.cross else hold >= release)
            elif i in v.cross:
                m.add(hold >= release + mach.sync_latency).only_enforce_if(v.cross[i])
        if staged:
            needed = m.new_bool_var(f"staged[{n}]")
            m.add_max_equality(needed, [v.cross[i] for i, _ in out if i in v.cross])
            m.add(depth >= 1).only_enforce_if(needed)
            m.add(depth == 0).only_enforce_if(~needed)
            v.staging_depth[n] = depth
        else:
            v.depth[n] = depth
        ctx.enforce(m.add(ctx.times_ii(depth, f"depthII[{n}]", max(d_max, 1)) >= hold))
        slot_cost.append((op.bytes + mach.ring_slot_overhead) * depth)
    v.smem_total = m.new_int_var(0, max(mach.smem_bytes, 0) if ctx.enabled is None else 1 << 40, "smem_total")
    m.add(v.smem_total == ctx.problem.reserved_smem + sum(slot_cost))
    ctx.enforce(m.add(v.smem_total <= mach.smem_bytes))
