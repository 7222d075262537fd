"""Resources a given schedule needs, per DESIGN.md section 3.1.

Given II, start times and warpgroups, compute hand-offs, register needs,
ring depths, roles and the makespan. The heuristic uses these to accept a
schedule, and `assemble` turns any solution into a `Schedule`. (The verifier
recomputes all of this with code of its own.)
"""

from __future__ import annotations

from math import ceil

from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.schedule import Buffer, Placement, WarpgroupPlan


def staging_cycles(op: Op, machine: Machine) -> int:
    """Writing a register value to shared memory and reading it back."""
    return ceil(2 * op.bytes / machine.smem_bytes_per_cycle) if op.space == "regs" else 0


def handoff(op: Op, machine: Machine) -> int:
    """Cost of an edge out of `op` whose ends sit on different warpgroups."""
    return machine.sync_latency + staging_cycles(op, machine)


def edge_cost(problem: Problem, machine: Machine, e: Edge, groups: dict[str, int] | None) -> int:
    """Right-hand side of constraint (1) without the `II * distance` term."""
    src = problem.op_by_name[e.src]
    cross = groups is not None and groups[e.src] != groups[e.dst]
    return src.latency + e.delay + (handoff(src, machine) if cross else 0)


def fold(start: int, length: int, ii: int) -> list[int]:
    """How many of the cycles [start, start + length) fall on each row modulo ii."""
    rows = [length // ii] * ii
    for j in range(length % ii):
        rows[(start + j) % ii] += 1
    return rows


def register_lifetime(
    problem: Problem, machine: Machine, ii: int, starts: dict[str, int], groups: dict[str, int], op: Op
) -> int:
    t = starts[op.name]
    end = t + op.latency
    for e in problem.out_edges(op.name):
        if groups[e.dst] == groups[op.name]:
            end = max(end, starts[e.dst] + ii * e.distance)
        else:
            end = max(end, t + op.latency + staging_cycles(op, machine))
    return end - t


def register_needs(
    problem: Problem, machine: Machine, ii: int, starts: dict[str, int], groups: dict[str, int]
) -> dict[int, int]:
    """Per used warpgroup: reserved registers plus the most live register values at any row."""
    rows: dict[int, list[int]] = {g: [0] * ii for g in set(groups.values())}
    for op in problem.ops:
        if op.space != "regs" or not op.regs_per_thread:
            continue
        life = register_lifetime(problem, machine, ii, starts, groups, op)
        for x, copies in enumerate(fold(starts[op.name], life, ii)):
            rows[groups[op.name]][x] += copies * op.regs_per_thread
    return {g: machine.register_overhead + max(r) for g, r in rows.items()}


def budget_for(need: int, machine: Machine) -> int | None:
    """Smallest legal `setmaxnreg` value covering `need`, or None."""
    for b in machine.budgets():
        if b >= need:
            return b
    return None


def buffers(
    problem: Problem, machine: Machine, ii: int, starts: dict[str, int], groups: dict[str, int]
) -> dict[str, Buffer]:
    out: dict[str, Buffer] = {}
    for op in problem.ops:
        if op.space == "smem" and op.bytes > 0:
            consumers, kind = problem.out_edges(op.name), "ring"
        elif op.space == "regs":
            consumers, kind = (
                [e for e in problem.out_edges(op.name) if groups[e.dst] != groups[op.name]],
                "staging",
            )
            if not consumers:
                continue
        else:
            continue
        t = starts[op.name]
        hold = 0
        for e in consumers:
            cross = groups[e.dst] != groups[op.name]
            release = starts[e.dst] + ii * e.distance + problem.op_by_name[e.dst].latency
            hold = max(hold, release + (machine.sync_latency if cross else 0) - t)
        out[op.name] = Buffer(kind, max(1, ceil(hold / ii)), op.bytes, hold)
    return out


def smem_total(problem: Problem, bufs: dict[str, Buffer], machine: Machine) -> int:
    """The rings plus what the problem holds outside the loop."""
    return problem.reserved_smem + sum(
        b.depth * (b.bytes + machine.ring_slot_overhead) for b in bufs.values()
    )


def warpgroup_plans(
    problem: Problem,
    machine: Machine,
    ii: int,
    starts: dict[str, int],
    groups: dict[str, int],
    grant: bool = False,
) -> dict[int, WarpgroupPlan] | None:
    """Roles and the least legal budgets; None if a need exceeds every budget.

    With `grant`, consumers share what the register file has left after the producers'
    least budgets (as CUTLASS and FA3 do: producers 24..40, consumers 232..240): more
    registers never hurt the compiler, and the least budgets are what the objective minimised.
    """
    needs = register_needs(problem, machine, ii, starts, groups)
    plans = {}
    for g in sorted(needs):
        members = tuple(op.name for op in problem.ops if groups[op.name] == g)
        producer = all(problem.op_by_name[n].variable_latency for n in members)
        budget = budget_for(needs[g], machine)
        if budget is None:
            return None
        plans[g] = WarpgroupPlan("producer" if producer else "consumer", budget, needs[g], members)
    consumers = [g for g, p in plans.items() if p.role == "consumer"]
    if grant and consumers:
        left = machine.register_file // machine.warpgroup_threads - sum(p.registers for p in plans.values())
        extra = max(0, left // len(consumers) // machine.reg_step * machine.reg_step)
        for g in consumers:
            p = plans[g]
            plans[g] = WarpgroupPlan("consumer", min(machine.reg_max, p.registers + extra), p.need, p.ops)
    return plans


def cross_edges(problem: Problem, groups: dict[str, int] | None) -> int:
    if groups is None:
        return 0
    return sum(1 for e in problem.edges if groups[e.src] != groups[e.dst])


def makespan(problem: Problem, starts: dict[str, int]) -> int:
    """Iteration latency: from the first start to the last result."""
    return max(starts[op.name] + op.latency for op in problem.ops) - min(starts.values())


def placements(ii: int, starts: dict[str, int], groups: dict[str, int] | None) -> dict[str, Placement]:
    return {
        n: Placement(t, t // ii, t % ii, None if groups is None else groups[n]) for n, t in starts.items()
    }


def fits(
    problem: Problem, machine: Machine, ii: int, starts: dict[str, int], groups: dict[str, int]
) -> str | None:
    """Why this schedule breaks a capacity limit (family 5), or None if it fits."""
    plans = warpgroup_plans(problem, machine, ii, starts, groups)
    if plans is None:
        return "a warpgroup needs more registers than setmaxnreg allows"
    used = sum(p.registers for p in plans.values()) * machine.warpgroup_threads
    if used > machine.register_file:
        return (
            f"the warpgroups' register budgets take {used} registers, more than the "
            f"{machine.register_file} of the register file"
        )
    smem = smem_total(problem, buffers(problem, machine, ii, starts, groups), machine)
    if smem > machine.smem_bytes:
        return f"the rings take {smem} bytes of shared memory, more than the {machine.smem_bytes} available"
    return None
