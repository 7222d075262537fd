"""Lowering of schedules to kernels (DESIGN.md section 6): the pipeline program (program.py), its
CPU simulator (simulate.py, semantics.py), CUDA generation (cuda/), the nvcc build (build.py) and
the launch on torch tensors (runtime.py).

    from warpsched import kernels
    c = kernels.gemm(a, b)   # on an H100/H200: a @ b.T
    y = kernels.quant_gemm(x, kernels.quant.pack(codes, 4), scales, bits=4, group_size=128)
    o = kernels.attention_fwd(q, k, v)
    kernels.precompiled()    # the shipped kernels (package/): model, parameters, machine, schedule and cubin digests
"""

import importlib

from warpsched.kernels.package import precompiled
from warpsched.kernels.runtime import KernelError, attention_fwd, gemm, quant_gemm

__all__ = ["KernelError", "attention_fwd", "gemm", "precompiled", "quant", "quant_gemm"]


def __getattr__(name: str):
    if name == "quant":  # the packing helpers need torch; import them when asked for
        return importlib.import_module("warpsched.kernels.quant")
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
