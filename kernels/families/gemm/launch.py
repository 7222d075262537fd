"""gemm on torch tensors: check the call, load the kernel of its configuration (the shipped schedule, else a
solve that says so) and launch it. Every mistake is one `KernelError` sentence; none reaches the driver."""

from __future__ import annotations

import ctypes

from warpsched.kernels import runtime as rt


def gemm(a, b, *, runtime: rt.KernelRuntime | None = None):
    """`a @ b.T` for a (M, K) and b (N, K), bf16 or fp16, M % 128 == N % 256 == K % 64 == 0."""
    torch = rt.torch_module()
    runtime = runtime or rt.default_runtime()
    rt.require_sm90()
    rt.check_operand("a", a, (torch.bfloat16, torch.float16))
    rt.check_operand("b", b, (torch.bfloat16, torch.float16))
    if a.dtype != b.dtype:
        raise rt.KernelError(f"a is {a.dtype} and b is {b.dtype}; give both the same type")
    (m, k), (n, k2) = a.shape, b.shape
    if k != k2:
        raise rt.KernelError(f"a is {m} x {k} and b is {n} x {k2}: their K (columns) differ")
    loaded = runtime.load("gemm", {"dtype": rt.dtype_names()[a.dtype]})
    tm, tn, tk = loaded.tile["tile_m"], loaded.tile["tile_n"], loaded.tile["tile_k"]
    for what, size, tile in (("M (rows of a)", m, tm), ("N (rows of b)", n, tn), ("K", k, tk)):
        if size % tile:
            raise rt.KernelError(f"{what} = {size} is not a multiple of the tile {tile}; pad the operands")
    c = torch.empty(m, n, dtype=a.dtype, device=a.device)
    maps = (rt.tensor_map(a, [k, m], [tk, tm]), rt.tensor_map(b, [k, n], [tk, tn]))
    runtime.launch(
        loaded,
        (m // tm, n // tn, 1),
        (*maps, c.data_ptr(), m, n, k),
        (None, None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int),
    )
    return c
