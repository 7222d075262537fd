"""Lower bounds on the initiation interval: ResMII and RecMII.

ResMII: every unit of finite capacity must fit the total occupancy of its ops
into II rows. RecMII: around every dependence cycle, II times the cycle's total
distance must cover its total latency plus delays. Hand-offs are left out (they
depend on the warpgroup assignment and are >= 0), so both are valid bounds in
every mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import networkx as nx

from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine


@dataclass(frozen=True)
class Bounds:
    res_mii: int
    rec_mii: int

    @property
    def mii(self) -> int:
        return max(1, self.res_mii, self.rec_mii)


def res_mii(problem: Problem, machine: Machine) -> int:
    load: dict[str, int] = {}
    for op in problem.ops:
        load[op.unit] = load.get(op.unit, 0) + op.occupancy
    best = 1
    for unit, total in load.items():
        cap = machine.capacity(unit)
        if cap:  # None: unlimited; 0 with load is rejected by Problem.check
            best = max(best, ceil(total / cap))
    return best


def rec_mii(problem: Problem) -> int:
    """Smallest II >= 1 with no cycle of positive weight `latency + delay - II * distance`."""
    lat = {op.name: op.latency for op in problem.ops}
    g = problem.graph
    best = 1
    for scc in nx.strongly_connected_components(g):
        edges = [d["edge"] for u, v, d in g.subgraph(scc).edges(data=True)]
        if not edges:
            continue
        lo, hi = best, max(best, sum(lat[e.src] + e.delay for e in edges))
        if not _has_positive_cycle(edges, lat, lo):
            continue
        while lo < hi:  # invariant: lo infeasible, hi feasible
            mid = (lo + hi) // 2
            if mid == lo:
                break
            if _has_positive_cycle(edges, lat, mid):
                lo = mid
            else:
                hi = mid
        best = hi
    return best


def _has_positive_cycle(edges, lat, ii: int) -> bool:
    h = nx.DiGraph()
    for e in edges:
        w = ii * e.distance - lat[e.src] - e.delay  # a positive cycle in -w is a negative cycle in w
        if h.has_edge(e.src, e.dst):
            w = min(w, h[e.src][e.dst]["w"])
        h.add_edge(e.src, e.dst, w=w)
    return nx.negative_edge_cycle(h, weight="w")


def bounds(problem: Problem, machine: Machine) -> Bounds:
    return Bounds(res_mii(problem, machine), rec_mii(problem))
