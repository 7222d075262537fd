"""quant_gemm: its CUDA op templates over CUTLASS/CuTe (str.format fields; literal braces doubled). The
generic ones (rings, steps, wgmma issue and completion, staging) are kernels/cuda/templates.py."""

# -- quant_gemm: packed codes (kernels/quant.py: BITS per weight, little-endian, each block of 16 inputs in
# KERNEL_ORDER, so that a quad thread's four codes 2q, 2q+1, 2q+8, 2q+9 are one contiguous field)
QUANT_HELPERS = """\
// the four codes of quad thread q in a 16-input block: one 4 * BITS-bit field at bit `bit` of the row
__device__ __forceinline__ uint32_t field_at(const uint32_t* words, int bit) {
  const int word = bit >> 5, shift = bit & 31;
  if constexpr (32 % (4 * BITS) == 0) return words[word] >> shift;  // 1, 2, 4, 8 bits: never crosses a word
  else return shift + 4 * BITS > 32 ? __funnelshift_r(words[word], words[word + 1], shift) : words[word] >> shift;
}

// code k of a packed row (one at a time: the staged path, which writes shared memory in wgmma's layout)
__device__ __forceinline__ uint32_t code_at(const uint8_t* row, int k) {
  const int in = k & 15, position = (k & ~15) | (4 * ((in & 7) >> 1) + 2 * (in >> 3) + (in & 1));
  const int bit = position * BITS, byte = bit >> 3, shift = bit & 7;
  uint32_t v = uint32_t(row[byte]) >> shift;
  if (shift + BITS > 8) v |= uint32_t(row[byte + 1]) << (8 - shift);
  return v & ((1u << BITS) - 1u);
}

// the weight a code stands for, before its scale: int (offset 2^(BITS-1)), int_zp (minus the zero
// point), or a float eXmY (sign, exponent with bias 2^(X-1)-1, subnormals; no inf/nan). Integers
// become floats by the exponent trick: 2^23 + code has the code in its mantissa.
template <int F = FMT, int EB = EXP_BITS, int MB = MAN_BITS>
__device__ __forceinline__ float decode(uint32_t code, float zero) {
  if constexpr (F == 0) return __int_as_float(0x4B000000 | code) - (8388608.f + float(1 << (BITS - 1)));
  else if constexpr (F == 1) return __int_as_float(0x4B000000 | code) - 8388608.f - zero;
  else {
    constexpr int bias = (1 << (EB - 1)) - 1;
    const uint32_t sign = (code >> (EB + MB)) & 1u;
    const uint32_t e = (code >> MB) & ((1u << EB) - 1u), man = code & ((1u << MB) - 1u);
    const float mag = e == 0 ? (__int_as_float(0x4B000000 | man) - 8388608.f) * __int_as_float((127 + 1 - bias - MB) << 23)
                             : __int_as_float(int(((e - bias + 127) << 23) | (man << (23 - MB))));
    return sign ? -mag : mag;
  }
}
"""

# the MMA of a consumer slice: A (the dequantized weights) from registers, or from shared memory when the
# schedule hands the dequantized tile over from another warpgroup
MMA_RS_SETUP = """\
    auto mma_{op} = make_tiled_mma(GMMA::rs_op_selector<Element, Element, float, Shape<_64, Int<TILE_M>, _16>>());
    auto thr_{op} = mma_{op}.get_thread_slice(threadIdx.x % 128);
    Tensor acc_{op} = partition_fragment_C(mma_{op}, Shape<_64, Int<TILE_M>>{{}});
    clear(acc_{op});
"""

DEQUANT_SETUP = """\
    Tensor {value} = make_tensor<Element>(Shape<Shape<_2, _2, _2>, _1, Int<TILE_K / 16>>{{}});  // wgmma's A registers
    const int quad_{value} = threadIdx.x % 4, row_{value} = 16 * (threadIdx.x % 128 / 32) + threadIdx.x % 32 / 4;
"""

