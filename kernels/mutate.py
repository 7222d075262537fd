"""Mutation score of the CPU checks (DESIGN.md 6.2.1): each mutation breaks the lowering of every shipped
kernel the way a real bug would, and the CPU simulator (kernels/simulate.py, for mutations of the pipeline
program) or the static check of the CUDA text (kernels/cuda/protocol.py, for mutations of the rendered
source) must catch it with a finding that names the cause.

    python -m warpsched.kernels.mutate [--verbose]

prints `FAMILY: CAUGHT/TOTAL mutations caught` per family (a mutation counts as caught when it is caught on
every shipped kernel of the family it applies to) and a line per escaped mutation; the exit status is 1 when
one escaped.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, replace
from typing import Callable

from warpsched.kernels.cuda import protocol
from warpsched.kernels.cuda.render import render
from warpsched.kernels.program import AsyncWait, PipelineProgram, Step, lower
from warpsched.kernels.simulate import simulate
from warpsched.scheduler.schedule import Schedule

SIMULATED_ITERATIONS = 6  # two more than the deepest shipped ring plus its stages need to wrap a slot twice
INTERLEAVINGS = 24  # every policy four times


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    catches: frozenset[str]  # finding kinds (simulator) or rules (static check) that name the cause
    program: Callable[[Schedule, PipelineProgram], PipelineProgram | None] | None = None
    source: Callable[[str], str | None] | None = None


@dataclass(frozen=True)
class Outcome:
    mutation: str
    kernel: str
    status: str  # caught, escaped, n/a
    message: str


# -- mutations of the pipeline program (caught by the simulator) -------------------------------------------
def _steps(program: PipelineProgram):
    return [(w, s) for w in program.warpgroups for s in w.steps]


def _edit(program: PipelineProgram, op: str, edit: Callable[[Step], Step]) -> PipelineProgram:
    return replace(
        program,
        warpgroups=tuple(
            replace(w, steps=tuple(edit(s) if s.op == op else s for s in w.steps)) for w in program.warpgroups
        ),
    )


def _first_wait(program: PipelineProgram) -> tuple[Step, AsyncWait] | None:
    """The strongest deferred wait (fewest batches left pending) of the first step that has any: another
    wait at the same place could complete what a weaker one is for."""
    step = next((s for _, s in _steps(program) if s.waits), None)
    return step and (step, min(step.waits, key=lambda a: a.pending))


def ring_one_short(schedule, program):
    ring = next((r for r in program.rings if r.depth >= 2), None)
    return ring and lower(schedule, {ring.value: ring.depth - 1})


def release_early(schedule, program):
    """The first release of a ring at least two deep (after a step or at a deferred wait) frees the next
    iteration's slot, before that iteration is read (with one slot that is the same release)."""
    deep = {r.value for r in program.rings if r.depth >= 2}
    for _, s in _steps(program):
        if any(r in deep for r, _, _ in s.releases):
            early = tuple((r, d - 1 if r in deep else d, f) for r, d, f in s.releases)
            return _edit(program, s.op, lambda x: replace(x, releases=early))
        for a in s.waits:
            if any(r in deep for r, _, _ in a.releases):
                moved = tuple((r, d - 1 if r in deep else d, f) for r, d, f in a.releases)
                return _replace_wait(program, s, a, replace(a, releases=moved))
    return None


def release_dropped(schedule, program):
    for _, s in _steps(program):
        if s.releases:
            return _edit(program, s.op, lambda x: replace(x, releases=x.releases[1:]))
        for a in s.waits:
            if a.releases:
                return _replace_wait(program, s, a, replace(a, releases=a.releases[1:]))
    return None


def wait_dropped(schedule, program):
    """A deferred wait is gone; the slots it gave back go back where it stood, without it."""
    found = _first_wait(program)
    if found is None:
        return None
    s, a = found
    waits = tuple(x for x in s.waits if x != a)
    # the wait's releases are distances from the wgmma's iteration; the step works for another one
    shift = a.trips + a.stage - s.stage
    moved = tuple((r, d + shift, f) for r, d, f in a.releases)
    return _edit(program, s.op, lambda x: replace(x, waits=waits, releases=x.releases + moved))


