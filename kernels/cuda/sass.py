"""Read the SASS of a built kernel: its main loops and what one trip through each issues (DESIGN.md 6.7).

`cuobjdump -sass` prints one instruction per line with its address. A loop is a backward branch; the
main loops are the outermost ones that hold an HGMMA (a consumer warpgroup's trip) or a UTMALDG (the
producer's). One trip is read as the straight path through the loop body: predicated forward branches
fall through (the live path), unconditional ones are taken, and the short backward branches inside a
body (an mbarrier try-wait's retry, an elected thread's `BRA.U.ANY`) are not retried. The result is the
sequence of instructions one warp of the warpgroup issues per trip, which kernels/perf.py times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

from warpsched.scheduler.errors import InputError

_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Za-z0-9_.]*)\s*([^;]*);")
_HGMMA = re.compile(r"HGMMA\.(\d+)x(\d+)x(\d+)")
_DEPBAR = re.compile(r"gsb0,\s*0x([0-9a-f]+)")
_BARRIER = re.compile(r"^(0x[0-9a-f]+|\d+)(?:,\s*(0x[0-9a-f]+|\d+))?")


@dataclass(frozen=True)
class Instruction:
    address: int
    predicate: str  # "" when unpredicated, else e.g. "@!P0"
    opcode: str  # with its modifiers: "HGMMA.64x256x16.F32.BF16"
    operands: str

    @property
    def base(self) -> str:
        return self.opcode.split(".", 1)[0]

    def branch_target(self) -> int | None:
        if self.base != "BRA":
            return None
        m = re.search(r"0x([0-9a-f]+)", self.operands)
        return int(m.group(1), 16) if m else None

    def mma_shape(self) -> tuple[int, int, int] | None:
        """(M, N, K) of an HGMMA."""
        m = _HGMMA.match(self.opcode)
        return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None

    @property
    def commits(self) -> bool:
        """An HGMMA that closes a wgmma group (`gsb0`): a later `WARPGROUP.DEPBAR` counts it."""
        return self.base == "HGMMA" and "gsb0" in self.operands

    @property
    def registers_a(self) -> bool:
        """An HGMMA whose A operand comes from registers (RS) rather than a shared-memory descriptor."""
        return self.base == "HGMMA" and re.match(r"\s*R\d+,\s*R\d+,\s*gdesc", self.operands) is not None

    def depbar_allowed(self) -> int | None:
        """How many wgmma groups a `WARPGROUP.DEPBAR.LE gsb0, N` leaves in flight."""
        if self.base != "WARPGROUP" or ".DEPBAR" not in self.opcode:
            return None
        m = _DEPBAR.search(self.operands)
        return int(m.group(1), 16) if m else 0

    def named_barrier(self) -> tuple[int, int] | None:
        """(barrier id, thread count) of a `BAR.SYNC`/`BAR.ARV`; count 0 means the whole CTA."""
        if self.base != "BAR" or not (".SYNC" in self.opcode or ".ARV" in self.opcode):
            return None
        m = _BARRIER.match(self.operands.strip())
        if not m:
            return None
        return int(m.group(1), 0), int(m.group(2), 0) if m.group(2) else 0


@dataclass(frozen=True)
class Loop:
    start: int  # address of the branch target (the loop head)
    end: int  # address of the backward branch
    body: tuple[Instruction, ...]  # one trip's straight path, in issue order
    before: tuple[Instruction, ...] = ()  # named-barrier arrivals between the previous main loop and this one

    @property
    def mmas(self) -> tuple[Instruction, ...]:
        return tuple(i for i in self.body if i.base == "HGMMA")


def parse(sass: str, entry: str) -> list[Instruction]:
    """The instructions of function `entry` in `cuobjdump -sass` output."""
    marker = f"Function : {entry}"
    if marker not in sass:
        raise InputError(f"the SASS holds no function {entry!r}; was it built from this kernel?")
    text = sass.split(marker, 1)[1].split("Function : ", 1)[0]
    out = []
    for line in text.splitlines():
        m = _LINE.search(line)
        if m:
            out.append(
                Instruction(int(m.group(1), 16), (m.group(2) or "").strip(), m.group(3), m.group(4).strip())
            )
    return out


def blocks(code: list[Instruction]) -> nx.DiGraph:
    """The control-flow graph: nodes are the indices of each basic block's first instruction (attribute
    `code`: its instructions), edges the branches and fall-throughs. A predicated branch may go either way;
    an unpredicated one and EXIT end their block's straight path."""
    index = {i.address: n for n, i in enumerate(code)}
    leaders = {0}
    for n, i in enumerate(code):
        target = i.branch_target()
        if target is not None and target in index:
            leaders.add(index[target])
        if target is not None or i.base == "EXIT":
            leaders.add(n + 1)
    heads = sorted(x for x in leaders if x < len(code))
    graph = nx.DiGraph()
    for head, nxt in zip(heads, heads[1:] + [len(code)]):
        graph.add_node(head, code=tuple(code[head:nxt]))
    for head, nxt in zip(heads, heads[1:] + [len(code)]):
        last = code[nxt - 1]
        target = last.branch_target()
        if target is not None and target in index:
            graph.add_edge(head, index[target])
        ends = (target is not None or last.base == "EXIT") and not last.predicate
        if not ends and nxt < len(code):
            graph.add_edge(head, nxt)
    return graph


