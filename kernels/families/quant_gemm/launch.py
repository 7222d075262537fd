"""quant_gemm on torch tensors: check the call, load the kernel of its configuration (the shipped schedule,
else a
solve that says so) and launch it. Every mistake is one `KernelError` sentence; none reaches the driver."""

from __future__ import annotations

import ctypes

from warpsched.kernels import runtime as rt
from warpsched.kernels.families.quant_gemm import geometry
from warpsched.models.quant_gemm import CHUNK, FLOAT_FORMATS, FORMATS, GROUPS


def quant_gemm(
    x,
    packed_weight,
    scales,
    zeros=None,
    *,
    bits: int,
    group_size: int,
    fmt: str = "int",
    runtime: rt.KernelRuntime | None = None,
):
    """`x @ dequant(W).T`: x (M, K) bf16/fp16, W packed (N, K * bits / 8) uint8 (kernels.quant), scales
    (K / group_size, N) or (N,) for group_size -1 in x's type, zeros (same shape) for fmt int_zp."""
    torch = rt.torch_module()
    runtime = runtime or rt.default_runtime()
    rt.require_sm90()
    if fmt not in FORMATS:
        raise rt.KernelError(f"fmt {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if fmt in FLOAT_FORMATS and bits != FLOAT_FORMATS[fmt]:
        raise rt.KernelError(f"fmt {fmt} has {FLOAT_FORMATS[fmt]} bits; got bits={bits}")
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise rt.KernelError(f"bits must be an integer from 1 to 8; got {bits!r}")
    if group_size not in GROUPS:
        raise rt.KernelError(f"group_size {group_size} is not supported; use 32, 64, 128 or -1 (channelwise)")
    rt.check_operand("x", x, (torch.bfloat16, torch.float16))
    rt.check_operand("packed_weight", packed_weight, (torch.uint8,))
    rt.check_operand("scales", scales, (x.dtype,), dims=1 if group_size == -1 else 2)
    if (zeros is None) != (fmt != "int_zp"):
        raise rt.KernelError("zeros go with fmt='int_zp' and only with it")
    why = geometry.unsupported_zero_points(fmt, group_size)
    if why:
        raise rt.KernelError(why)
    if zeros is not None:
        rt.check_operand("zeros", zeros, (x.dtype,), dims=scales.dim())
    m, k = x.shape
    n = packed_weight.shape[0]
    if packed_weight.shape[1] * 8 != k * bits:
        raise rt.KernelError(
            f"packed_weight has {packed_weight.shape[1]} bytes per row; K = {k} codes of {bits} bits need "
            f"{k * bits / 8:g}"
        )
    want = (n,) if group_size == -1 else (k // group_size, n)
    if group_size != -1 and k % group_size:
        raise rt.KernelError(f"K = {k} is not a multiple of group_size {group_size}")
    for name, t in (("scales", scales), ("zeros", zeros)):
        if t is not None and tuple(t.shape) != want:
            raise rt.KernelError(f"{name} has shape {tuple(t.shape)}; the weights need {want}")
    bucket = min(
        8192, 1 << max(4, (m - 1).bit_length())
    )  # one kernel per power-of-two batch regime from 16 up
    loaded = runtime.load(
        "quant_gemm",
        {"bits": bits, "fmt": fmt, "group_size": group_size, "dtype": rt.dtype_names()[x.dtype], "m": bucket},
    )
    tn, tm, tk = loaded.tile["tile_n"], loaded.tile["tile_m"], loaded.tile["tile_k"]
    if n % tn:
        raise rt.KernelError(
            f"N (rows of the weights) = {n} is not a multiple of the tile {tn}; pad the weights"
        )
    if k % CHUNK:  # the packed layout's chunk; a last K tile past K reads zeros (the TMA's fill)
        raise rt.KernelError(
            f"K = {k} is not a multiple of {CHUNK} (the packed layout's chunk); pad the weights"
        )
    row_bytes = tk * bits // 8
    args = [
        rt.tensor_map(packed_weight, [k * bits // 8, n], [row_bytes, tn], swizzle=False),
        rt.tensor_map(x, [k, m], [64, tm]),
    ]
    types = [None, None]
    if group_size == -1:
        args.append(scales.data_ptr())
        types.append(ctypes.c_void_p)
    else:
        per_tile = max(1, tk // group_size)
        args.append(rt.tensor_map(scales, [n, k // group_size], [tn, per_tile], swizzle=False))
        types.append(None)
        if zeros is not None:
            args.append(rt.tensor_map(zeros, [n, k // group_size], [tn, per_tile], swizzle=False))
            types.append(None)
    grid = geometry.launch(
        {"m": m, "n": n, "k": k},
        {**loaded.tile, "bits": bits, "group_size": group_size, "fmt": fmt},
        torch.cuda.get_device_properties(x.device).multi_processor_count,
    ).grid
    splits = grid[2]
    out = torch.empty(m, n, dtype=x.dtype, device=x.device)
    # split K: float32 partials per split, and per (tile, weight slice) the count of splits done, which the
    # last split of each sets back to zero (the runtime keeps the counts, zero between calls)
    partial = torch.empty(splits, m, n, dtype=torch.float32, device=x.device) if splits > 1 else None
    counters = runtime.split_counters(x.device, grid[0] * grid[1] * (tn // 64)) if splits > 1 else None
    runtime.launch(
        loaded,
        grid,
        (
            *args,
            out.data_ptr(),
            0 if partial is None else partial.data_ptr(),
            0 if counters is None else counters.data_ptr(),
            m,
            n,
            -(-k // tk),  # K tiles; the last one may run past K
        ),
        (*types, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int),
    )
    return out
