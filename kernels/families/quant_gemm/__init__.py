"""Quantized GEMM, Y = X dequant(W)^T, weights of 1..8 bits: the `quant_gemm` model (models/quant_gemm.py)
lowered.

cuda.py        what each op is in CUDA (render hooks) over templates.py
semantics.py   what each op computes, for the CPU simulator
launch.py      the entry point on torch tensors; torch_op.py the torch custom op
"""

from warpsched.kernels.families.base import Family
from warpsched.kernels.families.quant_gemm.cuda import QuantGemmCuda

FAMILY = Family(
    "quant_gemm",
    QuantGemmCuda,
    "warpsched.kernels.families.quant_gemm.semantics:QuantGemmSemantics",
    "warpsched.kernels.families.quant_gemm.launch",
    ("quant_gemm",),
    "any M (batch regimes 16, 32, ... 8192 get their own schedule), N % tile_n == 0, K a multiple of 128 "
    "(the packed layout's chunk; a last K tile past K reads zeros); "
    "importers: GPTQ 2/3/4/8-bit (act-order made static), AWQ 4-bit",
)