def steady_loops(code: list[Instruction]) -> list[Loop]:
    """One loop per consumer warpgroup: the trip its warps run in the steady state.

    Each role's code is what is reachable from its `setmaxnreg` (USETMAXREG); its main loop is the
    strongly connected part of that code holding HGMMAs. ptxas may split a guarded loop into versions and
    lay them out far apart, so a trip is read from the graph, not the addresses: the longest path (most
    HGMMAs, then most instructions) from a loop entry back to it, never following an inner back edge (an
    mbarrier try-wait's retry, an elected thread's loop) twice: the steady state runs every stage live."""
    graph = blocks(code)
    starts = {_block_of(graph, n) for n, i in enumerate(code) if i.base == "USETMAXREG"}
    out = []
    for start in sorted(starts):
        alone = graph.subgraph(set(graph.nodes) - (starts - {start}))  # a role ends where another begins
        role = alone.subgraph(nx.descendants(alone, start) | {start})
        if not any(x.base == "HGMMA" for b in role.nodes for x in graph.nodes[b]["code"]):
            continue
        best, best_part = None, set()
        for part in nx.strongly_connected_components(role):
            if len(part) < 2 and not role.has_edge(next(iter(part)), next(iter(part))):
                continue
            if not any(x.base == "HGMMA" for b in part for x in graph.nodes[b]["code"]):
                continue
            trip = _longest_trip(graph, role.subgraph(part))
            if best is None or _weight(trip) > _weight(best):
                best, best_part = trip, part
        if best:
            entry = _block_of(graph, code.index(best[0]))
            ahead = (nx.ancestors(role, entry) - best_part) | {start}
            before = tuple(
                x
                for b in sorted(ahead)
                for x in graph.nodes[b]["code"]
                if x.named_barrier() and ".ARV" in x.opcode
            )
            body = tuple(x for x in best if x.branch_target() is None)
            out.append(Loop(best[0].address, best[-1].address, body, before))
    return out


def _block_of(graph, n: int) -> int:
    return max(b for b in graph.nodes if b <= n)


_WORK = {"HGMMA": 0, "BAR": 1, "MUFU": 2, "LDS": 3, "LDSM": 3, "SHFL": 3, "FFMA": 4, "FMUL": 4, "FADD": 4}


def _weight(trip) -> tuple[int, ...]:
    """How a trip's paths compare: the steady state runs every stage's work (wgmma, the order token's
    barriers, special functions, shared loads and shuffles, floating-point math), and of the rest
    (guards, masking, index math) the least: a masking block runs only in the last trips."""
    counts = [0] * 6
    for x in trip:
        counts[_WORK.get(x.base, 5)] += 1
    counts[5] = -counts[5]
    return tuple(counts)


def _longest_trip(graph, loop) -> list[Instruction]:
    """The heaviest cycle through one entry of `loop` that follows no inner back edge."""
    entries = [b for b in loop.nodes if any(p not in loop for p in graph.predecessors(b))] or [
        min(loop.nodes)
    ]
    best: list[Instruction] = []
    for entry in entries:
        order, dag = _acyclic(loop, entry)
        score, via = {}, {}
        for b in order:  # reverse topological: successors first
            own = _weight(graph.nodes[b]["code"])
            closes = loop.has_edge(b, entry)
            options = [(own, None)] if closes else []
            options += [(tuple(a + c for a, c in zip(own, score[s])), s) for s in dag[b] if s in score]
            if options:
                score[b], via[b] = max(options, key=lambda o: o[0])
        if entry not in score:
            continue
        path, b = [], entry
        while b is not None:
            code = graph.nodes[b]["code"]
            nxt = via[b] if via[b] is not None else entry
            path.extend(_executed(code, code[-1].branch_target() == graph.nodes[nxt]["code"][0].address))
            b = via[b]
        if _weight(path) > _weight(best):
            best = path
    return best


def _acyclic(loop, entry: int) -> tuple[list[int], dict[int, list[int]]]:
    """Depth-first from `entry` without recursion: the blocks in post-order, and each block's successors
    less its back edges (edges to a block on the current path: the loop's own and the inner retries)."""
    order, dag, on_path = [], {entry: []}, {entry}
    stack = [(entry, iter(sorted(loop.successors(entry))))]
    while stack:
        block, successors = stack[-1]
        nxt = next(successors, None)
        if nxt is None:
            stack.pop()
            on_path.discard(block)
            order.append(block)
        elif nxt not in on_path:
            dag[block].append(nxt)
            if nxt not in dag:
                dag[nxt] = []
                on_path.add(nxt)
                stack.append((nxt, iter(sorted(loop.successors(nxt)))))
    return order, dag


def _executed(code: tuple[Instruction, ...], taken: bool) -> list[Instruction]:
    """A block's instructions on a path that takes (or not) its closing branch: instructions predicated on
    the branch's own condition run only when it is taken, on its negation only when not (ptxas puts an
    else side's short work, such as a token's arrive, before the branch under the same predicate)."""
    last = code[-1]
    if last.branch_target() is None or not last.predicate:
        return list(code)
    condition = last.predicate.lstrip("@")
    negated = condition[1:] if condition[:1] == "!" else "!" + condition
    register = condition.lstrip("!")
    out = []
    for n, i in enumerate(code):
        after_write = not any(_writes(x, register) for x in code[n + 1 : -1])
        guard = i.predicate.lstrip("@")
        if after_write and guard == condition and not taken:
            continue
        if after_write and guard == negated and taken:
            continue
        out.append(i)
    return out


def _writes(i: Instruction, register: str) -> bool:
    first = i.operands.split(",", 1)[0].strip()
    return first == register
