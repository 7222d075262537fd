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

from warpsched.scheduler.ir import Edge, Problem
from warpsched.scheduler.machine import Machine

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
    return _longest(adjacency(problem, ii, reverse), source, None)


def adjacency(problem: Problem, ii: int, reverse: bool = False) -> dict[str, list[tuple[str, int]]]:
    """Per op, its successors (predecessors, when reversed) with the edge weights `latency + delay -
    II * distance`: what `longest_from` walks, built once for many sources."""
    lat = {op.name: op.latency for op in problem.ops}
    adj: dict[str, list[tuple[str, int]]] = {op.name: [] for op in problem.ops}
    for e in problem.edges:
        w = lat[e.src] + e.delay - ii * e.distance
        if reverse:
            adj[e.dst].append((e.src, w))
        else:
            adj[e.src].append((e.dst, w))
    return adj


def _longest(
    adj: dict[str, list[tuple[str, int]]], source: str, stop_at: set[str] | None
) -> dict[str, int] | None:
    """Longest paths from `source` over `adj`; None on a positive cycle. With `stop_at`, paths end at its
    ops (other than the source): only paths whose inner ops are outside it count."""
    dist = {source: 0}
    relaxed = {source: 0}
    queue, queued = deque([source]), {source}
    limit = len(adj)
    while queue:
        x = queue.popleft()
        queued.discard(x)
        if stop_at is not None and x in stop_at and x != source:
            continue  # a path ends here
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
        adj = adjacency(problem, ii)
        for u in bound:
            dist = _longest(adj, u, None)
            if dist is None:
                return Closure(anchor, {}, {}, {}, positive_cycle=True)
            for v, length in dist.items():
                if v != u and v in bound_set:
                    pairs[(u, v)] = length
    return Closure(anchor, fwd, {v: ii - 1 - d for v, d in back.items()}, pairs)


DENSE_REDUCTION_UP_TO = 400  # resource-bound ops: above this the reduction keeps direct paths only


def reduced_classic(problem: Problem, machine: Machine, ii: int) -> Problem | None:
    """At a fixed II, the problem on its resource-bound ops alone, linked by their longest paths.

    In classic modulo scheduling an op on an unlimited unit only relays dependences, so
    projecting the difference constraints onto the resource-bound ops keeps exactly the same
    feasible set for them: II is feasible for the reduction iff it is for the problem. Up to
    DENSE_REDUCTION_UP_TO of them, every pair's longest path is kept (the implied pairs help
    presolve on HatScheT-sized graphs); above, only paths whose inner ops are all unlimited
    (every longest path is a chain of those, so the feasible set is the same), which keeps a
    3,000-op graph's reduction near its own size instead of quadratic. None when nothing would
    be removed.
    """
    bound = resource_ops(problem, machine)
    if not bound or len(bound) == len(problem.ops):
        return None
    ops = problem.op_by_name
    relay = None if len(bound) <= DENSE_REDUCTION_UP_TO else set(bound)
    adj = adjacency(problem, ii)
    edges = []
    for u in bound:
        dist = _longest(adj, u, relay)
        if dist is None:
            return None  # II is below RecMII; the full model says so
        edges += [Edge(u, v, 0, dist[v] - ops[u].latency) for v in bound if v != u and v in dist]
    return Problem.build(problem.name, [ops[n] for n in bound], edges, problem.source)


