"""The kernels as torch custom ops: registered under torch.ops.warpsched, their fake implementations
give torch.compile the output shapes, and on a machine without a GPU the real ones say so."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import warpsched.kernels.torch_ops  # noqa: E402,F401  (registers the ops)
from warpsched.kernels.runtime import KernelError  # noqa: E402


def test_fake_implementations_give_the_output_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        a, b = torch.empty(256, 64, dtype=torch.bfloat16), torch.empty(512, 64, dtype=torch.bfloat16)
        assert torch.ops.warpsched.gemm(a, b).shape == (256, 512)
        x, w = torch.empty(5, 4096, dtype=torch.bfloat16), torch.empty(1024, 2048, dtype=torch.uint8)
        s = torch.empty(32, 1024, dtype=torch.bfloat16)
        y = torch.ops.warpsched.quant_gemm(x, w, s, None, bits=4, group_size=128, fmt="int")
        assert y.shape == (5, 1024) and y.dtype == torch.bfloat16
        q = torch.empty(2, 8, 300, 128, dtype=torch.float16)
        kv = torch.empty(2, 2, 300, 128, dtype=torch.float16)
        o = torch.ops.warpsched.attention_fwd(q, kv, kv, causal=False, softmax_scale=0.1)
        assert o.shape == q.shape and o.dtype == q.dtype


def test_torch_compile_traces_through_the_op():
    def f(q, k, v):
        return torch.ops.warpsched.attention_fwd(q, k, v) * 2

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    q = torch.zeros(1, 1, 64, 64, dtype=torch.bfloat16)
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the CPU tensors here would be refused for another reason")
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        compiled(q, q, q)
