"""What each op of the three kernel families computes, on real tiles, for the CPU simulator.

`semantics_for(problem, iterations, seed)` returns the family's semantics (None for problems
that are not one of the shipped models: the simulator then checks the data flow by tags). Each
op gets its inputs keyed by `(producer, distance)`; loop-carried inputs before the first
iteration take `initial`. The outputs of the last iteration are compared with a float32 torch
reference on random data (relative Frobenius error, `tolerance` 1e-2 for bf16/fp16 operands).
Operands are rounded to the kernel's type (bf16/fp16) as the tensor core sees them; accumulation
is float32 as in wgmma.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from warpsched.kernels.quant import float_values
from warpsched.models import attention, gemm, quant_gemm
from warpsched.models.kinds import OpKind
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Problem

TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _round(x: np.ndarray, dtype: str) -> np.ndarray:
    """`x` as the tensor core sees it: rounded to bf16/fp16, back in float32."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(TORCH_DTYPES[dtype]).float().numpy()


class _Family:
    tolerance = 1e-2

    def __init__(self, problem: Problem):
        self.kind_of = {op.name: op.kind for op in problem.ops}
        self.index_of = {op.name: op.index for op in problem.ops}

    def replicas(self, kind: str) -> list[str]:
        """The ops of `kind` in replica order (MMA slices, query tiles)."""
        return sorted((n for n, k in self.kind_of.items() if k == kind), key=self.index_of.get)

    def take(self, inputs: dict, kind: str, distance: int = 0):
        for (src, d), value in inputs.items():
            if self.kind_of[src] == kind and d == distance:
                return value
        raise KeyError(kind)

    @staticmethod
    def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
        num, den = float(np.linalg.norm(out - ref)), float(np.linalg.norm(ref))
        return num / den if den > 0 else (0.0 if num == 0 else math.inf)


class GemmSemantics(_Family):
    def __init__(self, problem: Problem, iterations: int, seed: int):
        super().__init__(problem)
        src = problem.source
        self.dtype, tm, tn, tk = src["dtype"], src["tile_m"], src["tile_n"], src["tile_k"]
        self.rows = tm // src["consumers"]
        g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(tm, tk * iterations, generator=g).to(TORCH_DTYPES[self.dtype]).float().numpy()
        self.b = torch.randn(tk * iterations, tn, generator=g).to(TORCH_DTYPES[self.dtype]).float().numpy()
        self.tk, self.tn = tk, tn
        self.mmas = self.replicas(OpKind.MMA)

    def initial(self, value: str):
        return np.zeros((self.rows, self.tn), np.float32)

    def apply(self, op: str, kind: str, it: int, inputs: dict):
        k = slice(it * self.tk, (it + 1) * self.tk)
        if op == gemm.LOAD_A:
            return self.a[:, k]
        if op == gemm.LOAD_B:
            return self.b[k, :]
        c = self.index_of[op]
        a = inputs[(gemm.LOAD_A, 0)][c * self.rows:(c + 1) * self.rows]
        return inputs[(op, 1)] + a @ inputs[(gemm.LOAD_B, 0)]

    def error(self, outputs: dict) -> float:
        out = np.concatenate([outputs[m] for m in self.mmas])
        return self.relative_error(out, self.a @ self.b)


