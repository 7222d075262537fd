"""Render a pipeline program as a CUDA C++ kernel over CuTe (DESIGN.md 6.3).

The renderer states the schedule only: one block per warpgroup with its `setmaxnreg` budget and
its steps in program order, each guarded by the iteration it works for (`j - stage`); one
shared-memory ring per TMA load with the schedule's depth and one full/empty mbarrier pair per
slot; releases where the program puts them. What an op does is its template
(kernels/cuda/templates.py). Families with templates so far: gemm.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from kernels.cuda import templates as T
from kernels.program import PipelineProgram, lower
from scheduler.errors import InputError
from scheduler.schedule import Schedule

ELEMENTS = {"bf16": "cutlass::bfloat16_t", "fp16": "cutlass::half_t"}
ELEMENT_BYTES = 2
REGISTER_FILE = 65536
SUPPORTED = ("gemm",)


@dataclass(frozen=True)
class RenderedKernel:
    source: str
    entry: str
    threads: int
    smem_bytes: int  # dynamic shared memory the launch must grant
    params: tuple[str, ...]  # kernel parameters in order
    tile: dict  # the family's tile sizes (what the host side needs to launch it)
    digest: str  # of the schedule it states


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def supported(problem) -> None:
    """Raise a one-sentence `InputError` unless `problem`'s family has CUDA templates."""
    family = problem.source.get("model")
    if family not in SUPPORTED:
        raise InputError(f"CUDA generation covers {', '.join(SUPPORTED)} so far; {family or problem.name!r} "
                         f"lowers to a pipeline program (warpsched check) but has no CUDA templates yet")


def render(schedule: Schedule, program: PipelineProgram | None = None) -> RenderedKernel:
    supported(schedule.problem)
    program = program or lower(schedule)
    return _render_gemm(schedule, program)


def _render_gemm(schedule: Schedule, program: PipelineProgram) -> RenderedKernel:
    src = schedule.problem.source
    tm, tn, tk, consumers = src["tile_m"], src["tile_n"], src["tile_k"], src["consumers"]
    rows = tm // consumers
    if tk % 64:
        raise InputError(f"gemm CUDA templates take tile_k in multiples of 64 (a 128-byte swizzled K row); got {tk}")
    digest = hashlib.sha256(repr((schedule.ii, sorted((n, p.start, p.warpgroup) for n, p in schedule.ops.items()),
                                  sorted((n, b.depth) for n, b in schedule.buffers.items()))).encode()).hexdigest()[:16]
    index = {w.index: i for i, w in enumerate(program.warpgroups)}  # contiguous warpgroup numbers in the kernel
    threads = 128 * len(program.warpgroups)
    launch_regs = min(255, (REGISTER_FILE // threads) // 8 * 8)
    rings = {r.value: r for r in program.rings}
    elements = {"load_a": tm * tk, "load_b": tn * tk}
    maps = {"load_a": ("tma_a", "it * TILE_K", "blockIdx.x * TILE_M"), "load_b": ("tma_b", "it * TILE_K", "blockIdx.y * TILE_N")}

    out = [T.PRELUDE.format(digest=digest, name=program.name, ii=program.ii, stages=program.stages, element=ELEMENTS[src["dtype"]])]
    for name, value in (("TILE_M", tm), ("TILE_N", tn), ("TILE_K", tk), ("SLICE_M", rows)):
        out.append(T.CONSTANT.format(name=name, value=value))
    out.append(T.SMEM_LAYOUT.format(name="LayoutA", rows=rows, cols=tk))
    out.append(T.SMEM_LAYOUT.format(name="LayoutB", rows=tn, cols=tk))
    out.append(T.STORAGE.format(members="".join(
        T.RING_MEMBERS.format(ring=_ident(r), depth=rings[r].depth, elements=elements[r]) for r in rings)))
    params = ("const __grid_constant__ CUtensorMap tma_a", "const __grid_constant__ CUtensorMap tma_b",
              "Element* __restrict__ c", "int m", "int n", "int k")
    out.append(T.KERNEL_OPEN.format(threads=threads, entry="warpsched_gemm", params=", ".join(params), iterations="k / TILE_K",
                                    ring_init="".join(T.RING_INIT.format(ring=_ident(r.value), depth=r.depth, readers=len(r.readers))
                                                      for r in program.rings)))
    for w in program.warpgroups:
        setup, epilogue = [], []
        for step in w.steps:
            if step.kind == "mma":
                slice_ = int(re.search(r"(\d+)$", step.op).group(1))
                setup.append(T.MMA_SETUP.format(op=_ident(step.op), rows=rows, cols=tn))
                epilogue.append(T.MMA_EPILOGUE.format(op=_ident(step.op), rows=rows, cols=tn, slices=consumers, slice=slice_))
        out.append(T.WARPGROUP_OPEN.format(index=index[w.index], role=w.role, ops=", ".join(s.op for s in w.steps),
                                           direction="dealloc" if w.registers <= launch_regs else "alloc",
                                           registers=w.registers, setup="".join(setup), stages=program.stages))
        for step in w.steps:
            out.append(T.STEP.format(op=step.op, stage=step.stage, body=_body(step, rings, elements, maps, rows)))
        out.append(T.WARPGROUP_CLOSE.format(epilogue="".join(epilogue)))
    out.append(T.KERNEL_CLOSE)
    smem = 0  # sizeof(SharedStorage): each ring's slots 1024-aligned, then its 2 x depth mbarriers
    for r in program.rings:
        smem = -(-smem // 1024) * 1024 + r.depth * elements[r.value] * ELEMENT_BYTES + 16 * r.depth
    smem = -(-smem // 1024) * 1024
    return RenderedKernel("".join(out), "warpsched_gemm", threads, smem, params,
                          {"tile_m": tm, "tile_n": tn, "tile_k": tk, "dtype": src["dtype"]}, digest)


def _body(step, rings, elements, maps, rows) -> str:
    if step.kind == "tma_load":
        ring = rings[step.op]
        tensor_map, coord0, coord1 = maps[step.op]
        body = T.TMA_LOAD.format(ring=_ident(step.op), depth=ring.depth, bytes=elements[step.op] * ELEMENT_BYTES,
                                 tensor_map=tensor_map, coord0=coord0, coord1=coord1)
    elif step.kind == "mma":
        reads = {r.value: r for r in step.reads}
        a, b = reads["load_a"], reads["load_b"]
        slice_ = int(re.search(r"(\d+)$", step.op).group(1))
        body = T.MMA.format(op=_ident(step.op), ring_a=_ident(a.value), ring_b=_ident(b.value),
                            dist_a=a.distance, dist_b=b.distance, depth_a=rings[a.value].depth, depth_b=rings[b.value].depth,
                            a_offset=f"{slice_} * SLICE_M * TILE_K", b_offset=0, layout_a="LayoutA", layout_b="LayoutB")
    else:
        raise InputError(f"no CUDA template for op kind {step.kind!r} ({step.op})")
    for ring, distance, _ in step.releases:
        body += T.RELEASE.format(ring=_ident(ring), distance=distance, depth=rings[ring].depth)
    return body
