"""Launch generated kernels on torch tensors with cuda-python (DESIGN.md 6.5).

The family-independent half: a `KernelRuntime` loads the kernel of a configuration once (the shipped
schedule from kernels/package, else a deterministic solve that says so on stderr), built through
kernels/driver.py (the cubin cached on disk), and launches it; the families' entry points
(kernels/families/*/launch.py: `warpsched.kernels.gemm`, `.quant_gemm`, `.attention_fwd`) check their
calls with the helpers here and take a `runtime=` (default: the process's, `default_runtime()`). Every
mistake a caller can make
(a CPU tensor, a dtype, a stride, a shape the tile does not divide, no GPU or one below sm_90) is a
`KernelError` with one sentence; none reaches the driver.
"""

from __future__ import annotations

import functools
import hashlib
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
    kernel_id: str = ""  # the first 16 hex digits of the source's sha256 (bench results name kernels by it)


def torch_module():
    import torch

    return torch


def require_sm90() -> None:
    torch = torch_module()
    if not torch.cuda.is_available():
        raise KernelError(
            "warpsched kernels need a CUDA GPU of compute capability 9.0 (H100/H200); none is visible here"
        )
    major, minor = torch.cuda.get_device_capability()
    if (major, minor) != (9, 0):
        raise KernelError(
            f"warpsched kernels are built for sm_90a (H100/H200); this GPU is sm_{major}{minor}"
        )


def check_operand(name: str, t, dtypes, dims: int = 2) -> None:
    torch = torch_module()
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
        raise KernelError(
            f"{name} starts at an address that is not a multiple of {TILE_ALIGN_BYTES} bytes (TMA needs it)"
        )


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
        raise KernelError(
            f"the generated {kernel.entry} kernel failed its SASS checks: {'; '.join(report.sass_problems)}"
        )
    driver = _driver()
    # creates the primary context and makes it current (cuModuleLoadData needs one)
    torch_module().cuda.synchronize()
    module = _ok(driver.cuModuleLoadData(Path(report.cubin).read_bytes()))
    function = _ok(driver.cuModuleGetFunction(module, kernel.entry.encode()))
    _ok(
        driver.cuFuncSetAttribute(
            function,
            driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            kernel.smem_bytes,
        )
    )
    return _Loaded(function, kernel.threads, kernel.smem_bytes, kernel.tile, kernel_id(kernel.source))


def kernel_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class KernelRuntime:
    """Loads each configuration's cubin once and launches it on the current stream."""

    def __init__(self, machine: str = "h100"):
        self.machine = machine
        self._loaded: dict[tuple, _Loaded] = {}
        self.sources: dict[str, dict] = {}  # kernel_id -> what was built: source, entry, tile, stages, model
        self.last: _Loaded | None = None  # the kernel of the latest load (what the latest call ran)
        self._counters: dict[tuple, object] = {}  # (device, stream) -> int32 counts, zero between launches

    def load(self, model: str, params: dict) -> _Loaded:
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
            self.sources[self._loaded[key].kernel_id] = {
                "family": model,
                "machine": self.machine,
                "entry": built.kernel.entry,
                "tile": built.kernel.tile,
                "stages": schedule.stages,
                "ii": schedule.ii,
                "source": built.kernel.source,
            }
        self.last = self._loaded[key]
        return self.last

    def _solve(self, model: str, params: dict):
        """A configuration the package does not ship: solved here, once per process, with the deterministic
        preset, so that every machine and every run builds the same kernel (the wall-clock-limited default
        preset may pick another optimal schedule each time). For reproducibility, not correctness: every
        schedule the presets and seeds give a shipped problem simulates right, proxy fences included
        (tests/kernels/test_simulate.py)."""
        import sys

        from warpsched.models import build_model
        from warpsched.scheduler import solve

        print(
            f"warpsched: solving {model} {params} for {self.machine} (once per process; the package does not "
            "ship it)",
            file=sys.stderr,
            flush=True,
        )
        return solve(
            build_model(model, self.machine, **params), self.machine, config="deterministic"
        ).schedule

    def split_counters(self, device, count: int):
        """`count` int32 counters, zero, for a kernel that counts its CTAs in and leaves them zero again
        (quant_gemm's split K): one buffer per device and stream, so that kernels in flight on different
        streams never share one; while a CUDA graph is captured a fresh one, which the graph owns."""
        torch = torch_module()
        if torch.cuda.is_current_stream_capturing():
            return torch.zeros(count, dtype=torch.int32, device=device)
        key = (str(device), torch.cuda.current_stream().cuda_stream)  # the stream `launch` uses
        held = self._counters.get(key)
        if held is None or held.numel() < count:
            held = self._counters[key] = torch.zeros(max(count, 1024), dtype=torch.int32, device=device)
        return held

    def launch(self, loaded: _Loaded, grid: tuple[int, int, int], args: tuple, types: tuple) -> None:
        driver = _driver()
        stream = torch_module().cuda.current_stream().cuda_stream
        _ok(
            driver.cuLaunchKernel(
                loaded.function, *grid, loaded.threads, 1, 1, loaded.smem_bytes, stream, (args, types), 0
            )
        )


class PinnedRuntime(KernelRuntime):
    """Launches one given kernel (a kernels.cuda.render.RenderedKernel) for every call of its family,
    whatever the
    package or a solve would pick: for checking a particular schedule on the GPU (bench/schedule_check.py)."""

    def __init__(self, kernel, machine: str = "h100"):
        super().__init__(machine)
        self.pinned = load_kernel(kernel)

    def load(self, model: str, params: dict) -> _Loaded:
        return self.pinned


def dtype_names():
    torch = torch_module()
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}


def tensor_map(t, dims: list[int], box: list[int], swizzle: bool = True):
    """A TMA descriptor of row-major `t` seen as `dims` (innermost first) with a `box`; 16-bit tensors
    with the 128-byte swizzle of the GMMA layouts (box rows of 64 elements), bytes without swizzle."""
    torch = torch_module()
    driver = _driver()
    kinds = {
        torch.bfloat16: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        torch.float16: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
        torch.uint8: driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_UINT8,
    }
    size = t.element_size()
    strides, step = [], dims[0] * size
    for extent in dims[1:]:
        strides.append(step)
        step *= extent
    mode = (
        driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B
        if swizzle
        else driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_NONE
    )
    return _ok(
        driver.cuTensorMapEncodeTiled(
            *_tensor_map_arguments(kinds[t.dtype], t.data_ptr(), dims, strides, box, mode)
        )
    )


def _tensor_map_arguments(
    kind, address: int, dims: list[int], strides: list[int], box: list[int], swizzle
) -> tuple:
    """cuTensorMapEncodeTiled's arguments as cuda-python takes them: extents and strides as cuuint64_t,
    box and element strides as cuuint32_t (plain ints are refused)."""
    driver = _driver()
    return (
        kind,
        len(dims),
        address,
        [driver.cuuint64_t(x) for x in dims],
        [driver.cuuint64_t(x) for x in strides],
        [driver.cuuint32_t(x) for x in box],
        [driver.cuuint32_t(1)] * len(dims),
        driver.CUtensorMapInterleave.CU_TENSOR_MAP_INTERLEAVE_NONE,
        swizzle,
        driver.CUtensorMapL2promotion.CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
        driver.CUtensorMapFloatOOBfill.CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
    )


@functools.cache
def default_runtime(machine: str = "h100") -> KernelRuntime:
    """The process's runtime for `machine` (loaded modules live as long as the process, as in Triton)."""
    return KernelRuntime(machine)
