"""The simulator's numeric semantics of a schedule's kernel family (kernels/families/<family>/semantics.py).

`semantics_for(problem, iterations, seed)` returns the family's semantics (None for problems that are
not one of the kernel models: the simulator then checks the data flow by tags). Each op gets its inputs
keyed by `(producer, distance)`; loop-carried inputs before the first iteration take `initial`. The
outputs of the last iteration are compared with a float32 torch reference on random data (relative
Frobenius error, `tolerance` 1e-2 for bf16/fp16 operands). Operands are rounded to the kernel's type
(bf16/fp16) as the tensor core sees them; accumulation is float32 as in wgmma.
"""

from __future__ import annotations

from warpsched.kernels.families import FAMILIES
from warpsched.scheduler.ir import Problem


def semantics_for(problem: Problem, iterations: int, seed: int = 0):
    """The numeric semantics of `problem`'s model family, or None (the simulator checks tags only)."""
    family = FAMILIES.get(problem.source.get("model"))
    return None if family is None else family.semantics_class()(problem, iterations, seed)
