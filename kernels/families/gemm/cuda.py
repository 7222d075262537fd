"""gemm: what each op is in CUDA (kernels/cuda/render.py calls these hooks), over the generic templates
(kernels/cuda/templates.py, `T`) and this family's own (`F`)."""

from __future__ import annotations

from warpsched.kernels.cuda import templates as T
from warpsched.kernels.families.base import CudaFamily, LoadPlan, ident
from warpsched.kernels.families.gemm import templates as F
from warpsched.models import gemm
from warpsched.models.kinds import OpKind
from warpsched.scheduler.errors import InputError


class GemmCuda(CudaFamily):
    """C = A B^T: A (M, K) and B (N, K) K-major, tile_m rows split over the consumers."""

    limits = {"tile_k": "64 (one 128-byte swizzled K row)"}

    entry = "warpsched_gemm"
    params = (
        "const __grid_constant__ CUtensorMap tma_a",
        "const __grid_constant__ CUtensorMap tma_b",
        "Element* __restrict__ c",
        "int m",
        "int n",
        "int k",
    )
    iterations = "k / TILE_K"

    @staticmethod
    def check(src):
        if src["tile_k"] != 64:
            raise InputError(
                f"gemm CUDA templates take tile_k = 64 (one 128-byte swizzled K row); got {src['tile_k']}"
            )

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.tm, self.tn, self.tk, self.consumers = s["tile_m"], s["tile_n"], s["tile_k"], s["consumers"]
        self.rows = self.tm // self.consumers
        self.tile = {"tile_m": self.tm, "tile_n": self.tn, "tile_k": self.tk, "dtype": s["dtype"]}

    def declarations(self) -> str:
        out = [
            T.CONSTANT.format(name=n, value=v)
            for n, v in (
                ("TILE_M", self.tm),
                ("TILE_N", self.tn),
                ("TILE_K", self.tk),
                ("SLICE_M", self.rows),
            )
        ]
        out += [
            T.SMEM_LAYOUT_K.format(name="LayoutA", rows=self.rows, cols=self.tk),
            T.SMEM_LAYOUT_K.format(name="LayoutB", rows=self.tn, cols=self.tk),
        ]
        return "".join(out) + "\n"

    def loads(self) -> dict:
        a, b = self.tm * self.tk, self.tn * self.tk
        return {
            gemm.LOAD_A: LoadPlan(
                "Element",
                a,
                2 * a,
                (T.TMA_2D.format(map="tma_a", dst="dst", c0="it * TILE_K", c1="blockIdx.x * TILE_M"),),
            ),
            gemm.LOAD_B: LoadPlan(
                "Element",
                b,
                2 * b,
                (T.TMA_2D.format(map="tma_b", dst="dst", c0="it * TILE_K", c1="blockIdx.y * TILE_N"),),
            ),
        }

    def setup(self, step) -> str:
        return (
            T.MMA_SETUP.format(op=ident(step.op), rows=self.rows, cols=self.tn)
            if step.kind == OpKind.MMA
            else ""
        )

    def issue(self, step) -> str:
        if step.kind != OpKind.MMA:
            self._unknown(step)
        return T.MMA_ISSUE.format(
            op=ident(step.op),
            ring_a=ident(gemm.LOAD_A),
            ring_b=ident(gemm.LOAD_B),
            layout_a="LayoutA",
            layout_b="LayoutB",
            a_offset=f"{step.index} * SLICE_M * TILE_K",
            b_offset=0,
        )

    def complete(self, step, pending: int = 0) -> str:
        return T.WGMMA_COMPLETE.format(acc=f"acc_{ident(step.op)}", pending=pending)

    def epilogue(self, step) -> str:
        return (
            F.MMA_EPILOGUE.format(
                op=ident(step.op), rows=self.rows, cols=self.tn, slices=self.consumers, slice=step.index
            )
            if step.kind == OpKind.MMA
            else ""
        )
