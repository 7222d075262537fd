"""The scheduling IR: ops, edges and the loop-body problem (DESIGN.md section 2).

A `Problem` is one iteration of a kernel's main loop. Its ops and edges are
frozen dataclasses; `Problem.graph` is a networkx view (a MultiDiGraph, since
two ops may be linked by several edges with different distances).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterable

import networkx as nx

from warpsched.scheduler.errors import InputError

if TYPE_CHECKING:
    from warpsched.scheduler.machine import Machine

ISSUERS = ("thread", "warp", "warpgroup")
SPACES = ("none", "regs", "smem")


@dataclass(frozen=True)
class Op:
    """One tile-level operation of the loop body.

    `occupancy` is how long the functional unit is busy per issue, `issue` how
    long the issuing warpgroup's instruction stream is busy (small for async
    ops such as wgmma and TMA, the full cost for synchronous CUDA-core math),
    `latency` when its result is usable. The value it produces lives in
    `space` (`regs`, `smem` or `none`) and takes `bytes` (per iteration) and,
    in registers, `regs_per_thread` of its warpgroup. `variable_latency` marks
    ops (TMA loads) whose latency varies too much to schedule statically next
    to fixed-latency work: they get warpgroups of their own. `index` tells the
    replicas of a repeated op apart (a query tile, an MMA slice: 0, 1, ...;
    None for an op of its own), so that no pass parses names.
    """

    name: str
    unit: str
    latency: int
    occupancy: int = 1
    issue: int = 0
    kind: str = "op"
    issuer: str = "warpgroup"
    bytes: int = 0
    space: str = "none"
    regs_per_thread: int = 0
    variable_latency: bool = False
    index: int | None = None


@dataclass(frozen=True)
class Edge:
    """`dst` of iteration i + distance uses `src` of iteration i,
    no earlier than `latency(src) + delay` cycles after `src` starts."""

    src: str
    dst: str
    distance: int = 0
    delay: int = 0


@dataclass(frozen=True)
class Problem:
    """A loop body to schedule: ops in a fixed order and the edges between them."""

    name: str
    ops: tuple[Op, ...]
    edges: tuple[Edge, ...]
    source: dict = field(default_factory=dict, compare=False)
    reserved_smem: int = 0  # shared memory held outside the loop (a Q tile, an epilogue buffer)

    @staticmethod
    def build(
        name: str,
        ops: Iterable[Op],
        edges: Iterable[Edge],
        source: dict | None = None,
        reserved_smem: int = 0,
    ) -> "Problem":
        return Problem(name, tuple(ops), tuple(edges), dict(source or {}), reserved_smem)

    @cached_property
    def op_by_name(self) -> dict[str, Op]:
        return {op.name: op for op in self.ops}

    @cached_property
    def graph(self) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph(name=self.name)
        for op in self.ops:
            g.add_node(op.name, op=op)
        for e in self.edges:
            g.add_edge(e.src, e.dst, edge=e)
        return g

    def out_edges(self, name: str) -> list[Edge]:
        return [d["edge"] for _, _, d in self.graph.out_edges(name, data=True)]

    def in_edges(self, name: str) -> list[Edge]:
        return [d["edge"] for _, _, d in self.graph.in_edges(name, data=True)]

    def check(self, machine: "Machine | None" = None) -> None:
        """Raise `InputError` with one sentence for the first thing wrong with this problem."""
        if not self.ops:
            raise InputError(f"problem {self.name!r} has no ops; a loop body needs at least one op")
        if (
            not isinstance(self.reserved_smem, int)
            or isinstance(self.reserved_smem, bool)
            or self.reserved_smem < 0
        ):
            raise InputError(
                f"problem {self.name!r} reserves {self.reserved_smem!r} bytes of shared memory; use a whole "
                "number >= 0"
            )
        seen: set[str] = set()
        for op in self.ops:
            _check_op(op)
            if op.name in seen:
                raise InputError(f"op name {op.name!r} is used twice; give every op a unique name")
            seen.add(op.name)
        for e in self.edges:
            for end in (e.src, e.dst):
                if end not in seen:
                    raise InputError(f"edge {e.src} -> {e.dst} names op {end!r}, which is not in the graph")
            for attr in ("distance", "delay"):
                value = getattr(e, attr)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise InputError(
                        f"edge {e.src} -> {e.dst} has {attr} {value!r}; it must be a whole number"
                    )
            if e.distance < 0:
                raise InputError(
                    f"edge {e.src} -> {e.dst} has negative distance {e.distance}; distances count iterations "
                    "and must be >= 0"
                )
        same_iteration = nx.DiGraph()
        same_iteration.add_nodes_from(seen)
        same_iteration.add_edges_from((e.src, e.dst) for e in self.edges if e.distance == 0)
        try:
            cycle = nx.find_cycle(same_iteration)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            names = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise InputError(
                f"the cycle {names} has zero total distance, so an op would wait for itself in the same "
                "iteration; give one of its edges distance >= 1"
            )
        if machine is not None:
            _check_against_machine(self, machine)


def _check_op(op: Op) -> None:
    if not op.name:
        raise InputError("an op has an empty name; give every op a unique name")
    for attr in ("latency", "occupancy", "issue", "bytes", "regs_per_thread"):
        value = getattr(op, attr)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(
                f"op {op.name!r} has {attr} {value!r}; it must be a whole number of cycles or bytes"
            )
        if value < 0:
            raise InputError(f"op {op.name!r} has negative {attr} {value}; it must be >= 0")
    if op.index is not None and (not isinstance(op.index, int) or isinstance(op.index, bool) or op.index < 0):
        raise InputError(
            f"op {op.name!r} has index {op.index!r}; a replica index is a whole number >= 0 (or absent)"
        )
    if op.issuer not in ISSUERS:
        raise InputError(f"op {op.name!r} has issuer {op.issuer!r}; use one of {', '.join(ISSUERS)}")
    if op.space not in SPACES:
        raise InputError(f"op {op.name!r} keeps its value in {op.space!r}; use one of {', '.join(SPACES)}")
    if op.regs_per_thread and op.space != "regs":
        raise InputError(
            f"op {op.name!r} has regs_per_thread {op.regs_per_thread} but its value lives in {op.space!r}; "
            "set space: regs or drop regs_per_thread"
        )


def _check_against_machine(problem: Problem, machine: "Machine") -> None:
    for op in problem.ops:
        if op.unit not in machine.units:
            known = ", ".join(sorted(machine.units))
            raise InputError(
                f"op {op.name!r} uses unit {op.unit!r}, which machine {machine.name!r} does not have (it "
                f"has: {known})"
            )
        cap = machine.units[op.unit]
        if cap == 0 and op.occupancy > 0:
            raise InputError(
                f"op {op.name!r} occupies unit {op.unit!r}, which has capacity 0 on machine {machine.name!r}"
            )
        if machine.max_warpgroups and problem.reserved_smem > machine.smem_bytes:
            raise InputError(
                f"problem {problem.name!r} reserves {problem.reserved_smem} bytes of shared memory outside "
                "the loop, "
                f"more than the {machine.smem_bytes} machine {machine.name!r} has"
            )
        if machine.max_warpgroups:
            most = machine.reg_max - machine.register_overhead
            if op.regs_per_thread > most:
                raise InputError(
                    f"op {op.name!r} needs {op.regs_per_thread} registers per thread but a warpgroup can "
                    f"hold at most {most} "
                    f"({machine.reg_max} minus {machine.register_overhead} reserved); split the op into "
                    "smaller tiles"
                )
            if op.space == "smem" and op.bytes + machine.ring_slot_overhead > machine.smem_bytes:
                raise InputError(
                    f"op {op.name!r} produces {op.bytes} bytes of shared memory, which with its "
                    f"{machine.ring_slot_overhead}-byte barrier pair "
                    f"exceeds the {machine.smem_bytes} a CTA has; use a smaller tile"
                )