# every thread unpacks its registers of the A operand (rows {slice} * 64 .. + 63 of the weight tile): per
# 16-input block and row half, one field of four codes; register 8 kb + 2 h + (0, 1, 4, 5) holds inputs
# 16 kb + 2 q + (0, 1, 8, 9) of row 16 warp + lane / 4 + 8 h (tests/kernels/test_fragment_layouts.py)
DEQUANT = """\
          const uint32_t* words = reinterpret_cast<const uint32_t*>(s.{ring_w}[slot_{ring_w}] + {slice} * 64 * ROW_BYTES);
          CUTE_UNROLL
          for (int kb = 0; kb < TILE_K / 16; ++kb) {{
            CUTE_UNROLL
            for (int h = 0; h < 2; ++h) {{
              const int r = row_{value} + 8 * h, kk = 16 * kb;
              const uint32_t codes = field_at(words, r * ROW_BYTES * 8 + (kk + 4 * quad_{value}) * BITS);
{scale}              CUTE_UNROLL
              for (int e = 0; e < 4; ++e)
                {value}(8 * kb + 2 * h + (e & 1) + 4 * (e >> 1)) =
                    Element(decode((codes >> (e * BITS)) & ((1u << BITS) - 1u), zero) * scale);
            }}
          }}
"""
DEQUANT_GROUP_SCALE = """\
            const Element* sz = s.{ring_s}[slot_{ring_s}] + (kk / GROUP_IN_TILE) * TILE_N + {slice} * 64 + r;
            const float scale = float(sz[0]);
            const float zero = HAS_ZERO ? float(sz[GROUPS_IN_TILE * TILE_N]) : 0.f;
"""
DEQUANT_UNIT_SCALE = (
    "            const float scale = 1.f, zero = 0.f;  // channelwise: the scale multiplies the accumulator\n"
)

# the same, straight into a staging slot in the swizzled K-major layout wgmma reads A from
DEQUANT_STAGED = """\
          Tensor staged = make_tensor(make_smem_ptr(dst), LayoutW{{}});
          const uint8_t* codes = s.{ring_w}[slot_{ring_w}] + {slice} * 64 * ROW_BYTES;
          CUTE_UNROLL
          for (int e = threadIdx.x % 128; e < 64 * TILE_K; e += 128) {{
            const int r = e / TILE_K, kk = e % TILE_K;
{scale}            staged(r, kk) = Element(decode(code_at(codes + r * ROW_BYTES, kk), zero) * scale);
          }}
"""

MMA_RS_ISSUE = """\
          Tensor sX = make_tensor(make_smem_ptr(s.{ring_x}[slot_{ring_x}]), LayoutX{{}});
          warpgroup_fence_operand(acc_{op});
{a_fence}          warpgroup_arrive();
          gemm(mma_{op}, {a}, thr_{op}.make_fragment_B(thr_{op}.partition_B(sX)), acc_{op});
          warpgroup_commit_batch();
"""

QUANT_EPILOGUE = """\
    {{  // {op}: weight rows {slice} * 64 .. + 63 of the tile against the batch rows: Y[m, n] (Y^T in the accumulator)
      Tensor where = thr_{op}.partition_C(make_identity_tensor(Shape<_64, Int<TILE_M>>{{}}));
      CUTE_UNROLL
      for (int i = 0; i < size(acc_{op}); ++i) {{
        const int row = blockIdx.x * TILE_N + {slice} * 64 + get<0>(where(i)), col = blockIdx.y * TILE_M + get<1>(where(i));
        if (col >= m) continue;
        const float v = acc_{op}(i){channel_scale};
        if (partial != nullptr) partial[(size_t(blockIdx.z) * m + col) * n + row] = v;  // split K: the runtime adds the splits
        else y[size_t(col) * n + row] = Element(v);
      }}
    }}
"""
