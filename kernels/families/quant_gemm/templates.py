"""quant_gemm: its CUDA op templates over CUTLASS/CuTe (str.format fields; literal braces doubled). The
generic ones (rings, steps, wgmma issue and completion, staging) are kernels/cuda/templates.py."""

# -- quant_gemm: packed codes (kernels/quant.py): in every CHUNK = 128 inputs of a row, quad thread q owns BITS
# words; their low halves hold the first code of each of its 16 pairs, the high halves the second (pair
# i = 2 b + e: inputs 16 b + 2 q + 8 e and the next), at bits i * BITS of each half's bit string.
# Three parts: the layout and the integer work, the half2 arithmetic (the only device intrinsics), and the
# dequantization itself (tests/kernels/families/test_quant_gemm_templates.py runs the first and the last on
# the host, with the arithmetic emulated).
QUANT_LAYOUT = """\
constexpr int MANTISSA = cute::is_same_v<Element, cutlass::half_t> ? 10 : 7;  // Element's stored mantissa bits
constexpr uint32_t MASK = (1u << BITS) - 1u;
// FMT int (and int_zp) with codes that fit the mantissa: a pair goes from two codes to two Elements in three
// instructions (four)
[[maybe_unused]] constexpr bool PAIRED = (FMT == 0 || FMT == 1) && BITS <= MANTISSA;
// a float eXmY whose values the Element's own encoding holds (fp16's largest exponent is inf and nan, which
// e5m2's codes here are not): a pair goes into the Element's bits by two shifts and two LOP3, then two HMUL2
[[maybe_unused]] constexpr bool FLOAT_PAIRED = FMT == 2 && !(MANTISSA == 10 && EXP_BITS == 5);

// a thread's BITS words of a chunk with the widest loads their alignment allows (q * BITS words into a chunk
// of 16 * BITS bytes, rows of a multiple of 16 bytes): one 128-bit load at 4 bits, two at 8, where odd rows
// hold the thread's two 16-byte vectors swapped (rows n and n + 1 of a quarter-warp then use other banks)
__device__ __forceinline__ void load_chunk(const uint32_t* at, uint32_t (&w)[BITS], int odd_row) {
  if constexpr (BITS % 4 == 0) {
    CUTE_UNROLL
    for (int j = 0; j < BITS / 4; ++j) {
      const uint4 v = reinterpret_cast<const uint4*>(at)[BITS % 8 == 0 ? j ^ odd_row : j];
      w[4 * j] = v.x, w[4 * j + 1] = v.y, w[4 * j + 2] = v.z, w[4 * j + 3] = v.w;
    }
  } else if constexpr (BITS % 2 == 0) {
    CUTE_UNROLL
    for (int j = 0; j < BITS / 2; ++j) {
      const uint2 v = reinterpret_cast<const uint2*>(at)[j];
      w[2 * j] = v.x, w[2 * j + 1] = v.y;
    }
  } else {
    CUTE_UNROLL
    for (int j = 0; j < BITS; ++j) w[j] = at[j];
  }
}

// pair i of a thread's chunk (i a constant once unrolled) as a register x and a bit p: the first code at bits
// p .. p + BITS - 1 of x, the second 16 bits above. A pair inside a half is shifted down only as far as the
// mantissa needs, to a multiple of the widest run of whole codes the mantissa holds, so that neighbours share
// one shift; a pair that runs into the next word is put together per half (the rest of this word's half,
// then the start of the next word's).
__device__ __forceinline__ uint32_t pair_bits(const uint32_t (&w)[BITS], int i, int& p) {
  const int t = i * BITS, word = t / 16, s = t % 16;
  if (s + BITS > 16) {
    const uint32_t keep = (0xFFFFu >> s) * 0x10001u;
    p = 0;
    return ((w[word] >> s) & keep) | ((w[word + 1] << (16 - s)) & ~keep);
  }
  const int reach = PAIRED ? MANTISSA / BITS * BITS : 16, base = s / reach * reach;
  const int from = s - base + BITS <= (PAIRED ? MANTISSA : 16) ? base : s;
  p = s - from;
  return w[word] >> from;
}
"""

