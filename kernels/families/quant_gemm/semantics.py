"""quant_gemm: what each op computes on real tiles, for the CPU simulator (kernels/simulate.py)."""

from __future__ import annotations

import numpy as np

from warpsched.kernels.families.base import Semantics
from warpsched.kernels.families.numerics import round_to
from warpsched.kernels.quant import float_values
from warpsched.models import quant_gemm
from warpsched.models.kinds import OpKind
from warpsched.scheduler.ir import Problem


class QuantGemmSemantics(Semantics):
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
        self.scales = round_to(
            rng.uniform(0.5, 1.5, size=(tn, groups)) / (1 << max(self.bits - 1, 0)), self.dtype
        )
        if self.fmt in quant_gemm.FLOAT_FORMATS:  # float codes carry their own magnitude
            self.scales = round_to(rng.uniform(0.5, 1.5, size=(tn, groups)), self.dtype)
        self.zeros = rng.integers(0, 1 << self.bits, size=(tn, groups)) if self.fmt == "int_zp" else None
        self.group = group
        self.x = round_to(rng.standard_normal((tm, K)), self.dtype)
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
            scale = inputs.get(
                (quant_gemm.LOAD_S, 0)
            )  # what the scale load delivered (channelwise: none in the loop)
            return round_to(self.values(inputs[(quant_gemm.LOAD_W, 0)], k, scale)[rows], self.dtype)
        return inputs[(op, 1)] + self.take(inputs, OpKind.DEQUANT) @ inputs[(quant_gemm.LOAD_X, 0)].T

    def error(self, outputs: dict) -> float:
        out = np.concatenate([outputs[m] for m in self.mmas])
        K = self.codes.shape[1]
        ref = self.values(self.codes, slice(0, K)) @ self.x.T
        return self.relative_error(out, ref)
