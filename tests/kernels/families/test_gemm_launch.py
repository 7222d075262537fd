"""The gemm family on an H100/H200: its kernel matches torch."""

from __future__ import annotations


import pytest

from warpsched.kernels.runtime import KernelError
from tests.kernels.conftest import relative_error


@pytest.mark.gpu
def test_gemm_matches_torch_on_the_gpu():
    import torch

    from warpsched import kernels

    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(256, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(512, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    c = kernels.gemm(a, b)
    assert relative_error(c, a.float() @ b.float().T) < 1e-2
    with pytest.raises(KernelError, match="not a multiple of the tile"):
        kernels.gemm(a[:100].contiguous(), b)