def wait_weakened(schedule, program):
    found = _first_wait(program)
    return found and _replace_wait(
        program, found[0], found[1], replace(found[1], pending=found[1].pending + 1)
    )


def release_at_issue(schedule, program):
    """The slots a wgmma reads go back right after its issue, not at its wait."""
    found = next(((s, a) for _, s in _steps(program) for a in s.waits if a.releases), None)
    if found is None:
        return None
    s, a = found
    program = _replace_wait(program, s, a, replace(a, releases=()))
    return _edit(program, a.op, lambda x: replace(x, releases=x.releases + a.releases))


def fence_dropped(schedule, program):
    step = next((s for _, s in _steps(program) if s.fence), None)
    return step and _edit(program, step.op, lambda x: replace(x, fence=False))


def wait_after_read(schedule, program):
    """A deferred wait moved to just after the first step that reads the wgmma's result: the read happens
    before the wait (n/a where the loop never reads a result, as gemm's accumulating wgmma)."""
    for w in program.warpgroups:
        steps = list(w.steps)
        for p, s in enumerate(steps):
            for a in sorted(s.waits, key=lambda a: a.pending):
                readers = [q for q in range(p, len(steps)) if any(r.value == a.op for r in steps[q].reads)]
                readers = [q for q in readers if steps[q].op != a.op]
                if not readers:
                    continue
                after = readers[0] + 1
                trips = a.trips + (after == len(steps))
                target = steps[after % len(steps)]
                moved = replace(a, trips=trips)
                program = _replace_wait(program, s, a, None)
                return _edit(program, target.op, lambda x: replace(x, waits=x.waits + (moved,)))
    return None


def _replace_wait(program, step, wait, new):
    """`program` with `wait` before `step` replaced by `new` (None: removed)."""
    return _edit(
        program,
        step.op,
        lambda x: replace(x, waits=tuple(new if a == wait else a for a in x.waits if new or a != wait)),
    )


# -- mutations of the rendered source (caught by the static check) ------------------------------------------
def _sub(pattern: str, repl) -> Callable[[str], str | None]:
    def mutate(source: str) -> str | None:
        out = re.sub(pattern, repl, source, count=1, flags=re.M)
        return out if out != source else None

    return mutate


def _plus_one(m: re.Match) -> str:
    return f"{m[1]}{int(m[2]) + 1}{m[3]}"