QUANT_ARITHMETIC = """\
// (v - bias) * scale on two Elements at once: HSUB2 then HMUL2, each rounded as one Element operation (the
// scale broadcast to both halves, which HMUL2 takes as an operand swizzle)
__device__ __forceinline__ uint32_t sub_mul(uint32_t v, uint32_t bias, Element scale) {
  if constexpr (cute::is_same_v<Element, cutlass::half_t>) {
    __half2 r = __hmul2(__hsub2(*reinterpret_cast<__half2*>(&v), *reinterpret_cast<__half2*>(&bias)),
                        __half2half2(__ushort_as_half(scale.raw())));
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __nv_bfloat162 r = __hmul2(__hsub2(*reinterpret_cast<__nv_bfloat162*>(&v), *reinterpret_cast<__nv_bfloat162*>(&bias)),
                               __bfloat162bfloat162(__ushort_as_bfloat16(scale.raw())));
    return *reinterpret_cast<uint32_t*>(&r);
  }
}
// a - b on two Elements at once (HSUB2)
__device__ __forceinline__ uint32_t sub2(uint32_t a, uint32_t b) {
  if constexpr (cute::is_same_v<Element, cutlass::half_t>) {
    __half2 r = __hsub2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __nv_bfloat162 r = __hsub2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
}
// a * b on two Elements at once (HMUL2, one rounding)
__device__ __forceinline__ uint32_t mul2(uint32_t a, uint32_t b) {
  if constexpr (cute::is_same_v<Element, cutlass::half_t>) {
    __half2 r = __hmul2(*reinterpret_cast<__half2*>(&a), *reinterpret_cast<__half2*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  } else {
    __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
    return *reinterpret_cast<uint32_t*>(&r);
  }
}
__device__ __forceinline__ float bits_as_float(uint32_t x) { return __uint_as_float(x); }
// one LOP3 with truth table LUT over a, b and c: written in C, two immediates make the compiler emit two
template <uint32_t LUT>
__device__ __forceinline__ uint32_t lop3(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t v;
  asm("lop3.b32 %0, %1, %2, %3, %4;" : "=r"(v) : "r"(a), "r"(b), "r"(c), "n"(LUT));
  return v;
}
// (x & mask) | bits
__device__ __forceinline__ uint32_t select_or(uint32_t x, uint32_t mask, uint32_t bits) { return lop3<0xEA>(x, mask, bits); }
// (x & mask) ^ bits
__device__ __forceinline__ uint32_t select_xor(uint32_t x, uint32_t mask, uint32_t bits) { return lop3<0x6A>(x, mask, bits); }
"""

