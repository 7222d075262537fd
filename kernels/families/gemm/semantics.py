"""gemm: what each op computes on real tiles, for the CPU simulator (kernels/simulate.py)."""

from __future__ import annotations

import numpy as np
import torch

from warpsched.kernels.families.base import Semantics
from warpsched.kernels.families.numerics import TORCH_DTYPES
from warpsched.models import gemm
from warpsched.models.kinds import OpKind
from warpsched.scheduler.ir import Problem


class GemmSemantics(Semantics):
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
        a = inputs[(gemm.LOAD_A, 0)][c * self.rows : (c + 1) * self.rows]
        return inputs[(op, 1)] + a @ inputs[(gemm.LOAD_B, 0)]

    def error(self, outputs: dict) -> float:
        out = np.concatenate([outputs[m] for m in self.mmas])
        return self.relative_error(out, self.a @ self.b)
