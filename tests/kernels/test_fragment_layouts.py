"""The attention templates index wgmma fragments by formula (row_half, column_of in
kernels/cuda/templates.py) and hand S's accumulator registers to P V as its A operand register by
register. Both rest on CuTe's partitioning of the SM90 atoms, which is host code: this test builds
a host program over the same headers and checks every thread's every register, for the tile
shapes the attention models use, without a GPU."""

from __future__ import annotations

import subprocess

import pytest

from kernels.build import BuildError, _tool, cutlass_include

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
  auto mma_o = make_tiled_mma(GMMA::rs_op_selector<Elt, Elt, float, Shape<_64, Int<D>, _16>, GMMA::Major::K, GMMA::Major::MN>());
  int bad = 0;
  for (int t = 0; t < 128; ++t) {
    auto s = mma_s.get_thread_slice(t).partition_C(make_identity_tensor(Shape<_64, Int<BN>>{}));
    auto p = mma_o.get_thread_slice(t).partition_A(make_identity_tensor(Shape<_64, Int<BN>>{}));
    auto o = mma_o.get_thread_slice(t).partition_C(make_identity_tensor(Shape<_64, Int<D>>{}));
    if (size(s) != size(p) || size(s) != 64 * BN / 128 || size(o) != 64 * D / 128) ++bad;
    for (int i = 0; i < size(s); ++i) {
      if (get<0>(s(i)) != row_of(t, i) || get<1>(s(i)) != column_of(t, i)) ++bad;  // S register i: the formula
      if (get<0>(p(i)) != get<0>(s(i)) || get<1>(p(i)) != get<1>(s(i))) ++bad;  // P register i holds S register i
    }
    for (int i = 0; i < size(o); ++i)
      if (get<0>(o(i)) != row_of(t, i) || get<1>(o(i)) != column_of(t, i)) ++bad;
  }
  printf("block_n %d head_dim %d: %d mismatch(es)\n", BN, D, bad);
  return bad;
}

int main() { return (check<192, 64>() + check<176, 128>() + check<80, 256>() + check<128, 128>()) != 0; }
"""


def test_wgmma_fragments_are_where_the_attention_templates_look(tmp_path):
    try:
        nvcc, include = _tool("nvcc"), cutlass_include()
    except BuildError as e:
        pytest.skip(str(e))
    (tmp_path / "layouts.cu").write_text(PROGRAM)
    build = subprocess.run([nvcc, "-std=c++17", "--expt-relaxed-constexpr", "-I", str(include), "-o", str(tmp_path / "layouts"),
                            str(tmp_path / "layouts.cu")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    run = subprocess.run([str(tmp_path / "layouts")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count(": 0 mismatch(es)") == 4