QUANT_DEQUANT = """\
// the weight a code stands for, before its scale: int (offset 2^(BITS-1)), int_zp (minus the zero
// point), or a float eXmY (sign, exponent with bias 2^(X-1)-1, subnormals; no inf/nan). Integers
// become floats by the exponent trick: 2^23 + code has the code in its mantissa.
template <int F = FMT, int EB = EXP_BITS, int MB = MAN_BITS>
__device__ __forceinline__ float decode(uint32_t code, float zero) {
  if constexpr (F == 0) return bits_as_float(0x4B000000u | code) - (8388608.f + float(1 << (BITS - 1)));
  else if constexpr (F == 1) return bits_as_float(0x4B000000u | code) - 8388608.f - zero;
  else {
    constexpr int bias = (1 << (EB - 1)) - 1;
    const uint32_t sign = (code >> (EB + MB)) & 1u;
    const uint32_t e = (code >> MB) & ((1u << EB) - 1u), man = code & ((1u << MB) - 1u);
    const float mag = e == 0 ? (bits_as_float(0x4B000000u | man) - 8388608.f) * bits_as_float(uint32_t(127 + 1 - bias - MB) << 23)
                             : bits_as_float(((e - bias + 127) << 23) | (man << (23 - MB)));
    return sign ? -mag : mag;
  }
}

// pair i of a thread's chunk as two Elements of one register (the first in the low half). PAIRED: each code
// goes into the mantissa of the power of two 2^(MANTISSA - p) whose ulp is 1 at its place p (one LOP3 for
// both), that power plus the offset 2^(BITS-1) is subtracted (exact: small integers) and the scale
// multiplies (one rounding, as the float path: the same bits). int_zp subtracts the power (exact), then
// the zero point: exact for an integer zero point (GPTQ's and AWQ's are), so the same bits again; a
// fractional one may round once more than the float path. Otherwise code by code through `decode`.
__device__ __forceinline__ uint32_t dequant_pair_at(const uint32_t (&w)[BITS], int i, Element scale, Element zero) {
  int p;
  const uint32_t x = pair_bits(w, i, p);
  if constexpr (PAIRED) {
    const uint32_t power = uint32_t((MANTISSA == 10 ? 15 : 127) + MANTISSA - p) << MANTISSA;
    const uint32_t v = select_or(x, (MASK << p) * 0x10001u, power * 0x10001u);
    if constexpr (FMT == 0) return sub_mul(v, (power | 1u << (BITS - 1 + p)) * 0x10001u, scale);
    else return sub_mul(sub2(v, power * 0x10001u), uint32_t(zero.raw()) * 0x10001u, scale);
  } else if constexpr (FLOAT_PAIRED) {
    // sign to the Element's sign bit, exponent and mantissa to its exponent's low bits and its mantissa's top:
    // the Element then holds the code's value times 2^-(Element bias - code bias), subnormal codes as its
    // subnormals; one HMUL2 by that power of two (exact), one by the scale (one rounding, as the float path)
    constexpr int WIDE = MANTISSA == 10 ? 15 : 127, NARROW = (1 << (EXP_BITS > 0 ? EXP_BITS - 1 : 0)) - 1;  // the biases
    constexpr uint32_t MAGNITUDE = ((1u << (BITS - 1)) - 1u) << (MANTISSA - MAN_BITS);
    constexpr uint32_t POWER = uint32_t(WIDE + WIDE - NARROW) << MANTISSA;
    const int to = MANTISSA - MAN_BITS, top = p + BITS - 1;
    const uint32_t magnitude = to >= p ? x << (to - p) : x >> (p - to);
    const uint32_t sign = top <= 15 ? x << (15 - top) : x >> (top - 15);
    const uint32_t v = select_or(magnitude, MAGNITUDE * 0x10001u, sign & 0x80008000u);
    return mul2(mul2(v, POWER * 0x10001u), uint32_t(scale.raw()) * 0x10001u);
  } else if constexpr ((FMT == 0 || FMT == 1) && BITS == 8) {  // bf16 int8 (8 bits overflow its 7-bit mantissa)
    // each code's low 7 bits into the mantissa of 2^7 (128 + low: one LOP3 for both), its top bit picks what
    // to subtract, 2^8 without it and 2^7 with it (0x4380 ^ top << 7: one LOP3): the code minus 128, exact;
    // int_zp then subtracts the zero point minus 128 (exact: integers of at most 8 bits); times the scale
    // (one rounding, as the float path)
    const uint32_t y = x >> p;
    const uint32_t v = select_or(y, 0x007F007Fu, 0x43004300u), top = select_xor(y, 0x00800080u, 0x43804380u);
    if constexpr (FMT == 0) return sub_mul(v, top, scale);
    else return sub_mul(sub2(v, top), uint32_t(Element(float(zero) - 128.f).raw()) * 0x10001u, scale);
  } else {
    const Element lo = Element(decode((x >> p) & MASK, float(zero)) * float(scale));
    const Element hi = Element(decode((x >> (16 + p)) & MASK, float(zero)) * float(scale));
    return uint32_t(lo.raw()) | uint32_t(hi.raw()) << 16;
  }
}
"""
QUANT_HELPERS = QUANT_LAYOUT + QUANT_ARITHMETIC + QUANT_DEQUANT

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
    const int codes_{value} = row_{value} * ROW_BYTES + quad_{value} * BITS * 4;  // this thread's first word, in bytes
"""

# every thread unpacks its registers of the A operand (rows {slice} * 64 .. + 63 of the weight tile): per chunk
# of 128 inputs and row half h, one vector load of its BITS words and 16 pairs; register 8 kb + 2 h + 4 e +
# (0, 1) holds inputs 16 kb + 2 q + 8 e + (0, 1) of row 16 warp + lane / 4 + 8 h
# (tests/kernels/test_fragment_layouts.py), pair i = 2 kb + e of its chunk
DEQUANT = """\
          const uint8_t* mine = s.{ring_w}[slot_{ring_w}] + {slice} * 64 * ROW_BYTES + codes_{value};
          uint32_t* pairs = reinterpret_cast<uint32_t*>(raw_pointer_cast({value}.data()));
          CUTE_UNROLL
          for (int c = 0; c < TILE_K / CHUNK; ++c) {{
            CUTE_UNROLL
            for (int h = 0; h < 2; ++h) {{
              const int r = row_{value} + 8 * h;
              uint32_t w[BITS];
              load_chunk(reinterpret_cast<const uint32_t*>(mine + 8 * h * ROW_BYTES + c * 16 * BITS), w, row_{value} & 1);
              CUTE_UNROLL
              for (int i = 0; i < 16; ++i) {{
                const int kb = 8 * c + i / 2, kk = 16 * kb;
{scale}                pairs[4 * kb + h + 2 * (i % 2)] = dequant_pair_at(w, i, scale, zero);
              }}
            }}
          }}
"""
DEQUANT_GROUP_SCALE = """\
            const Element* sz = s.{ring_s}[slot_{ring_s}] + (kk / GROUP_IN_TILE) * TILE_N + {slice} * 64 + r;
            const Element scale = sz[0], zero = HAS_ZERO ? sz[GROUPS_IN_TILE * TILE_N] : Element(0.f);
