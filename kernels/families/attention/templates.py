"""attention_fwd: its CUDA op templates over CUTLASS/CuTe (str.format fields; literal braces doubled). The
generic ones (rings, steps, wgmma issue and completion, staging) are kernels/cuda/templates.py."""

# -- attention_fwd (FlashAttention forward on wgmma): S = Q K^T and O += P V per consumer tile
ATTENTION_HELPERS = """\
// The wgmma accumulator (and the A register operand) of a 64-row tile: register i of a thread holds
// row 16 * warp + lane / 4 + 8 * ((i >> 1) & 1), column 8 * (i >> 2) + 2 * (lane % 4) + (i & 1)
// (tests/kernels/test_fragment_layouts.py checks this against CuTe's own partitioning).
__device__ __forceinline__ int row_half(int i) { return (i >> 1) & 1; }
__device__ __forceinline__ int quad_row(int h) { return 16 * (threadIdx.x % 128 / 32) + threadIdx.x % 32 / 4 + 8 * h; }
__device__ __forceinline__ int column_of(int i) { return 8 * (i >> 2) + 2 * (threadIdx.x % 4) + (i & 1); }
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffff, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffff, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffff, x, 1);
  return x + __shfl_xor_sync(0xffffffff, x, 2);
}
"""

ATTENTION_STORAGE = """\
  alignas(1024) Element q[Q_TILES][BLOCK_M * HEAD_DIM];
  uint64_t q_full;
"""
ATTENTION_INIT = "    Full::init(&s.q_full, 1);\n"

# the producer loads every Q tile once, before the loop, on one barrier
ATTENTION_Q_LOAD = """\
    if (leader) {{
      Full::arrive_and_expect_tx(&s.q_full, Q_TILES * BLOCK_M * HEAD_DIM * int(sizeof(Element)));
      for (int t = 0; t < Q_TILES; ++t)
        for (int h = 0; h < HEAD_DIM / 64; ++h)
          SM90_TMA_LOAD_3D::copy(&tma_q, &s.q_full, 0, s.q[t] + h * BLOCK_M * 64, h * 64, q_row0 + t * BLOCK_M, q_head);
    }}
"""

ATTENTION_SETUP = """\
    // tile {t}: query rows q_row0 + {t} * BLOCK_M .. + BLOCK_M - 1
    auto mma_s{t} = make_tiled_mma(GMMA::ss_op_selector<Element, Element, float, Shape<_64, Int<BLOCK_N>, _16>>());
    auto thr_s{t} = mma_s{t}.get_thread_slice(threadIdx.x % 128);
    auto mma_o{t} = make_tiled_mma(GMMA::rs_op_selector<Element, Element, float, Shape<_64, Int<HEAD_DIM>, _16>,
                                                          GMMA::Major::K, GMMA::Major::MN>());
    auto thr_o{t} = mma_o{t}.get_thread_slice(threadIdx.x % 128);
    Tensor s{t} = partition_fragment_C(mma_s{t}, Shape<_64, Int<BLOCK_N>>{{}});    // S, then S * scale - m in place
    Tensor p{t} = make_tensor<Element>(shape(thr_o{t}.partition_A(make_identity_tensor(Shape<_64, Int<BLOCK_N>>{{}}))));  // P = exp2(.)
    Tensor o{t} = partition_fragment_C(mma_o{t}, Shape<_64, Int<HEAD_DIM>>{{}});
{scaled}    clear(o{t});
    float m{t}[2] = {{-INFINITY, -INFINITY}}, correction{t}[2] = {{0.f, 0.f}}, l{t}[2] = {{0.f, 0.f}};
    Tensor sQ{t} = make_tensor(make_smem_ptr(s.q[{t}]), LayoutQ{{}});
    Full::wait(&s.q_full, 0);
"""

ATTENTION_QK_ISSUE = """\
          Tensor sK = make_tensor(make_smem_ptr(s.{ring}[slot_{ring}]), LayoutK{{}});
          clear(s{t});
          warpgroup_fence_operand(s{t});
          warpgroup_arrive();
          gemm(mma_s{t}, thr_s{t}.make_fragment_A(thr_s{t}.partition_A(sQ{t})), thr_s{t}.make_fragment_B(thr_s{t}.partition_B(sK)), s{t});
          warpgroup_commit_batch();
"""

