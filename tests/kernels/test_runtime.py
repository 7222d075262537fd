"""kernels/runtime.py: machines without an sm_90 GPU and operand mistakes are one sentence; tensor maps and
launch arguments convert the way cuda-python takes them."""

from __future__ import annotations


import pytest

from warpsched import kernels as kernel_api
from warpsched.kernels.runtime import KernelError, check_operand, require_sm90


def test_runtime_refuses_machines_without_an_sm90_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(KernelError, match="need a CUDA GPU of compute capability 9.0"):
        require_sm90()
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.gemm(
            torch.zeros(128, 64, dtype=torch.bfloat16), torch.zeros(256, 64, dtype=torch.bfloat16)
        )
    x = torch.zeros(16, 128, dtype=torch.bfloat16)
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.quant_gemm(
            x,
            torch.zeros(128, 64, dtype=torch.uint8),
            torch.zeros(1, 128, dtype=torch.bfloat16),
            bits=4,
            group_size=128,
        )
    q = torch.zeros(1, 1, 64, 128, dtype=torch.bfloat16)
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.attention_fwd(q, q, q)


def _driver_or_skip():
    return pytest.importorskip("cuda.bindings.driver", reason="cuda-python is not installed")


def _reaches_the_driver(call, *args) -> None:
    """cuda-python converts the arguments before it loads libcuda: on a machine without a driver the call
    ends at the library lookup, so a TypeError here is an argument the GPU would refuse too."""
    try:
        call(*args)
    except TypeError:
        raise
    except Exception as exc:  # noqa: BLE001 - no libcuda here, or the driver refusing the null address
        assert "cuda" in str(exc).lower() or "driver" in str(exc).lower(), exc


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda t: t.zeros(128, 64, dtype=t.bfloat16), ["is on cpu", ".cuda()"]),
        (lambda t: [[1.0]], ["torch.Tensor", "list"]),
    ],
)
def test_operand_mistakes_are_one_sentence(make, words):
    torch = pytest.importorskip("torch")
    with pytest.raises(KernelError) as exc:
        check_operand("a", make(torch), (torch.bfloat16,))
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value)


def test_tensor_map_and_launch_arguments_convert_in_cuda_python():
    """The GPU's first run failed here: cuTensorMapEncodeTiled takes cuuint64_t / cuuint32_t lists, not
    ints."""
    import ctypes

    from warpsched.kernels.runtime import _tensor_map_arguments

    driver = _driver_or_skip()
    args = _tensor_map_arguments(
        driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        0,
        [128, 64, 8],
        [256, 256 * 64],
        [64, 64, 1],
        driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B,
    )
    _reaches_the_driver(driver.cuTensorMapEncodeTiled, *args)
    with pytest.raises(TypeError):
        driver.cuTensorMapEncodeTiled(*args[:3], [128, 64, 8], *args[4:])
    kernel_args = ((driver.CUtensorMap(), 0, 7, 0.5), (None, ctypes.c_void_p, ctypes.c_int, ctypes.c_float))
    _reaches_the_driver(driver.cuLaunchKernel, driver.CUfunction(0), 1, 1, 1, 128, 1, 1, 0, 0, kernel_args, 0)


@pytest.mark.gpu
def test_every_kernel_call_is_captured_and_replayed_in_a_cuda_graph():
    """Serving convention (issue 20): no host synchronisation and no allocation outside torch's caching
    allocator in a call, so a CUDA graph captures it after one warm-up call and replays it on new inputs."""
    torch = pytest.importorskip("torch")
    try:
        require_sm90()
    except KernelError as e:
        pytest.skip(str(e))
    from warpsched.kernels.quant import pack

    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (
        torch.randn(1, 2, 256, 128, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3)
    )
    x = torch.randn(1, 4096, device="cuda", dtype=torch.bfloat16, generator=g)  # decode: split K inside
    codes = torch.randint(0, 16, (4096, 4096), device="cuda", generator=g)
    w, s = pack(codes, 4), (torch.rand(32, 4096, device="cuda", generator=g) / 8).to(torch.bfloat16)

    def calls():
        return (
            kernel_api.attention_fwd(q, k, v, causal=True),
            kernel_api.quant_gemm(x, w, s, bits=4, group_size=128),
        )

    eager = calls()  # the warm-up: loads the kernels
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = calls()
    for t in (q, k, v, x):
        t.copy_(torch.randn(t.shape, device="cuda", dtype=t.dtype, generator=g))
    graph.replay()
    again = calls()
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(captured, again))
    assert not any(torch.equal(a, b) for a, b in zip(captured, eager))  # the replay read the new inputs
