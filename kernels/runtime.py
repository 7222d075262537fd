"""Launch generated kernels on torch tensors with cuda-python (DESIGN.md 6.5).

    import torch
    from warpsched import kernels
    c = kernels.gemm(a, b)        # a (M, K), b (N, K) bf16/fp16 on an sm_90 GPU: c = a @ b.T
    y = kernels.quant_gemm(x, packed, scales, bits=4, group_size=128)   # x @ dequant(W).T
    o = kernels.attention_fwd(q, k, v)   # (batch, heads, seqlen, head_dim), softmax(q k^T / sqrt(d)) v

The kernel for a configuration is solved, lowered, rendered and built once (the cubin is cached
on disk by kernels/build.py) and loaded once per `KernelRuntime`. Every mistake a caller can make
(a CPU tensor, a dtype, a stride, a shape the tile does not divide, no GPU or one below sm_90) is a
`KernelError` with one sentence; none reaches the driver.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from dataclasses import dataclass

from warpsched.scheduler.errors import WarpschedError

TILE_ALIGN_BYTES = 16  # TMA: global addresses and strides in multiples of 16 bytes


class KernelError(WarpschedError):
    """A kernel cannot run on these inputs or on this machine."""


@dataclass(frozen=True)
class _Loaded:
    function: object
    threads: int
    smem_bytes: int
    tile: dict


def _torch():
    import torch

    return torch


def require_sm90() -> None:
    torch = _torch()
    if not torch.cuda.is_available():
        raise KernelError("warpsched kernels need a CUDA GPU of compute capability 9.0 (H100/H200); none is visible here")
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        raise KernelError(f"warpsched kernels are built for sm_90a (H100/H200); this GPU is sm_{major}{minor}")


def _check_operand(name: str, t, dtypes, dims: int = 2) -> None:
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if not t.is_cuda:
        raise KernelError(f"{name} is on {t.device}; move it to the GPU (.cuda())")
    if t.dtype not in dtypes:
        raise KernelError(f"{name} is {t.dtype}; use one of {', '.join(str(d) for d in dtypes)}")
    if t.dim() != dims:
        raise KernelError(f"{name} must be {dims}-D, not {t.dim()}-D of shape {tuple(t.shape)}")
    if not t.is_contiguous():
        raise KernelError(f"{name} is not contiguous; call .contiguous() first")
    if t.data_ptr() % TILE_ALIGN_BYTES:
        raise KernelError(f"{name} starts at an address that is not a multiple of {TILE_ALIGN_BYTES} bytes (TMA needs it)")


def _driver():
    try:
        from cuda.bindings import driver
    except ImportError:
        raise KernelError("launching kernels needs cuda-python; pip install -e '.[gpu]'") from None
    return driver


def _ok(result):
    """cuda-python returns (error, values...): raise on an error, return the values."""
    driver = _driver()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != driver.CUresult.CUDA_SUCCESS:
        raise KernelError(f"the CUDA driver failed: {err}")
    return values[0] if len(values) == 1 else values


def load_kernel(kernel, report=None) -> _Loaded:
    """Load a rendered kernel's cubin (`report`: its build; built now, or taken from the cache, when None),
    refused unless it passed its SASS checks."""
    from warpsched.kernels.build import build

    report = report or build(kernel.source, kernel.entry)
    if not report.sass_ok:
        raise KernelError(f"the generated {kernel.entry} kernel failed its SASS checks: {'; '.join(report.sass_problems)}")
    driver = _driver()
    _torch().cuda.synchronize()  # creates the primary context and makes it current (cuModuleLoadData needs one)
    module = _ok(driver.cuModuleLoadData(Path(report.cubin).read_bytes()))
    function = _ok(driver.cuModuleGetFunction(module, kernel.entry.encode()))
    _ok(driver.cuFuncSetAttribute(function, driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                  kernel.smem_bytes))
    return _Loaded(function, kernel.threads, kernel.smem_bytes, kernel.tile)


class KernelRuntime:
    """Loads each configuration's cubin once and launches it on the current stream."""

    def __init__(self, machine: str = "h100"):
        self.machine = machine
        self._loaded: dict[tuple, _Loaded] = {}

    def _load(self, model: str, params: dict) -> _Loaded:
        key = (model, tuple(sorted(params.items())))
        if key not in self._loaded:
            from warpsched.kernels.driver import build_schedule
            from warpsched.kernels.package import find

            try:  # the shipped schedule (kernels/package) when there is one, else solve it now
                schedule = find(model, params, self.machine) or self._solve(model, params)
                built = build_schedule(schedule)
            except WarpschedError as e:
                raise KernelError(f"no {model} kernel for {params}: {e}") from None
            self._loaded[key] = load_kernel(built.kernel, built.report)
        return self._loaded[key]

    def _solve(self, model: str, params: dict):
        """A configuration the package does not ship: solved here, once per process, with the deterministic
        preset, so that every machine and every run builds the same kernel (the wall-clock-limited default
        preset may pick another optimal schedule each time, and on the GPU not all of them were right)."""
        import sys

        from warpsched.models import build_model
        from warpsched.scheduler import solve

        print(f"warpsched: solving {model} {params} for {self.machine} (once per process; the package does not ship it)",
              file=sys.stderr, flush=True)
        return solve(build_model(model, self.machine, **params), self.machine, config="deterministic").schedule

    def _launch(self, loaded: _Loaded, grid: tuple[int, int, int], args: tuple, types: tuple) -> None:
        driver = _driver()
        stream = _torch().cuda.current_stream().cuda_stream
        _ok(driver.cuLaunchKernel(loaded.function, *grid, loaded.threads, 1, 1, loaded.smem_bytes, stream, (args, types), 0))

    def gemm(self, a, b):
        """`a @ b.T` for a (M, K) and b (N, K), bf16 or fp16, M % 128 == N % 256 == K % 64 == 0."""
        torch = _torch()
        require_sm90()
        _check_operand("a", a, (torch.bfloat16, torch.float16))
        _check_operand("b", b, (torch.bfloat16, torch.float16))
        if a.dtype != b.dtype:
            raise KernelError(f"a is {a.dtype} and b is {b.dtype}; give both the same type")
        (m, k), (n, k2) = a.shape, b.shape
        if k != k2:
            raise KernelError(f"a is {m} x {k} and b is {n} x {k2}: their K (columns) differ")
        loaded = self._load("gemm", {"dtype": _dtype_names()[a.dtype]})
        tm, tn, tk = loaded.tile["tile_m"], loaded.tile["tile_n"], loaded.tile["tile_k"]
        for what, size, tile in (("M (rows of a)", m, tm), ("N (rows of b)", n, tn), ("K", k, tk)):
            if size % tile:
                raise KernelError(f"{what} = {size} is not a multiple of the tile {tile}; pad the operands")
        c = torch.empty(m, n, dtype=a.dtype, device=a.device)
        maps = (_tensor_map(a, [k, m], [tk, tm]), _tensor_map(b, [k, n], [tk, tn]))
        self._launch(loaded, (m // tm, n // tn, 1), (*maps, c.data_ptr(), m, n, k),
                     (None, None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int))
        return c

    def quant_gemm(self, x, packed_weight, scales, zeros=None, *, bits: int, group_size: int, fmt: str = "int"):
        """`x @ dequant(W).T`: x (M, K) bf16/fp16, W packed (N, K * bits / 8) uint8 (kernels.quant), scales
        (K / group_size, N) or (N,) for group_size -1 in x's type, zeros (same shape) for fmt int_zp."""
        from warpsched.models.quant_gemm import FLOAT_FORMATS, FORMATS, GROUPS

        torch = _torch()
        require_sm90()
        if fmt not in FORMATS:
            raise KernelError(f"fmt {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
        if fmt in FLOAT_FORMATS and bits != FLOAT_FORMATS[fmt]:
            raise KernelError(f"fmt {fmt} has {FLOAT_FORMATS[fmt]} bits; got bits={bits}")
        if not isinstance(bits, int) or not 1 <= bits <= 8:
            raise KernelError(f"bits must be an integer from 1 to 8; got {bits!r}")
        if group_size not in GROUPS:
            raise KernelError(f"group_size {group_size} is not supported; use 32, 64, 128 or -1 (channelwise)")
        _check_operand("x", x, (torch.bfloat16, torch.float16))
        _check_operand("packed_weight", packed_weight, (torch.uint8,))
        _check_operand("scales", scales, (x.dtype,), dims=1 if group_size == -1 else 2)
        if (zeros is None) != (fmt != "int_zp"):
            raise KernelError("zeros go with fmt='int_zp' and only with it")
        if zeros is not None:
            _check_operand("zeros", zeros, (x.dtype,), dims=scales.dim())
        m, k = x.shape
        n = packed_weight.shape[0]
        if packed_weight.shape[1] * 8 != k * bits:
            raise KernelError(f"packed_weight has {packed_weight.shape[1]} bytes per row; K = {k} codes of {bits} bits need {k * bits / 8:g}")
        want = (n,) if group_size == -1 else (k // group_size, n)
        if group_size != -1 and k % group_size:
            raise KernelError(f"K = {k} is not a multiple of group_size {group_size}")
        for name, t in (("scales", scales), ("zeros", zeros)):
            if t is not None and tuple(t.shape) != want:
                raise KernelError(f"{name} has shape {tuple(t.shape)}; the weights need {want}")
        bucket = min(8192, 1 << max(4, (m - 1).bit_length()))  # one kernel per power-of-two batch regime from 16 up
        loaded = self._load("quant_gemm", {"bits": bits, "fmt": fmt, "group_size": group_size, "dtype": _dtype_names()[x.dtype],
                                           "m": bucket})
        tn, tm, tk = loaded.tile["tile_n"], loaded.tile["tile_m"], loaded.tile["tile_k"]
        for what, size, tile in (("N (rows of the weights)", n, tn), ("K", k, tk)):
            if size % tile:
                raise KernelError(f"{what} = {size} is not a multiple of the tile {tile}; pad the weights")
        row_bytes = tk * bits // 8
        args = [_tensor_map(packed_weight, [k * bits // 8, n], [row_bytes, tn], swizzle=False),
                _tensor_map(x, [k, m], [64, tm])]
        types = [None, None]
        if group_size == -1:
            args.append(scales.data_ptr())
            types.append(ctypes.c_void_p)
        else:
            per_tile = max(1, tk // group_size)
            args.append(_tensor_map(scales, [n, k // group_size], [tn, per_tile], swizzle=False))
            types.append(None)
            if zeros is not None:
                args.append(_tensor_map(zeros, [n, k // group_size], [tn, per_tile], swizzle=False))
                types.append(None)
        ctas = (n // tn) * -(-m // tm)
        splits = split_k(ctas, k // tk, torch.cuda.get_device_properties(x.device).multi_processor_count,
                         group_size // tk if group_size > tk else 1)
        if splits > 1:  # the kernel writes float32 partials (and no y); their sum in a fixed order is y
            out = torch.empty(splits, m, n, dtype=torch.float32, device=x.device)
            pointers = (0, out.data_ptr())
        else:
            out = torch.empty(m, n, dtype=x.dtype, device=x.device)
            pointers = (out.data_ptr(), 0)
        self._launch(loaded, (n // tn, -(-m // tm), splits), (*args, *pointers, m, n, k // splits),
                     (*types, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int))
        return out.sum(dim=0).to(x.dtype) if splits > 1 else out

    def attention_fwd(self, q, k, v, *, causal: bool = False, softmax_scale: float | None = None, return_lse: bool = False):
        """softmax(q k^T * scale) v for q (B, H, N, d), k and v (B, H_kv, N_kv, d) with H_kv dividing H (GQA),
        bf16 or fp16, d in 64/128/256; the output is (B, H, N, d) like scaled_dot_product_attention, and with
        `return_lse` also the log-sum-exp of every query row's scaled scores, (B, H, N) float32."""
        from warpsched.kernels.cuda.families import softmax_scale_log2

        torch = _torch()
        require_sm90()
        for name, t in (("q", q), ("k", k), ("v", v)):
            _check_operand(name, t, (torch.bfloat16, torch.float16), dims=4)
        if not q.dtype == k.dtype == v.dtype:
            raise KernelError(f"q, k and v are {q.dtype}, {k.dtype}, {v.dtype}; give them one type")
        b, h, n, d = q.shape
        if k.shape != v.shape or k.shape[0] != b or k.shape[3] != d:
            raise KernelError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must both be (batch {b}, kv_heads, seqlen, head_dim {d})")
        hkv, nkv = k.shape[1], k.shape[2]
        if h % hkv:
            raise KernelError(f"{hkv} K/V heads do not divide {h} query heads")
        if d not in (64, 128, 256):
            raise KernelError(f"head_dim {d} is not supported; use 64, 128 or 256")
        if n < 1 or nkv < 1:
            raise KernelError("q and k need at least one row each")
        if causal and nkv < n:
            raise KernelError(f"causal attention needs at least as many keys as queries (the mask is aligned to the bottom "
                              f"right, as FlashAttention's); got {nkv} keys for {n} queries")
        loaded = self._load("attention_fwd", {"head_dim": d, "dtype": _dtype_names()[q.dtype], "causal": bool(causal)})
        bm, bn, tiles = loaded.tile["block_m"], loaded.tile["block_n"], loaded.tile["q_tiles"]
        out = torch.empty_like(q)
        if return_lse and not loaded.tile.get("lse"):
            raise KernelError("this head_dim's schedule keeps the row maximum away from the output's warpgroup; "
                              "return_lse is not available for it")
        lse = torch.empty(b, h, n, dtype=torch.float32, device=q.device) if return_lse else None
        maps = (_tensor_map(q, [d, n, b * h], [64, bm, 1]), _tensor_map(k, [d, nkv, b * hkv], [64, bn, 1]),
                _tensor_map(v, [d, nkv, b * hkv], [64, bn, 1]))
        self._launch(loaded, (-(-n // (bm * tiles)), h, b),
                     (*maps, out.data_ptr(), 0 if lse is None else lse.data_ptr(), n, nkv, h, hkv,
                      softmax_scale_log2(d, softmax_scale)),
                     (None, None, None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_float))
        return (out, lse) if return_lse else out


MIN_K_TILES_PER_SPLIT = 8  # enough trips for the pipeline's ramp-up and drain to stay small


def split_k(ctas: int, k_tiles: int, sms: int, tiles_per_group: int = 1) -> int:
    """How many runs of K tiles to give separate CTAs (1: no split): the largest power of two that keeps
    the grid within one CTA per SM (the kernels hold an SM each), divides the K tiles into runs of whole
    groups, and leaves each run MIN_K_TILES_PER_SPLIT tiles or more. Decode shapes (N / tile_n CTAs, often
    32 or 64 on 132 SMs) are what it is for; the split is deterministic (a float32 sum in a fixed order)."""
    splits = 1
    while (ctas * splits * 2 <= sms and k_tiles % (splits * 2 * tiles_per_group) == 0
           and k_tiles // (splits * 2) >= MIN_K_TILES_PER_SPLIT):
        splits *= 2
    return splits


class PinnedRuntime(KernelRuntime):
    """Launches one given kernel (a kernels.cuda.render.RenderedKernel) for every call of its family, whatever the
    package or a solve would pick: for checking a particular schedule on the GPU (bench/schedule_check.py)."""

    def __init__(self, kernel, machine: str = "h100"):
        super().__init__(machine)
        self.pinned = load_kernel(kernel)

    def _load(self, model: str, params: dict) -> _Loaded:
        return self.pinned


def _dtype_names():
    torch = _torch()
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}


def _tensor_map(t, dims: list[int], box: list[int], swizzle: bool = True):
    """A TMA descriptor of row-major `t` seen as `dims` (innermost first) with a `box`; 16-bit tensors
    with the 128-byte swizzle of the GMMA layouts (box rows of 64 elements), bytes without swizzle."""
    torch = _torch()
    driver = _driver()
    kinds = {torch.bfloat16: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
             torch.float16: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
             torch.uint8: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_UINT8}
    size = t.element_size()
    strides, step = [], dims[0] * size
    for extent in dims[1:]:
        strides.append(step)
        step *= extent
    mode = (driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B if swizzle
            else driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_NONE)
    return _ok(driver.cuTensorMapEncodeTiled(*_tensor_map_arguments(kinds[t.dtype], t.data_ptr(), dims, strides, box, mode)))


def _tensor_map_arguments(kind, address: int, dims: list[int], strides: list[int], box: list[int], swizzle) -> tuple:
    """cuTensorMapEncodeTiled's arguments as cuda-python takes them: extents and strides as cuuint64_t,
    box and element strides as cuuint32_t (plain ints are refused)."""
    driver = _driver()
    return (kind, len(dims), address, [driver.cuuint64_t(x) for x in dims], [driver.cuuint64_t(x) for x in strides],
            [driver.cuuint32_t(x) for x in box], [driver.cuuint32_t(1)] * len(dims),
            driver.CUtensorMapInterleave.CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
            driver.CUtensorMapL2promotion.CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
            driver.CUtensorMapFloatOOBfill.CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)


@functools.cache
def default_runtime(machine: str = "h100") -> KernelRuntime:
    """The process's runtime for `machine` (loaded modules live as long as the process, as in Triton)."""
    return KernelRuntime(machine)


def gemm(a, b):
    """`a @ b.T` with the generated H100 GEMM kernel."""
    return default_runtime().gemm(a, b)


def quant_gemm(x, packed_weight, scales, zeros=None, *, bits: int, group_size: int, fmt: str = "int"):
    """`x @ dequant(W).T` with the generated H100 quantized GEMM kernel (layout: kernels.quant)."""
    return default_runtime().quant_gemm(x, packed_weight, scales, zeros, bits=bits, group_size=group_size, fmt=fmt)


def attention_fwd(q, k, v, *, causal: bool = False, softmax_scale: float | None = None, return_lse: bool = False):
    """FlashAttention forward with the generated H100 kernel; q, k, v as in scaled_dot_product_attention
    (with `return_lse`: also the rows' log-sum-exp)."""
    return default_runtime().attention_fwd(q, k, v, causal=causal, softmax_scale=softmax_scale, return_lse=return_lse)
