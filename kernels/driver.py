"""From a schedule to a checked cubin, one way for every caller (warpsched compile, the sweep, the runtime,
the package): render, build, and choose the variant warpsched ships (DESIGN.md 6.3-6.4).

The steady state with deferred wgmma waits (kernels/program.py), peeled and branch-free, is built unless
ptxas spills it or serializes its wgmmas; then the peeled steady state waiting at each issue; then one
guarded loop. The stage guards split a trip into blocks that ptxas schedules one by one; without them it
may interleave a whole trip and run out of registers (attention d64 causal, block_n 176: 136 B of spills
where the one loop had none). Deterministic for a schedule and toolchain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from warpsched.kernels.build import BuildError, BuildReport, build, cached_report
from warpsched.kernels.cuda.render import RenderedKernel, render
from warpsched.kernels.program import PipelineProgram
from warpsched.scheduler.schedule import Schedule


@dataclass(frozen=True)
class BuiltKernel:
    kernel: RenderedKernel
    report: (
        BuildReport  # of the first build of this kernel in this call: `cached` only if it came from the cache
    )
    fell_back: bool = False  # the first variant was refused (spills, serialized wgmma): this is a later one


# the variants in the order the driver tries them: (peel, defer)
VARIANTS = ((True, True), (True, False), (False, False))


def _variant(kernel: RenderedKernel) -> str:
    if kernel.deferred_waits:
        return "deferred wgmma waits"
    return "branch-free steady state" if kernel.branch_free else "one guarded loop"


def refusal(report: BuildReport) -> str:
    """Why the driver does not ship a build ("" if it does): spills, or ptxas serializing the wgmmas."""
    if report.spill_stores or report.spill_loads:
        return "ptxas spilled"
    if any("serialized" in p for p in report.sass_problems):
        return "ptxas serialized the wgmmas"
    return ""


def _variants(schedule: Schedule, program: PipelineProgram | None):
    """The distinct kernels of VARIANTS (a schedule with nothing to peel or defer has one)."""
    seen = set()
    for peel, defer in VARIANTS:
        kernel = render(schedule, program, peel=peel, defer=defer)
        if kernel.source not in seen:
            seen.add(kernel.source)
            yield kernel


def build_schedule(
    schedule: Schedule, program: PipelineProgram | None = None, progress: Callable[[str], None] | None = None
) -> BuiltKernel:
    """Render and build `schedule`: deferred wgmma waits in a branch-free steady state unless ptxas spills or
    serializes it, else waits at each issue, else one guarded loop. `progress` hears one line before each
    nvcc run (15-25 s each)."""
    tried = tried_variants(schedule, program, progress)
    kernel, report = tried[-1]
    return BuiltKernel(kernel, report, fell_back=len(tried) > 1)


def tried_variants(
    schedule: Schedule, program: PipelineProgram | None = None, progress: Callable[[str], None] | None = None
) -> tuple[tuple[RenderedKernel, BuildReport], ...]:
    """Every variant `build_schedule` builds for `schedule`, in order, each with its build: the refused ones,
    then the one it ships (the last; refused too when every variant is)."""
    why, tried = "", []
    for kernel in _variants(schedule, program):
        report = _build(kernel, progress, why)
        tried.append((kernel, report))
        why = refusal(report)
        if not why:
            break
        why = f"{why} ({_variant(kernel)}); "
    return tuple(tried)


def kernel_for(
    schedule: Schedule, program: PipelineProgram | None = None, build_now: bool = True
) -> RenderedKernel:
    """The kernel `build_schedule` builds for `schedule`. `build_now=False` decides from earlier builds only
    (no nvcc run; without one, or without a toolchain, the first variant not known to be refused)."""
    if build_now:
        return build_schedule(schedule, program).kernel
    for kernel in _variants(schedule, program):
        try:
            report = cached_report(kernel.source)
        except BuildError:
            return kernel  # no toolchain here: nothing was built, and nothing to decide from
        if report is None or not refusal(report):
            return kernel
    return kernel


def _build(kernel: RenderedKernel, progress, why: str = "") -> BuildReport:
    if progress is not None and cached_report(kernel.source) is None:
        progress(f"{why}nvcc: building {kernel.entry} ({_variant(kernel)}) for sm_90a, 15-25 s ...")
    return build(kernel.source, kernel.entry)
