"""Lowering of schedules to kernels (DESIGN.md section 6): the pipeline program (program.py), its
CPU simulator (simulate.py, semantics.py), CUDA generation (cuda/), the nvcc build (toolchain.py,
build.py, driver.py), the launch on torch tensors (runtime.py) and the kernel families, one folder
each (families/: gemm, quant_gemm, attention).

    from warpsched import kernels
    c = kernels.gemm(a, b)   # on an H100/H200: a @ b.T
    y = kernels.quant_gemm(x, kernels.quant.pack(codes, 4), scales, bits=4, group_size=128)
    o = kernels.attention_fwd(q, k, v)
    kernels.precompiled()    # the shipped kernels (package/): model, parameters, machine, schedule and cubin
    digests

The entry points are the families' (`Family.entry_points`), found here by name on first use.
"""

import importlib

from warpsched.kernels.families import FAMILIES
from warpsched.kernels.package import precompiled
from warpsched.kernels.runtime import KernelError

ENTRY_POINTS = {name: family for family in FAMILIES.values() for name in family.entry_points}

__all__ = ["KernelError", "precompiled", "quant", *ENTRY_POINTS]


def __getattr__(name: str):
    if name in ENTRY_POINTS:
        return ENTRY_POINTS[name].entry_point(name)
    if name == "quant":  # the packing helpers need torch; import them when asked for
        return importlib.import_module("warpsched.kernels.quant")
    raise AttributeError(f"module 'warpsched.kernels' has no attribute {name!r}")