class QuantGemmSemantics(_Family):
    """Y^T = dequant(W) X^T on one tile: W is tile_n x K codes of `bits`, scales (and zeros) per group."""

    def __init__(self, problem: Problem, iterations: int, seed: int):
        super().__init__(problem)
        src = problem.source
        self.dtype, self.fmt, self.bits = src["dtype"], src["fmt"], src["bits"]
        tn, tk, tm = src["tile_n"], src["tile_k"], src["tile_m"]
        K = tk * iterations
        group = src["group_size"] if src["group_size"] > 0 else K  # -1: one scale per row (channelwise)
        self.rows, self.tk, self.tm = tn // src["consumers"], tk, tm
        rng = np.random.default_rng(seed)
        self.codes = rng.integers(0, 1 << self.bits, size=(tn, K))
        groups = -(-K // group)
        self.scales = _round(rng.uniform(0.5, 1.5, size=(tn, groups)) / (1 << max(self.bits - 1, 0)), self.dtype)
        if self.fmt in quant_gemm.FLOAT_FORMATS:  # float codes carry their own magnitude
            self.scales = _round(rng.uniform(0.5, 1.5, size=(tn, groups)), self.dtype)
        self.zeros = rng.integers(0, 1 << self.bits, size=(tn, groups)) if self.fmt == "int_zp" else None
        self.group = group
        self.x = _round(rng.standard_normal((tm, K)), self.dtype)
        self.mmas = self.replicas(OpKind.WGMMA_RS)

    def values(self, codes: np.ndarray, cols: slice, scale: np.ndarray | None = None) -> np.ndarray:
        """Dequantized weights (before rounding to the MMA type) of `codes` over K columns `cols`, with
        `scale` per column (default: the true scales; channelwise kernels hold them outside the loop)."""
        g = np.arange(cols.start, cols.stop) // self.group
        scale = self.scales[:, g] if scale is None else scale
        if self.fmt == "int":
            return (codes - (1 << (self.bits - 1))).astype(np.float32) * scale
        if self.fmt == "int_zp":
            return (codes - self.zeros[:, g]).astype(np.float32) * scale
        return float_values(self.fmt).numpy()[codes] * scale

    def initial(self, value: str):
        return np.zeros((self.rows, self.tm), np.float32)

    def apply(self, op: str, kind: str, it: int, inputs: dict):
        k = slice(it * self.tk, (it + 1) * self.tk)
        if op == quant_gemm.LOAD_W:
            return self.codes[:, k]
        if op == quant_gemm.LOAD_X:
            return self.x[:, k]
        if op == quant_gemm.LOAD_S:
            return self.scales[:, np.arange(k.start, k.stop) // self.group]
        c = self.index_of[op]
        if kind == OpKind.DEQUANT:  # this consumer's rows of the block, in the MMA's type
            rows = slice(c * self.rows, (c + 1) * self.rows)
            scale = inputs.get((quant_gemm.LOAD_S, 0))  # what the scale load delivered (channelwise: none in the loop)
            return _round(self.values(inputs[(quant_gemm.LOAD_W, 0)], k, scale)[rows], self.dtype)
        return inputs[(op, 1)] + self.take(inputs, OpKind.DEQUANT) @ inputs[(quant_gemm.LOAD_X, 0)].T

    def error(self, outputs: dict) -> float:
        out = np.concatenate([outputs[m] for m in self.mmas])
        K = self.codes.shape[1]
        ref = self.values(self.codes, slice(0, K)) @ self.x.T
        return self.relative_error(out, ref)


class AttentionSemantics(_Family):
    """FlashAttention forward on `q_tiles` query tiles of `block_m` rows against N blocks of keys."""

    def __init__(self, problem: Problem, iterations: int, seed: int):
        super().__init__(problem)
        src = problem.source
        self.dtype, d = src["dtype"], src["head_dim"]
        self.bm, self.bn, self.tiles = src["block_m"], src["block_n"], src["q_tiles"]
        g = torch.Generator().manual_seed(seed)
        t = TORCH_DTYPES[self.dtype]
        self.q = torch.randn(self.tiles * self.bm, d, generator=g).to(t).float().numpy()
        self.k = torch.randn(self.bn * iterations, d, generator=g).to(t).float().numpy()
        self.v = torch.randn(self.bn * iterations, d, generator=g).to(t).float().numpy()
        self.scale_log2 = (1.0 / math.sqrt(d)) * math.log2(math.e)

    def initial(self, value: str):
        kind = self.kind_of[value]
        if kind == OpKind.ROW_MAX:
            return np.full(self.bm, -np.inf, np.float32), np.full(self.bm, -np.inf, np.float32)
        if kind == OpKind.ROW_SUM:
            return np.zeros(self.bm, np.float32)
        return np.zeros((self.bm, self.q.shape[1]), np.float32)  # O

    @staticmethod
    def _correction(m) -> np.ndarray:
        new, old = m
        with np.errstate(invalid="ignore"):
            return np.where(np.isneginf(old), 0.0, np.exp2(old - new)).astype(np.float32)

    def apply(self, op: str, kind: str, it: int, inputs: dict):
        blk = slice(it * self.bn, (it + 1) * self.bn)
        if op == attention.LOAD_K:
            return self.k[blk]
        if op == attention.LOAD_V:
            return self.v[blk]
        t = self.index_of[op]
        if kind == OpKind.WGMMA_QK:
            return (self.q[t * self.bm:(t + 1) * self.bm] @ inputs[(attention.LOAD_K, 0)].T) * self.scale_log2
        if kind == OpKind.ROW_MAX:
            old = inputs[(op, 1)][0]
            return np.maximum(old, self.take(inputs, OpKind.WGMMA_QK).max(axis=1)), old
        if kind == OpKind.SCALE:
            return self.take(inputs, OpKind.WGMMA_QK) - self.take(inputs, OpKind.ROW_MAX)[0][:, None]
        if kind == OpKind.EXP2:
            return _round(np.exp2(self.take(inputs, OpKind.SCALE)), self.dtype)
        if kind == OpKind.ROW_SUM:
            correction = self._correction(self.take(inputs, OpKind.ROW_MAX))
            return inputs[(op, 1)] * correction + self.take(inputs, OpKind.EXP2).sum(axis=1)
        if kind == OpKind.RESCALE_O:
            return self.take(inputs, OpKind.WGMMA_PV, 1) * self._correction(self.take(inputs, OpKind.ROW_MAX))[:, None]
        if kind == OpKind.WGMMA_PV:
            return self.take(inputs, OpKind.RESCALE_O) + self.take(inputs, OpKind.EXP2) @ inputs[(attention.LOAD_V, 0)]
        raise InputError(f"attention_fwd semantics know no op kind {kind!r} ({op})")

    def error(self, outputs: dict) -> float:
        out = [outputs[o] / outputs[l][:, None]
               for o, l in zip(self.replicas(OpKind.WGMMA_PV), self.replicas(OpKind.ROW_SUM))]
        s = torch.from_numpy(self.q) @ torch.from_numpy(self.k).T / math.sqrt(self.q.shape[1])
        ref = (torch.softmax(s, dim=-1) @ torch.from_numpy(self.v)).numpy()
        return self.relative_error(np.concatenate(out), ref)


FAMILIES = {"gemm": GemmSemantics, "quant_gemm": QuantGemmSemantics, "attention_fwd": AttentionSemantics}


def semantics_for(problem: Problem, iterations: int, seed: int = 0):
    """The numeric semantics of `problem`'s model family, or None (the simulator checks tags only)."""
    family = FAMILIES.get(problem.source.get("model"))
    return None if family is None else family(problem, iterations, seed)
