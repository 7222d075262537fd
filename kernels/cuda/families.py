"""What each kernel family's ops are in CUDA: the op-template table of kernels/cuda/templates.py
filled with a family's tile sizes, tensor maps and value names (DESIGN.md 6.3).

A family states, for the renderer: its constants, shared-memory layouts and helper functions; per
TMA load ring the slot type, elements, bytes and the TMA copies that fill a slot; per op its
set-up (register fragments, declared once before the loop), its issue and completion code and its
epilogue. Values stay in registers named after their op (one copy: render.py refuses schedules that
need more); the layouts of the wgmma fragments are checked on the host by
tests/kernels/test_fragment_layouts.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from warpsched.kernels.cuda import templates as T
from warpsched.kernels.cuda.aliases import clobbered_reads
from warpsched.models import attention, gemm, quant_gemm
from warpsched.models.kinds import OpKind
from warpsched.models.quant_gemm import FLOAT_FORMATS, float_fields
from warpsched.scheduler.errors import InputError

ELEMENTS = {"bf16": "cutlass::bfloat16_t", "fp16": "cutlass::half_t"}


def ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


@dataclass(frozen=True)
class LoadPlan:
    ctype: str  # element type of the ring's slots
    elements: int  # per slot
    bytes: int  # what the TMA copies deliver (the full barrier's transaction bytes)
    copies: tuple[str, ...]  # C++ statements: `dst` is the slot, `bar` its full barrier, `it` the iteration


class _Family:
    entry = ""
    limits: dict[str, str] = {}  # what the CUDA templates cover beyond the model's own ranges (the support matrix)
    storage = init = locals = ""
    # steps that mask keys from iteration `mask_from` on: their warpgroups' trip loop is peeled into
    # prologue, steady state and epilogue (render._loops)
    masked_kinds: frozenset[str] = frozenset()
    extra_members: tuple[tuple[int, int], ...] = ()  # (alignment, bytes) of `storage`'s members, in order

    def __init__(self, schedule, program):
        self.schedule, self.program = schedule, program
        self.src = schedule.problem.source
        self.element = ELEMENTS[self.src["dtype"]]
        self.kind_of = {op.name: op.kind for op in schedule.problem.ops}
        self.index_of = {op.name: op.index for op in schedule.problem.ops}
        self.op_of = {(op.kind, op.index): op.name for op in schedule.problem.ops}  # (kind, replica) -> op

    def before_loop(self, w) -> str:
        return ""

    def setup(self, step) -> str:
        return ""

    def complete(self, step) -> str:
        return ""

    def epilogue(self, step) -> str:
        return ""

    # register values handed across warpgroups (staging rings): the slot's plan, the code that writes
    # the value into `dst`, reads it back from `src_<value>`, and the value before the first iteration
    def staging(self, value: str) -> LoadPlan:
        raise InputError(f"{self.program.name}: the schedule hands {value!r} to another warpgroup; the {self.src['model']} "
                         f"CUDA templates have no staging for it")

    def stage_out(self, step) -> str:
        return ""

    def stage_in(self, read, step) -> str:
        return ""

    def initial(self, read, step) -> str:
        raise InputError(f"{self.program.name}: {step.op} reads {read.value!r} of {read.distance} iteration(s) back from another "
                         f"warpgroup; the CUDA templates know no initial value for it")

    def _unknown(self, step):
        raise InputError(f"{self.program.name}: no CUDA template for op kind {step.kind!r} ({step.op})")


class GemmFamily(_Family):
    """C = A B^T: A (M, K) and B (N, K) K-major, tile_m rows split over the consumers."""

    limits = {"tile_k": "64 (one 128-byte swizzled K row)"}

    entry = "warpsched_gemm"
    params = ("const __grid_constant__ CUtensorMap tma_a", "const __grid_constant__ CUtensorMap tma_b",
              "Element* __restrict__ c", "int m", "int n", "int k")
    iterations = "k / TILE_K"

    @staticmethod
    def check(src):
        if src["tile_k"] != 64:
            raise InputError(f"gemm CUDA templates take tile_k = 64 (one 128-byte swizzled K row); got {src['tile_k']}")

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.tm, self.tn, self.tk, self.consumers = s["tile_m"], s["tile_n"], s["tile_k"], s["consumers"]
        self.rows = self.tm // self.consumers
        self.tile = {"tile_m": self.tm, "tile_n": self.tn, "tile_k": self.tk, "dtype": s["dtype"]}

    def declarations(self) -> str:
        out = [T.CONSTANT.format(name=n, value=v) for n, v in
               (("TILE_M", self.tm), ("TILE_N", self.tn), ("TILE_K", self.tk), ("SLICE_M", self.rows))]
        out += [T.SMEM_LAYOUT_K.format(name="LayoutA", rows=self.rows, cols=self.tk),
                T.SMEM_LAYOUT_K.format(name="LayoutB", rows=self.tn, cols=self.tk)]
        return "".join(out) + "\n"

    def loads(self) -> dict:
        a, b = self.tm * self.tk, self.tn * self.tk
        return {gemm.LOAD_A: LoadPlan("Element", a, 2 * a, (T.TMA_2D.format(map="tma_a", dst="dst", c0="it * TILE_K", c1="blockIdx.x * TILE_M"),)),
                gemm.LOAD_B: LoadPlan("Element", b, 2 * b, (T.TMA_2D.format(map="tma_b", dst="dst", c0="it * TILE_K", c1="blockIdx.y * TILE_N"),))}

    def setup(self, step) -> str:
        return T.MMA_SETUP.format(op=ident(step.op), rows=self.rows, cols=self.tn) if step.kind == OpKind.MMA else ""

    def issue(self, step) -> str:
        if step.kind != OpKind.MMA:
            self._unknown(step)
        return T.MMA_ISSUE.format(op=ident(step.op), ring_a=ident(gemm.LOAD_A), ring_b=ident(gemm.LOAD_B), layout_a="LayoutA",
                                  layout_b="LayoutB", a_offset=f"{step.index} * SLICE_M * TILE_K", b_offset=0)

    def complete(self, step) -> str:
        return T.WGMMA_COMPLETE.format(acc=f"acc_{ident(step.op)}")

    def epilogue(self, step) -> str:
        return (T.MMA_EPILOGUE.format(op=ident(step.op), rows=self.rows, cols=self.tn, slices=self.consumers, slice=step.index)
                if step.kind == OpKind.MMA else "")


class QuantGemmFamily(_Family):
    """Y = X dequant(W)^T as Y^T = dequant(W) X^T: packed weights (N, K * bits / 8) uint8, X (M, K) K-major,
    group scales (and zero points) (K / group, N); channelwise scales (N,) multiply the accumulators."""

    entry = "warpsched_quant_gemm"
    limits = {"tile_n": "64 x consumers (64 weight rows per consumer)",
              "tile_k": "a multiple of 64 whose packed row is 16..256 bytes in steps of 16"}
    # split K: blockIdx.z takes the z-th of gridDim.z equal runs of K tiles (the runtime splits small grids so
    # every SM has a CTA; the partial sums then go to a float32 workspace and the runtime adds them)
    # (k_split = K / gridDim.z, a multiple of TILE_K: no division by a runtime value in the kernel)
    iterations = "k_split / TILE_K"
    locals = "  const int k_tile0 = blockIdx.z * (k_split / TILE_K);  // the first K tile of this split\n"

    @staticmethod
    def check(src):
        tn, tk, bits, consumers = src["tile_n"], src["tile_k"], src["bits"], src["consumers"]
        if tn != 64 * consumers:
            raise InputError(f"quant_gemm CUDA templates take 64 weight rows per consumer (tile_n = 64 x consumers); got tile_n {tn} "
                             f"over {consumers}")
        if tk % 64 or (tk * bits) % 128 or tk * bits // 8 > 256:
            raise InputError(f"quant_gemm CUDA templates take tile_k a multiple of 64 whose packed row is 16..256 bytes in steps "
                             f"of 16; got tile_k {tk} at {bits} bits")

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.tn, self.tm, self.tk, self.bits, self.fmt = s["tile_n"], s["tile_m"], s["tile_k"], s["bits"], s["fmt"]
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
        self.params = tuple(maps) + ("Element* __restrict__ y", "float* __restrict__ partial", "int m", "int n", "int k_split")
        self.tile = {"tile_n": self.tn, "tile_m": self.tm, "tile_k": self.tk, "bits": self.bits, "fmt": self.fmt,
                     "group_size": self.group, "dtype": s["dtype"]}

    def declarations(self) -> str:
        exp, man = float_fields(self.fmt) if self.fmt in FLOAT_FORMATS else (0, 0)
        fmt = 0 if self.fmt == "int" else 1 if self.fmt == "int_zp" else 2
        values = (("TILE_N", self.tn), ("TILE_M", self.tm), ("TILE_K", self.tk), ("BITS", self.bits), ("FMT", fmt),
                  ("EXP_BITS", exp), ("MAN_BITS", man), ("ROW_BYTES", self.tk * self.bits // 8),
                  ("GROUP", self.group if self.grouped else 0), ("GROUP_IN_TILE", min(self.group, self.tk) if self.grouped else self.tk),
                  ("GROUPS_IN_TILE", max(self.per_tile, 1)), ("HAS_ZERO", int(self.zero)))
        out = [T.CONSTANT.format(name=n, value=v) for n, v in values]
        out.append(T.SMEM_LAYOUT_K.format(name="LayoutX", rows=self.tm, cols=self.tk))
        out.append(T.SMEM_LAYOUT_K.format(name="LayoutW", rows=64, cols=self.tk))  # a staged dequantized slice
        return "".join(out) + "\n" + T.QUANT_HELPERS + "\n"

    def loads(self) -> dict:
        w, x = self.tn * self.tk * self.bits // 8, self.tm * self.tk
        plans = {
            quant_gemm.LOAD_W: LoadPlan("uint8_t", w, w, (T.TMA_2D.format(map="tma_w", dst="dst", c0="(k_tile0 + it) * ROW_BYTES", c1="blockIdx.x * TILE_N"),)),
            quant_gemm.LOAD_X: LoadPlan("Element", x, 2 * x, tuple(
                T.TMA_2D.format(map="tma_x", dst=f"dst + {h} * TILE_M * 64", c0=f"(k_tile0 + it) * TILE_K + {h * 64}", c1="blockIdx.y * TILE_M")
                for h in range(self.tk // 64))),
        }
        if self.grouped:
            per = self.per_tile * self.tn
            copies = [T.TMA_2D.format(map="tma_s", dst="dst", c0="blockIdx.x * TILE_N", c1="(k_tile0 + it) * TILE_K / GROUP")]
            if self.zero:
                copies.append(T.TMA_2D.format(map="tma_z", dst=f"dst + {per}", c0="blockIdx.x * TILE_N", c1="(k_tile0 + it) * TILE_K / GROUP"))
            n = per * (2 if self.zero else 1)
            plans[quant_gemm.LOAD_S] = LoadPlan("Element", n, 2 * n, tuple(copies))
        return plans

    def _staged_a(self, step) -> bool:
        """Whether this MMA reads its dequantized slice from a staging ring (another warpgroup dequantized it)."""
        return any(self.kind_of[r.value] == OpKind.DEQUANT and r.via == "ring" for r in step.reads)

    def _slice(self, c: int) -> str:
        """The C++ name of MMA slice c's dequantized weights (the dequant op's value)."""
        return ident(self.op_of[OpKind.DEQUANT, c])

    def setup(self, step) -> str:
        if step.kind == OpKind.DEQUANT:
            return "" if step.writes_ring else T.DEQUANT_SETUP.format(value=ident(step.op))
        if step.kind == OpKind.WGMMA_RS:
            if self._staged_a(step):
                return T.MMA_SETUP.format(op=ident(step.op), rows=64, cols=self.tm)
            return T.MMA_RS_SETUP.format(op=ident(step.op))
        return ""

    def issue(self, step) -> str:
        c = step.index
        ring_w, ring_x, ring_s = ident(quant_gemm.LOAD_W), ident(quant_gemm.LOAD_X), ident(quant_gemm.LOAD_S)
        if step.kind == OpKind.DEQUANT:
            scale = (T.DEQUANT_GROUP_SCALE.format(ring_s=ring_s, slice=c) if self.grouped else T.DEQUANT_UNIT_SCALE)
            template = T.DEQUANT_STAGED if step.writes_ring else T.DEQUANT
            return template.format(ring_w=ring_w, slice=c, value=ident(step.op), scale=scale)
        if step.kind == OpKind.WGMMA_RS:
            if self._staged_a(step):
                return T.MMA_ISSUE.format(op=ident(step.op), ring_a=self._slice(c), ring_b=ring_x, layout_a="LayoutW",
                                          layout_b="LayoutX", a_offset=0, b_offset=0)
            return T.MMA_RS_ISSUE.format(op=ident(step.op), ring_x=ring_x, a=self._slice(c),
                                         a_fence=T.A_OPERAND_FENCE.format(a=self._slice(c)))
        self._unknown(step)

    def staging(self, value: str) -> LoadPlan:
        if self.kind_of[value] != OpKind.DEQUANT:
            return super().staging(value)
        return LoadPlan("Element", 64 * self.tk, 2 * 64 * self.tk, ())  # written by the dequant, read by wgmma

    def complete(self, step) -> str:
        if step.kind != OpKind.WGMMA_RS:
            return ""
        complete = T.WGMMA_COMPLETE.format(acc=f"acc_{ident(step.op)}")
        return complete if self._staged_a(step) else complete + T.A_OPERAND_FENCE.format(a=self._slice(step.index))

    def epilogue(self, step) -> str:
        if step.kind != OpKind.WGMMA_RS:
            return ""
        return T.QUANT_EPILOGUE.format(op=ident(step.op), slice=step.index,
                                       channel_scale="" if self.grouped else " * float(scales[row])")


# attention: the first K/V iteration with a key to mask. The partial last block starts at n_kv / BLOCK_N
# (valid = n_kv - it * BLOCK_N < BLOCK_N from there on, never before); causal, block it crosses tile t's
# diagonal when (it + 1) * BLOCK_N - 1 > first_row(t) = q_row0 + t * BLOCK_M + n_kv - n_q, first for tile
# 0, from it = (first_row(0) + 1) / BLOCK_N on (tests/kernels/test_build.py checks this by brute force).
MASK_FROM = "CAUSAL ? min(n_kv / BLOCK_N, (q_row0 + n_kv - n_q + 1) / BLOCK_N) : n_kv / BLOCK_N"


class AttentionFamily(_Family):
    """FlashAttention forward: Q, K, V, O (batch, heads, seqlen, head_dim) contiguous; one CTA per
    q_tiles x block_m query rows of one head; K/V of the head's KV head (GQA) one block_n block per
    iteration, the last block masked when seqlen is not a multiple of it."""

    entry = "warpsched_attention_fwd"
    limits = {"causal": "all (blocks crossing the diagonal are masked in the epilogue trips; the steady state has no branch)", "block_m": "64",
              "block_n": "a multiple of 8"}
    params = ("const __grid_constant__ CUtensorMap tma_q", "const __grid_constant__ CUtensorMap tma_k",
              "const __grid_constant__ CUtensorMap tma_v", "Element* __restrict__ out", "float* __restrict__ lse", "int n_q", "int n_kv",
              "int heads", "int kv_heads", "float scale_log2")
    # causal: the loop stops after the last block a query row of this CTA sees
    iterations = "((CAUSAL ? min(n_kv, q_row0 + Q_TILES * BLOCK_M + n_kv - n_q) : n_kv) + BLOCK_N - 1) / BLOCK_N"
    locals = ("  const int q_head = blockIdx.z * heads + blockIdx.y, kv_head = blockIdx.z * kv_heads + blockIdx.y / (heads / kv_heads);\n"
              "  const int q_row0 = blockIdx.x * (Q_TILES * BLOCK_M);\n"
              f"  const int mask_from = {MASK_FROM};  // the first iteration with a key to mask\n")
    storage = T.ATTENTION_STORAGE
    init = T.ATTENTION_INIT
    masked_kinds = frozenset({OpKind.ROW_MAX})  # the masked blocks (partial last block, causal diagonal): epilogue trips only

    @staticmethod
    def check(src):
        if src["block_m"] != 64:
            raise InputError(f"attention_fwd CUDA templates take block_m = 64 (one wgmma row block per consumer); got {src['block_m']}")
        if src["block_n"] % 8:
            raise InputError(f"attention_fwd CUDA templates take block_n a multiple of 8; got {src['block_n']}")

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.d, self.bm, self.bn, self.tiles = s["head_dim"], s["block_m"], s["block_n"], s["q_tiles"]
        self.extra_members = ((1024, self.tiles * self.bm * self.d * 2), (8, 8))
        self.tile = {"head_dim": self.d, "block_m": self.bm, "block_n": self.bn, "q_tiles": self.tiles, "dtype": s["dtype"],
                     "causal": s["causal"]}
        wg = {n: p.warpgroup for n, p in schedule.ops.items()}

        def wg_of(kind, t):
            return wg[self.op_of[kind, t]]
        for t in range(self.tiles):
            if wg_of(OpKind.ROW_SUM, t) != wg_of(OpKind.WGMMA_PV, t):
                raise InputError(f"{program.name}: tile {t}'s row sums and its O accumulator end on different warpgroups; the "
                                 f"CUDA epilogue needs both in one")
        self.loader = wg[attention.LOAD_K]
        # the log-sum-exp needs the running maximum where the epilogue is (it is, unless the schedule moved the max away)
        self.lse = all(wg_of(OpKind.ROW_MAX, t) == wg_of(OpKind.ROW_SUM, t) for t in range(self.tiles))
        self.tile["lse"] = self.lse
        # each warpgroup declares a tile's registers before its first op of that tile
        self.declares = set()
        for w in program.warpgroups:
            seen = set()
            for st in w.steps:
                if st.kind != OpKind.TMA_LOAD and st.index not in seen:
                    seen.add(st.index)
                    self.declares.add(st.op)
        self.readers = {}  # value -> op kinds that read it on another warpgroup
        for e in schedule.problem.edges:
            if wg[e.src] != wg[e.dst]:
                self.readers.setdefault(e.src, set()).add(self.kind_of[e.dst])
        # S * scale - m overwrites S in place unless the schedule issues the next QK^T before exp2 has read
        # it: then those tiles keep the scaled scores in an array of their own (x{t}, as many registers as S)
        self.own_scaled: set[int] = set()  # none yet: _array_of, which the first replay uses, reads it
        self.own_scaled = {self.index_of[c.value] for c in clobbered_reads(program, self._array_of)
                           if self.kind_of[c.value] == OpKind.SCALE}
        clobbered = clobbered_reads(program, self._array_of)
        if clobbered:
            raise InputError(f"{program.name}: the attention templates share registers between values this schedule keeps "
                             f"alive together ({clobbered[0]})")

    def _array_of(self, value: str) -> str | None:
        """The C++ register array holding `value` on its warpgroups (None: not in registers)."""
        kind = self.kind_of[value]
        if kind == OpKind.TMA_LOAD:
            return None
        if kind == OpKind.ROW_SUM:
            return f"l{self.index_of[value]}"
        return self._staged_as(value)[0] if kind != OpKind.ROW_MAX else f"m{self.index_of[value]}"

    def declarations(self) -> str:
        values = (("HEAD_DIM", self.d), ("BLOCK_M", self.bm), ("BLOCK_N", self.bn), ("Q_TILES", self.tiles),
                  ("CAUSAL", int(self.src["causal"])))
        out = [T.CONSTANT.format(name=n, value=v) for n, v in values]
        out += [T.SMEM_LAYOUT_K.format(name="LayoutQ", rows=self.bm, cols=self.d),
                T.SMEM_LAYOUT_K.format(name="LayoutK", rows=self.bn, cols=self.d),
                T.SMEM_LAYOUT_MN.format(name="LayoutVt", rows=self.d, cols=self.bn)]
        return "".join(out) + "\n" + T.ATTENTION_HELPERS + "\n"

    def loads(self) -> dict:
        n = self.bn * self.d

        def copies(tensor_map):
            return tuple(T.TMA_3D.format(map=tensor_map, dst=f"dst + {h} * BLOCK_N * 64", c0=h * 64, c1="it * BLOCK_N", c2="kv_head")
                         for h in range(self.d // 64))
        return {attention.LOAD_K: LoadPlan("Element", n, 2 * n, copies("tma_k")),
                attention.LOAD_V: LoadPlan("Element", n, 2 * n, copies("tma_v"))}

    def before_loop(self, w) -> str:
        return T.ATTENTION_Q_LOAD.format() if w.index == self.loader else ""

    def setup(self, step) -> str:
        if step.op not in self.declares:
            return ""
        t = step.index
        return T.ATTENTION_SETUP.format(t=t, scaled=T.ATTENTION_OWN_SCALED.format(t=t) if t in self.own_scaled else "")

    # what a value is in registers, when staged: (C++ name, "fragment" | "rows", slot type)
    def _staged_as(self, value: str) -> tuple[str, str, str]:
        t, kind = self.index_of[value], self.kind_of[value]
        if kind == OpKind.SCALE and t in self.own_scaled:
            return f"x{t}", "fragment", "float"
        if kind in (OpKind.WGMMA_QK, OpKind.SCALE):
            return f"s{t}", "fragment", "float"
        if kind == OpKind.EXP2:
            return f"p{t}", "fragment", "Element"
        if kind in (OpKind.RESCALE_O, OpKind.WGMMA_PV):
            return f"o{t}", "fragment", "float"
        if kind == OpKind.ROW_MAX:  # the new maximum (for scale) or the correction factor (for sum and rescale)
            needs = {OpKind.SCALE: "m", OpKind.ROW_SUM: "correction", OpKind.RESCALE_O: "correction"}
            wanted = {needs.get(k, "?") for k in self.readers.get(value, ())}
            if len(wanted) != 1 or "?" in wanted:
                raise InputError(f"{self.program.name}: {value} is read on another warpgroup by {sorted(self.readers[value])}; the "
                                 f"CUDA templates stage either the row maximum or the correction, not both")
            return f"{wanted.pop()}{t}", "rows", "float"
        return super().staging(value)

    def staging(self, value: str) -> LoadPlan:
        name, form, ctype = self._staged_as(value)
        elements = self.bm if form == "rows" else 64 * {"s": self.bn, "x": self.bn, "p": self.bn, "o": self.d}[name[0]]
        size = 4 if ctype == "float" else 2
        return LoadPlan(ctype, elements, elements * size, ())

    def stage_out(self, step) -> str:
        name, form, _ = self._staged_as(step.op)
        return (T.STAGE_ROWS_OUT if form == "rows" else T.STAGE_FRAGMENT_OUT).format(value=name)

    def stage_in(self, read, step) -> str:
        name, form, _ = self._staged_as(read.value)
        return (T.STAGE_ROWS_IN if form == "rows" else T.STAGE_FRAGMENT_IN).format(value=name, src=f"src_{ident(read.value)}")

    def initial(self, read, step) -> str:
        if self.kind_of[read.value] in (OpKind.WGMMA_PV, OpKind.RESCALE_O):  # O starts at zero
            return f"            clear(o{self.index_of[read.value]});\n"
        return super().initial(read, step)

    def issue(self, step) -> str:
        t = step.index
        table = {OpKind.WGMMA_QK: T.ATTENTION_QK_ISSUE, OpKind.ROW_MAX: T.ATTENTION_MAX, OpKind.SCALE: T.ATTENTION_SCALE,
                 OpKind.EXP2: T.ATTENTION_EXP, OpKind.ROW_SUM: T.ATTENTION_SUM, OpKind.RESCALE_O: T.ATTENTION_RESCALE,
                 OpKind.WGMMA_PV: T.ATTENTION_PV_ISSUE}
        if step.kind not in table:
            self._unknown(step)
        ring = ident(attention.LOAD_K if step.kind == OpKind.WGMMA_QK else attention.LOAD_V)
        return table[step.kind].format(t=t, ring=ring, x=f"x{t}" if t in self.own_scaled else f"s{t}")

    def complete(self, step) -> str:
        acc = {OpKind.WGMMA_QK: "s", OpKind.WGMMA_PV: "o"}.get(step.kind)
        return T.WGMMA_COMPLETE.format(acc=f"{acc}{step.index}") if acc else ""

    def epilogue(self, step) -> str:
        if step.kind != OpKind.WGMMA_PV:
            return ""
        t = step.index
        return T.ATTENTION_EPILOGUE.format(t=t, lse=T.ATTENTION_LSE.format(t=t) if self.lse else "")


FAMILIES = {"gemm": GemmFamily, "quant_gemm": QuantGemmFamily, "attention_fwd": AttentionFamily}


def softmax_scale_log2(head_dim: int, softmax_scale: float | None) -> float:
    """The kernel's `scale_log2`: softmax_scale (default 1/sqrt(d)) times log2(e), for exp2."""
    return (1.0 / math.sqrt(head_dim) if softmax_scale is None else softmax_scale) * math.log2(math.e)