"""
DEQUANT_UNIT_SCALE = "            const Element scale = Element(1.f), zero = Element(0.f);  // channelwise: the scale multiplies the accumulator\n"

# the same, straight into a staging slot in the swizzled K-major layout wgmma reads A from: the 128 threads
# take the (row, chunk, quad thread) work items in turn, a pair's two Elements adjacent in the slot
DEQUANT_STAGED = """\
          Tensor staged = make_tensor(make_smem_ptr(dst), LayoutW{{}});
          const uint32_t* words = reinterpret_cast<const uint32_t*>(s.{ring_w}[slot_{ring_w}] + {slice} * 64 * ROW_BYTES);
          CUTE_UNROLL
          for (int j = 0; j < 2 * (TILE_K / CHUNK); ++j) {{
            const int item = threadIdx.x % 128 + 128 * j, q = item % 4, r = item / 4 % 64, c = item / 256;
            uint32_t w[BITS];
            load_chunk(words + r * (ROW_BYTES / 4) + c * 4 * BITS + q * BITS, w, r & 1);
            CUTE_UNROLL
            for (int i = 0; i < 16; ++i) {{
              const int kk = CHUNK * c + 16 * (i / 2) + 2 * q + 8 * (i % 2);
{scale}              *reinterpret_cast<uint32_t*>(&staged(r, kk)) = dequant_pair_at(w, i, scale, zero);
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

# Split K is finished inside the kernel (threadFenceReduction's protocol): every split writes its float32
# partial sums and makes them visible device-wide, its warpgroup meets on a named barrier (a hardware id,
# in PTX: CUTLASS's NamedBarrier adds 8 to its ids, and the order token's are those), one thread counts
# the split in; the split that counts last (told to the warpgroup by a barrier reduction) adds every split's
# partial in split order (the same sum whichever split arrives last: deterministic), reading them from L2
# (`__ldcg`: L1 is not coherent across SMs), writes Y and sets the count back to zero for the next call.
QUANT_EPILOGUE = """\
    {{  // {op}: weight rows {slice} * 64 .. + 63 of the tile against the batch rows: Y[m, n] (Y^T in the accumulator)
      Tensor where = thr_{op}.partition_C(make_identity_tensor(Shape<_64, Int<TILE_M>>{{}}));
      if (gridDim.z == 1) {{
        CUTE_UNROLL
        for (int i = 0; i < size(acc_{op}); ++i) {{
          const int row = blockIdx.x * TILE_N + {slice} * 64 + get<0>(where(i)), col = blockIdx.y * TILE_M + get<1>(where(i));
          if (col < m) y[size_t(col) * n + row] = Element(acc_{op}(i){channel_scale});
        }}
      }} else {{  // split K
        CUTE_UNROLL
        for (int i = 0; i < size(acc_{op}); ++i) {{
          const int row = blockIdx.x * TILE_N + {slice} * 64 + get<0>(where(i)), col = blockIdx.y * TILE_M + get<1>(where(i));
          if (col < m) partial[(size_t(blockIdx.z) * m + col) * n + row] = acc_{op}(i){channel_scale};
        }}
        __threadfence();  // split-k: partials published
        asm volatile("bar.sync %0, 128;" :: "r"({barrier}) : "memory");  // split-k: the warpgroup's partials all written
        int* count = counters + (blockIdx.y * gridDim.x + blockIdx.x) * (TILE_N / 64) + {slice};
        const uint32_t counted_last = threadIdx.x % 128 == 0 && atomicAdd(count, 1) == int(gridDim.z) - 1;
        uint32_t last;
        asm volatile("{{\\n .reg .pred p, q;\\n setp.ne.u32 p, %1, 0;\\n barrier.cta.red.or.pred q, %2, 128, p;\\n selp.u32 %0, 1, 0, q;\\n}}"
                     : "=r"(last) : "r"(counted_last), "r"({barrier}) : "memory");  // split-k: the last split told
        if (last) {{
          __threadfence();  // split-k: every split's partials visible
          CUTE_UNROLL
          for (int i = 0; i < size(acc_{op}); ++i) {{
            const int row = blockIdx.x * TILE_N + {slice} * 64 + get<0>(where(i)), col = blockIdx.y * TILE_M + get<1>(where(i));
            if (col >= m) continue;
            float sum = 0.f;
            _Pragma("unroll 4") for (int z = 0; z < int(gridDim.z); ++z) sum += __ldcg(partial + (size_t(z) * m + col) * n + row);  // split-k: in split order
            y[size_t(col) * n + row] = Element(sum);
          }}
          if (threadIdx.x % 128 == 0) *count = 0;  // split-k: the count ready for the next call
        }}
      }}
    }}
"""
