"""Pipeline program: what each warpgroup executes, derived from a schedule alone (DESIGN.md 6.1).

A schedule gives every op a start `t = stage * II + row` and a warpgroup. The program runs a loop
of trips `j = 0 .. N + S - 2` (S stages); at trip `j` a warpgroup executes its ops in row order,
each for iteration `j - stage` when that iteration exists (the guarded first and last trips are
the prologue and the epilogue). Values reach their readers three ways:

- a **ring** in shared memory, for every value in shared memory (TMA loads) and every register
  value read by another warpgroup: `depth` slots with a full and an empty mbarrier each; the
  producer waits `empty` (parity of the round before), writes (TMA completes on `full` with its
  transaction bytes; a register value is stored and arrives), the readers wait `full` and each
  reading warpgroup arrives on `empty` after its last read of that iteration;
- **register copies** inside a warpgroup (modulo variable expansion): a value read up to `k - 1`
  trips after it is written lives in copy `iteration % k`;
- an **order token** per asynchronous unit (the tensor core) where the schedule puts ops of two
  warpgroups on it (the named barriers of ping-pong): each op waits for the one before it in the
  period's row order;
- **deferred waits** for the wgmma batches a warpgroup issues (DESIGN.md 6.1.1): in the steady state a
  batch completes at a `warpgroup_wait<pending>` the program places before the first step that needs it
  done (a read of its result, a rewrite of a register it reads, its own next issue unless it accumulates,
  the refill of a slot it reads) or, earlier, before the first step the schedule starts at or after its
  completion; the slots it read go back there. The guarded prologue and epilogue trips wait right after
  the issue (a wait under another guard than its issue makes ptxas serialize every wgmma of the kernel).

Nothing here is guessed: depths come from the schedule file, copies and releases from the rows
and stages. The CPU simulator (kernels/simulate.py) executes this program.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.schedule import Placement, Schedule
from warpsched.models.kinds import OpKind
from warpsched.models.ops import ASYNC_READER

# the tensor-core ops a warpgroup issues and later waits for (wgmma batches); tcgen05 completes otherwise
WGMMA_KINDS = frozenset({OpKind.MMA, OpKind.WGMMA_RS, OpKind.WGMMA_QK, OpKind.WGMMA_PV})


@dataclass(frozen=True)
class Read:
    value: str  # the producing op
    distance: int  # reads iteration `it - distance` of it
    via: str  # "ring" or "register"


@dataclass(frozen=True)
class AsyncWait:
    """Before a step, in the steady state: the wgmma batch `op` (stage `stage`) issued `trips` trips earlier
    has completed once `warpgroup_wait<pending>` returns (the `pending` batches this warpgroup issued after
    it may stay in flight); then the slots it read go back (`releases`, distances from `op`'s iteration)."""

    op: str
    stage: int
    trips: int
    pending: int
    releases: tuple[tuple[str, int, int], ...]
    fence: bool = False  # a proxy fence before those releases (see Step.fence)


@dataclass(frozen=True)
class Step:
    op: str
    kind: str
    stage: int  # at trip j this step works for iteration j - stage
    row: int
    reads: tuple[Read, ...]
    releases: tuple[tuple[str, int, int], ...]  # (ring, distance, finish): after this step, release iteration
    # it - distance once every read of it in this warpgroup completed, `finish` cycles after this step's start
    writes_ring: bool  # the value goes to a ring (TMA load or a register value other warpgroups read)
    token: tuple[str, int] | None  # (unit, position in the period's order) where a unit is shared in order
    index: int | None = None  # the op's replica index (Op.index: its query tile or MMA slice)
    unit: str = (
        ""  # the op's functional unit ("tensor": the tensor core reads shared memory in the async proxy)
    )
    deferred: bool = False  # a wgmma whose completion the steady state waits for later (at an AsyncWait)
    waits: tuple[AsyncWait, ...] = ()  # deferred waits placed before this step (steady state only)
    # a `fence.proxy.async` before its releases: this warpgroup read a TMA ring it releases here with ordinary
    # (generic-proxy) loads, and the mbarrier alone does not order those loads before the slot's next TMA
    # (async-proxy) write
    fence: bool = False


@dataclass(frozen=True)
class Ring:
    value: str
    # "tma" (a TMA load: completes on the full barrier) or "staging" (a register value stored by threads)
    kind: str
    depth: int
    producer: int
    readers: tuple[int, ...]  # warpgroups that read it; each arrives once per iteration on `empty`
    bytes: int


@dataclass(frozen=True)
class WarpgroupProgram:
    index: int
    role: str
    registers: int
    steps: tuple[Step, ...]
    copies: tuple[tuple[str, int], ...]  # (value, register copies) for values kept inside the warpgroup


@dataclass(frozen=True)
class PipelineProgram:
    name: str
    ii: int
    stages: int
    warpgroups: tuple[WarpgroupProgram, ...]
    rings: tuple[Ring, ...]
    token_units: tuple[tuple[str, int], ...]  # (unit, ops per period in its order)
    source: dict

    def ring(self, value: str) -> Ring:
        return next(r for r in self.rings if r.value == value)

    def wait_for(self, op: str) -> AsyncWait | None:
        """The deferred wait of wgmma `op` (None: the program has none, a broken program)."""
        return next((a for w in self.warpgroups for s in w.steps for a in s.waits if a.op == op), None)

    def steady_trips(self, w: WarpgroupProgram, iterations: int) -> range:
        """The trips in which every stage of `w` is live (the peeled steady state, render._loops, without
        masking): from its last stage to the first trip in which its first stage has no iteration left."""
        stages = [s.stage for s in w.steps]
        first = max(stages)
        end = iterations + min(stages)
        if any(s.token for s in w.steps):  # its order pass may cross into the next trip
            end = min(end, self.trips(iterations) - 1)
        return range(first, max(first, end))

    def trips(self, iterations: int) -> int:
        return iterations + self.stages - 1

    def describe(self) -> str:
        lines = [f"{self.name}: II {self.ii}, {self.stages} stage(s), {len(self.warpgroups)} warpgroup(s)"]
        for w in self.warpgroups:
            lines.append(
                f"  warpgroup {w.index} ({w.role}, setmaxnreg {w.registers}): "
                + ", ".join(f"{s.op}[i-{s.stage}]" if s.stage else f"{s.op}[i]" for s in w.steps)
            )
            if w.copies:
                lines.append("    register copies: " + ", ".join(f"{v} x{k}" for v, k in w.copies))
        for r in self.rings:
            lines.append(
                f"  ring {r.value}: {r.kind}, {r.depth} slot(s) of {r.bytes} B, warpgroup {r.producer} -> "
                + ", ".join(map(str, r.readers))
            )
        for unit, n in self.token_units:
            lines.append(
                f"  {unit}: {n} ops per period in the schedule's order across warpgroups (named barriers)"
            )
        return "\n".join(lines)


def lower(schedule: Schedule, ring_depths: dict[str, int] | None = None) -> PipelineProgram:
    """The pipeline program of `schedule`; `ring_depths` overrides depths (tests break schedules with it)."""
    s, problem = schedule, schedule.problem
    if s.mode == "classic" or any(p.warpgroup is None for p in s.ops.values()):
        raise InputError(
            f"schedule {problem.name!r} has no warpgroups (mode {s.mode}); only joint, swp, ws and "
            f"heuristic schedules of a GPU machine lower to a pipeline program"
        )
    s = _first_stage_zero(s)
    wg_of = {n: p.warpgroup for n, p in s.ops.items()}
    ops = problem.op_by_name
    # program order inside a warpgroup: by row, ties by start (then the problem's order)
    order = {n: i for i, n in enumerate(op.name for op in problem.ops)}

    def in_period(n: str) -> tuple:
        return s.ops[n].row, s.ops[n].start, order[n]

    by_wg: dict[int, list[str]] = {}
    for n in sorted(s.ops, key=in_period):
        by_wg.setdefault(wg_of[n], []).append(n)
    pos = {n: i for names in by_wg.values() for i, n in enumerate(names)}

    # rings: smem values, and register values read by another warpgroup
    rings: dict[str, Ring] = {}
    for op in problem.ops:
        readers = sorted(
            {wg_of[e.dst] for e in problem.out_edges(op.name) if e.dst != op.name or op.space == "smem"}
        )
        cross = [w for w in readers if w != wg_of[op.name]]
        if op.space == "smem" or cross:
            buf = s.buffers.get(op.name)
            if buf is None:
                raise InputError(
                    f"schedule {problem.name!r} hands {op.name!r} across warpgroups but records no buffer "
                    "for it"
                )
            depth = (ring_depths or {}).get(op.name, buf.depth)
            kind = "tma" if op.space == "smem" else "staging"
            rings[op.name] = Ring(
                op.name,
                kind,
                depth,
                wg_of[op.name],
                tuple(readers if op.space == "smem" else cross),
                op.bytes,
            )

    # register copies inside a warpgroup
    copies: dict[int, dict[str, int]] = {}
    for op in problem.ops:
        if op.name in rings and rings[op.name].kind == "tma":
            continue
        p = s.ops[op.name]
        need = 1
        for e in problem.out_edges(op.name):
            if wg_of[e.dst] != wg_of[op.name]:
                continue
            c = s.ops[e.dst]
            trips_later = e.distance + c.stage - p.stage  # the read happens this many trips after the write
            # (the same step reads its inputs before it writes: an op reading itself needs no extra copy)
            need = max(need, trips_later + (0 if pos[op.name] >= pos[e.dst] else 1))
        if op.space == "regs" or problem.out_edges(op.name):
            copies.setdefault(wg_of[op.name], {})[op.name] = need

    # deferred waits: where each wgmma batch of the steady state completes (before step `pos` of the
    # trip `trips` after its issue)
    spots = {}
    for w, names in by_wg.items():
        for n in names:
            if ops[n].kind in WGMMA_KINDS and n not in rings:
                spots[n] = _wait_spot(n, names, pos, s, problem, rings, copies.get(w, {}), wg_of)

    # releases: each reading warpgroup arrives on `empty` once every read of an iteration completed: after
    # the last read in program order, or at the deferred wait of a wgmma that reads it last
    releases: dict[str, list[tuple[str, int, int]]] = {}
    deferred_releases: dict[str, list[tuple[str, int, int]]] = {}
    for value, ring in rings.items():
        for w in ring.readers:
            reads = [
                e
                for e in problem.out_edges(value)
                if wg_of[e.dst] == w and (e.dst != value or ring.kind == "tma")
            ]

            # when a read of the slot is done: (trips after the value's iteration, position, after the
            # step?), then its issue
            def completes(e):
                trips, at = spots.get(e.dst, (0, None))
                done = (at, 0) if at is not None else (pos[e.dst], 1)
                issued = (e.distance + s.ops[e.dst].stage, pos[e.dst])
                # of two reads that complete at the same wait, the later issue releases: the guarded trips
                # complete each wgmma at its issue, so releasing at the earlier one's gave the slot back
                # before the later one read it (an int2 schedule with two deferred wgmma of one ring)
                return (e.distance + s.ops[e.dst].stage + trips, *done, issued)

            last = max(reads, key=completes)
            end = max(e.distance * s.ii + s.ops[e.dst].start + ops[e.dst].latency for e in reads)
            release = (value, last.distance, end - (last.distance * s.ii + s.ops[last.dst].start))
            (deferred_releases if last.dst in spots else releases).setdefault(last.dst, []).append(release)

    # order tokens: units of asynchronous compute (the tensor core) that ops of two or more warpgroups
    # share, in the period's row order (CUDA-core and MUFU math is interleaved by the hardware)
    token_of: dict[str, tuple[str, int]] = {}
    token_units = []
    units: dict[str, list[str]] = {}
    for n in s.ops:
        if ops[n].issue < ops[n].occupancy and ops[n].kind != OpKind.TMA_LOAD and not ops[n].variable_latency:
            units.setdefault(ops[n].unit, []).append(n)
    for unit, names in sorted(units.items()):
        if len({wg_of[n] for n in names}) < 2:
            continue
        names.sort(key=in_period)
        token_units.append((unit, len(names)))
        for i, n in enumerate(names):
            token_of[n] = (unit, i)

    # proxy fences: a warpgroup that reads a TMA ring with generic loads (any unit but the tensor core's,
    # which reads shared memory in the async proxy as TMA writes it) fences before it releases that ring
    generic = {
        (wg_of[e.dst], e.src)
        for e in problem.edges
        if e.src in rings and rings[e.src].kind == "tma" and ops[e.dst].unit != ASYNC_READER
    }

    def fenced(n: str, released) -> bool:  # (a staging writer's publish fences already, before its releases)
        staged = n in rings and rings[n].kind == "staging"
        return not staged and any((wg_of[n], ring) in generic for ring, _, _ in released)

    waits_before: dict[str, list[AsyncWait]] = {}
    for g, (trips, at) in spots.items():
        names = by_wg[wg_of[g]]
        between = [
            names[p % len(names)] for p in range(pos[g] + 1, trips * len(names) + at)
        ]  # issued after g, before its wait, in program order
        pending = sum(ops[n].unit == ops[g].unit for n in between)
        waits_before.setdefault(names[at], []).append(
            AsyncWait(
                g,
                s.ops[g].stage,
                trips,
                pending,
                tuple(deferred_releases.get(g, ())),
                fenced(g, deferred_releases.get(g, ())),
            )
        )

    programs = []
    for w, names in sorted(by_wg.items()):
        plan = s.warpgroups.get(w)
        steps = []
        for n in names:
            reads = []
            for e in problem.in_edges(n):
                via = (
                    "ring"
                    if e.src in rings and (rings[e.src].kind == "tma" or wg_of[e.src] != w)
                    else "register"
                )
                reads.append(Read(e.src, e.distance, via))
            steps.append(
                Step(
                    n,
                    ops[n].kind,
                    s.ops[n].stage,
                    s.ops[n].row,
                    tuple(reads),
                    tuple(releases.get(n, ())),
                    n in rings,
                    token_of.get(n),
                    ops[n].index,
                    ops[n].unit,
                    n in spots,
                    tuple(waits_before.get(n, ())),
                    fenced(n, releases.get(n, ())),
                )
            )
        programs.append(
            WarpgroupProgram(
                w,
                plan.role if plan else "consumer",
                plan.registers if plan else 0,
                tuple(steps),
                tuple(sorted(copies.get(w, {}).items())),
            )
        )
    return PipelineProgram(
        problem.name,
        s.ii,
        s.stages,
        tuple(programs),
        tuple(rings.values()),
        tuple(token_units),
        dict(problem.source),
    )


def synchronous(program: PipelineProgram) -> PipelineProgram:
    """`program` with every wgmma waited for right after its issue (the kernels before deferred waits, and
    the variant the driver falls back to where ptxas serializes the deferred one): no AsyncWait, and the
    slots a deferred wait gave back go back at the issue again."""
    moved = {a.op: a for w in program.warpgroups for s in w.steps for a in s.waits}
    return replace(
        program,
        warpgroups=tuple(
            replace(
                w,
                steps=tuple(
                    replace(
                        s,
                        deferred=False,
                        waits=(),
                        releases=s.releases + (moved[s.op].releases if s.op in moved else ()),
                        fence=s.fence or (s.op in moved and moved[s.op].fence),
                    )
                    for s in w.steps
                ),
            )
            for w in program.warpgroups
        ),
    )


def _wait_spot(g, names, pos, s, problem, rings, copies, wg_of) -> tuple[int, int]:
    """Where the steady state waits for wgmma `g`: before step `names[at]` of the trip `trips` after g's
    issue. At the first step that needs g complete (below), or before that at the first step the schedule
    starts at or after g's completion (then waiting costs nothing if the model is right)."""
    ops = problem.op_by_name
    w, n_steps = wg_of[g], len(names)  # `pos`: each op's place in its warpgroup's program order
    stage = {n: s.ops[n].stage for n in names}
    mine, stage_g = pos[g], stage[g]
    needs = []  # (trips after g's issue, position) of steps that must come after g completed
    for e in problem.out_edges(g):  # reads of its result (an accumulating wgmma reading itself chains)
        if e.dst != g and wg_of[e.dst] == w:
            needs.append((e.distance + stage[e.dst] - stage_g, pos[e.dst]))
    accumulates = False
    for e in problem.in_edges(g):
        if e.src == g:
            accumulates = True
            continue
        if e.src in rings and wg_of[e.src] != w:  # the refill of a slot it reads: before the read of the
            depth = rings[e.src].depth  # iteration depth later
            for x in problem.out_edges(e.src):
                if x.dst in stage:  # read on this warpgroup
                    needs.append((depth + stage[x.dst] + x.distance - stage_g - e.distance, pos[x.dst]))
        if wg_of[e.src] == w:  # a register operand (also when another warpgroup gets it through a staging
            # ring): before its copy is rewritten
            needs.append((copies.get(e.src, 1) - e.distance + stage[e.src] - stage_g, pos[e.src]))
    if not accumulates:  # its next issue rewrites the accumulator
        needs.append((1, mine))
    needs = [n for n in needs if n > (0, mine)]
    latest = min(needs, default=(1, mine))
    done = s.ops[g].row + ops[g].latency
    for trips in range(latest[0] + 1):
        for at in range(n_steps):
            if (trips, at) <= (0, mine):
                continue
            if (trips, at) == latest or trips * s.ii + s.ops[names[at]].row >= done:
                return trips, at
    return latest


def _first_stage_zero(s: Schedule) -> Schedule:
    """`s` shifted by whole periods so that its first stage is 0 (a hand-written file may start later): the
    same rows and warpgroups, and `stages` counts the same as `solve` and `show` do."""
    first = min(p.stage for p in s.ops.values())
    if first == 0:
        return s
    return replace(
        s,
        ops={
            n: Placement(p.start - first * s.ii, p.stage - first, p.row, p.warpgroup)
            for n, p in s.ops.items()
        },
    )
