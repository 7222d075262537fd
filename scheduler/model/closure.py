"""Longest dependence paths at a fixed II: the anchor, time windows and implied pairwise constraints.

A modulo schedule stays a schedule when every start moves by the same amount,
so one op (the anchor) is pinned to [0, II). Every other op then lies in a
window: at least the longest path from the anchor, at most II - 1 minus the
longest path back to it (edge weights `latency + delay - II * distance`,
hand-offs left out, so these bounds are implied in every mode). For the ops
on finite-capacity units, the longest paths between each pair are added as
redundant constraints: they are what a preprocessing that removes
unconstrained ops keeps (Oppermann et al., FPL'18), and they let the
propagation see through chains of unlimited ops.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import networkx as nx

from scheduler.ir import Edge, Problem
from scheduler.machine import Machine

NEG = float("-inf")


@dataclass(frozen=True)
class Closure:
    anchor: str
    lower: dict[str, int]  # op -> longest path from the anchor (only ops it reaches)
    upper: dict[str, int]  # op -> II - 1 - longest path to the anchor (only ops that reach it)
    pairs: dict[tuple[str, str], int]  # (u, v) resource ops -> longest path u ~> v
    positive_cycle: bool = False


def resource_ops(problem: Problem, machine: Machine) -> list[str]:
    return [op.name for op in problem.ops if machine.units.get(op.unit) is not None and op.occupancy > 0]


def choose_anchor(problem: Problem, machine: Machine) -> str:
    """An op of the strongly connected component holding the most resource-bound ops."""
    bound = set(resource_ops(problem, machine))
    best = None
    for scc in nx.strongly_connected_components(problem.graph):
        key = (len(bound & scc), len(scc))
        if best is None or key > best[0]:
            best = (key, scc)
    members = best[1]
    for op in problem.ops:  # first in problem order, preferring a resource-bound op
        if op.name in members and op.name in bound:
            return op.name
    return next(op.name for op in problem.ops if op.name in members)


def longest_from(problem: Problem, source: str, ii: int, reverse: bool = False) -> dict[str, int] | None:
    """Longest paths from `source` (to it, when reversed); None on a positive cycle."""
    lat = {op.name: op.latency for op in problem.ops}
    adj: dict[str, list[tuple[str, int]]] = {op.name: [] for op in problem.ops}
    for e in problem.edges:
        w = lat[e.src] + e.delay - ii * e.distance
        if reverse:
            adj[e.dst].append((e.src, w))
        else:
            adj[e.src].append((e.dst, w))
    dist = {source: 0}
    relaxed = {source: 0}
    queue, queued = deque([source]), {source}
    limit = len(adj)
    while queue:
        x = queue.popleft()
        queued.discard(x)
        for y, w in adj[x]:
            if dist[x] + w > dist.get(y, NEG):
                dist[y] = dist[x] + w
                relaxed[y] = relaxed.get(y, 0) + 1
                if relaxed[y] > limit:
                    return None
                if y not in queued:
                    queue.append(y)
                    queued.add(y)
    return dist


def closure(problem: Problem, machine: Machine, ii: int, pairs_up_to: int = 160) -> Closure:
    anchor = choose_anchor(problem, machine)
    fwd = longest_from(problem, anchor, ii)
    back = longest_from(problem, anchor, ii, reverse=True)
    if fwd is None or back is None:
        return Closure(anchor, {}, {}, {}, positive_cycle=True)
    pairs: dict[tuple[str, str], int] = {}
    bound = resource_ops(problem, machine)
    bound_set = set(bound)
    if len(bound) <= pairs_up_to:
        for u in bound:
            dist = longest_from(problem, u, ii)
            if dist is None:
                return Closure(anchor, {}, {}, {}, positive_cycle=True)
            for v, length in dist.items():
                if v != u and v in bound_set:
                    pairs[(u, v)] = length
    return Closure(anchor, fwd, {v: ii - 1 - d for v, d in back.items()}, pairs)


def reduced_classic(problem: Problem, machine: Machine, ii: int) -> Problem | None:
    """At a fixed II, the problem on its resource-bound ops alone, linked by their longest paths.

    In classic modulo scheduling an op on an unlimited unit only relays dependences, so
    projecting the difference constraints onto the resource-bound ops (all-pairs longest
    paths through the rest) keeps exactly the same feasible set for them: II is feasible
    for the reduction iff it is for the problem. None when nothing would be removed.
    """
    bound = resource_ops(problem, machine)
    if not bound or len(bound) == len(problem.ops):
        return None
    ops = problem.op_by_name
    edges = []
    for u in bound:
        dist = longest_from(problem, u, ii)
        if dist is None:
            return None  # II is below RecMII; the full model says so
        edges += [Edge(u, v, 0, dist[v] - ops[u].latency) for v in bound if v != u and v in dist]
    return Problem.build(problem.name, [ops[n] for n in bound], edges, problem.source)


def _steps(problem: Problem, machine: Machine, mode: str, ii: int) -> dict[str, int]:
    """Per op, the most stages one out-edge can push its successor (rows unknown, hand-off at most)."""
    from scheduler.evaluate import handoff  # evaluate imports nothing from the model

    out = {}
    for op in problem.ops:
        hand = 0 if mode == "classic" else handoff(op, machine)
        steps = [max(0, -(-(op.latency + e.delay + hand - ii * e.distance + ii - 1) // ii)) for e in problem.out_edges(op.name)]
        out[op.name] = max(steps, default=0)
    return out


def stage_limits(problem: Problem, machine: Machine, mode: str, ii: int) -> dict[str, int]:
    """Largest stage each op can need in the least solution of any feasible row/warpgroup choice.

    The least solution of the difference constraints on stages takes, along a simple path, at most
    one step per op; bounding each strongly connected component by the sum of its ops' largest
    steps and taking the longest path through the condensation bounds every op's stage. In mode
    `ws` the staged ops share one stage, so they share the largest bound.
    """
    steps = _steps(problem, machine, mode, ii)
    cond = nx.condensation(problem.graph)
    weight = {c: sum(steps[n] for n in cond.nodes[c]["members"]) for c in cond}
    longest: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        longest[c] = weight[c] + max((longest[p] for p in cond.predecessors(c)), default=0)
    limit = {n: longest[cond.graph["mapping"][n]] for n in steps}
    if mode == "ws":
        staged = [op.name for op in problem.ops if not (op.variable_latency and not problem.in_edges(op.name))]
        top = max((limit[n] for n in staged), default=0)
        limit.update({n: top for n in staged})
    return limit


def least_windows(problem: Problem, machine: Machine, mode: str, ii_lo: int, ii_hi: int) -> dict[str, tuple[int, int]] | None:
    """Start windows holding the least solution (every start >= 0, some stage 0) of any feasible
    choice, for every II in [ii_lo, ii_hi]; None when a recurrence is longer than ii_hi."""
    limit = stage_limits(problem, machine, mode, ii_lo)
    lat = {op.name: op.latency for op in problem.ops}
    lo = {n: 0 for n in limit}
    hi = {n: ii_hi * (limit[n] + 1) - 1 for n in limit}
    for _ in range(len(limit) + 1):
        changed = False
        for e in problem.edges:
            w = lat[e.src] + e.delay - ii_hi * e.distance  # lower bound on t_dst - t_src at every II <= ii_hi
            if lo[e.src] + w > lo[e.dst]:
                lo[e.dst], changed = lo[e.src] + w, True
            if hi[e.dst] - w < hi[e.src]:
                hi[e.src], changed = hi[e.dst] - w, True
        if not changed:
            return {n: (lo[n], hi[n]) for n in limit}
    return None


def least_solution(problem: Problem, machine: Machine, mode: str, ii: int, starts: dict[str, int],
                   groups: dict[str, int] | None) -> dict[str, int]:
    """The same schedule with every op as early as its row allows: stages from the least solution of
    the dependences, no edge stretched beyond the original (so no lifetime or ring hold grows)."""
    from scheduler.evaluate import edge_cost

    rows = {n: t % ii for n, t in starts.items()}
    stage = {n: t // ii for n, t in starts.items()}
    bounds = []  # k_dst - k_src >= step
    for e in problem.edges:
        need = edge_cost(problem, machine, e, groups) - ii * e.distance - rows[e.dst] + rows[e.src]
        bounds.append((e.src, e.dst, -(-need // ii)))
        bounds.append((e.dst, e.src, stage[e.src] - stage[e.dst]))  # k_dst - k_src <= original
    if mode == "ws":
        staged = [op.name for op in problem.ops if not (op.variable_latency and not problem.in_edges(op.name))]
        for a, b in zip(staged, staged[1:]):
            bounds += [(a, b, 0), (b, a, 0)]
    k = {n: 0 for n in starts}
    for _ in range(len(k) + 1):
        changed = False
        for u, v, step in bounds:
            if k[u] + step > k[v]:
                k[v], changed = k[u] + step, True
        if not changed:
            break
    return {n: ii * k[n] + rows[n] for n in starts}
