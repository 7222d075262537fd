"""The attention templates index wgmma fragments by formula (row_half, column_of in
kernels/cuda/templates.py) and hand S's accumulator registers to P V as its A operand register by
register; the quant_gemm dequantization writes A-operand registers by formula too. Both rest on CuTe's
partitioning of the SM90 atoms, which is host code: this test builds
a host program over the same headers and checks every thread's every register, for the tile
shapes the attention models use, without a GPU."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path


from warpsched.kernels.toolchain import cutlass_include, find_toolchain

PROGRAM = r"""
#define CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED 1
#include <cute/tensor.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cutlass/bfloat16.h>
#include <cstdio>
using namespace cute;
using Elt = cutlass::bfloat16_t;

int row_of(int t, int i) { return 16 * (t / 32) + (t % 32) / 4 + 8 * ((i >> 1) & 1); }
int column_of(int t, int i) { return 8 * (i >> 2) + 2 * (t % 4) + (i & 1); }

template <int BN, int D>
int check() {
  auto mma_s = make_tiled_mma(GMMA::ss_op_selector<Elt, Elt, float, Shape<_64, Int<BN>, _16>>());
  auto mma_o = make_tiled_mma(
      GMMA::rs_op_selector<Elt, Elt, float, Shape<_64, Int<D>, _16>, GMMA::Major::K, GMMA::Major::MN>());
  int bad = 0;
  for (int t = 0; t < 128; ++t) {
    auto s = mma_s.get_thread_slice(t).partition_C(make_identity_tensor(Shape<_64, Int<BN>>{}));
    auto p = mma_o.get_thread_slice(t).partition_A(make_identity_tensor(Shape<_64, Int<BN>>{}));
    auto o = mma_o.get_thread_slice(t).partition_C(make_identity_tensor(Shape<_64, Int<D>>{}));
    if (size(s) != size(p) || size(s) != 64 * BN / 128 || size(o) != 64 * D / 128) ++bad;
    for (int i = 0; i < size(s); ++i) {
      // S register i sits where the formula says; P register i holds S register i
      if (get<0>(s(i)) != row_of(t, i) || get<1>(s(i)) != column_of(t, i)) ++bad;
      if (get<0>(p(i)) != get<0>(s(i)) || get<1>(p(i)) != get<1>(s(i))) ++bad;
    }
    for (int i = 0; i < size(o); ++i)
      if (get<0>(o(i)) != row_of(t, i) || get<1>(o(i)) != column_of(t, i)) ++bad;
  }
  printf("block_n %d head_dim %d: %d mismatch(es)\n", BN, D, bad);
  return bad;
}

// quant_gemm: the dequantized weights (64 rows x TK inputs) are the A operand of an RS wgmma with N = TM;
// the DEQUANT template fills register 8 kb + 2 h + (e & 1) + 4 (e >> 1) with input
// 16 kb + 2 q + (0, 1, 8, 9)[e] of row_of(h): the same formula, on a (_2,_2,_2),_1,TK/16 register tensor
template <int TM, int TK>
int check_quant() {
  auto mma = make_tiled_mma(GMMA::rs_op_selector<Elt, Elt, float, Shape<_64, Int<TM>, _16>>());
  int bad = 0;
  for (int t = 0; t < 128; ++t) {
    auto a = mma.get_thread_slice(t).partition_A(make_identity_tensor(Shape<_64, Int<TK>>{}));
    if (size<0>(a) != 8 || size<1>(a) != 1 || size<2>(a) != TK / 16) ++bad;
    for (int kb = 0; kb < TK / 16; ++kb)
      for (int h = 0; h < 2; ++h)
        for (int e = 0; e < 4; ++e) {
          const int i = 8 * kb + 2 * h + (e & 1) + 4 * (e >> 1);
          const int k = 16 * kb + 2 * (t % 4) + (e & 1) + 8 * (e >> 1);
          if (get<0>(a(i)) != row_of(t, 2 * h) || get<1>(a(i)) != k) ++bad;
        }
  }
  printf("quant tile_m %d tile_k %d: %d mismatch(es)\n", TM, TK, bad);
  return bad;
}

int main() {
  return (check<192, 64>() + check<176, 128>() + check<80, 256>() + check<128, 128>() + check_quant<16, 128>()
          + check_quant<256, 64>()) != 0;
}
"""


def test_wgmma_fragments_are_where_the_attention_templates_look(tmp_path):
    chain = (
        find_toolchain()
    )  # the wheels' nvcc: a dependency, so a missing one fails here instead of skipping
    (tmp_path / "layouts.cu").write_text(PROGRAM)
    # a host program links the CUDA runtime: from its wheel (nvcc 13.0.88's profile looks in lib64/, the
    # wheel has lib/)
    runtime = metadata.distribution("nvidia-cuda-runtime")
    static = next(f for f in runtime.files if f.name == "libcudart_static.a")
    libs = Path(str(runtime.locate_file(static))).parent
    build = subprocess.run(
        [
            chain.path("nvcc"),
            "-std=c++17",
            "--expt-relaxed-constexpr",
            "-I",
            str(cutlass_include()),
            "-L",
            str(libs),
            "-o",
            str(tmp_path / "layouts"),
            str(tmp_path / "layouts.cu"),
        ],
        capture_output=True,
        text=True,
        env=chain.environment(),
    )
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(tmp_path / "layouts")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(": 0 mismatch(es)") == 6
