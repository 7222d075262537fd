"""Iterative modulo scheduling (Rau, MICRO'94 / IJPP 1996): the baseline and the CP-SAT hint.

Warpgroups are assigned by fixed policies, as a heuristic compiler would:
variable-latency ops (TMA) on a producer warpgroup, the rest one consumer
warpgroup per independent chain, or all on one consumer (policy_groups). At each candidate II the ops are
placed by height-based
priority into the modulo reservation tables of their unit and of their
warpgroup's issue slot; when no slot is free the op is forced in and the ops it
collides with are evicted, within a budget. The result must then fit the
register and shared-memory limits (family 5) and the mode's rules.

Rows are scanned with numpy window sums, so GPU-sized IIs (thousands of
cycles) cost the same as HLS-sized ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from warpsched.scheduler import evaluate
from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine


@dataclass(frozen=True)
class HeuristicResult:
    ii: int
    starts: dict[str, int]
    groups: dict[str, int] | None
    tried: tuple[int, ...]


def policy_groups(problem: Problem, machine: Machine, mode: str) -> list[dict[str, int]]:
    """The fixed warpgroup policies a heuristic compiler would try, in order.

    Variable-latency ops (TMA) go to a producer warpgroup. The rest go either one consumer
    warpgroup per independent chain (a connected component of the fixed-latency ops, as FA3
    gives each Q tile its warpgroup; round-robin when there are more chains than warpgroups),
    or all to one consumer. Mode `swp` allows only the latter.
    """
    if mode == "classic" or not machine.has_warpgroups:
        return [None]
    vl = [op.name for op in problem.ops if op.variable_latency]
    fixed = [op.name for op in problem.ops if not op.variable_latency]
    if vl and fixed and machine.max_warpgroups < 2:
        return []
    first = 1 if vl and fixed else 0
    single = {**{n: 0 for n in vl}, **{n: first for n in fixed}}
    if mode == "swp":
        return [single]
    chains = [
        sorted(c, key=[op.name for op in problem.ops].index)
        for c in nx.weakly_connected_components(problem.graph.subgraph(fixed))
    ]
    chains.sort(key=lambda c: [op.name for op in problem.ops].index(c[0]))
    slots = max(1, machine.max_warpgroups - first)
    split = {n: 0 for n in vl}
    for i, chain in enumerate(chains):
        split.update({n: first + i % slots for n in chain})
    return [split, single] if split != single else [single]


def candidate_iis(mii: int, max_ii: int, linear: int = 32, growth: float = 0.02):
    """MII, MII+1, ... for `linear` steps, then steps of ~2%; GPU-sized IIs (over 256 cycles) step
    by ~2% from the start: one cycle more rarely changes what a list scheduler can do there."""
    ii = mii
    while ii <= max_ii:
        yield ii
        ii = ii + 1 if ii < mii + linear and ii <= 256 else ii + max(1, int(ii * growth))


def serial_ii(problem: Problem, machine: Machine) -> int:
    """An II at which one iteration at a time always fits (up to capacity limits)."""
    total = 0
    for op in problem.ops:
        out = max([e.delay for e in problem.out_edges(op.name)], default=0)
        total += max(op.occupancy, op.issue, 1) + op.latency + out + evaluate.handoff(op, machine)
    return max(total, 1)


def schedule(
    problem: Problem, machine: Machine, mode: str, mii: int, max_ii: int | None = None, budget_ratio: int = 6
) -> HeuristicResult | None:
    """The first candidate II at which IMS finds a schedule that fits; None if none up to `max_ii`."""
    policies = policy_groups(problem, machine, mode)
    max_ii = max_ii or serial_ii(problem, machine)
    fallback = None  # one iteration at a time: always a schedule when anything fits the capacities
    for groups in policies:
        serial = serial_schedule(problem, machine, groups, mii)
        if (
            serial is not None
            and serial[0] <= max_ii
            and (fallback is None or serial[0] < fallback.ii)
            and (groups is None or evaluate.fits(problem, machine, serial[0], serial[1], groups) is None)
        ):
            fallback = HeuristicResult(serial[0], serial[1], groups, ())
    if fallback is not None:
        max_ii = fallback.ii - 1
    tried = []
    for ii in candidate_iis(mii, max_ii):
        tried.append(ii)
        for groups in policies:
            starts = modulo_schedule(problem, machine, ii, groups, budget_ratio)
            if starts is None:
                continue
            if mode == "ws":
                starts = _same_stage(problem, ii, starts)
                if starts is None:
                    continue
            if groups is not None and evaluate.fits(problem, machine, ii, starts, groups) is not None:
                continue
            return HeuristicResult(ii, starts, groups, tuple(tried))
    return fallback


def serial_schedule(
    problem: Problem, machine: Machine, groups: dict[str, int] | None, mii: int
) -> tuple[int, dict[str, int]] | None:
    """Every op after the previous one has finished, in dependence order: an II no smaller than
    one iteration, at which nothing overlaps (units, issue, stages all trivially fine)."""
    index = {op.name: i for i, op in enumerate(problem.ops)}
    same = nx.DiGraph()
    same.add_nodes_from(index)
    same.add_edges_from((e.src, e.dst) for e in problem.edges if e.distance == 0)
    starts, cursor = {}, 0
    for name in nx.lexicographical_topological_sort(same, key=index.__getitem__):
        op = problem.op_by_name[name]
        ready = max(
            [
                starts[e.src] + evaluate.edge_cost(problem, machine, e, groups)
                for e in problem.in_edges(name)
                if e.distance == 0
            ],
            default=0,
        )
        starts[name] = max(cursor, ready)
        cursor = starts[name] + max(op.latency, op.occupancy, op.issue, 1)
    ii = max(mii, cursor)
    for e in problem.edges:
        if e.distance:
            need = starts[e.src] + evaluate.edge_cost(problem, machine, e, groups) - starts[e.dst]
            ii = max(ii, -(-need // e.distance))
    return ii, starts


def _same_stage(problem: Problem, ii: int, starts: dict[str, int]) -> dict[str, int] | None:
    """Rotate the whole schedule so that every non-streaming op lands in one stage, if their span allows."""
    fixed = [
        starts[op.name] for op in problem.ops if not (op.variable_latency and not problem.in_edges(op.name))
    ]
    if not fixed or max(fixed) - min(fixed) >= ii:
        return None if fixed else starts
    shift = (-min(fixed)) % ii
    return {n: t + shift for n, t in starts.items()}


class _Table:
    """Modulo reservation table of one resource."""

    def __init__(self, ii: int, capacity: int):
        self.ii, self.capacity = ii, capacity
        self.usage = np.zeros(ii, dtype=np.int64)

    def need(self, start: int, length: int) -> np.ndarray:
        """Rows the cycles [start, start + length) fall on, counted (evaluate.fold, vectorised)."""
        ii = self.ii
        rows = np.full(ii, length // ii, dtype=np.int64)
        first, rem = start % ii, length % ii
        end = first + rem
        rows[first : min(end, ii)] += 1
        if end > ii:
            rows[: end - ii] += 1
        return rows

    def free_rows(self, length: int) -> np.ndarray:
        """Boolean per row r: an op of this length starting at row r fits."""
        ii = self.ii
        q, rem = divmod(length, ii)
        if q and self.usage.max() + q > self.capacity:
            return np.zeros(ii, dtype=bool)
        if rem == 0:
            return np.ones(ii, dtype=bool)
        bad = (self.usage + q + 1 > self.capacity).astype(np.int64)
        prefix = np.concatenate(([0], np.cumsum(np.concatenate((bad, bad)))))
        rows = np.arange(ii)
        return (prefix[rows + rem] - prefix[rows]) == 0

    def add(self, start: int, length: int, sign: int = 1) -> None:
        self.usage += sign * self.need(start, length)


def modulo_schedule(
    problem: Problem, machine: Machine, ii: int, groups: dict[str, int] | None, budget_ratio: int = 6
) -> dict[str, int] | None:
    """Rau's IMS at one II; starts shifted so the first stage is 0, or None."""
    ops = problem.op_by_name
    weight = {id(e): evaluate.edge_cost(problem, machine, e, groups) - ii * e.distance for e in problem.edges}
    height = _heights(problem, weight)
    if height is None:
        return None  # a recurrence (with hand-offs) is longer than II
    tables: dict[tuple, _Table] = {}
    reservations: dict[str, list[tuple[tuple, int]]] = {}
    for op in problem.ops:
        res = []
        cap = machine.units.get(op.unit)
        if cap is not None and op.occupancy > 0:
            if op.occupancy > cap * ii:
                return None
            res.append((("unit", op.unit), op.occupancy))
            tables.setdefault(("unit", op.unit), _Table(ii, cap))
        if groups is not None and op.issue > 0:
            if op.issue > ii:
                return None
            res.append((("wg", groups[op.name]), op.issue))
            tables.setdefault(("wg", groups[op.name]), _Table(ii, 1))
        reservations[op.name] = res

    order = sorted(ops, key=lambda n: (-height[n], list(ops).index(n)))
    rank = {n: i for i, n in enumerate(order)}
    start: dict[str, int] = {}
    last_try: dict[str, int] = {}
    unscheduled = list(order)
    budget = budget_ratio * len(ops)
    while unscheduled:
        if budget <= 0:
            return None
        budget -= 1
        name = min(unscheduled, key=rank.__getitem__)
        unscheduled.remove(name)
        estart = 0
        for e in problem.in_edges(name):
            if e.src in start and e.src != name:
                estart = max(estart, start[e.src] + weight[id(e)])
        free = np.ones(ii, dtype=bool)
        for key, length in reservations[name]:
            free &= tables[key].free_rows(length)
        rows = (np.arange(estart, estart + ii)) % ii
        hits = np.nonzero(free[rows])[0]
        if hits.size:
            t = estart + int(hits[0])
        else:
            t = estart if name not in last_try or estart > last_try[name] else last_try[name] + 1
            for other in _resource_conflicts(name, t, reservations, start, tables):
                _unplace(other, start, reservations, tables, unscheduled)
        for e in problem.in_edges(name):  # predecessors now violated
            if e.src in start and e.src != name and t < start[e.src] + weight[id(e)]:
                _unplace(e.src, start, reservations, tables, unscheduled)
        for e in problem.out_edges(name):  # successors now violated
            if e.dst in start and e.dst != name and start[e.dst] < t + weight[id(e)]:
                _unplace(e.dst, start, reservations, tables, unscheduled)
        start[name] = t
        last_try[name] = t
        for key, length in reservations[name]:
            tables[key].add(t, length)
    first_stage = min(start.values()) // ii
    return {n: start[n] - first_stage * ii for n in ops}


def _resource_conflicts(name, t, reservations, start, tables) -> list[str]:
    """Scheduled ops to evict so that `name` fits at t (all holders of an over-full row)."""
    victims = []
    for key, length in reservations[name]:
        table = tables[key]
        over = table.usage + table.need(t, length) > table.capacity
        if not over.any():
            continue
        for other, ot in start.items():
            for okey, olen in reservations[other]:
                if okey == key and (table.need(ot, olen)[over] > 0).any() and other not in victims:
                    victims.append(other)
    return victims


def _unplace(name, start, reservations, tables, unscheduled) -> None:
    if name not in start:
        return
    t = start.pop(name)
    for key, length in reservations[name]:
        tables[key].add(t, length, -1)
    unscheduled.append(name)


def _heights(problem: Problem, weight: dict[int, int]) -> dict[str, int] | None:
    """Height-based priority: longest weighted path to any op (Bellman-Ford style); None on a positive
    cycle."""
    height = {op.name: 0 for op in problem.ops}
    for _ in range(len(problem.ops) + 1):
        changed = False
        for e in problem.edges:
            h = height[e.dst] + weight[id(e)]
            if h > height[e.src]:
                height[e.src] = h
                changed = True
        if not changed:
            return height
    return None
