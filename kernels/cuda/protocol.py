"""Static check of a rendered kernel against its pipeline program (DESIGN.md 6.3.1): the synchronisation
the CUDA text must carry, read back from the text itself. Cheap (regular expressions over one source), so
render() runs it on every kernel it writes; kernels/mutate.py shows that each rule catches the mutation it
is there for.

Rules (each finding names one):
- ring-protocol: the prelude's `Ring<DEPTH>` is the hand-off protocol (slot `it % DEPTH`, full phase
  `(it / DEPTH) & 1`, the empty wait on the other phase, a release an arrive on the slot's empty barrier);
- ring-storage: every ring's slots and barriers at the program's depth, every `Ring<D>` use of it too;
- barrier-init: full barriers expect one arrival per TMA load (every warp of a staging writer), empty
  barriers one per warp of every reading warpgroup;
- expect-tx: a TMA load's transaction bytes are the ring's, after the wait for the slot's empty barrier;
- ring-wait: a read of a ring waits for its full barrier at the iteration whose slot it reads, the one
  the program reads;
- memory-clobber: generic loads of a TMA slot stay after the full wait (a compiler barrier right after it);
- proxy-fence: a warpgroup that read a TMA ring with generic loads fences (`fence.proxy.async`) after its
  reads and before it releases the slot to the next TMA write;
- release: each step releases exactly the slots the program releases there;
- wgmma-batch: every `warpgroup_arrive` fences its accumulator before it and commits the batch after;
- deferred-wait: each deferred wait is a `warpgroup_wait<pending>` with the program's pending count;
- named-barrier: the tensor-core order's named barriers count two warpgroups (256 threads), each synced
  and arrived on;
- staging: a staged value waits for its slot, fences for the async proxy and then arrives;
- split-k: a kernel that adds split K's partial sums itself writes its partials, fences them device-wide,
  meets its warpgroup (128 threads), counts itself in, learns from a barrier reduction on the same named
  barrier whether it was last, and only then fences again, reads every partial from L2 (`__ldcg`) and sets
  the count back to zero.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from warpsched.kernels.families.base import ident
from warpsched.kernels.program import PipelineProgram
from warpsched.models.ops import ASYNC_READER

# the device protocol (templates.PRELUDE), stated here independently of the template text
RING_PROTOCOL = (
    "int slot(int it) { return it % DEPTH; }",
    "int phase(int it) { return (it / DEPTH) & 1; }",
    "void wait_full(uint64_t* full, int it) { Full::wait(&full[slot(it)], phase(it)); }",
    "void wait_empty(uint64_t* empty, int it) { Empty::wait(&empty[slot(it)], phase(it) ^ 1); }",
    "void release(uint64_t* empty, int it) { Empty::arrive(&empty[slot(it)]); }",
)
WARP_ARRIVALS = 4  # a warpgroup's warps: each arrives once (its lane 0 after __syncwarp)
ORDER_THREADS = 256  # a named barrier of the tensor-core order joins two warpgroups

_STEP = re.compile(r"^\s*\{  // (\S+): iteration j - (\d+)$", re.M)
_SEGMENT_END = re.compile(
    r"^\s*(if \(wg == |if \(warp == |for \(; j |if \(phase == 0\)|// the steady state's wgmmas)", re.M
)
_DRAIN = re.compile(r"^\s*// the steady state's wgmmas in flight", re.M)
_RELEASE = re.compile(r"Ring<(\d+)>::release\(s\.empty_(\w+), it - (\d+)\)")
_SLOT = re.compile(r"const int slot_(\w+) = Ring<(\d+)>::slot\(it - (\d+)\);")
_WAIT_FULL = re.compile(r"Ring<(\d+)>::wait_full\(s\.full_(\w+), it - (\d+)\);")
_FENCE = "fence_view_async_shared()"
_CLOBBER = 'asm volatile("" ::: "memory")'


class ProtocolError(RuntimeError):
    """A kernel warpsched generated breaks a rule: a defect of warpsched, never of its input."""


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str


def check(source: str, program: PipelineProgram) -> tuple[Violation, ...]:
    """Every rule the source breaks (empty: it carries the program's synchronisation)."""
    out: list[Violation] = []
    _protocol(source, out)
    _rings(source, program, out)
    _named_barriers(source, program, out)
    for op, seg in _segments(source):
        _segment(op, seg, program, out)
    _all_waits(source, program, out)
    _split_k(source, out)
    return tuple(out)


def require(source: str, program: PipelineProgram) -> None:
    """Raise ProtocolError naming every rule `source` breaks (render() calls it on each kernel)."""
    violations = check(source, program)
    if violations:
        raise ProtocolError(
            f"warpsched generated a kernel for {program.name} that breaks its synchronisation protocol (a "
            "defect of warpsched, please report it): "
            + "; ".join(f"{v.rule}: {v.message}" for v in violations)
        )


def _protocol(source: str, out: list) -> None:
    for line in RING_PROTOCOL:
        if line not in source:
            out.append(Violation("ring-protocol", f"the prelude's Ring<DEPTH> lacks `{line}`"))


def _rings(source: str, program: PipelineProgram, out: list) -> None:
    by_ident = {ident(r.value): r for r in program.rings}
    for r in program.rings:
        name = ident(r.value)
        m = re.search(
            rf"\w+ {name}\[(\d+)\]\[\d+\];\s*uint64_t full_{name}\[(\d+)\], empty_{name}\[(\d+)\];", source
        )
        if not m or {int(g) for g in m.groups()} != {r.depth}:
            out.append(
                Violation("ring-storage", f"ring {r.value}: storage is not {r.depth} slot(s) and barriers")
            )
        m = re.search(
            rf"for \(int i = 0; i < (\d+); \+\+i\) \{{ Full::init\(&s\.full_{name}\[i\], (\d+)\); "
            rf"Empty::init\(&s\.empty_{name}\[i\], (\d+)\); \}}",
            source,
        )
        writers = 1 if r.kind == "tma" else WARP_ARRIVALS
        arrivals = WARP_ARRIVALS * len(r.readers)
        if not m or (int(m[1]), int(m[2]), int(m[3])) != (r.depth, writers, arrivals):
            out.append(
                Violation(
                    "barrier-init",
                    f"ring {r.value}: its {r.depth} full barriers must expect {writers} arrival(s) and its "
                    f"empty barriers {arrivals} (every warp of warpgroups {list(r.readers)})"
                    + (f"; the source has {m[1]} x ({m[2]}, {m[3]})" if m else "; no initialisation found"),
                )
            )
    for m in re.finditer(r"Ring<(\d+)>::\w+\(s\.(?:full|empty)_(\w+)", source):
        ring = by_ident.get(m[2])
        if ring is not None and int(m[1]) != ring.depth:
            out.append(
                Violation(
                    "ring-storage", f"ring {ring.value} is used as Ring<{m[1]}>, its depth is {ring.depth}"
                )
            )


def _named_barriers(source: str, program: PipelineProgram, out: list) -> None:
    uses: dict[str, set] = {}
    for m in re.finditer(r"Order::(sync|arrive)\((\d+), (\d+)\)", source):
        if int(m[2]) != ORDER_THREADS:
            out.append(
                Violation(
                    "named-barrier",
                    f"named barrier {m[3]}: {m[1]} counts {m[2]} threads, the order joins two warpgroups "
                    f"({ORDER_THREADS})",
                )
            )
        uses.setdefault(m[3], set()).add(m[1])
    for barrier, kinds in sorted(uses.items()):
        if kinds != {"sync", "arrive"}:
            out.append(Violation("named-barrier", f"named barrier {barrier} is only {'/'.join(kinds)}ed"))
    if program.token_units and not uses:
        out.append(Violation("named-barrier", "the program orders the tensor core but no named barrier does"))


def _segments(source: str):
    """(op, text) for each copy of each step (the text up to the next step or loop boundary), and
    ("<drain>", text) for a steady state's drain, attributed to the step before it."""
    starts = [(m.start(), m[1]) for m in _STEP.finditer(source)]
    ends = sorted({m.start() for m in _SEGMENT_END.finditer(source)} | {p for p, _ in starts} | {len(source)})
    for p, op in starts:
        end = next(e for e in ends if e > p)
        yield op, source[p:end]
    for m in _DRAIN.finditer(source):
        before = [op for p, op in starts if p < m.start()]
        end = next(e for e in ends if e > m.start())
        yield f"{before[-1]}<drain>", source[m.start() : end]


def _segment(op: str, seg: str, program: PipelineProgram, out: list) -> None:
    drain = op.endswith("<drain>")
    op = op.removesuffix("<drain>")
    w = next((w for w in program.warpgroups for s in w.steps if s.op == op), None)
    if w is None:
        out.append(Violation("release", f"the source has a step {op!r} the program does not"))
        return
    step = next(s for s in w.steps if s.op == op)
    rings = {ident(r.value): r for r in program.rings}
    tma_reads = {
        ident(r.value)
        for s in w.steps
        for r in s.reads
        if r.via == "ring" and program.ring(r.value).kind == "tma" and s.unit != ASYNC_READER
    }  # rings this warpgroup reads with generic loads

    # releases: exactly the program's (each release block of the step once: the steady state's deferred
    # waits, the guarded trips' wait at the issue, the step's own), each fenced where the warpgroup read the
    # slot with generic loads
    found = [(m[2], int(m[3]), m.start()) for m in _RELEASE.finditer(seg)]
    if not drain:
        expected = Counter((ident(r), d) for r, d, _ in step.releases)
        for a in program_waits(program, op):
            expected.update((ident(r), d) for r, d, _ in a.releases)
        have = Counter((r, d) for r, d, _ in found)
        if have != expected:
            missing, extra = expected - have, have - expected
            out.append(
                Violation(
                    "release",
                    f"{op}: releases {sorted(have.elements())} where the program releases "
                    f"{sorted(expected.elements())}"
                    + (f" (missing {sorted(missing.elements())})" if missing else "")
                    + (f" (not the program's: {sorted(extra.elements())})" if extra else ""),
                )
            )
    for ring, d, at in found:
        if ring in tma_reads:
            fence = seg.rfind(_FENCE, 0, at)
            # after the full waits and after the last access of the ring's slots (its generic loads)
            last_wait = max((m.start() for m in _WAIT_FULL.finditer(seg, 0, at)), default=-1)
            last_read = seg.rfind(f"s.{ring}[", 0, at)
            if fence < max(last_wait, last_read, 0):
                out.append(
                    Violation(
                        "proxy-fence",
                        f"{op}: warpgroup {w.index} read ring {ring} with generic loads and releases it "
                        f"(it - {d}) with no fence.proxy.async after the reads: the TMA refill may overwrite "
                        "bytes they read",
                    )
                )

    if drain:
        return
    # ring reads: the full wait of the iteration whose slot is read, as the program reads it
    reads = {(ident(r.value), r.distance) for r in step.reads if r.via == "ring"}
    slots = [(m[1], int(m[2]), int(m[3])) for m in _SLOT.finditer(seg)]
    waits = [(m[2], int(m[1]), int(m[3]), m.end()) for m in _WAIT_FULL.finditer(seg)]
    for ring, depth, d in slots:
        if ring in rings and rings[ring].kind == "tma" and (ring, d) not in reads:
            out.append(
                Violation(
                    "ring-wait", f"{op}: reads slot it - {d} of ring {ring}, the program it - {sorted(reads)}"
                )
            )
        if not any(r == ring and x == d for r, _, x, _ in waits):
            out.append(
                Violation(
                    "ring-wait", f"{op}: reads slot it - {d} of ring {ring} without waiting for it to land"
                )
            )
    for ring, _, d, end in waits:
        if (
            ring in tma_reads
            and step.unit != ASYNC_READER
            and seg[end:].lstrip()[: len(_CLOBBER)] != _CLOBBER  # the next statement
        ):
            out.append(
                Violation(
                    "memory-clobber",
                    f"{op}: no compiler barrier right after the full wait of ring {ring}: its generic "
                    "loads may be moved before the data landed",
                )
            )
    for r in step.reads:
        if r.via == "ring" and r.distance == 0 and step.kind != "tma_load":
            if not any(x == ident(r.value) and d == 0 for x, _, d, _ in waits):
                out.append(Violation("ring-wait", f"{op}: reads ring {r.value} without a full wait"))

    # TMA loads: the slot's empty barrier first, then the ring's transaction bytes
    for m in re.finditer(r"Full::arrive_and_expect_tx\(&s\.full_(\w+)\[slot\], (\d+)\);", seg):
        ring = rings.get(m[1])
        if ring is not None and int(m[2]) != ring.bytes:
            out.append(
                Violation(
                    "expect-tx", f"{op}: expects {m[2]} B on ring {ring.value}, a load moves {ring.bytes} B"
                )
            )
        if f"wait_empty(s.empty_{m[1]}, it);" not in seg[: m.start()]:
            out.append(
                Violation("expect-tx", f"{op}: issues the TMA load of ring {m[1]} before its slot is free")
            )

    # wgmma batches: the registers it reads asynchronously (accumulator; A where it comes from registers)
    # are fenced right before the issue, so that the compiler moves no write of them across it; then the
    # batch is committed
    last = 0
    for m in re.finditer(r"warpgroup_arrive\(\);\n\s*gemm\(\w+, (?:(\w+), )?.*, (\w+)\);", seg):
        start = max(last, seg.rfind("if (live) {", 0, m.start()))  # this trip's issue, not an earlier wait
        fences = set(re.findall(r"warpgroup_fence_operand\((\w+)\)", seg[start : m.start()]))
        need = {m[2]} | ({m[1]} if m[1] else set())
        if need - fences:
            out.append(
                Violation(
                    "wgmma-batch",
                    f"{op}: wgmma operand register(s) {sorted(need - fences)} not fenced before the issue",
                )
            )
        if "warpgroup_commit_batch();" not in seg[m.end() :]:
            out.append(Violation("wgmma-batch", f"{op}: a wgmma batch never committed"))
        last = m.end()
    if seg.count("warpgroup_arrive();") != len(re.findall(r"warpgroup_arrive\(\);\n\s*gemm\(", seg)):
        out.append(Violation("wgmma-batch", f"{op}: a warpgroup_arrive not followed by its wgmma"))

    # staging: wait for the slot, write, fence for the async proxy, arrive
    for m in re.finditer(r"Full::arrive\(&s\.full_(\w+)\[out_slot\]\);", seg):
        before = seg[: m.start()]
        if f"wait_empty(s.empty_{m[1]}, it);" not in before or _FENCE not in before:
            out.append(
                Violation("staging", f"{op}: publishes ring {m[1]} without waiting for its slot and fencing")
            )


def program_waits(program: PipelineProgram, op: str) -> list:
    """The deferred waits whose releases a copy of step `op` carries: those placed before it, and the one of
    its own batch (the guarded trips wait right after the issue)."""
    step = next(s for w in program.warpgroups for s in w.steps if s.op == op)
    own = (
        [a for w in program.warpgroups for s in w.steps for a in s.waits if a.op == op]
        if step.deferred
        else []
    )
    return list(step.waits) + own


def _all_waits(source: str, program: PipelineProgram, out: list) -> None:
    waits = {(a.op, a.trips): a for w in program.warpgroups for s in w.steps for a in s.waits}
    seen = set()
    for m in re.finditer(
        r"// deferred wait: (\S+) of trip j - (\d+) completes.*\n"
        r"\s*if \(steady\) \{\n\s*warpgroup_wait<(\d+)>",
        source,
    ):
        a = waits.get((m[1], int(m[2])))
        seen.add((m[1], int(m[2])))
        if a is None:
            out.append(Violation("deferred-wait", f"a deferred wait for {m[1]} the program does not place"))
        elif int(m[3]) != a.pending:
            out.append(
                Violation(
                    "deferred-wait",
                    f"the deferred wait for {m[1]} is warpgroup_wait<{m[3]}>, the program's pending count is "
                    f"{a.pending}: a batch still reading its operands would count as complete",
                )
            )
    for key in sorted(set(waits) - seen):
        out.append(
            Violation("deferred-wait", f"no deferred wait for {key[0]} (trip j - {key[1]}) in the source")
        )


# split K's hand-off in the order it must happen (QUANT_EPILOGUE): (what, regular expression)
SPLIT_K_ORDER = (
    ("its partials written", r"partial\[\(size_t\(blockIdx\.z\) \* m \+ col\) \* n \+ row\] = "),
    ("a device-wide fence after them", r"__threadfence\(\);  // split-k: partials published"),
    ("the warpgroup met", r'asm volatile\("bar\.sync %0, 128;" :: "r"\((\d+)\) : "memory"\);'),
    ("one thread's count", r"atomicAdd\(count, 1\) == int\(gridDim\.z\) - 1"),
    ("the last split told to the warpgroup", r"barrier\.cta\.red\.or\.pred q, %2, 128, p;"),
    ("the partials read only by the last split", r"if \(last\) \{"),
    ("a device-wide fence before reading them", r"__threadfence\(\);  // split-k: every split's partials"),
    ("every split's partial read from L2", r"__ldcg\(partial \+ \(size_t\(z\) \* m \+ col\) \* n \+ row\)"),
    ("the count set back to zero", r"\*count = 0;"),
)


def _split_k(source: str, out: list) -> None:
    blocks = source.split("} else {  // split K")[1:]
    barriers = []
    for block in blocks:
        block = block.split("\n    }\n", 1)[0]  # up to the end of the step's epilogue
        at = 0
        for what, pattern in SPLIT_K_ORDER:
            m = re.compile(pattern).search(block, at)
            if m is None:
                out.append(
                    Violation(
                        "split-k",
                        f"split K's hand-off lacks {what} (or has it out of order): the last split could add "
                        "partials not yet written, stale, or count a next call's splits wrong",
                    )
                )
                break
            if m.lastindex:
                barriers.append(m[1])
            at = m.end()
        red = re.search(r'"r"\(counted_last\), "r"\((\d+)\) : "memory"\);', block)
        sync = re.search(r'"bar\.sync %0, 128;" :: "r"\((\d+)\)', block)
        if not red or (sync and red[1] != sync[1]):
            out.append(
                Violation(
                    "split-k",
                    "split K's last split is told on another named barrier than the one its warpgroup met on",
                )
            )
    if len(set(barriers)) != len(barriers) or any(not 0 < int(b) < 8 for b in barriers):
        out.append(
            Violation(
                "split-k",
                f"split K's hand-offs meet on hardware named barriers {barriers}: one per weight slice, from "
                "1 to 7 (0 is __syncthreads, 8..15 the order token's)",
            )
        )
