"""Lowering of schedules to kernels (DESIGN.md section 6): the pipeline program (program.py), its
CPU simulator (simulate.py, semantics.py), CUDA generation (cuda/), the nvcc build (build.py) and
the launch on torch tensors (runtime.py).

    import kernels
    c = kernels.gemm(a, b)   # on an H100/H200: a @ b.T
"""

from kernels.runtime import KernelError, gemm

__all__ = ["KernelError", "gemm"]
