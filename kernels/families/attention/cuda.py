"""attention_fwd: what each op is in CUDA (kernels/cuda/render.py calls these hooks), over the generic
templates
(kernels/cuda/templates.py, `T`) and this family's own (`F`)."""

from __future__ import annotations

from warpsched.kernels.cuda import templates as T
from warpsched.kernels.cuda.aliases import clobbered_reads
from warpsched.kernels.families.attention import geometry, templates as F
from warpsched.kernels.families.base import CudaFamily, LoadPlan, ident
from warpsched.models import attention
from warpsched.models.kinds import OpKind
from warpsched.scheduler.errors import InputError


# attention: the first K/V iteration with a key to mask. The partial last block starts at n_kv / BLOCK_N
# (valid = n_kv - it * BLOCK_N < BLOCK_N from there on, never before); causal, block it crosses tile t's
# diagonal when (it + 1) * BLOCK_N - 1 > first_row(t) = q_row0 + t * BLOCK_M + n_kv - n_q, first for tile
# 0, from it = (first_row(0) + 1) / BLOCK_N on (tests/kernels/test_build.py checks this by brute force).
MASK_FROM = "CAUSAL ? min(n_kv / BLOCK_N, (q_row0 + n_kv - n_q + 1) / BLOCK_N) : n_kv / BLOCK_N"


