"""Render a pipeline program as a CUDA C++ kernel over CuTe (DESIGN.md 6.3).

The renderer states the schedule only: one block per warpgroup with its `setmaxnreg` budget and
its steps in program order, each guarded by the iteration it works for (`j - stage`); one
shared-memory ring per TMA load with the schedule's depth and one full/empty mbarrier pair per
slot; releases where the program puts them; the tensor core's order across warpgroups as a token
passed along named barriers. What an op does is its family's (kernels/families/<family>/cuda.py over
the generic kernels/cuda/templates.py and its own templates.py).
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass

from warpsched.kernels.cuda import protocol
from warpsched.kernels.cuda import templates as T
from warpsched.kernels.families import FAMILIES
from warpsched.kernels.families.base import ident
from warpsched.kernels.program import PipelineProgram, lower, synchronous
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import available_machines, load_machine
from warpsched.scheduler.schedule import Schedule
from warpsched.models.kinds import OpKind
from warpsched.models.ops import ASYNC_READER

MAX_REGISTERS_PER_THREAD = (
    255  # what a launch may give a thread (the ISA's limit; setmaxnreg moves them after)
)
CTYPE_BYTES = {"Element": 2, "uint8_t": 1, "float": 4}
ORDER_BARRIERS = 8  # named barriers 8..15 (CUTLASS keeps 0..7: __syncthreads and its own)


@dataclass(frozen=True)
class RenderedKernel:
    source: str
    entry: str
    threads: int
    smem_bytes: int  # dynamic shared memory the launch must grant
    params: tuple[str, ...]  # kernel parameters in order
    tile: dict  # the family's tile sizes (what the host side needs to launch it)
    digest: str  # of the schedule it states
    branch_free: bool = (
        False  # peeled trip loops: a steady state without stage guards or masking (render._loops)
    )
    deferred_waits: bool = False  # the steady state waits for wgmma batches where the program places it


def schedule_digest(schedule: Schedule) -> str:
    """16 hex digits naming what a kernel states of `schedule`: II, every op's start and warpgroup, ring
    depths."""
    return hashlib.sha256(
        repr(
            (
                schedule.problem.name,
                schedule.ii,
                sorted((n, p.start, p.warpgroup) for n, p in schedule.ops.items()),
                sorted((n, b.depth) for n, b in schedule.buffers.items()),
            )
        ).encode()
    ).hexdigest()[:16]


def supported(problem) -> None:
    """Raise a one-sentence `InputError` unless `problem`'s family has CUDA templates for its parameters."""
    family = problem.source.get("model")
    if family not in FAMILIES:
        raise InputError(
            f"CUDA generation covers {', '.join(FAMILIES)}; {family or problem.name!r} "
            f"lowers to a pipeline program (warpsched check) but has no CUDA templates"
        )
    FAMILIES[family].cuda.check(problem.source)


def supported_machine(machine) -> None:
    """Raise a one-sentence `InputError` unless the CUDA generation targets `machine` (sm_90a: wgmma)."""
    mma = machine.features.get("mma")
    if mma is None and machine.name in available_machines():  # a schedule file's machine records no features
        mma = load_machine(machine.name).features.get("mma")
    if mma != "wgmma":
        raise InputError(
            f"CUDA generation targets sm_90a (wgmma: h100, h200); machine {machine.name!r} "
            f"({mma or 'no mma feature'}) has no lowering yet; warpsched solve and check work for it"
        )


def render(
    schedule: Schedule, program: PipelineProgram | None = None, peel: bool = True, defer: bool = True
) -> RenderedKernel:
    """The CUDA source of `schedule`. `peel`: warpgroups that mask keys or defer wgmma waits run a branch-free
    steady state between a prologue and an epilogue (render._loops); False gives them one guarded loop like
    the rest. `defer`: the steady state waits for each wgmma where the program places the wait; False waits
    right after every issue (program.synchronous)."""
    supported(schedule.problem)
    program = program or lower(schedule)
    if not (defer and peel):
        program = synchronous(program)
    _check_program(program)
    family = FAMILIES[schedule.problem.source["model"]].cuda(schedule, program)
    kernel = _assemble(schedule, program, family, peel)
    protocol.require(kernel.source, program)  # the synchronisation the program asks for is in the text
    return kernel