SOURCE = [
    (
        "empty-parity",
        "the empty wait on the full wait's phase",
        "ring-protocol",
        _sub(r"phase\(it\) \^ 1\)", "phase(it))"),
    ),
    (
        "full-parity",
        "the full wait on the other phase",
        "ring-protocol",
        _sub(r"Full::wait\(&full\[slot\(it\)\], phase\(it\)\)", "Full::wait(&full[slot(it)], phase(it) ^ 1)"),
    ),
    (
        "expect-tx-bytes",
        "a TMA load expects half its bytes",
        "expect-tx",
        _sub(r"(arrive_and_expect_tx\(&s\.full_\w+\[slot\], )(\d+)", lambda m: f"{m[1]}{int(m[2]) // 2}"),
    ),
    (
        "tma-before-empty-wait",
        "a TMA load issued without waiting for its slot",
        "expect-tx",
        _sub(r"^\s*Ring<\d+>::wait_empty\(s\.empty_\w+, it\);\n(?=\s*Full::arrive_and_expect_tx)", ""),
    ),
    (
        "empty-arrivals",
        "an empty barrier counts one warp too few",
        "barrier-init",
        _sub(r"(Empty::init\(&s\.empty_\w+\[i\], )(\d+)", lambda m: f"{m[1]}{int(m[2]) - 1}"),
    ),
    (
        "ring-depth",
        "a ring used at another depth",
        "ring-storage",
        _sub(r"Ring<(\d+)>::wait_full", lambda m: f"Ring<{int(m[1]) + 1}>::wait_full"),
    ),
    (
        "full-wait-iteration",
        "a read waits for the previous iteration's load",
        "ring-wait",
        _sub(r"(wait_full\(s\.full_\w+, it - )(\d+)(\))", _plus_one),
    ),
    (
        "memory-clobber-dropped",
        "generic loads of a slot free to move before its full wait",
        "memory-clobber",
        _sub(r'^\s*asm volatile\("" ::: "memory"\);.*\n', ""),
    ),
    (
        "proxy-fence-dropped",
        "a slot read with generic loads released to TMA without fence.proxy.async",
        "proxy-fence",
        _sub(r"^\s*cutlass::arch::fence_view_async_shared\(\);  // our loads.*\n", ""),
    ),
    (
        "release-dropped-in-source",
        "a release missing from the text",
        "release",
        _sub(r"^\s*if \(lane0\) Ring<\d+>::release\(.*\n", ""),
    ),
    (
        "release-wrong-iteration",
        "a release of the next iteration's slot",
        "release",
        _sub(r"(release\(s\.empty_\w+, it - )(\d+)(\))", _plus_one),
    ),
    (
        "commit-dropped",
        "a wgmma batch never committed",
        "wgmma-batch",
        _sub(r"^\s*warpgroup_commit_batch\(\);\n", ""),
    ),
    (
        "operand-fence-dropped",
        "the register fence right before a wgmma issue removed",
        "wgmma-batch",
        _sub(r"^\s*warpgroup_fence_operand\(\w+\);.*\n(?=\s*warpgroup_arrive\(\);)", ""),
    ),
    (
        "deferred-wait-weakened",
        "a deferred warpgroup_wait leaves one more batch in flight",
        "deferred-wait",
        _sub(r"(// deferred wait: .*\n\s*if \(steady\) \{\n\s*warpgroup_wait<)(\d+)(>)", _plus_one),
    ),
    (
        "split-k-unfenced-partials",
        "split K's partials counted in without a device-wide fence after them",
        "split-k",
        _sub(r"^\s*__threadfence\(\);  // split-k: partials published\n", ""),
    ),
    (
        "split-k-count-before-meeting",
        "a split counted in before its warpgroup's partials are all written",
        "split-k",
        _sub(r'^\s*asm volatile\("bar\.sync %0, 128;".*// split-k.*\n', ""),
    ),
    (
        "split-k-stale-partials",
        "the last split reads the partials through L1 (stale lines of another SM's writes)",
        "split-k",
        _sub(r"__ldcg\(partial \+ (\(size_t\(z\) \* m \+ col\) \* n \+ row)\)", r"partial[\1]"),
    ),
    (
        "split-k-unfenced-read",
        "the last split reads the partials without a fence after learning it is last",
        "split-k",
        _sub(r"^\s*__threadfence\(\);  // split-k: every split's partials visible\n", ""),
    ),
    (
        "split-k-count-kept",
        "the count is not set back to zero: the next call's last split is never found",
        "split-k",
        _sub(r"^\s*if \(threadIdx\.x % 128 == 0\) \*count = 0;.*\n", ""),
    ),
    (
        "named-barrier-threads",
        "an order barrier counts one warpgroup",
        "named-barrier",
        _sub(r"Order::sync\(256, ", "Order::sync(128, "),
    ),
]