def shifted_by_periods(problem: Problem, ii: int, starts: dict[str, int]) -> dict[str, int]:
    """`starts` (every dependence inside each strongly connected component holds) with every dependence
    holding: each component, in topological order, moves later by the fewest whole periods its
    predecessors need. Rows keep, so every modulo reservation does too (classic.py's decomposition)."""
    g = problem.graph
    cond = nx.condensation(g)
    members, of = cond.graph["mapping"], {}
    for n, c in members.items():
        of.setdefault(c, []).append(n)
    lat = {op.name: op.latency for op in problem.ops}
    t = dict(starts)
    for c in nx.topological_sort(cond):
        need = 0
        for n in of[c]:
            for e in problem.in_edges(n):
                if members[e.src] != c:
                    need = max(need, t[e.src] + lat[e.src] + e.delay - ii * e.distance - t[n])
        if need > 0:
            periods = -(-need // ii)
            for n in of[c]:
                t[n] += periods * ii
    broken = next(
        (e for e in problem.edges if t[e.dst] < t[e.src] + lat[e.src] + e.delay - ii * e.distance), None
    )
    if broken is not None:
        raise AssertionError(f"a recurrence's own dependence {broken.src} -> {broken.dst} does not hold")
    return t


def holds_value(problem: Problem, e: Edge, mode: str) -> bool:
    """Whether stretching `e` can cost capacity: its source keeps a value (registers or a shared-memory
    ring) alive until the destination reads it. Classic modulo scheduling has no such families."""
    return mode != "classic" and problem.op_by_name[e.src].space != "none"


HUB = "\0staged"  # mode ws: the one stage every staged op shares, as a node of the arc graph
PATH_BUDGET = 50_000  # simple-path steps tried before the coarser bound


def staged_ops(problem: Problem) -> list[str]:
    """Mode ws: the ops that share one stage (all but loads with nothing before them)."""
    return [op.name for op in problem.ops if not (op.variable_latency and not problem.in_edges(op.name))]


def _arcs(problem: Problem, machine: Machine, mode: str) -> list[tuple[str, str, int, int]]:
    """Arcs (u, v, a, b) of the canonical form's constraint graph (stage_limits): where an arc is
    tight, `k_v - k_u <= a / II + b + (r_u - r_v) / II` whatever the rows and warpgroups.

    Forward, along every dependence (hand-off at most): `k_v - k_u = ceil((lat + delay + hand -
    II*distance + r_u - r_v) / II)`. Backward, along a value edge, from its destination to its
    source, which sits no earlier than the original stretch allows: `k_src - k_dst <= (II*distance
    - lat - delay + r_dst - r_src) / II`. Mode ws: through a hub node at row 0 standing for the shared
    stage. The row terms telescope along a path.
    """
    from warpsched.scheduler.evaluate import handoff  # evaluate imports nothing from the model

    arcs = []
    for e in problem.edges:
        op = problem.op_by_name[e.src]
        hand = 0 if mode == "classic" else handoff(op, machine)
        arcs.append((e.src, e.dst, op.latency + e.delay + hand - 1, 1 - e.distance))
        if holds_value(problem, e, mode) and e.src != e.dst:  # a simple path takes no self-loop
            arcs.append((e.dst, e.src, -(op.latency + e.delay), e.distance))
    if mode == "ws":
        for n in staged_ops(problem):
            arcs += [(n, HUB, 0, 0), (HUB, n, -1, 1)]
    return arcs


def _bound(a: int, b: int, ii_lo: int, ii_hi: int) -> int:
    """floor((a - 1) / II + b + 1), the most stages a path of totals (a, b) climbs, at the worst II."""
    ii = ii_lo if a - 1 >= 0 else ii_hi
    return (a - 1) // ii + b + 1


def _longest_simple_paths(nodes: list[str], arcs, ii_lo: int, ii_hi: int) -> dict[str, int] | None:
    """Per node, the largest `_bound` over simple paths ending there; None past PATH_BUDGET steps."""
    out: dict[str, list[tuple[str, int, int]]] = {n: [] for n in nodes}
    for u, v, a, b in arcs:
        out[u].append((v, a, b))
    best = {n: 0 for n in nodes}
    steps = 0
    for start in nodes:
        stack = [(start, 0, 0, iter(out[start]))]
        on_path = {start}
        while stack:
            node, a, b, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_path.discard(node)
                continue
            v, da, db = nxt
            if v in on_path:
                continue
            steps += 1
            if steps > PATH_BUDGET:
                return None
            best[v] = max(best[v], _bound(a + da, b + db, ii_lo, ii_hi))
            on_path.add(v)
            stack.append((v, a + da, b + db, iter(out[v])))
    return best


def _component_bounds(nodes: list[str], arcs, ii_lo: int, ii_hi: int) -> dict[str, int]:
    """Coarser: each arc on its own (rows farthest apart), each strongly connected component
    bounded by the sum of its nodes' largest steps, the longest path through the condensation."""
    steps = {n: 0 for n in nodes}
    for u, _, a, b in arcs:
        steps[u] = max(steps[u], _bound(a, b, ii_lo, ii_hi))
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((u, v) for u, v, _, _ in arcs)
    cond = nx.condensation(graph)
    weight = {c: sum(steps[n] for n in cond.nodes[c]["members"]) for c in cond}
    longest: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        longest[c] = weight[c] + max((longest[p] for p in cond.predecessors(c)), default=0)
    return {n: longest[cond.graph["mapping"][n]] for n in nodes}


def op_steps(
    problem: Problem, machine: Machine, mode: str, ii: int, ii_hi: int | None = None
) -> dict[str, int]:
    """Per op, the most stages one of its arcs can push the next op of a path (>= 0)."""
    ii_hi = ii if ii_hi is None else ii_hi
    out = {op.name: 0 for op in problem.ops}
    for u, _, a, b in _arcs(problem, machine, mode):
        if u in out:
            out[u] = max(out[u], _bound(a, b, ii, ii_hi))
    return out


def stage_limits(
    problem: Problem, machine: Machine, mode: str, ii: int, ii_hi: int | None = None
) -> dict[str, int]:
    """Largest stage each op can need in the canonical form of any feasible schedule at any II in
    [ii, ii_hi] (DESIGN.md 3.1).

    The canonical form keeps rows and warpgroups and takes the least stages such that every
    dependence holds and no value edge is stretched beyond the original: no lifetime, ring or
    register need grows (stretching an edge that carries no value costs nothing), and mode ws
    keeps its one shared stage. A stage there is 0 or climbs from a stage-0 op along a simple
    path of tight arcs (`_arcs`), whose row terms telescope to less than one stage. The longest
    simple paths are enumerated for kernel-sized graphs, else bounded per component.
    """
    ii_hi = ii if ii_hi is None else ii_hi
    arcs = _arcs(problem, machine, mode)
    nodes = [op.name for op in problem.ops] + ([HUB] if mode == "ws" else [])
    limit = _longest_simple_paths(nodes, arcs, ii, ii_hi) or _component_bounds(nodes, arcs, ii, ii_hi)
    limit.pop(HUB, None)
    if mode == "ws":
        staged = staged_ops(problem)
        top = max((limit[n] for n in staged), default=0)
        limit.update({n: top for n in staged})
    return limit


def least_windows(
    problem: Problem, machine: Machine, mode: str, ii_lo: int, ii_hi: int
) -> dict[str, tuple[int, int]] | None:
    """Start windows holding the least solution (every start >= 0, some stage 0) of any feasible
    choice, for every II in [ii_lo, ii_hi]; None when a recurrence is longer than ii_hi."""
    limit = stage_limits(problem, machine, mode, ii_lo, ii_hi)
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


def least_solution(
    problem: Problem,
    machine: Machine,
    mode: str,
    ii: int,
    starts: dict[str, int],
    groups: dict[str, int] | None,
) -> dict[str, int]:
    """The same schedule in canonical form (stage_limits): the least stages such that the dependences
    hold and no value edge is stretched beyond the original (so no lifetime or ring hold grows)."""
    from warpsched.scheduler.evaluate import edge_cost

    rows = {n: t % ii for n, t in starts.items()}
    stage = {n: t // ii for n, t in starts.items()}
    bounds = []  # k_dst - k_src >= step
    for e in problem.edges:
        need = edge_cost(problem, machine, e, groups) - ii * e.distance - rows[e.dst] + rows[e.src]
        bounds.append((e.src, e.dst, -(-need // ii)))
        if holds_value(problem, e, mode):
            bounds.append((e.dst, e.src, stage[e.src] - stage[e.dst]))  # k_dst - k_src <= original
    if mode == "ws":
        staged = staged_ops(problem)
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


def complete_starts(problem: Problem, ii: int, starts: dict[str, int]) -> dict[str, int]:
    """Every op's start, given those of some ops (a classic solution of the resource-bound ops alone, when
    no later level completed it): the others as early as their placed predecessors allow, else as late as
    their placed successors allow, else as early as possible among themselves. In classic scheduling the
    others occupy no unit, and the reduction (`reduced_classic`) kept the longest paths between the placed
    ops, so every dependence holds. Shifted by whole periods so that the first stage is 0."""
    if len(starts) == len(problem.ops):
        return dict(starts)
    lat = {op.name: op.latency for op in problem.ops}
    weight = {id(e): lat[e.src] + e.delay - ii * e.distance for e in problem.edges}
    t = dict(starts)
    _relax(problem, t, weight, lambda e: (e.src, e.dst), max, frozenset(starts))  # after placed predecessors
    _relax(problem, t, weight, lambda e: (e.dst, e.src), min, frozenset(t))  # before placed successors
    rest = [op.name for op in problem.ops if op.name not in t]
    t.update({n: 0 for n in rest})
    _relax(
        problem, t, weight, lambda e: (e.src, e.dst), max, frozenset(t) - frozenset(rest)
    )  # among themselves
    broken = next((e for e in problem.edges if t[e.dst] < t[e.src] + weight[id(e)]), None)
    if broken is not None:
        raise AssertionError(f"completing a partial schedule broke {broken.src} -> {broken.dst}")
    shift = ii * (min(t.values()) // ii)
    return {op.name: t[op.name] - shift for op in problem.ops}


def _relax(
    problem: Problem, t: dict[str, int], weight: dict[int, int], ends, better, fixed: frozenset
) -> None:
    """Bellman-Ford from the ops in `t` along `ends(e) = (from, to)`: `to` (unless fixed) takes `better` of
    its
    value and from's value plus (or, backwards, minus) the edge's weight."""
    sign = 1 if better is max else -1
    by_from: dict[str, list] = {}
    for e in problem.edges:
        by_from.setdefault(ends(e)[0], []).append(e)
    queue = deque(n for n in t)
    queued = set(queue)
    while queue:
        x = queue.popleft()
        queued.discard(x)
        for e in by_from.get(x, ()):
            y = ends(e)[1]
            if y in fixed:
                continue
            value = t[x] + sign * weight[id(e)]
            if y not in t or better(t[y], value) != t[y]:
                t[y] = value
                if y not in queued:
                    queue.append(y)
                    queued.add(y)
