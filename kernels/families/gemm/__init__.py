"""Dense GEMM, C = A B^T (the baseline family): the `gemm` model (models/gemm.py) lowered.

cuda.py        what each op is in CUDA (render hooks) over templates.py
semantics.py   what each op computes, for the CPU simulator
launch.py      the entry point on torch tensors; torch_op.py the torch custom op
"""

from warpsched.kernels.families.base import Family
from warpsched.kernels.families.gemm.cuda import GemmCuda

FAMILY = Family(
    "gemm",
    GemmCuda,
    "warpsched.kernels.families.gemm.semantics:GemmSemantics",
    "warpsched.kernels.families.gemm.launch",
    ("gemm",),
    "M % tile_m == N % tile_n == K % tile_k == 0",
)
