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

// codes k and k + 1 (k even) of a packed row, at bits 0 and BITS: neighbours in the field order
__device__ __forceinline__ uint32_t pair_at(const uint8_t* row, int k) {
  const int in = k & 15, position = (k & ~15) | (4 * ((in & 7) >> 1) + 2 * (in >> 3));
  const int bit = position * BITS, byte = bit >> 3, shift = bit & 7;
  uint32_t v = uint32_t(row[byte]);
  if (shift + 2 * BITS > 8) v |= uint32_t(row[byte + 1]) << 8;
  if (shift + 2 * BITS > 16) v |= uint32_t(row[byte + 2]) << 16;
  return v >> shift;
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

// FMT int at up to 7 bits (bf16) or 8 (fp16): two codes at once into one register of two Elements. Each code
// goes into the mantissa of a power of two P whose ulp is 1 (bf16 128 = 0x4300, fp16 1024 = 0x6400), P plus
// the offset 2^(BITS-1) is subtracted (exact: small integers), and the scale multiplies (one rounding, as the
// float path: the same bits). About 2.5 instructions per weight instead of about 6.7.
[[maybe_unused]] constexpr bool PAIRED = FMT == 0 && BITS <= (cute::is_same_v<Element, cutlass::half_t> ? 8 : 7);
__device__ __forceinline__ uint32_t dequant_pair(uint32_t x, Element scale) {  // codes at bits 0 and BITS of x
  constexpr uint32_t mask = (1u << BITS) - 1u;
  constexpr bool half = cute::is_same_v<Element, cutlass::half_t>;
  constexpr uint32_t p = half ? 0x6400u : 0x4300u, bias = (p + (1u << (BITS - 1))) * 0x10001u;
  uint32_t v;  // (x & mask | P P) then | (x << (16 - BITS)) & (mask << 16): two LOP3 ((a & b) | c, lut 0xea)
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(v) : "r"(x), "n"(mask), "n"(p * 0x10001u));
  asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(v) : "r"(x << (16 - BITS)), "n"(mask << 16), "r"(v));
  const uint16_t s = scale.raw();
  if constexpr (half) {
    __half2 r = __hmul2(__hsub2(*reinterpret_cast<__half2*>(&v), *reinterpret_cast<const __half2*>(&bias)),
                        __half2half2(__ushort_as_half(s)));
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __nv_bfloat162 r = __hmul2(__hsub2(*reinterpret_cast<__nv_bfloat162*>(&v), *reinterpret_cast<const __nv_bfloat162*>(&bias)),
                               __bfloat162bfloat162(__ushort_as_bfloat16(s)));
    return *reinterpret_cast<uint32_t*>(&r);
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
{scale}              if constexpr (PAIRED) {{  // registers (0, 1) and (4, 5) of the four: one pair each
                uint32_t* pairs = reinterpret_cast<uint32_t*>(raw_pointer_cast({value}.data()));
                pairs[4 * kb + h] = dequant_pair(codes, Element(scale));
                pairs[4 * kb + h + 2] = dequant_pair(codes >> (2 * BITS), Element(scale));
              }} else {{
                CUTE_UNROLL
                for (int e = 0; e < 4; ++e)
                  {value}(8 * kb + 2 * h + (e & 1) + 4 * (e >> 1)) =
                      Element(decode((codes >> (e * BITS)) & ((1u << BITS) - 1u), zero) * scale);
              }}
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
          for (int e = threadIdx.x % 128; e < 32 * TILE_K; e += 128) {{  // inputs kk, kk + 1 of row r (kk even)
            const int r = e / (TILE_K / 2), kk = 2 * (e % (TILE_K / 2));
{scale}            if constexpr (PAIRED) {{  // adjacent in the swizzled slot: one 32-bit store
              *reinterpret_cast<uint32_t*>(&staged(r, kk)) = dequant_pair(pair_at(codes + r * ROW_BYTES, kk), Element(scale));
            }} else {{
              staged(r, kk) = Element(decode(code_at(codes + r * ROW_BYTES, kk), zero) * scale);
              staged(r, kk + 1) = Element(decode(code_at(codes + r * ROW_BYTES, kk + 1), zero) * scale);
            }}
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
