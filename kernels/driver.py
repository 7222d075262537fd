"""From a schedule to a checked cubin, one way for every caller (warpsched compile, the sweep, the runtime,
the package): render, build, and choose the variant warpsched ships (DESIGN.md 6.3-6.4).

The peeled, branch-free steady state is built unless ptxas spills it; then one guarded loop. The stage
guards split a trip into blocks that ptxas schedules one by one; without them it may interleave a whole
trip and run out of registers (attention d64 causal, block_n 176: 136 B of spills where the one loop had
none). Deterministic for a schedule and toolchain.
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
    fell_back: bool = False  # the branch-free variant spilled, so this is the one guarded loop


def build_schedule(
    schedule: Schedule, program: PipelineProgram | None = None, progress: Callable[[str], None] | None = None
) -> BuiltKernel:
    """Render and build `schedule`: the branch-free kernel unless ptxas spills it, else one guarded loop.
    `progress` hears one line before each nvcc run (15-25 s each)."""
    kernel = render(schedule, program)
    report = _build(kernel, progress)
    if kernel.branch_free and (report.spill_stores or report.spill_loads):
        kernel = render(schedule, program, peel=False)
        report = _build(kernel, progress, "the branch-free steady state spilled; ")
        return BuiltKernel(kernel, report, fell_back=True)
    return BuiltKernel(kernel, report)


def kernel_for(
    schedule: Schedule, program: PipelineProgram | None = None, build_now: bool = True
) -> RenderedKernel:
    """The kernel `build_schedule` builds for `schedule`. `build_now=False` decides from an earlier build only
    (no nvcc run; without one, or without a toolchain, the branch-free variant)."""
    if build_now:
        return build_schedule(schedule, program).kernel
    kernel = render(schedule, program)
    if not kernel.branch_free:
        return kernel
    try:
        report = cached_report(kernel.source)
    except BuildError:
        report = None  # no toolchain here: nothing was built, and nothing to decide from
    if report is not None and (report.spill_stores or report.spill_loads):
        return render(schedule, program, peel=False)
    return kernel


def _build(kernel: RenderedKernel, progress, why: str = "") -> BuildReport:
    if progress is not None and cached_report(kernel.source) is None:
        variant = (
            " (branch-free steady state)" if kernel.branch_free else " (one guarded loop)" if why else ""
        )
        progress(f"{why}nvcc: building {kernel.entry}{variant} for sm_90a, 15-25 s ...")
    return build(kernel.source, kernel.entry)