class AttentionCuda(CudaFamily):
    """FlashAttention forward: Q, K, V, O (batch, heads, seqlen, head_dim) contiguous; one CTA per
    q_tiles x block_m query rows of one head; K/V of the head's KV head (GQA) one block_n block per
    iteration, the last block masked when seqlen is not a multiple of it."""

    entry = "warpsched_attention_fwd"
    limits = {
        "causal": "all (blocks crossing the diagonal are masked in the epilogue trips; the steady state has "
        "no branch)",
        "block_m": "64",
        "block_n": "a multiple of 8",
    }
    params = (
        "const __grid_constant__ CUtensorMap tma_q",
        "const __grid_constant__ CUtensorMap tma_k",
        "const __grid_constant__ CUtensorMap tma_v",
        "Element* __restrict__ out",
        "float* __restrict__ lse",
        "int n_q",
        "int n_kv",
        "int heads",
        "int kv_heads",
        "float scale_log2",
    )
    # causal: the loop stops after the last block a query row of this CTA sees
    iterations = (
        "((CAUSAL ? min(n_kv, q_row0 + Q_TILES * BLOCK_M + n_kv - n_q) : n_kv) + BLOCK_N - 1) / BLOCK_N"
    )
    mask_local = f"  const int mask_from = {MASK_FROM};  // the first iteration with a key to mask\n"
    locals = (
        "  const int q_head = blockIdx.z * heads + blockIdx.y, kv_head = blockIdx.z * kv_heads + blockIdx.y "
        "/ (heads / kv_heads);\n"
        "  const int q_row0 = blockIdx.x * (Q_TILES * BLOCK_M);\n" + mask_local
    )
    # causal: CTAs differ in length, so the launch order goes longest first (the last CTAs to start are the
    # shortest), CAUSAL_GROUP (head, batch) pairs at a time so that their K and V stay in L2; the grid is
    # still (query tiles, heads, batch) and geometry.launch_order is the same order
    causal_locals = (
        "  const int pairs = gridDim.y * gridDim.z, tiles = gridDim.x;\n"
        "  const int linear = blockIdx.x + tiles * (blockIdx.y + gridDim.y * blockIdx.z);  // launch order\n"
        f"  const int group0 = linear / ({geometry.CAUSAL_GROUP} * tiles) * {geometry.CAUSAL_GROUP}, "
        f"in_group = min({geometry.CAUSAL_GROUP}, pairs - group0);  // CAUSAL_GROUP pairs\n"
        "  const int q_tile = tiles - 1 - (linear - group0 * tiles) / in_group;  // longest first\n"
        "  const int pair = group0 + (linear - group0 * tiles) % in_group, head = pair % gridDim.y, "
        "batch = pair / gridDim.y;\n"
        "  const int q_head = batch * heads + head, kv_head = batch * kv_heads + head / (heads / kv_heads);\n"
        "  const int q_row0 = q_tile * (Q_TILES * BLOCK_M);\n" + mask_local
    )
    storage = F.ATTENTION_STORAGE
    init = F.ATTENTION_INIT
    masked_kinds = frozenset(
        {OpKind.ROW_MAX}
    )  # the masked blocks (partial last block, causal diagonal): epilogue trips only

    @staticmethod
    def check(src):
        if src["block_m"] != 64:
            raise InputError(
                "attention_fwd CUDA templates take block_m = 64 (one wgmma row block per consumer); got "
                f"{src['block_m']}"
            )
        if src["block_n"] % 8:
            raise InputError(
                f"attention_fwd CUDA templates take block_n a multiple of 8; got {src['block_n']}"
            )

    def __init__(self, schedule, program):
        super().__init__(schedule, program)
        s = self.src
        self.d, self.bm, self.bn, self.tiles = s["head_dim"], s["block_m"], s["block_n"], s["q_tiles"]
        if s["causal"]:
            self.locals = self.causal_locals
        self.extra_members = ((1024, self.tiles * self.bm * self.d * 2), (8, 8))
        self.tile = {
            "head_dim": self.d,
            "block_m": self.bm,
            "block_n": self.bn,
            "q_tiles": self.tiles,
            "dtype": s["dtype"],
            "causal": s["causal"],
        }
        wg = {n: p.warpgroup for n, p in schedule.ops.items()}

        def wg_of(kind, t):
            return wg[self.op_of[kind, t]]

        for t in range(self.tiles):
            if wg_of(OpKind.ROW_SUM, t) != wg_of(OpKind.WGMMA_PV, t):
                raise InputError(
                    f"{program.name}: tile {t}'s row sums and its O accumulator end on different warpgroups; "
                    "the "
                    f"CUDA epilogue needs both in one"
                )
        self.loader = wg[attention.LOAD_K]
        # the log-sum-exp needs the running maximum where the epilogue is (it is, unless the schedule moved
        # the max away)
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
        self.own_scaled = {
            self.index_of[c.value]
            for c in clobbered_reads(program, self._array_of)
            if self.kind_of[c.value] == OpKind.SCALE
        }
        clobbered = clobbered_reads(program, self._array_of)
        if clobbered:
            raise InputError(
                f"{program.name}: the attention templates share registers between values this schedule keeps "
                f"alive together ({clobbered[0]})"
            )

    def _array_of(self, value: str) -> str | None:
        """The C++ register array holding `value` on its warpgroups (None: not in registers)."""
        kind = self.kind_of[value]
        if kind == OpKind.TMA_LOAD:
            return None
        if kind == OpKind.ROW_SUM:
            return f"l{self.index_of[value]}"
        return self._staged_as(value)[0] if kind != OpKind.ROW_MAX else f"m{self.index_of[value]}"

    def declarations(self) -> str:
        values = (
            ("HEAD_DIM", self.d),
            ("BLOCK_M", self.bm),
            ("BLOCK_N", self.bn),
            ("Q_TILES", self.tiles),
            ("CAUSAL", int(self.src["causal"])),
        )
        out = [T.CONSTANT.format(name=n, value=v) for n, v in values]
        out += [
            T.SMEM_LAYOUT_K.format(name="LayoutQ", rows=self.bm, cols=self.d),
            T.SMEM_LAYOUT_K.format(name="LayoutK", rows=self.bn, cols=self.d),
            T.SMEM_LAYOUT_MN.format(name="LayoutVt", rows=self.d, cols=self.bn),
        ]
        return "".join(out) + "\n" + F.ATTENTION_HELPERS + "\n"

    def loads(self) -> dict:
        n = self.bn * self.d

        def copies(tensor_map):
            return tuple(
                T.TMA_3D.format(
                    map=tensor_map,
                    dst=f"dst + {h} * BLOCK_N * 64",
                    c0=h * 64,
                    c1="it * BLOCK_N",
                    c2="kv_head",
                )
                for h in range(self.d // 64)
            )

        return {
            attention.LOAD_K: LoadPlan("Element", n, 2 * n, copies("tma_k")),
            attention.LOAD_V: LoadPlan("Element", n, 2 * n, copies("tma_v")),
        }

    def before_loop(self, w) -> str:
        return F.ATTENTION_Q_LOAD.format() if w.index == self.loader else ""

    def setup(self, step) -> str:
        if step.op not in self.declares:
            return ""
        t = step.index
        return F.ATTENTION_SETUP.format(
            t=t, scaled=F.ATTENTION_OWN_SCALED.format(t=t) if t in self.own_scaled else ""
        )

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
        if (
            kind == OpKind.ROW_MAX
        ):  # the new maximum (for scale) or the correction factor (for sum and rescale)
            needs = {OpKind.SCALE: "m", OpKind.ROW_SUM: "correction", OpKind.RESCALE_O: "correction"}
            wanted = {needs.get(k, "?") for k in self.readers.get(value, ())}
            if len(wanted) != 1 or "?" in wanted:
                raise InputError(
                    f"{self.program.name}: {value} is read on another warpgroup by "
                    f"{sorted(self.readers[value])}; the "
                    f"CUDA templates stage either the row maximum or the correction, not both"
                )
            return f"{wanted.pop()}{t}", "rows", "float"
        return super().staging(value)

    def staging(self, value: str) -> LoadPlan:
        name, form, ctype = self._staged_as(value)
        elements = (
            self.bm
            if form == "rows"
            else 64 * {"s": self.bn, "x": self.bn, "p": self.bn, "o": self.d}[name[0]]
        )
        size = 4 if ctype == "float" else 2
        return LoadPlan(ctype, elements, elements * size, ())

    def stage_out(self, step) -> str:
        name, form, _ = self._staged_as(step.op)
        return (T.STAGE_ROWS_OUT if form == "rows" else T.STAGE_FRAGMENT_OUT).format(value=name)

    def stage_in(self, read, step) -> str:
        name, form, _ = self._staged_as(read.value)
        return (T.STAGE_ROWS_IN if form == "rows" else T.STAGE_FRAGMENT_IN).format(
            value=name, src=f"src_{ident(read.value)}"
        )

    def initial(self, read, step) -> str:
        if self.kind_of[read.value] in (OpKind.WGMMA_PV, OpKind.RESCALE_O):  # O starts at zero
            return f"            clear(o{self.index_of[read.value]});\n"
        return super().initial(read, step)

    def issue(self, step) -> str:
        t = step.index
        table = {
            OpKind.WGMMA_QK: F.ATTENTION_QK_ISSUE,
            OpKind.ROW_MAX: F.ATTENTION_MAX,
            OpKind.SCALE: F.ATTENTION_SCALE,
            OpKind.EXP2: F.ATTENTION_EXP,
            OpKind.ROW_SUM: F.ATTENTION_SUM,
            OpKind.RESCALE_O: F.ATTENTION_RESCALE,
            OpKind.WGMMA_PV: F.ATTENTION_PV_ISSUE,
        }
        if step.kind not in table:
            self._unknown(step)
        ring = ident(attention.LOAD_K if step.kind == OpKind.WGMMA_QK else attention.LOAD_V)
        return table[step.kind].format(t=t, ring=ring, x=f"x{t}" if t in self.own_scaled else f"s{t}")

    def complete(self, step, pending: int = 0) -> str:
        acc = {OpKind.WGMMA_QK: "s", OpKind.WGMMA_PV: "o"}.get(step.kind)
        return T.WGMMA_COMPLETE.format(acc=f"{acc}{step.index}", pending=pending) if acc else ""

    def epilogue(self, step) -> str:
        if step.kind != OpKind.WGMMA_PV:
            return ""
        t = step.index
        return F.ATTENTION_EPILOGUE.format(t=t, lse=F.ATTENTION_LSE.format(t=t) if self.lse else "")
