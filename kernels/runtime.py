"""Launch generated kernels on torch tensors with cuda-python (DESIGN.md 6.5).

    import torch, kernels
    c = kernels.gemm(a, b)        # a (M, K), b (N, K) bf16/fp16 on an sm_90 GPU: c = a @ b.T

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

from scheduler.errors import WarpschedError

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


def _check_operand(name: str, t, dtypes) -> None:
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        raise KernelError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if not t.is_cuda:
        raise KernelError(f"{name} is on {t.device}; move it to the GPU (.cuda())")
    if t.dtype not in dtypes:
        raise KernelError(f"{name} is {t.dtype}; use one of {', '.join(str(d) for d in dtypes)}")
    if t.dim() != 2:
        raise KernelError(f"{name} must be 2-D, not {t.dim()}-D of shape {tuple(t.shape)}")
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


class KernelRuntime:
    """Loads each configuration's cubin once and launches it on the current stream."""

    def __init__(self, machine: str = "h100"):
        self.machine = machine
        self._loaded: dict[tuple, _Loaded] = {}

    def _load(self, model: str, params: dict) -> _Loaded:
        key = (model, tuple(sorted(params.items())))
        if key not in self._loaded:
            from kernels.build import build
            from kernels.cuda.render import render
            from models import build_model
            from scheduler import solve

            schedule = solve(build_model(model, self.machine, **params), self.machine).schedule
            kernel = render(schedule)
            report = build(kernel.source, kernel.entry)
            if not report.sass_ok:
                raise KernelError(f"the generated {model} kernel failed its SASS checks: {'; '.join(report.sass_problems)}")
            driver = _driver()
            _torch().cuda.init()
            module = _ok(driver.cuModuleLoadData(Path(report.cubin).read_bytes()))
            function = _ok(driver.cuModuleGetFunction(module, kernel.entry.encode()))
            _ok(driver.cuFuncSetAttribute(function, driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                          kernel.smem_bytes))
            self._loaded[key] = _Loaded(function, kernel.threads, kernel.smem_bytes, kernel.tile)
        return self._loaded[key]

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
        dtype = "bf16" if a.dtype == torch.bfloat16 else "fp16"
        loaded = self._load("gemm", {"dtype": dtype})
        tm, tn, tk = loaded.tile["tile_m"], loaded.tile["tile_n"], loaded.tile["tile_k"]
        for what, size, tile in (("M (rows of a)", m, tm), ("N (rows of b)", n, tn), ("K", k, tk)):
            if size % tile:
                raise KernelError(f"{what} = {size} is not a multiple of the tile {tile}; pad the operands")
        c = torch.empty(m, n, dtype=a.dtype, device=a.device)
        maps = [self._tensor_map(a, tk, tm), self._tensor_map(b, tk, tn)]
        driver = _driver()
        args = ((maps[0], maps[1], c.data_ptr(), m, n, k), (None, None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int))
        stream = torch.cuda.current_stream().cuda_stream
        _ok(driver.cuLaunchKernel(loaded.function, m // tm, n // tn, 1, loaded.threads, 1, 1, loaded.smem_bytes, stream, args, 0))
        return c

    @staticmethod
    def _tensor_map(t, box_inner: int, box_outer: int):
        """A 2-D TMA descriptor of row-major `t` with a (box_outer x box_inner) box and the 128-byte swizzle."""
        torch = _torch()
        driver = _driver()
        kind = (driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 if t.dtype == torch.bfloat16
                else driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_FLOAT16)
        rows, cols = t.shape
        return _ok(driver.cuTensorMapEncodeTiled(
            kind, 2, t.data_ptr(), [cols, rows], [cols * t.element_size()], [box_inner, box_outer], [1, 1],
            driver.CUtensorMapInterleave.CU_TENSOR_MAP_INTERLEAVE_NONE,
            driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B,
            driver.CUtensorMapL2promotion.CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
            driver.CUtensorMapFloatOOBfill.CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE))


@functools.cache
def default_runtime(machine: str = "h100") -> KernelRuntime:
    """The process's runtime for `machine` (loaded modules live as long as the process, as in Triton)."""
    return KernelRuntime(machine)


def gemm(a, b):
    """`a @ b.T` with the generated H100 GEMM kernel."""
    return default_runtime().gemm(a, b)