# the unit whose shared-memory reads are asynchronous-proxy reads (wgmma, tcgen05.mma): no proxy fence before
# their releases; a step on any other unit reading a TMA ring gets one
TENSOR_UNIT = ASYNC_READER


def _align(offset: int, alignment: int) -> int:
    return -(-offset // alignment) * alignment


def _check_program(program: PipelineProgram) -> None:
    for w in program.warpgroups:
        for value, copies in w.copies:
            if copies > 1:
                raise InputError(
                    f"{program.name}: {value!r} needs {copies} register copies (it is read a trip after it "
                    f"is rewritten); the CUDA templates hold one copy per value so far"
                )
        for step in w.steps:
            for read in step.reads:
                if read.via == "ring" and read.distance and program.ring(read.value).kind == "tma":
                    raise InputError(
                        f"{program.name}: {step.op} reads a load {read.distance} iteration(s) back; the "
                        f"CUDA templates read loads of the same iteration"
                    )


def _order(program: PipelineProgram) -> tuple[dict, dict, dict]:
    """The tensor core's order across warpgroups: per step the barrier to wait on before issuing and the
    one to pass the token on after, and per warpgroup the barrier it arrives on before its first trip.
    Consecutive ops (in the period's order, wrapping to the next trip) on different warpgroups share a
    named barrier of 256 threads: the later one syncs, the earlier one arrives."""
    waits, passes, first = {}, {}, {}
    barrier = ORDER_BARRIERS
    for unit, count in program.token_units:
        chain = sorted(
            (
                (s.token[1], s.op, w.index)
                for w in program.warpgroups
                for s in w.steps
                if s.token and s.token[0] == unit
            )
        )
        for p, (_, op, w) in enumerate(chain):
            _, prev_op, prev_w = chain[p - 1]
            if prev_w == w:
                continue
            if barrier >= 16:
                raise InputError(
                    f"{program.name}: the {unit} order needs more than {16 - ORDER_BARRIERS} named barriers"
                )
            waits[op] = (barrier - ORDER_BARRIERS, prev_op)
            passes[prev_op] = (
                barrier - ORDER_BARRIERS,
                op,
                p == 0,
            )  # p == 0: the token crosses into the next trip
            if p == 0:
                first[prev_w] = (barrier - ORDER_BARRIERS, op)
            barrier += 1
    return waits, passes, first


def _assemble(schedule: Schedule, program: PipelineProgram, family, peel: bool) -> RenderedKernel:
    loaders = [w for w in program.warpgroups if all(st.kind == OpKind.TMA_LOAD for st in w.steps)]
    shared = loaders if 1 < len(loaders) <= 4 else []  # TMA-only warpgroups share one, a warp each
    kernel_groups = ([shared] if shared else []) + [[w] for w in program.warpgroups if w not in shared]
    index = {
        w.index: i for i, ws in enumerate(kernel_groups) for w in ws
    }  # contiguous warpgroup numbers in the kernel
    machine = schedule.machine
    threads = machine.warpgroup_threads * len(kernel_groups)
    launch_regs = min(MAX_REGISTERS_PER_THREAD, (machine.register_file // threads) // 8 * 8)
    rings = {r.value: r for r in program.rings}
    loads = family.loads()
    for r in program.rings:
        if r.kind == "staging":
            loads[r.value] = family.staging(r.value)
    digest = schedule_digest(schedule)
    waits, passes, first = _order(program)
    peeled_any = False

    smem = (
        0  # sizeof(SharedStorage), asserted in the source: each ring's slots 1024-aligned, then its mbarriers
    )
    members = []
    for r in program.rings:
        load = loads[r.value]
        if load.bytes != r.bytes:
            raise InputError(
                f"{program.name}: the {r.value} template moves {load.bytes} B but the schedule's op moves "
                f"{r.bytes} B"
            )
        members.append(
            T.RING_MEMBERS.format(
                ctype=load.ctype, ring=ident(r.value), depth=r.depth, elements=load.elements
            )
        )
        smem = _align(smem, 1024) + r.depth * load.elements * CTYPE_BYTES[load.ctype]
        smem = _align(smem, 8) + 16 * r.depth
    for align, size in family.extra_members:
        smem = _align(smem, align) + size
    smem = _align(smem, 1024)
    if smem > machine.smem_bytes:
        raise InputError(
            f"{program.name}: the rings need {smem} B of shared memory, more than the {machine.smem_bytes} B "
            "a "
            f"block may have on {machine.name}"
        )

    out = [
        T.PRELUDE.format(
            digest=digest, name=program.name, ii=program.ii, stages=program.stages, element=family.element
        )
    ]
    out.append(family.declarations())
    out.append(T.STORAGE.format(members="".join(members) + family.storage))
    out.append(
        f'static_assert(sizeof(SharedStorage) <= {smem}, "the launch grants {smem} B of shared memory");\n\n'
    )
    init = "".join(
        T.RING_INIT.format(
            ring=ident(r.value),
            depth=r.depth,
            writers=1 if r.kind == "tma" else 4,
            arrivals=4 * len(r.readers),
        )
        for r in program.rings
    )
    out.append(
        T.KERNEL_OPEN.format(
            threads=threads,
            entry=family.entry,
            params=", ".join(family.params),
            locals=family.locals,
            iterations=family.iterations,
            stages=program.stages,
            init=init + family.init,
        )
    )
    for group in kernel_groups:
        if len(group) > 1:
            out.append(
                T.PRODUCERS_OPEN.format(
                    index=index[group[0].index],
                    groups=", ".join(str(w.index) for w in group),
                    registers=max(w.registers for w in group),
                )
            )
        for warp, w in enumerate(group):
            before = family.before_loop(w)
            if w.index in first:
                barrier, to = first[w.index]
                before += T.ORDER_FIRST.format(barrier=barrier, to=to)
            fields = dict(
                role=w.role,
                ops=", ".join(s.op for s in w.steps),
                setup="".join(family.setup(s) for s in w.steps),
                before_loop=before,
            )
            if len(group) > 1:
                out.append(T.PRODUCER_WARP_OPEN.format(warp=warp, group=w.index, **fields))
            else:
                out.append(
                    T.WARPGROUP_OPEN.format(
                        index=index[w.index],
                        direction="dealloc" if w.registers <= launch_regs else "alloc",
                        registers=w.registers,
                        **fields,
                    )
                )
            # peeled: warpgroups that mask keys, and those whose steady state defers wgmma waits
            peeled = peel and any(s.kind in family.masked_kinds or s.deferred for s in w.steps)
            body = "".join(_step(step, w, rings, loads, family, waits, passes, peeled) for step in w.steps)
            out.append(_loops(w, body, family, passes, rings) if peeled else T.ONE_LOOP.format(body=body))
            peeled_any = peeled_any or peeled
            drain = "".join(family.complete(s) for s in w.steps if s.unit == TENSOR_UNIT)
            drain = textwrap.indent(textwrap.dedent(drain), "    ")
            epilogue = (T.TENSOR_CORE_DRAIN + drain if drain else "") + "".join(
                family.epilogue(s) for s in w.steps
            )
            out.append(
                (T.PRODUCER_WARP_CLOSE if len(group) > 1 else T.WARPGROUP_CLOSE).format(epilogue=epilogue)
            )
        if len(group) > 1:
            out.append(T.PRODUCERS_CLOSE)
    out.append(T.KERNEL_CLOSE)
    return RenderedKernel(
        "".join(out),
        family.entry,
        threads,
        smem,
        tuple(family.params),
        family.tile,
        digest,
        peeled_any,
        any(s.deferred for w in program.warpgroups for s in w.steps),
    )


def _releases(releases, rings) -> str:
    return "".join(
        (T.RELEASE_IF_WRITTEN if distance else T.RELEASE).format(
            ring=ident(ring), distance=distance, depth=rings[ring].depth
        )
        for ring, distance, _ in releases
    )


def _fenced_releases(wait, rings) -> str:
    """The slots a deferred wait gives back, after a proxy fence where the warpgroup also read them with
    generic loads."""
    return (T.FENCE_BEFORE_TMA_REFILL if wait.fence else "") + _releases(wait.releases, rings)


def _deferred_waits(step, w, rings, family) -> str:
    """The steady state's waits before `step` for the wgmma batches issued before it, and the slots those
    batches read going back (kernels/program.py places them)."""
    last_stage = max(s.stage for s in w.steps)
    out = []
    for a in step.waits:
        issued = next(s for s in w.steps if s.op == a.op)
        releases = T.FENCE_BEFORE_TMA_REFILL if a.fence else ""
        if a.releases and not a.trips:  # issued this trip: the steady state issued it
            releases += T.DEFERRED_RELEASES_NOW.format(
                stage=a.stage, releases=textwrap.indent(_releases(a.releases, rings), "  ")
            )
        elif a.releases:
            releases += T.DEFERRED_RELEASES.format(
                trips=a.trips,
                last_stage=last_stage,
                stage=a.stage,
                releases=textwrap.indent(_releases(a.releases, rings), "  "),
            )
        out.append(
            T.DEFERRED_WAIT.format(
                op=a.op,
                trips=a.trips,
                pending=a.pending,
                complete=family.complete(issued, a.pending),
                releases=releases,
            )
        )
    return "".join(out)


def _steady_drain(w, family, rings) -> str:
    last_stage = max(s.stage for s in w.steps)
    deferred = [s for s in w.steps if s.deferred]
    if not deferred:
        return ""
    complete = textwrap.indent(textwrap.dedent("".join(family.complete(s) for s in deferred)), "        ")
    releases = ""
    for s in w.steps:
        for a in s.waits:
            if a.trips and a.releases:
                releases += T.STEADY_DRAIN_RELEASES.format(
                    op=a.op,
                    trips=a.trips,
                    last_stage=last_stage,
                    stage=a.stage,
                    releases=_fenced_releases(a, rings),
                )
    return T.STEADY_DRAIN.format(complete=complete, releases=releases)


def _loops(w, body: str, family, passes, rings) -> str:
    """The trip loop of a warpgroup that masks keys, peeled into prologue, a steady state where every stage
    is live and nothing is masked, and epilogue (one guarded copy of the trip serves both). The prologue
    runs the first `last stage` trips (trips >= stages - 1 >= the last stage: never past the end); the
    steady state ends before the first trip in which a stage would be past the last iteration, a masking
    step at or past `mask_from`, or a next-trip order pass past the last trip. Other warpgroups keep one
    loop, their stage guards the only tests (peeling a TMA producer spilled it past its 24 registers)."""
    stages = [step.stage for step in w.steps]
    ends = [f"iterations + {min(stages)}" if min(stages) else "iterations"]
    ends += sorted(
        {
            f"mask_from + {step.stage}" if step.stage else "mask_from"
            for step in w.steps
            if step.kind in family.masked_kinds
        }
    )
    if any(passes.get(step.op, (0, 0, False))[2] for step in w.steps):
        ends.append("trips - 1")
    steady_end = ends[-1]
    for end in reversed(ends[:-1]):
        steady_end = f"min({end}, {steady_end})"
    return T.PEELED_LOOPS.format(
        last_stage=max(stages),
        steady_end=steady_end,
        guarded=textwrap.indent(body, "  "),
        steady=textwrap.indent(body, "    "),
        drain=_steady_drain(w, family, rings),
    )


def _step(step, w, rings, loads, family, waits, passes, peeled: bool) -> str:
    if step.kind == OpKind.TMA_LOAD:
        ring, load = rings[step.op], loads[step.op]
        issue = T.TMA_LOAD.format(
            ring=ident(step.op),
            depth=ring.depth,
            bytes=load.bytes,
            ctype=load.ctype,
            copies="".join(load.copies),
        )
        complete = ""
    else:
        issue = ""
        tensor_core = step.unit == TENSOR_UNIT  # reads shared memory in the async proxy, as TMA writes it
        staged = step.writes_ring  # a register value another warpgroup reads: written to a staging ring
        if staged:
            issue += T.STAGE_ACQUIRE.format(
                ring=ident(step.op), depth=rings[step.op].depth, ctype=loads[step.op].ctype
            )
        for r in step.reads:
            if r.via != "ring":
                continue
            ring = rings[r.value]
            if ring.kind == "tma":
                issue += T.RING_WAIT.format(ring=ident(r.value), distance=r.distance, depth=ring.depth)
                if not tensor_core:
                    issue += T.AFTER_WAIT_FOR_LOADS
            elif r.distance == 0:
                issue += T.RING_WAIT.format(ring=ident(r.value), distance=0, depth=ring.depth)
                issue += T.STAGED_READ.format(
                    ring=ident(r.value), ctype=loads[r.value].ctype, load=family.stage_in(r, step)
                )
            else:
                issue += T.STAGED_READ_BACK.format(
                    ring=ident(r.value),
                    distance=r.distance,
                    depth=ring.depth,
                    ctype=loads[r.value].ctype,
                    load=family.stage_in(r, step),
                    initial=family.initial(r, step),
                )
        issue += family.issue(step)
        complete = family.complete(step)
        if step.deferred:  # guarded trips wait here, the steady state where the program puts its wait
            at, wait = next((s.op, a) for s in w.steps for a in s.waits if a.op == step.op)
            complete = T.SYNC_COMPLETE.format(
                at=at,
                complete=textwrap.indent(complete + _fenced_releases(wait, rings), "  "),
            )
        if staged:  # into the slot STAGE_ACQUIRE took in this block (`out_slot`, `dst`)
            complete += family.stage_out(step) + T.STAGE_PUBLISH.format(ring=ident(step.op))
        if step.fence:
            complete += T.FENCE_BEFORE_TMA_REFILL
        for ring, distance, _ in step.releases:
            release = T.RELEASE_IF_WRITTEN if distance else T.RELEASE
            complete += release.format(ring=ident(ring), distance=distance, depth=rings[ring].depth)
    order_wait = order_pass = ""
    if step.op in waits:
        barrier, after = waits[step.op]
        order_wait = T.ORDER_WAIT.format(barrier=barrier, after=after)
    if step.op in passes:
        barrier, to, next_trip = passes[step.op]
        order_pass = T.ORDER_PASS.format(
            barrier=barrier,
            to=to + (" (next trip)" if next_trip else ""),
            guard="if (steady || j + 1 < trips) " if next_trip else "",
        )
    return T.STEP.format(
        op=step.op,
        stage=step.stage,
        steady="steady || " if peeled else "",
        waits=_deferred_waits(step, w, rings, family),
        order_wait=order_wait,
        issue=issue,
        order_pass_live=textwrap.indent(order_pass, "  "),
        complete=complete,
        order_pass_dead=T.ORDER_PASS_DEAD.format(order_pass=textwrap.indent(order_pass, "  "))
        if order_pass
        else "",
    )