CATALOGUE: tuple[Mutation, ...] = (
    Mutation(
        "ring-one-short",
        "a ring one slot shallower than the schedule's",
        frozenset({"stall"}),
        ring_one_short,
    ),
    Mutation(
        "release-early",
        "a slot released before its last read",
        frozenset({"read-before-write", "overwrite-before-release"}),
        release_early,
    ),
    Mutation(
        "release-dropped", "a reader never releases a slot", frozenset({"deadlock", "stall"}), release_dropped
    ),
    Mutation(
        "wait-dropped",
        "a deferred wgmma wait removed",
        frozenset({"read-before-wait", "overwrite-in-flight", "release-in-flight"}),
        wait_dropped,
    ),
    Mutation("wait-weakened", "warpgroup_wait<pending + 1>", frozenset({"wait-too-weak"}), wait_weakened),
    Mutation(
        "wait-after-read",
        "a wgmma result read before its deferred wait",
        frozenset({"read-before-wait"}),
        wait_after_read,
    ),
    Mutation(
        "release-at-issue",
        "a wgmma's slots released at its issue, not its wait",
        frozenset({"release-in-flight"}),
        release_at_issue,
    ),
    Mutation(
        "fence-dropped",
        "a generic reader releases a TMA slot without a proxy fence",
        frozenset({"unfenced-release"}),
        fence_dropped,
    ),
) + tuple(Mutation(name, what, frozenset({rule}), source=fn) for name, what, rule, fn in SOURCE)


def evaluate(mutation: Mutation, schedule: Schedule, label: str) -> Outcome:
    program = lower(schedule)
    if mutation.program is not None:
        mutated = mutation.program(schedule, program)
        if mutated is None:
            return Outcome(mutation.name, label, "n/a", "nothing to mutate")
        latency = {op.name: op.latency for op in schedule.problem.ops}
        verdict = simulate(
            mutated,
            latency,
            schedule.machine.sync_latency,
            iterations=SIMULATED_ITERATIONS,
            interleavings=INTERLEAVINGS,
        )
        found = [(f.kind, f.message) for f in verdict.findings]
    else:
        source = mutation.source(render(schedule).source)
        if source is None:
            return Outcome(mutation.name, label, "n/a", "nothing to mutate")
        found = [(v.rule, v.message) for v in protocol.check(source, program)]
    named = [f"{k}: {m}" for k, m in found if k in mutation.catches]
    if named:
        return Outcome(mutation.name, label, "caught", named[0])
    other = "; ".join(f"{k}: {m}" for k, m in found) or "no finding"
    return Outcome(mutation.name, label, "escaped", other)


def shipped() -> dict[str, list[tuple[str, Schedule]]]:
    """The shipped package's schedules by family."""
    from warpsched.kernels.package import manifest

    out: dict[str, list[tuple[str, Schedule]]] = {}
    for entry in manifest.read():
        schedule = manifest.load_schedule(entry)
        out.setdefault(schedule.problem.source["model"], []).append((entry.name, schedule))
    return out


def score(
    families: dict[str, list[tuple[str, Schedule]]], catalogue: tuple[Mutation, ...] = CATALOGUE
) -> dict[str, list[list[Outcome]]]:
    """Per family, per mutation: its outcome on each kernel."""
    return {
        family: [[evaluate(m, s, label) for label, s in kernels] for m in catalogue]
        for family, kernels in sorted(families.items())
    }


def report(scores: dict[str, list[list[Outcome]]], verbose: bool = False) -> tuple[str, bool]:
    lines, all_caught = [], True
    for family, per_mutation in scores.items():
        applied = [outs for outs in per_mutation if any(o.status != "n/a" for o in outs)]
        caught = [outs for outs in applied if all(o.status in ("caught", "n/a") for o in outs)]
        lines.append(f"{family}: {len(caught)}/{len(applied)} mutations caught")
        for outs in per_mutation:
            for o in outs:
                if o.status == "escaped":
                    all_caught = False
                    lines.append(f"  ESCAPED {o.mutation} on {o.kernel}: {o.message}")
                elif verbose and o.status == "caught":
                    lines.append(f"  caught {o.mutation} on {o.kernel}: {o.message}")
        skipped = sorted({outs[0].mutation for outs in per_mutation if all(o.status == "n/a" for o in outs)})
        if skipped:
            lines.append(f"  not applicable (nothing of the kind in this family): {', '.join(skipped)}")
    return "\n".join(lines), all_caught


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warpsched.kernels.mutate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--verbose", action="store_true", help="also print what caught each mutation")
    args = parser.parse_args(argv)
    text, ok = report(score(shipped()), args.verbose)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
