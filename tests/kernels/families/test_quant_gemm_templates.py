"""The quant_gemm dequantization run on the CPU: the template's own layout and dequantization code
(kernels/families/quant_gemm/templates.py, QUANT_LAYOUT and QUANT_DEQUANT, and the DEQUANT and
DEQUANT_STAGED templates as rendered) compiled for the host with g++, its half2 arithmetic
(QUANT_ARITHMETIC, the only device intrinsics) emulated with one rounding per operation as sm_90 rounds,
and the LOP3 with the truth table the template gives. Rows packed by
kernels.quant.pack go in; every pair of every quad thread must come out as the bits kernels.quant.dequantize
gives, for every width, format and element type. A template broken on purpose must be caught. No GPU runs
it here; the GPU tests check it end to end."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from warpsched.kernels.families.quant_gemm import templates as F
from warpsched.kernels.quant import CHUNK, dequantize, pack
from warpsched.models.quant_gemm import FLOAT_FORMATS, float_fields

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs a host C++ compiler (g++)")

ROWS = 24  # rows of one chunk per variant: every code of up to 4 bits many times, of 8 bits most
FORMATS = [("int", b) for b in range(1, 9)] + [("int_zp", b) for b in range(1, 9)]
FORMATS += [(fmt, bits) for fmt, bits in FLOAT_FORMATS.items()]

SHIM = r"""
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
#define __device__
#define __forceinline__ inline
#define CUTE_UNROLL
namespace cute { template <class A, class B> constexpr bool is_same_v = std::is_same_v<A, B>; }
struct uint4 { uint32_t x, y, z, w; };
struct uint2 { uint32_t x, y; };
static float f32(uint32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
static uint32_t u32(float f) { uint32_t b; std::memcpy(&b, &f, 4); return b; }
namespace cutlass {
struct bfloat16_t {  // round to nearest even, as the device converts
  uint16_t bits;
  bfloat16_t() = default;
  explicit bfloat16_t(float f) {
    const uint32_t u = u32(f);
    bits = uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
  }
  explicit operator float() const { return f32(uint32_t(bits) << 16); }
  uint16_t raw() const { return bits; }
};
struct half_t {
  uint16_t bits;
  half_t() = default;
  explicit half_t(float f) { const _Float16 h = (_Float16)f; std::memcpy(&bits, &h, 2); }
  explicit operator float() const { _Float16 h; std::memcpy(&h, &bits, 2); return float(h); }
  uint16_t raw() const { return bits; }
};
}  // namespace cutlass
static uint32_t __byte_perm(uint32_t x, uint32_t y, uint32_t s) {
  const uint64_t v = uint64_t(y) << 32 | x;
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n) r |= uint32_t((v >> (8 * ((s >> (4 * n)) & 7))) & 0xFFu) << (8 * n);
  return r;
}
"""

# the template's QUANT_ARITHMETIC on the host: HSUB2 and HMUL2 each one rounding of the exact result (the
# product of two 16-bit floats is exact in float), the LOP3 with the template's truth table
ARITHMETIC = r"""
inline Element from_bits(uint16_t b) { Element e; e.bits = b; return e; }
inline uint32_t sub_mul(uint32_t v, uint32_t bias, Element scale) {
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    const float a = float(from_bits(uint16_t(v >> 16 * h))), b = float(from_bits(uint16_t(bias >> 16 * h)));
    const float d = float(Element(a - b));
    out |= uint32_t(Element(d * float(scale)).raw()) << 16 * h;
  }
  return out;
}
inline uint32_t sub2(uint32_t a, uint32_t b) {
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    const float x = float(from_bits(uint16_t(a >> 16 * h))), y = float(from_bits(uint16_t(b >> 16 * h)));
    out |= uint32_t(Element(x - y).raw()) << 16 * h;
  }
  return out;
}
inline uint32_t mul2(uint32_t a, uint32_t b) {
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    const float x = float(from_bits(uint16_t(a >> 16 * h))), y = float(from_bits(uint16_t(b >> 16 * h)));
    out |= uint32_t(Element(x * y).raw()) << 16 * h;
  }
  return out;
}
inline float bits_as_float(uint32_t x) { return f32(x); }
inline uint32_t lop3(uint32_t lut, uint32_t a, uint32_t b, uint32_t c) {
  uint32_t out = 0;
  for (int i = 0; i < 32; ++i)
    out |= ((lut >> (((a >> i) & 1u) << 2 | ((b >> i) & 1u) << 1 | ((c >> i) & 1u))) & 1u) << i;
  return out;
}
inline uint32_t select_or(uint32_t a, uint32_t b, uint32_t c) { return lop3(LUT_select_or, a, b, c); }
inline uint32_t select_xor(uint32_t a, uint32_t b, uint32_t c) { return lop3(LUT_select_xor, a, b, c); }
"""


def _lut(arithmetic: str) -> str:
    """The truth tables of the template's LOP3 helpers, as the host program's constants."""
    found = dict(
        re.findall(
            r"uint32_t (\w+)\(uint32_t x, uint32_t mask, uint32_t bits\) \{ return lop3<(0x[0-9A-Fa-f]+)>",
            arithmetic,
        )
    )
    assert set(found) == {"select_or", "select_xor"}, found
    assert 'asm("lop3.b32 %0, %1, %2, %3, %4;"' in arithmetic
    return "".join(f"constexpr uint32_t LUT_{name} = {lut}u;\n" for name, lut in found.items())


def _case(fmt: str, bits: int, dtype: str, seed: int, fractional: bool = False):
    """Random codes of ROWS rows x one chunk, a scale (and zero point, integer unless `fractional`) per row;
    the bits dequantize wants for each (row, quad thread, pair), in the order the host program prints them."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 1 << bits, (ROWS, CHUNK), generator=g)
    torch_dtype = torch.float16 if dtype == "fp16" else torch.bfloat16
    top = 1.0 if fmt in FLOAT_FORMATS else 2.0  # e5m2's largest value times the scale stays finite in fp16
    scales = (torch.rand(1, ROWS, generator=g) * top + 1e-3).to(torch_dtype)
    zeros = torch.randint(0, 1 << bits, (1, ROWS), generator=g).to(torch_dtype) if fmt == "int_zp" else None
    if zeros is not None and fractional:
        zeros = (zeros.float() + torch.rand(1, ROWS, generator=g)).to(torch_dtype)
    want = dequantize(codes, scales, zeros, bits=bits, group_size=CHUNK, fmt=fmt).to(torch_dtype)
    want = want.view(torch.int16).numpy().astype(np.uint16).astype(np.uint32)
    first = [16 * (i // 2) + 2 * q + 8 * (i % 2) for q in range(4) for i in range(16)]
    expected = [int(want[r, k]) | int(want[r, k + 1]) << 16 for r in range(ROWS) for k in first]
    words = pack(codes, bits).numpy().view(np.uint32)  # (ROWS, 4 * bits), little-endian as the GPU reads
    z = zeros if zeros is not None else torch.zeros(1, ROWS, dtype=torch_dtype)
    return words, scales.view(torch.int16), z.view(torch.int16), expected


def _variant(name: str, fmt: str, bits: int, dtype: str, body: str, words, scales, zeros) -> str:
    exp, man = float_fields(fmt) if fmt in FLOAT_FORMATS else (0, 0)
    code = 0 if fmt == "int" else 1 if fmt == "int_zp" else 2

    def array(kind, values):
        items = ", ".join(str(int(v) & 0xFFFFFFFF) + "u" for v in values)
        return f"static const {kind} data_{kind[:-2]}[] = {{{items}}};"

    return f"""
namespace {name} {{
constexpr int BITS = {bits}, FMT = {code}, EXP_BITS = {exp}, MAN_BITS = {man};
using Element = cutlass::{"half_t" if dtype == "fp16" else "bfloat16_t"};
{body}
{array("uint32_t", words.reshape(-1))}
{array("uint16_t", np.asarray(scales).reshape(-1).astype(np.uint16))}
static const uint16_t zero_bits[] = {{{", ".join(str(int(v) & 0xFFFF) for v in np.asarray(zeros).ravel())}}};
void run() {{
  for (int r = 0; r < {ROWS}; ++r)
    for (int q = 0; q < 4; ++q) {{
      uint32_t w[BITS];
      load_chunk(data_uint32 + r * 4 * BITS + q * BITS, w, r & 1);
      for (int i = 0; i < 16; ++i)
        std::printf("%08x\\n", dequant_pair_at(w, i, from_bits(data_uint16[r]), from_bits(zero_bits[r])));
    }}
}}
}}  // namespace {name}
"""


def _compile_and_run(source: str, binary: Path, *flags: str) -> list[int]:
    """Build `source` with g++ for the host (no FMA contraction: each operation rounds as the GPU's does)
    and run it: the hexadecimal words it prints."""
    binary.with_suffix(".cpp").write_text(source)
    subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-O1",
            "-ffp-contract=off",
            *flags,
            "-o",
            str(binary),
            str(binary.with_suffix(".cpp")),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [
        int(x, 16)
        for x in subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()
    ]


def _run(cases, layout=F.QUANT_LAYOUT, dequant=F.QUANT_DEQUANT, arithmetic=F.QUANT_ARITHMETIC, tmp_path=None):
    """Compile the template parts for every (fmt, bits, dtype) case into one host program and run it:
    {case: the pairs' bits that differ from dequantize's, as (row, quad, pair, got, want)}."""
    body = _lut(arithmetic) + ARITHMETIC + layout + dequant
    parts, expected = [SHIM], {}
    for n, (fmt, bits, dtype, *fractional) in enumerate(cases):
        words, scales, zeros, want = _case(fmt, bits, dtype, seed=n, fractional=bool(fractional))
        parts.append(_variant(f"v{n}", fmt, bits, dtype, body, words, scales, zeros))
        expected[fmt, bits, dtype, *fractional] = want
    parts.append("int main() {" + "".join(f" v{n}::run();" for n in range(len(cases))) + " }\n")
    got_all = _compile_and_run("".join(parts), tmp_path / "dequant")
    out, at = {}, 0
    for case, want in expected.items():
        got = got_all[at : at + len(want)]
        at += len(want)
        out[case] = [
            (j // 64, j // 16 % 4, j % 16, hex(g), hex(w))
            for j, (g, w) in enumerate(zip(got, want))
            if g != w
        ]
    return out


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_every_thread_dequantizes_its_pairs_to_the_references_bits(dtype, tmp_path):
    """The 16 pairs of each of a quad's four threads, for every format and width: bit for bit."""
    result = _run([(fmt, bits, dtype) for fmt, bits in FORMATS], tmp_path=tmp_path)
    assert {case: bad[:3] for case, bad in result.items() if bad} == {}


def test_the_paired_path_covers_the_integer_widths_that_fit_the_mantissa():
    assert re.search(r"MANTISSA = cute::is_same_v<Element, cutlass::half_t> \? 10 : 7;", F.QUANT_LAYOUT)
    assert "PAIRED = (FMT == 0 || FMT == 1) && BITS <= MANTISSA;" in F.QUANT_LAYOUT


def test_a_fractional_zero_point_is_at_most_one_rounding_off(tmp_path):
    """int_zp subtracts the zero point in the Element type (exact for integers); a fractional one may round
    there once before the scale's rounding: the result is the float path's or its neighbour."""
    cases = [("int_zp", bits, dtype, "fractional") for bits in (2, 4, 7) for dtype in ("bf16", "fp16")]
    off = []
    for bad in _run(cases, tmp_path=tmp_path).values():
        for *_, got, want in bad:
            for h in (0, 16):
                g, w = (int(got, 16) >> h) & 0xFFFF, (int(want, 16) >> h) & 0xFFFF
                if g != w and not ((g ^ w) < 0x8000 and abs(g - w) == 1):  # same sign, adjacent
                    off.append((got, want))
    assert off == []


@pytest.mark.parametrize(
    "part, change",
    [
        (
            "dequant",
            ("(MANTISSA == 10 ? 15 : 127) + MANTISSA - p", "(MANTISSA == 10 ? 15 : 127) + MANTISSA - p + 1"),
        ),
        ("dequant", ("1u << (BITS - 1 + p)", "1u << (BITS - 1)")),  # the offset not moved with the code
        ("layout", ("(w[word + 1] << (16 - s))", "(w[word + 1] << (15 - s))")),  # a straddling code torn
        ("layout", ("s - base + BITS <= (PAIRED ? MANTISSA : 16)", "s - base + BITS <= 16")),  # out of reach
        ("layout", ("w[4 * j + 2] = v.z, w[4 * j + 3] = v.w", "w[4 * j + 2] = v.w, w[4 * j + 3] = v.z")),
        ("layout", ("[BITS % 8 == 0 ? j ^ odd_row : j]", "[j]")),  # int8's odd rows read unswapped
        ("arithmetic", ("lop3<0xEA>", "lop3<0xE8>")),  # (a & b) & c: the power of two lost
        ("arithmetic", ("lop3<0x6A>", "lop3<0xEA>")),  # int8 in bf16: the top bit added, not flipped
        ("dequant", ("0x43804380u", "0x43004300u")),  # int8 in bf16 without its offset
        ("dequant", ("float(zero) - 128.f", "float(zero)")),  # int_zp int8 in bf16: the offset twice
        ("dequant", ("sub2(v, power * 0x10001u)", "v")),  # int_zp: the power of two left in
    ],
)
def test_a_broken_template_is_caught(part, change, tmp_path):
    texts = {"layout": F.QUANT_LAYOUT, "dequant": F.QUANT_DEQUANT, "arithmetic": F.QUANT_ARITHMETIC}
    broken = texts[part].replace(*change, 1)
    assert broken != texts[part]
    texts[part] = broken
    cases = [("int", bits, "bf16") for bits in range(1, 9)]
    cases += [("int_zp", 4, "bf16"), ("int_zp", 3, "fp16"), ("int_zp", 8, "bf16")]
    result = _run(cases, tmp_path=tmp_path, **texts)
    assert any(result.values())


@pytest.mark.parametrize(
    "change",
    [
        ("sign & 0x80008000u", "sign & 0x00008000u"),  # the second code's sign lost
        ("WIDE + WIDE - NARROW", "WIDE + WIDE - NARROW + 1"),  # the power of two one off
        ("to = MANTISSA - MAN_BITS,", "to = MANTISSA - MAN_BITS + 1,"),  # the magnitude one bit high
        ("mul2(mul2(v, POWER * 0x10001u)", "mul2(mul2(v, POWER)"),  # the high half not rescaled
    ],
)
def test_a_broken_float_path_is_caught(change, tmp_path):
    broken = F.QUANT_DEQUANT.replace(*change, 1)
    assert broken != F.QUANT_DEQUANT
    cases = [(fmt, bits, dtype) for fmt, bits in FLOAT_FORMATS.items() for dtype in ("bf16", "fp16")]
    result = _run(cases, dequant=broken, tmp_path=tmp_path)
    assert all(result[fmt, bits, "bf16"] for fmt, bits in FLOAT_FORMATS.items())


def _rendered(fmt: str, bits: int, dtype: str, tile_k: int, group: int, seed: int):
    """A host program that runs the rendered DEQUANT (every thread of both consumers) and DEQUANT_STAGED
    templates over one packed weight tile (shared memory stubbed by arrays), and the bits dequantize wants."""
    g = torch.Generator().manual_seed(seed)
    tn = 128
    codes = torch.randint(0, 1 << bits, (tn, tile_k), generator=g)
    torch_dtype = torch.float16 if dtype == "fp16" else torch.bfloat16
    groups = tile_k // group
    scales = (torch.rand(groups, tn, generator=g) * 2 + 1e-3).to(torch_dtype)
    zeros = (
        torch.randint(0, 1 << bits, (groups, tn), generator=g).to(torch_dtype) if fmt == "int_zp" else None
    )
    want = dequantize(codes, scales, zeros, bits=bits, group_size=group, fmt=fmt).to(torch_dtype)
    want = want.view(torch.int16).numpy().astype(np.uint16)
    words = pack(codes, bits).numpy().view(np.uint32).ravel()
    side = torch.cat([scales, zeros if zeros is not None else torch.zeros_like(scales)])
    side = side.view(torch.int16).numpy().astype(np.uint16).ravel()
    scale = F.DEQUANT_GROUP_SCALE.format(ring_s="S", slice="SL")
    registers = F.DEQUANT.format(ring_w="W", slice="SL", value="val", scale=scale)
    staged = F.DEQUANT_STAGED.format(ring_w="W", slice="SL", value="val", scale=scale).replace(
        "Tensor staged = make_tensor(make_smem_ptr(dst), LayoutW{});",
        "auto staged = [&](int r, int k) -> Element& { return stage[r][k]; };",
    )
    setup = "\n".join(F.DEQUANT_SETUP.format(value="val").splitlines()[1:])  # not the register tensor
    body = _lut(F.QUANT_ARITHMETIC) + ARITHMETIC + F.QUANT_LAYOUT + F.QUANT_DEQUANT
    source = (
        SHIM
        + f"""
constexpr int BITS = {bits}, FMT = {0 if fmt == "int" else 1}, EXP_BITS = 0, MAN_BITS = 0, TILE_K = {tile_k};
constexpr int TILE_N = {tn}, CHUNK = {CHUNK}, ROW_BYTES = {tile_k * bits // 8};
constexpr int GROUP_IN_TILE = {min(group, tile_k)}, GROUPS_IN_TILE = {max(1, tile_k // group)};
constexpr int HAS_ZERO = {int(fmt == "int_zp")};
using Element = cutlass::{"half_t" if dtype == "fp16" else "bfloat16_t"};
{body}
static const uint32_t weights[] = {{{", ".join(f"{int(x)}u" for x in words)}}};
static const uint16_t scales_and_zeros[] = {{{", ".join(str(int(x)) for x in side)}}};
struct {{ int x; }} threadIdx;
struct {{ const uint8_t* W[1]; const Element* S[1]; }} s;
const int slot_W = 0, slot_S = 0;
template <class T> T* raw_pointer_cast(T* p) {{ return p; }}
struct Registers {{ alignas(16) Element a[8 * TILE_K / 16]; Element* data() {{ return a; }} }};
Element stage[64][TILE_K];
int main() {{
  s.W[0] = reinterpret_cast<const uint8_t*>(weights);
  s.S[0] = reinterpret_cast<const Element*>(scales_and_zeros);
  for (int SL = 0; SL < 2; ++SL) {{
    for (int tid = 0; tid < 128; ++tid) {{
      threadIdx.x = tid + 128 * SL;
      Registers val;
{setup}
      {{
{registers}
      }}
      for (int j = 0; j < TILE_K / 4; ++j) {{
        uint32_t v;
        std::memcpy(&v, &val.a[2 * j], 4);
        std::printf("%08x\\n", v);
      }}
    }}
    for (int tid = 0; tid < 128; ++tid) {{
      threadIdx.x = tid;
      {{
{staged}
      }}
    }}
    for (int r = 0; r < 64; ++r)
      for (int k = 0; k < TILE_K; ++k) std::printf("%04x\\n", stage[r][k].raw());
  }}
}}
"""
    )
    expected = []
    for c in range(2):
        for tid in range(128):  # register 2j of the A operand: rows and inputs of wgmma's layout
            for j in range(tile_k // 4):
                kb, h, e = j // 4, j % 4 % 2, j % 4 // 2
                row = 64 * c + 16 * (tid // 32) + tid % 32 // 4 + 8 * h
                k = 16 * kb + 2 * (tid % 4) + 8 * e
                expected.append(int(want[row, k]) | int(want[row, k + 1]) << 16)
        expected += [int(want[64 * c + r, k]) for r in range(64) for k in range(tile_k)]
    return source, expected


@pytest.mark.parametrize(
    "fmt, bits, dtype, tile_k, group",
    [
        ("int", 4, "bf16", 256, 32),  # two chunks, a group change inside a chunk
        ("int", 8, "bf16", 256, 64),  # the float path and the odd rows' swapped vectors
        ("int", 3, "fp16", 256, 128),  # straddling codes
        ("int_zp", 5, "bf16", 128, 32),
        ("int_zp", 2, "fp16", 128, 128),
    ],
)
def test_the_rendered_templates_fill_what_wgmma_reads(fmt, bits, dtype, tile_k, group, tmp_path):
    """The DEQUANT and DEQUANT_STAGED templates as rendered (addressing, row halves, chunks, odd rows, group
    scales and zero points): every A-operand register of every thread of both consumers, and every element of
    the staged slices, holds the bits dequantize gives (the register layout: tests/kernels/
    test_fragment_layouts.py)."""
    source, expected = _rendered(fmt, bits, dtype, tile_k, group, seed=bits)
    got = _compile_and_run(source, tmp_path / "rendered", "-w")
    assert len(got) == len(expected)
    assert [i for i, (a, b) in enumerate(zip(got, expected)) if a != b][:5] == []
