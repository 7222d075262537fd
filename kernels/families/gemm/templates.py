"""gemm: its CUDA op templates over CUTLASS/CuTe (str.format fields; literal braces doubled). The
generic ones (rings, steps, wgmma issue and completion, staging) are kernels/cuda/templates.py."""

MMA_EPILOGUE = """\
    {{  // {op}: its {rows} x {cols} slice of the output tile
      Tensor out = make_tensor(make_gmem_ptr(c), make_shape(m, n), make_stride(n, Int<1>{{}}));
      Tensor tile = local_tile(out, Shape<Int<{rows}>, Int<{cols}>>{{}}, make_coord(blockIdx.x * {slices} + {slice}, blockIdx.y));
      Tensor dst = thr_{op}.partition_C(tile);
      CUTE_UNROLL
      for (int i = 0; i < size(acc_{op}); ++i) dst(i) = Element(acc_{op}(i));
    }}
"""
