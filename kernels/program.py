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
  period's row order.

Nothing here is guessed: depths come from the schedule file, copies and releases from the rows
and stages. The CPU simulator (kernels/simulate.py) executes this program.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.schedule import Placement, Schedule
from warpsched.models.kinds import OpKind


@dataclass(frozen=True)
class Read:
    value: str  # the producing op
    distance: int  # reads iteration `it - distance` of it
    via: str  # "ring" or "register"


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

    # releases: each reading warpgroup arrives on `empty` after its last read of an iteration
    # (the last read in program order; the slot is free once every read has completed)
    releases: dict[str, list[tuple[str, int, int]]] = {}
    for value, ring in rings.items():
        for w in ring.readers:
            reads = [
                e
                for e in problem.out_edges(value)
                if wg_of[e.dst] == w and (e.dst != value or ring.kind == "tma")
            ]
            last = max(reads, key=lambda e: (e.distance + s.ops[e.dst].stage, pos[e.dst]))
            end = max(e.distance * s.ii + s.ops[e.dst].start + ops[e.dst].latency for e in reads)
            releases.setdefault(last.dst, []).append(
                (value, last.distance, end - (last.distance * s.ii + s.ops[last.dst].start))
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
