"""The protocol a kernel family follows (DESIGN.md 7): one folder under kernels/families/ per kernel model,
holding its CUDA render hooks (`cuda.py` over its `templates.py`), its simulator semantics
(`semantics.py`) and its entry points on torch tensors (`launch.py`, `torch_op.py`), registered by the
`FAMILY` its `__init__.py` names. The generic parts (program, simulator, render skeleton, build, runtime)
know no family by name; they ask the registry (kernels/families/__init__.py).
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass

import numpy as np

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Problem

ELEMENTS = {"bf16": "cutlass::bfloat16_t", "fp16": "cutlass::half_t"}


@dataclass(frozen=True)
class Family:
    """A kernel family: the model it lowers and where its parts live. `semantics` and `launch` are module
    paths imported on first use (they need torch; rendering and listing do not)."""

    name: str  # the kernel model it lowers (warpsched.models.MODELS)
    cuda: type  # a CudaFamily: what each op of a schedule is in CUDA
    semantics: str  # "module:Class" of its Semantics, for the CPU simulator
    launch: str  # the module of its entry points on torch tensors
    entry_points: tuple[str, ...]  # the functions of `launch` that warpsched.kernels exports
    calls: str = ""  # what its entry points accept beyond the model's parameters (the support matrix)
    geometry: str = ""  # its grid for a call shape (SHAPE, launch); default: the `geometry` beside `launch`

    def semantics_class(self) -> type:
        module, cls = self.semantics.split(":")
        return getattr(importlib.import_module(module), cls)

    def geometry_module(self):
        return importlib.import_module(self.geometry or self.launch.rsplit(".", 1)[0] + ".geometry")

    def entry_point(self, name: str):
        return getattr(importlib.import_module(self.launch), name)


def ident(name: str) -> str:
    """An op's name as a C++ identifier (its registers, rings and fragments are named after it)."""
    return re.sub(r"\W", "_", name)


@dataclass(frozen=True)
class LoadPlan:
    ctype: str  # element type of the ring's slots
    elements: int  # per slot
    bytes: int  # what the TMA copies deliver (the full barrier's transaction bytes)
    copies: tuple[str, ...]  # C++ statements: `dst` is the slot, `bar` its full barrier, `it` the iteration


class CudaFamily:
    entry = ""
    limits: dict[
        str, str
    ] = {}  # what the CUDA templates cover beyond the model's own ranges (the support matrix)
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

    def complete(self, step, pending: int = 0) -> str:
        return ""

    def epilogue(self, step) -> str:
        return ""

    # register values handed across warpgroups (staging rings): the slot's plan, the code that writes
    # the value into `dst`, reads it back from `src_<value>`, and the value before the first iteration
    def staging(self, value: str) -> LoadPlan:
        raise InputError(
            f"{self.program.name}: the schedule hands {value!r} to another warpgroup; the "
            f"{self.src['model']} "
            f"CUDA templates have no staging for it"
        )

    def stage_out(self, step) -> str:
        return ""

    def stage_in(self, read, step) -> str:
        return ""

    def initial(self, read, step) -> str:
        raise InputError(
            f"{self.program.name}: {step.op} reads {read.value!r} of {read.distance} iteration(s) back from "
            "another "
            f"warpgroup; the CUDA templates know no initial value for it"
        )

    def _unknown(self, step):
        raise InputError(f"{self.program.name}: no CUDA template for op kind {step.kind!r} ({step.op})")


class Semantics:
    """What each op of a family computes on real tiles (numpy), for the CPU simulator: `apply(op, kind, it,
    inputs)` per op, `initial(value)` before the first iteration, `error(outputs)` against a float32
    reference. Inputs are keyed by (producer, distance)."""

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
