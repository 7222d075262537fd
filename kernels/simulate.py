"""CPU simulator of a pipeline program (DESIGN.md 6.2): correctness without a GPU.

Every warpgroup runs its program (kernels/program.py) as a thread of steps; shared-memory rings
have exact mbarrier semantics (a phase counter, arrivals, waits on a parity), TMA loads land
asynchronously on the full barrier, readers arrive on the empty barrier after their last read.
Drivers:

- interleavings: at each point the driver picks which warpgroup advances or which TMA lands,
  at random or adversarially (producers first, TMA as late as possible, the last warpgroup
  first, ...). Blocking waits block. Findings: a deadlock (every warpgroup waiting, nothing in
  flight), a read of a slot or register copy that does not hold the iteration it should, a write
  into a slot some reader has not released.
- the schedule's clock: every step at its scheduled cycle (`trip * II + row`), TMA landing and
  slot releases at their latencies. A wait that is not already satisfied there is a stall: the
  program does not realize the schedule (a ring shallower than the schedule needs shows here).

A wgmma batch a steady-state trip issues is in flight until a `warpgroup_wait<pending>` completes it
(every batch of its warpgroup but the `pending` latest, as on the GPU). Findings: a read of its result,
a write of a register it reads or of its accumulator, or the release of a slot it reads while it is in
flight, and a wait that leaves it pending where the program says it completed. Guarded trips complete
it at its issue, and the first guarded trip after the steady state drains the warpgroup
(kernels/program.py).

Values are tagged with (op, iteration) and checked on every read; where a family has numeric
semantics (kernels/semantics.py) the values are real tiles and the outputs are compared with
the reference.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from warpsched.kernels.program import WGMMA_KINDS, AsyncWait, PipelineProgram, Step
from warpsched.models.ops import ASYNC_READER

POLICIES = ("random", "producers-first", "consumers-first", "tma-late", "last-warpgroup-first", "round-robin")


@dataclass(frozen=True)
class Finding:
    # deadlock, read-before-write, overwrite-before-release, stale-register, stall, mismatch, unfenced-release
    # (a slot read with generic loads released to a TMA refill without a proxy fence), and for wgmma in
    # flight: read-before-wait, overwrite-in-flight, release-in-flight, wait-too-weak
    kind: str
    message: str


@dataclass(frozen=True)
class Verdict:
    interleavings: int
    iterations: int
    findings: tuple[Finding, ...]
    max_error: float | None  # relative error of the outputs against the reference (None: tags only)
    numerics_checked: int

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        err = (
            "tags only"
            if self.max_error is None
            else f"max relative error {self.max_error:.2e} over {self.numerics_checked} run(s)"
        )
        head = (
            f"{self.interleavings} interleaving(s) of {self.iterations} iterations plus the schedule's "
            "clock: "
            + ("no deadlock, race or stall" if self.ok else f"{len(self.findings)} finding(s)")
            + f"; {err}"
        )
        return "\n".join([head] + [f"  {f.kind}: {f.message}" for f in self.findings])


class Barrier:
    """An mbarrier: `expected` arrivals complete a phase; a wait on parity p passes once phase p is done."""

    def __init__(self, expected: int):
        self.expected, self.pending, self.phase = expected, 0, 0

    def arrive(self) -> None:
        self.pending += 1
        if self.pending == self.expected:
            self.pending, self.phase = 0, self.phase + 1

    def passed(self, parity: int) -> bool:
        return (self.phase & 1) != parity


@dataclass
class _Slot:
    iteration: int = -1
    value: Any = None
    landed: bool = True
    unreleased: set = field(default_factory=set)  # readers yet to release `iteration`


class _Failure(Exception):
    pass


class _State:
    def __init__(self, program: PipelineProgram, iterations: int, semantics, findings: list[Finding]):
        self.p, self.n, self.sem, self.findings = program, iterations, semantics, findings
        self.full = {r.value: [Barrier(1) for _ in range(r.depth)] for r in program.rings}
        self.empty = {r.value: [Barrier(len(r.readers)) for _ in range(r.depth)] for r in program.rings}
        self.slots = {r.value: [_Slot() for _ in range(r.depth)] for r in program.rings}
        self.rings = {r.value: r for r in program.rings}
        self.regs = {w.index: {v: [(-1, None)] * k for v, k in w.copies} for w in program.warpgroups}
        self.tokens = {u: 0 for u, _ in program.token_units}
        self.per_period = dict(program.token_units)
        self.in_flight: list[tuple[str, int, int, Any]] = []  # (ring, slot, iteration, value)
        self.outputs: dict[str, Any] = {}
        self.steady = {w.index: program.steady_trips(w, iterations) for w in program.warpgroups}
        # wgmma batches in flight per warpgroup, oldest first: (op, iteration, registers it reads or writes)
        self.batches: dict[int, list[tuple[str, int, frozenset]]] = {w.index: [] for w in program.warpgroups}
        self.owed: dict[int, list[tuple[AsyncWait, int]]] = {w.index: [] for w in program.warpgroups}
        # the proxies: TMA writes a slot in the async proxy; a warpgroup's ordinary (generic) loads of it,
        # kept here per (ring, iteration) with the op that made them, are ordered before the slot's next TMA
        # write only by a `fence.proxy.async` between them and the release
        self.generic: dict[int, dict[tuple[str, int], str]] = {w.index: {} for w in program.warpgroups}
        # each deferred wgmma's wait (a broken program may lack one) and the slots it gives back
        self.wait_of = {a.op: a for w in program.warpgroups for s in w.steps for a in s.waits}
        self.owed_releases = {
            s.op: self.wait_of[s.op].releases if s.op in self.wait_of else ()
            for w in program.warpgroups
            for s in w.steps
            if s.deferred
        }

    # -- wgmma batches in flight ------------------------------------------------------
    def pending(self, w: int, value: str, it: int) -> bool:
        return any(op == value and i == it for op, i, _ in self.batches[w])

    def held(self, w: int, value: str, it: int) -> tuple[str, int] | None:
        """(op, iteration) of the batch in flight that reads or writes (value, it): a register value or a
        ring slot; None if no batch does."""
        return next(((op, i) for op, i, regs in self.batches[w] if (value, it) in regs), None)

    def complete(self, w: int, pending: int) -> None:
        """warpgroup_wait<pending>: every batch but the `pending` latest has completed."""
        batches = self.batches[w]
        del batches[: max(0, len(batches) - pending)]

    def async_waits(self, w: int, step: Step, j: int) -> list[tuple[AsyncWait, int]]:
        """The deferred waits before `step` at trip `j` (steady state only); the (wait, iteration) whose
        slots now go back."""
        if j not in self.steady[w]:
            return []
        owed = []
        for a in step.waits:
            it = j - a.trips - a.stage
            self.complete(w, a.pending)
            if a.fence:
                self.fence(w)
            if self.pending(w, a.op, it):
                self.fail(
                    "wait-too-weak",
                    f"warpgroup {w}: warpgroup_wait<{a.pending}> before {step.op} (trip {j}) leaves "
                    f"{a.op} of iteration {it} in flight",
                )
            if (a, it) in self.owed[w]:
                self.owed[w].remove((a, it))
                owed.append((a, it))
        return owed

    def drain(self, w: int) -> list[tuple[AsyncWait, int]]:
        """After the steady state: warpgroup_wait<0>, and the slots its deferred waits still owe go back."""
        self.complete(w, 0)
        owed, self.owed[w] = self.owed[w], []
        if any(a.fence for a, _ in owed):
            self.fence(w)
        return owed

    def fail(self, kind: str, message: str) -> None:
        self.findings.append(Finding(kind, message))
        raise _Failure

    def fence(self, w: int) -> None:
        """fence.proxy.async: every generic access of warpgroup w so far comes before later async ones."""
        self.generic[w].clear()

    # -- values ------------------------------------------------------------------
    def read(self, w: int, step: Step, it: int) -> dict:
        inputs = {}
        for r in step.reads:
            x = it - r.distance
            if x < 0:
                inputs[(r.value, r.distance)] = self.sem.initial(r.value) if self.sem else (r.value, "init")
                continue
            if r.via == "ring":
                ring = self.rings[r.value]
                slot = self.slots[r.value][x % ring.depth]
                if slot.iteration != x or not slot.landed:
                    self.fail(
                        "read-before-write",
                        f"warpgroup {w}: {step.op} of iteration {it} read slot {x % ring.depth} of ring "
                        f"{r.value} holding iteration "
                        f"{slot.iteration}{'' if slot.landed else ' (not landed)'}, not {x}",
                    )
                value = slot.value
                if ring.kind == "tma" and step.unit != ASYNC_READER:
                    self.generic[w][(r.value, x)] = step.op
            else:
                if r.value != step.op and self.pending(w, r.value, x):
                    self.fail(
                        "read-before-wait",
                        f"warpgroup {w}: {step.op} of iteration {it} read {r.value} of iteration {x} while "
                        "that wgmma was still in flight (no wait completed it)",
                    )
                copies = self.regs[w][r.value]
                tag, value = copies[x % len(copies)]
                if tag != x:
                    self.fail(
                        "stale-register",
                        f"warpgroup {w}: {step.op} of iteration {it} read register copy "
                        f"{x % len(copies)} of {r.value} holding iteration {tag}, not {x}",
                    )
            inputs[(r.value, r.distance)] = value
        return inputs

    def compute(self, step: Step, it: int, inputs: dict) -> Any:
        if self.sem is None:
            return (step.op, it)
        return self.sem.apply(step.op, step.kind, it, inputs)

    def keep(self, w: int, step: Step, it: int, value: Any) -> None:
        copies = self.regs[w].get(step.op)
        if copies is not None:
            old = copies[it % len(copies)][0]
            holder = self.held(w, step.op, old)
            accumulates = any(r.value == step.op for r in step.reads)  # a wgmma chaining its accumulator
            if holder is not None and not (accumulates and holder[0] == step.op):
                self.fail(
                    "overwrite-in-flight",
                    f"warpgroup {w}: {step.op} of iteration {it} rewrote the registers of {step.op} of "
                    f"iteration {old} while wgmma {holder[0]} of iteration {holder[1]} was still in flight",
                )
            copies[it % len(copies)] = (it, value)
        if it == self.n - 1:
            self.outputs[step.op] = value

    def write_ring(self, w: int, step: Step, it: int, value: Any, land_now: bool) -> None:
        ring = self.rings[step.op]
        s = it % ring.depth
        slot = self.slots[step.op][s]
        if slot.unreleased:
            self.fail(
                "overwrite-before-release",
                f"warpgroup {w}: {step.op} of iteration {it} wrote slot {s} while warpgroup(s) "
                f"{sorted(slot.unreleased)} still read iteration {slot.iteration}",
            )
        slot.iteration, slot.unreleased = it, set(ring.readers)
        if land_now:
            slot.value, slot.landed = value, True
            self.full[step.op][s].arrive()
        else:
            slot.value, slot.landed = None, False
            self.in_flight.append((step.op, s, it, value))

    def land(self, k: int) -> None:
        ring, s, it, value = self.in_flight.pop(k)
        slot = self.slots[ring][s]
        slot.value, slot.landed = value, True
        self.full[ring][s].arrive()

    def release(self, w: int, releases: tuple, it: int) -> None:
        for ring_name, distance, _ in releases:
            x = it - distance
            if x < 0:
                continue
            ring = self.rings[ring_name]
            reader = self.generic[w].pop((ring_name, x), None)
            if reader is not None:
                self.fail(
                    "unfenced-release",
                    f"warpgroup {w} released slot {x % ring.depth} of ring {ring_name} (iteration {x}) after "
                    f"{reader} read it with generic loads and no fence.proxy.async between: the next TMA "
                    "write of the slot (async proxy) is not ordered after those loads",
                )
            holder = self.held(w, ring_name, x)
            if holder is not None:
                self.fail(
                    "release-in-flight",
                    f"warpgroup {w} released slot {x % ring.depth} of ring {ring_name} (iteration {x}) while "
                    f"wgmma {holder[0]} of iteration {holder[1]} still read it",
                )
            slot = self.slots[ring_name][x % ring.depth]
            slot.unreleased.discard(w)
            self.empty[ring_name][x % ring.depth].arrive()

    # -- waits ----------------------------------------------------------------------
    def waits(self, w: int, step: Step, j: int) -> list[tuple[str, Callable[[], bool]]]:
        """What `step` at trip `j` waits for, in order: (description, satisfied?)."""
        out = []
        if step.token is not None:
            unit, i = step.token
            g = j * self.per_period[unit] + i
            out.append((f"its turn on {unit} (named barrier)", lambda u=unit, g=g: self.tokens[u] == g))
        it = j - step.stage
        if not 0 <= it < self.n:
            return out
        for r in step.reads:
            x = it - r.distance
            if r.via == "ring" and x >= 0:
                ring = self.rings[r.value]
                b, parity = self.full[r.value][x % ring.depth], (x // ring.depth) & 1
                out.append(
                    (
                        f"full barrier of ring {r.value} slot {x % ring.depth} (iteration {x})",
                        lambda b=b, q=parity: b.passed(q),
                    )
                )
        if step.writes_ring:
            ring = self.rings[step.op]
            b, parity = self.empty[step.op][it % ring.depth], ((it // ring.depth) & 1) ^ 1
            out.append(
                (
                    f"empty barrier of ring {step.op} slot {it % ring.depth} (iteration {it})",
                    lambda b=b, q=parity: b.passed(q),
                )
            )
        return out

    def execute(self, w: int, step: Step, j: int, clocked: bool = False) -> int | None:
        """Run `step` at trip `j`; the iteration it worked for, or None for a guarded-out trip.
        `clocked`: the caller lands what it wrote and releases what it read at their cycles."""
        it = j - step.stage
        done = None
        if 0 <= it < self.n:
            value = self.compute(step, it, self.read(w, step, it))
            self.keep(w, step, it, value)
            wait = self.wait_of.get(step.op) if step.deferred else None
            # the step's fence comes after its reads, before its releases; a deferred wgmma's fence comes at
            # its wait (on the clock, where releases come later, and in guarded trips: at the issue); a
            # staged value is published after a fence too (for the async proxy that reads it)
            publishes = step.writes_ring and self.rings[step.op].kind == "staging"  # fences, then arrives
            if (
                step.fence
                or publishes
                or (wait is not None and wait.fence and (clocked or j not in self.steady[w]))
            ):
                self.fence(w)
            if step.writes_ring:
                self.write_ring(
                    w, step, it, value, land_now=not clocked and self.rings[step.op].kind == "staging"
                )
            if step.deferred and j in self.steady[w] and not clocked:
                operands = {(r.value, it - r.distance) for r in step.reads}  # registers and ring slots
                self.batches[w].append((step.op, it, frozenset(operands | {(step.op, it)})))
                if step.op in self.wait_of:
                    self.owed[w].append((self.wait_of[step.op], it))
            elif step.deferred and not clocked:  # a guarded trip: it completed at its issue
                self.release(w, self.owed_releases[step.op], it)
            elif step.kind in WGMMA_KINDS:  # a wgmma waited for at once (warpgroup_wait<0>)
                self.complete(w, 0)
            if not clocked:  # after the issue: a slot an in-flight wgmma reads is not free
                self.release(w, step.releases, it)
            done = it
        if step.token is not None:
            self.tokens[step.token[0]] += 1
        return done


def _thread(
    state: _State, w: int, steps: tuple[Step, ...]
) -> Iterator[tuple[str, Callable[[], bool]] | None]:
    """A warpgroup: yields each wait before it is passed, and None after each step."""
    steady = state.steady[w]
    for j in range(state.p.trips(state.n)):
        if steady and j == steady.stop:
            for a, it in state.drain(w):
                state.release(w, a.releases, it)
        for step in steps:
            for a, it in state.async_waits(w, step, j):
                state.release(w, a.releases, it)
            for wait in state.waits(w, step, j):
                yield wait
            state.execute(w, step, j)
            yield None
    state.drain(w)


def _interleave(
    program: PipelineProgram,
    iterations: int,
    policy: str,
    rng: random.Random,
    semantics,
    findings: list[Finding],
) -> _State | None:
    state = _State(program, iterations, semantics, findings)
    threads = {w.index: _thread(state, w.index, w.steps) for w in program.warpgroups}
    roles = {w.index: w.role for w in program.warpgroups}
    blocked: dict[int, tuple[str, Callable[[], bool]] | None] = {w: None for w in threads}
    turn = 0
    try:
        for w in list(threads):  # start each thread up to its first wait
            blocked[w] = _advance(threads, w)
        while threads or state.in_flight:
            ready = [w for w in threads if blocked[w] is None or blocked[w][1]()]
            if not ready and not state.in_flight:
                waiting = "; ".join(f"warpgroup {w} waits for the {blocked[w][0]}" for w in sorted(threads))
                state.fail("deadlock", waiting)
            land = bool(state.in_flight) and (not ready or _prefers_landing(policy, rng))
            if land:
                state.land(rng.randrange(len(state.in_flight)) if policy == "random" else 0)
                continue
            w = _pick(policy, ready, roles, rng, turn)
            turn += 1
            blocked[w] = _advance(threads, w)
    except _Failure:
        return None
    return state


def _advance(threads: dict, w: int):
    """Run warpgroup w to its next wait (returned) or past one step (None); drop it when done."""
    try:
        return next(threads[w])
    except StopIteration:
        del threads[w]
        return None


def _prefers_landing(policy: str, rng: random.Random) -> bool:
    if policy == "tma-late":
        return False
    if policy == "producers-first":
        return True
    return rng.random() < 0.3


def _pick(policy: str, ready: list[int], roles: dict[int, str], rng: random.Random, turn: int) -> int:
    if policy == "producers-first":
        return min(ready, key=lambda w: (roles[w] != "producer", w))
    if policy == "consumers-first":
        return min(ready, key=lambda w: (roles[w] == "producer", w))
    if policy == "last-warpgroup-first":
        return max(ready)
    if policy == "round-robin":
        return sorted(ready)[turn % len(ready)]
    return rng.choice(ready)


def _clock(
    program: PipelineProgram, iterations: int, latency: dict[str, int], sync: int, findings: list[Finding]
) -> None:
    """Replay on the schedule's clock: each step at `trip * II + row`; TMA lands `latency` later and a
    reader releases its slot `latency (+ hand-off)` after its last read; a wait not met in time is a stall."""
    state = _State(program, iterations, None, findings)
    # (time, order, sequence, payload): landings (0) and releases (1) before steps (2) at equal times
    heap = []
    for w in program.warpgroups:
        for j in range(program.trips(iterations)):
            for step in w.steps:
                heap.append((j * program.ii + step.row, 2, len(heap), (w.index, step, j)))
    heapq.heapify(heap)
    seq = len(heap)
    try:
        while heap:
            t, order, _, payload = heapq.heappop(heap)
            if order == 0:  # a TMA landing
                state.land(state.in_flight.index(payload))
                continue
            if order == 1:  # a release
                w, releases, it = payload
                state.release(w, releases, it)
                continue
            w, step, j = payload
            for what, ok in state.waits(w, step, j):
                if not ok():
                    state.fail(
                        "stall",
                        f"warpgroup {w}: {step.op} at cycle {t} (trip {j}) would wait for the {what}; "
                        f"the program does not sustain II {program.ii}",
                    )
            it = state.execute(w, step, j, clocked=True)
            if it is None:
                continue
            if step.writes_ring:
                seq += 1
                heapq.heappush(heap, (t + latency[step.op], 0, seq, state.in_flight[-1]))
            later = state.owed_releases[step.op] if step.deferred else ()
            for one in step.releases + later:  # each ring freed once its reads completed (+ the hand-off)
                seq += 1
                ring_name, _, finish = one
                done = t + finish + (sync if state.rings[ring_name].producer != w else 0)
                heapq.heappush(heap, (done, 1, seq, (w, (one,), it)))
    except _Failure:
        return


def simulate(
    program: PipelineProgram,
    latency: dict[str, int],
    sync_latency: int,
    *,
    iterations: int = 4,
    interleavings: int = 100,
    seed: int = 0,
    semantics=None,
    numerics_every: int = 10,
) -> Verdict:
    """Run `program` under `interleavings` interleavings (the policies in turn, random ones seeded from
    `seed`) and on the schedule's clock; with `semantics`, compare outputs with its reference."""
    findings: list[Finding] = []
    errors = []
    _clock(program, iterations, latency, sync_latency, findings)
    for i in range(interleavings):
        policy = POLICIES[i % len(POLICIES)]
        rng = random.Random(seed * 1_000_003 + i)
        sem = semantics if semantics is not None and i % numerics_every == 0 else None
        state = _interleave(program, iterations, policy, rng, sem, findings)
        if state is None:
            findings[-1] = Finding(
                findings[-1].kind, f"{findings[-1].message} (interleaving {i}, policy {policy})"
            )
            break
        if sem is not None:
            err = sem.error(state.outputs)
            errors.append(err)
            if not np.isfinite(err) or err > sem.tolerance:
                findings.append(
                    Finding(
                        "mismatch",
                        f"outputs differ from the reference: relative error {err:.3e} "
                        f"(tolerance {sem.tolerance:g}), interleaving {i}",
                    )
                )
                break
    return Verdict(interleavings, iterations, tuple(findings), max(errors) if errors else None, len(errors))
