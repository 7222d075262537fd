"""quant_gemm: what each op is in CUDA (kernels/cuda/render.py calls these hooks), over the generic templates
(kernels/cuda/templates.py, `T`) and this family's own (`F`)."""

from __future__ import annotations

from warpsched.kernels.cuda import templates as T
from warpsched.kernels.families.base import CudaFamily, LoadPlan, ident
from warpsched.kernels.families.quant_gemm import geometry, templates as F
from warpsched.models import quant_gemm
from warpsched.models.kinds import OpKind
from warpsched.models.quant_gemm import FLOAT_FORMATS, float_fields
from warpsched.scheduler.errors import InputError


class QuantGemmCuda(CudaFamily):
    """Y = X dequant(W)^T as Y^T = dequant(W) X^T: packed weights (N, K * bits / 8) uint8, X (M, K) K-major,
    group scales (and zero points) (K / group, N); channelwise scales (N,) multiply the accumulators."""

    entry = "warpsched_quant_gemm"
    limits = {
        "tile_n": "64 x consumers (64 weight rows per consumer)",
        "tile_k": "a multiple of 128 (the packed layout's chunk) whose packed row is at most 256 bytes",
    }
    # split K: blockIdx.z takes the z-th of gridDim.z runs of the K tiles, as even as whole tiles allow
    # (the launch splits grids that would leave SMs idle); the epilogue adds the runs' partial sums
    iterations = "k_tile1 - k_tile0"
    locals = (
        "  const int k_tile0 = int(blockIdx.z) * k_tiles / int(gridDim.z);  // this split's first K tile\n"
        "  const int k_tile1 = (int(blockIdx.z) + 1) * k_tiles / int(gridDim.z);  // and the next split's\n"
    )
    # hardware named barriers 1..4 (one per weight slice) for a warpgroup's split-K hand-off: 0 is
    # __syncthreads, and the order token's (cutlass::arch::NamedBarrier ids 0..7) are hardware 8..15
    FIXUP_BARRIER = 1

    @staticmethod
    def check(src):
        tn, tk, bits, consumers = src["tile_n"], src["tile_k"], src["bits"], src["consumers"]
        if tn != 64 * consumers:
            raise InputError(
                "quant_gemm CUDA templates take 64 weight rows per consumer (tile_n = 64 x consumers); got "
                f"tile_n {tn} "
                f"over {consumers}"
            )
        why = geometry.unsupported_zero_points(src["fmt"], src["group_size"])
        if why:
            raise InputError(f"quant_gemm CUDA templates: {why}")
        if tk % quant_gemm.CHUNK or tk * bits // 8 > 256:
            raise InputError(
                f"quant_gemm CUDA templates take tile_k a multiple of {quant_gemm.CHUNK} (the packed "
                "layout's "
                f"chunk) whose packed row is at most 256 bytes (a TMA box); got tile_k {tk} at {bits} bits"
            )

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.tn, self.tm, self.tk, self.bits, self.fmt = (
            s["tile_n"],
            s["tile_m"],
            s["tile_k"],
            s["bits"],
            s["fmt"],
        )
        self.group = s["group_size"]
        self.grouped = self.group != -1
        self.zero = self.fmt == "int_zp"
        self.per_tile = max(1, self.tk // self.group) if self.grouped else 0
        maps = ["const __grid_constant__ CUtensorMap tma_w", "const __grid_constant__ CUtensorMap tma_x"]
        if self.grouped:
            maps.append("const __grid_constant__ CUtensorMap tma_s")
            if self.zero:
                maps.append("const __grid_constant__ CUtensorMap tma_z")
        else:
            maps.append("const Element* __restrict__ scales")
        self.params = tuple(maps) + (
            "Element* __restrict__ y",
            "float* __restrict__ partial",
            "int* __restrict__ counters",
            "int m",
            "int n",
            "int k_tiles",
        )
        self.tile = {
            "tile_n": self.tn,
            "tile_m": self.tm,
            "tile_k": self.tk,
            "bits": self.bits,
            "fmt": self.fmt,
            "group_size": self.group,
            "dtype": s["dtype"],
        }

    def declarations(self) -> str:
        exp, man = float_fields(self.fmt) if self.fmt in FLOAT_FORMATS else (0, 0)
        fmt = 0 if self.fmt == "int" else 1 if self.fmt == "int_zp" else 2
        values = (
            ("TILE_N", self.tn),
            ("TILE_M", self.tm),
            ("TILE_K", self.tk),
            ("BITS", self.bits),
            ("FMT", fmt),
            ("EXP_BITS", exp),
            ("MAN_BITS", man),
            ("ROW_BYTES", self.tk * self.bits // 8),
            ("CHUNK", quant_gemm.CHUNK),
            ("GROUP", self.group if self.grouped else 0),
            ("GROUP_IN_TILE", min(self.group, self.tk) if self.grouped else self.tk),
            ("GROUPS_IN_TILE", max(self.per_tile, 1)),
            ("HAS_ZERO", int(self.zero)),
        )
        out = [T.CONSTANT.format(name=n, value=v) for n, v in values]
        out.append(T.SMEM_LAYOUT_K.format(name="LayoutX", rows=self.tm, cols=self.tk))
        out.append(
            T.SMEM_LAYOUT_K.format(name="LayoutW", rows=64, cols=self.tk)
        )  # a staged dequantized slice
        return "".join(out) + "\n" + F.QUANT_HELPERS + "\n"

    def loads(self) -> dict:
        w, x = self.tn * self.tk * self.bits // 8, self.tm * self.tk
        plans = {
            quant_gemm.LOAD_W: LoadPlan(
                "uint8_t",
                w,
                w,
                (
                    T.TMA_2D.format(
                        map="tma_w", dst="dst", c0="(k_tile0 + it) * ROW_BYTES", c1="blockIdx.x * TILE_N"
                    ),
                ),
            ),
            quant_gemm.LOAD_X: LoadPlan(
                "Element",
                x,
                2 * x,
                tuple(
                    T.TMA_2D.format(
                        map="tma_x",
                        dst=f"dst + {h} * TILE_M * 64",
                        c0=f"(k_tile0 + it) * TILE_K + {h * 64}",
                        c1="blockIdx.y * TILE_M",
                    )
                    for h in range(self.tk // 64)
                ),
            ),
        }
        if self.grouped:
            per = self.per_tile * self.tn
            copies = [
                T.TMA_2D.format(
                    map="tma_s", dst="dst", c0="blockIdx.x * TILE_N", c1="(k_tile0 + it) * TILE_K / GROUP"
                )
            ]
            if self.zero:
                copies.append(
                    T.TMA_2D.format(
                        map="tma_z",
                        dst=f"dst + {per}",
                        c0="blockIdx.x * TILE_N",
                        c1="(k_tile0 + it) * TILE_K / GROUP",
                    )
                )
            n = per * (2 if self.zero else 1)
            plans[quant_gemm.LOAD_S] = LoadPlan("Element", n, 2 * n, tuple(copies))
        return plans

    def _staged_a(self, step) -> bool:
        """Whether this MMA reads its dequantized slice from a staging ring (another warpgroup dequantized
        it)."""
        return any(self.kind_of[r.value] == OpKind.DEQUANT and r.via == "ring" for r in step.reads)

    def _slice(self, c: int) -> str:
        """The C++ name of MMA slice c's dequantized weights (the dequant op's value)."""
        return ident(self.op_of[OpKind.DEQUANT, c])

    def setup(self, step) -> str:
        if step.kind == OpKind.DEQUANT:
            return "" if step.writes_ring else F.DEQUANT_SETUP.format(value=ident(step.op))
        if step.kind == OpKind.WGMMA_RS:
            if self._staged_a(step):
                return T.MMA_SETUP.format(op=ident(step.op), rows=64, cols=self.tm)
            return F.MMA_RS_SETUP.format(op=ident(step.op))
        return ""

    def issue(self, step) -> str:
        c = step.index
        ring_w, ring_x, ring_s = ident(quant_gemm.LOAD_W), ident(quant_gemm.LOAD_X), ident(quant_gemm.LOAD_S)
        if step.kind == OpKind.DEQUANT:
            scale = (
                F.DEQUANT_GROUP_SCALE.format(ring_s=ring_s, slice=c) if self.grouped else F.DEQUANT_UNIT_SCALE
            )
            template = F.DEQUANT_STAGED if step.writes_ring else F.DEQUANT
            return template.format(ring_w=ring_w, slice=c, value=ident(step.op), scale=scale)
        if step.kind == OpKind.WGMMA_RS:
            if self._staged_a(step):
                return T.MMA_ISSUE.format(
                    op=ident(step.op),
                    ring_a=self._slice(c),
                    ring_b=ring_x,
                    layout_a="LayoutW",
                    layout_b="LayoutX",
                    a_offset=0,
                    b_offset=0,
                )
            return F.MMA_RS_ISSUE.format(
                op=ident(step.op),
                ring_x=ring_x,
                a=self._slice(c),
                a_fence=T.A_OPERAND_FENCE.format(a=self._slice(c)),
            )
        self._unknown(step)

    def staging(self, value: str) -> LoadPlan:
        if self.kind_of[value] != OpKind.DEQUANT:
            return super().staging(value)
        return LoadPlan(
            "Element", 64 * self.tk, 2 * 64 * self.tk, ()
        )  # written by the dequant, read by wgmma

    def complete(self, step, pending: int = 0) -> str:
        if step.kind != OpKind.WGMMA_RS:
            return ""
        complete = T.WGMMA_COMPLETE.format(acc=f"acc_{ident(step.op)}", pending=pending)
        return (
            complete
            if self._staged_a(step)
            else complete + T.A_OPERAND_FENCE.format(a=self._slice(step.index))
        )

    def epilogue(self, step) -> str:
        if step.kind != OpKind.WGMMA_RS:
            return ""
        return F.QUANT_EPILOGUE.format(
            op=ident(step.op),
            slice=step.index,
            channel_scale="" if self.grouped else " * float(scales[row])",
            barrier=self.FIXUP_BARRIER + step.index,
        )
