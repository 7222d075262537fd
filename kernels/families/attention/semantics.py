"""attention_fwd: what each op computes on real tiles, for the CPU simulator (kernels/simulate.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from warpsched.kernels.families.base import Semantics
from warpsched.kernels.families.numerics import TORCH_DTYPES, round_to
from warpsched.models import attention
from warpsched.models.kinds import OpKind
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Problem


class AttentionSemantics(Semantics):
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
            return (
                self.q[t * self.bm : (t + 1) * self.bm] @ inputs[(attention.LOAD_K, 0)].T
            ) * self.scale_log2
        if kind == OpKind.ROW_MAX:
            old = inputs[(op, 1)][0]
            return np.maximum(old, self.take(inputs, OpKind.WGMMA_QK).max(axis=1)), old
        if kind == OpKind.SCALE:
            return self.take(inputs, OpKind.WGMMA_QK) - self.take(inputs, OpKind.ROW_MAX)[0][:, None]
        if kind == OpKind.EXP2:
            return round_to(np.exp2(self.take(inputs, OpKind.SCALE)), self.dtype)
        if kind == OpKind.ROW_SUM:
            correction = self._correction(self.take(inputs, OpKind.ROW_MAX))
            return inputs[(op, 1)] * correction + self.take(inputs, OpKind.EXP2).sum(axis=1)
        if kind == OpKind.RESCALE_O:
            return (
                self.take(inputs, OpKind.WGMMA_PV, 1)
                * self._correction(self.take(inputs, OpKind.ROW_MAX))[:, None]
            )
        if kind == OpKind.WGMMA_PV:
            return (
                self.take(inputs, OpKind.RESCALE_O)
                + self.take(inputs, OpKind.EXP2) @ inputs[(attention.LOAD_V, 0)]
            )
        raise InputError(f"attention_fwd semantics know no op kind {kind!r} ({op})")

    def error(self, outputs: dict) -> float:
        out = [
            outputs[o] / outputs[l][:, None]
            for o, l in zip(self.replicas(OpKind.WGMMA_PV), self.replicas(OpKind.ROW_SUM))
        ]
        s = torch.from_numpy(self.q) @ torch.from_numpy(self.k).T / math.sqrt(self.q.shape[1])
        ref = (torch.softmax(s, dim=-1) @ torch.from_numpy(self.v)).numpy()
        return self.relative_error(np.concatenate(out), ref)
