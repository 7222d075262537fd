#!/usr/bin/env python3
"""One call of each generated kernel on a realistic shape, for a profiler to look at:

    ncu --kernel-name regex:warpsched --section SpeedOfLight --section WarpStateStats \
        python3 bench/ncu_probe.py

gemm 8192^3 bf16; quant_gemm int4 g128 at M = 16 on Llama-3.3-70B's o projection (8192 x 8192);
attention d128 at batch 4, 16 heads, 4096 keys. Each runs twice (the first builds and warms up)."""

import torch

from warpsched import kernels
from warpsched.kernels.quant import pack

torch.manual_seed(0)
dev = "cuda"
a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
kernels.gemm(a, a)
n = k = 8192
codes = torch.randint(0, 16, (n, k), device=dev)
scales = (torch.rand(k // 128, n, device=dev) + 0.5).to(torch.bfloat16) / 8
x = torch.randn(16, k, device=dev, dtype=torch.bfloat16)
w = pack(codes, 4)
q = torch.randn(4, 16, 4096, 128, device=dev, dtype=torch.bfloat16)
for _ in range(2):
    kernels.gemm(a, a)
    kernels.quant_gemm(x, w, scales, bits=4, group_size=128)
    kernels.attention_fwd(q, q, q)
torch.cuda.synchronize()
print("probe done")