# the row max over the keys that exist: the partial last block's missing keys and, causal, the keys
# past a row's diagonal are -inf. Only iterations from mask_from (the kernel's first that needs either)
# run the masking block: a peeled loop's steady copy has none of it (`steady`), one guarded loop tests
# `it >= mask_from` once per iteration.
ATTENTION_MAX = """\
          if (!steady && it >= mask_from) {{
            const int valid = n_kv - it * BLOCK_N;
            // causal (bottom-right aligned, n_kv >= n_q): key c is visible to query row r when c <= r + n_kv - n_q
            const int first_row = q_row0 + {t} * BLOCK_M + n_kv - n_q;
            const bool diagonal = (it + 1) * BLOCK_N - 1 > first_row;
            CUTE_UNROLL
            for (int i = 0; i < size(s{t}); ++i) {{
              if (valid < BLOCK_N && column_of(i) >= valid) s{t}(i) = -INFINITY;
              if (CAUSAL && diagonal && it * BLOCK_N + column_of(i) > first_row + quad_row(row_half(i))) s{t}(i) = -INFINITY;
            }}
          }}
          float row_max[2] = {{m{t}[0], m{t}[1]}};
          CUTE_UNROLL
          for (int i = 0; i < size(s{t}); ++i) row_max[row_half(i)] = fmaxf(row_max[row_half(i)], s{t}(i));
          CUTE_UNROLL
          for (int h = 0; h < 2; ++h) {{
            const float now = quad_max(row_max[h]);
            correction{t}[h] = m{t}[h] == -INFINITY ? 0.f : exp2f((m{t}[h] - now) * scale_log2);
            m{t}[h] = now;
          }}
"""

# into s{t} in place, or into x{t} where the schedule issues the next QK^T before exp2 reads these
ATTENTION_SCALE = """\
          CUTE_UNROLL
          for (int i = 0; i < size(s{t}); ++i) {{
            const float mh = m{t}[row_half(i)];
            {x}(i) = s{t}(i) * scale_log2 - (mh == -INFINITY ? 0.f : mh * scale_log2);
          }}
"""
ATTENTION_OWN_SCALED = """\
    Tensor x{t} = make_fragment_like(s{t});  // S * scale - m: the next QK^T overwrites s{t} before exp2 reads it
"""

ATTENTION_EXP = """\
          CUTE_UNROLL
          for (int i = 0; i < size(p{t}); ++i) p{t}(i) = Element(exp2f({x}(i)));
"""

# per-thread partial row sums (of the values the tensor core sees); the epilogue adds the four lanes of a row
ATTENTION_SUM = """\
          float part[2] = {{0.f, 0.f}};
          CUTE_UNROLL
          for (int i = 0; i < size(p{t}); ++i) part[row_half(i)] += float(p{t}(i));
          l{t}[0] = l{t}[0] * correction{t}[0] + part[0];
          l{t}[1] = l{t}[1] * correction{t}[1] + part[1];
"""

ATTENTION_RESCALE = """\
          CUTE_UNROLL
          for (int i = 0; i < size(o{t}); ++i) o{t}(i) *= correction{t}[row_half(i)];
"""

ATTENTION_PV_ISSUE = """\
          Tensor sV = make_tensor(make_smem_ptr(s.{ring}[slot_{ring}]), LayoutVt{{}});
          warpgroup_fence_operand(o{t});
          warpgroup_fence_operand(p{t});  // A-operand fence
          warpgroup_arrive();
          gemm(mma_o{t}, p{t}, thr_o{t}.make_fragment_B(thr_o{t}.partition_B(sV)), o{t});
          warpgroup_commit_batch();
"""

ATTENTION_EPILOGUE = """\
    {{  // tile {t}: O / l into rows q_row0 + {t} * BLOCK_M .. of the output head
      const float inv[2] = {{1.f / quad_sum(l{t}[0]), 1.f / quad_sum(l{t}[1])}};
      Tensor where = thr_o{t}.partition_C(make_identity_tensor(Shape<_64, Int<HEAD_DIM>>{{}}));
      CUTE_UNROLL
      for (int i = 0; i < size(o{t}); ++i) {{
        const int row = q_row0 + {t} * BLOCK_M + get<0>(where(i));
        if (row < n_q) out[(size_t(q_head) * n_q + row) * HEAD_DIM + get<1>(where(i))] = Element(o{t}(i) * inv[row_half(i)]);
      }}
{lse}    }}
"""
# the log-sum-exp of each query row (natural log, of the scaled scores), when the caller asks for it
ATTENTION_LSE = """\
      if (lse != nullptr && threadIdx.x % 4 == 0) {{
        for (int h = 0; h < 2; ++h) {{
          const int row = q_row0 + {t} * BLOCK_M + quad_row(h);
          if (row < n_q) lse[size_t(q_head) * n_q + row] = (m{t}[h] * scale_log2 - __log2f(inv[h])) * 0.6931471805599453f;
        }}
      }}
"""
