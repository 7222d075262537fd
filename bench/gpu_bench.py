#!/usr/bin/env python3
"""GPU benchmark (H100/H200): warpsched's generated kernels against torch, timed with CUDA events.

    python3 bench/gpu_bench.py [--quick] [--budget-s 480] [--families gemm,quant_gemm,attention_fwd]

Usually run through `bench/gpu_suite.sh` (installs, GPU tests, then this). Families and baselines:
- gemm: `kernels.gemm(a, b)` (= a @ b.T, bf16) vs `torch.matmul`, square sizes;
- quant_gemm: `kernels.quant_gemm(x, packed, scales, None, bits=, group_size=128, fmt="int")` vs
  `torch.matmul` on the dequantized bf16 weights and `torch._weight_int4pack_mm` (tinygemm, 4 bits),
  on the Llama-3-8B and Llama-3.3-70B projections at M = 1, 16, 128, 2048 and bits 1..8; achieved
  TB/s (packed weights + scales + activations + output over the time) against the device-to-device
  copy bandwidth measured in the same run, and TFLOP/s;
- attention_fwd: `kernels.attention_fwd(q, k, v, causal=)` vs `scaled_dot_product_attention` with the
  flash and cuDNN backends at the FA3 convention (batch x seqlen = 16k, heads x head_dim = 2048).

Method (METHOD.md): random inputs that are never zero; each implementation's first output checked
against a float32 torch reference (relative Frobenius error) before it is timed, a wrong one never
timed; warm-up; per-call CUDA events behind a GPU sleep that hides the host's launch cost; the median
over repeats; each call reads the next of several copies of its inputs, enough copies to hold twice
the L2, so no call finds its operands in the cache. A warpsched entry point that raises
NotImplementedError, AttributeError or KernelError is reported `skipped` with its message.

Each family runs in its own process (a kernel fault cannot take the others down; after a lost CUDA
context the family resumes in a fresh process at the next case), within a share of `--budget-s`;
cases left when the time is spent are reported `not_run`. Writes `bench/results/<device>-<date>.json`
and `<device>-<date>-<family>.png`, and prints a short table last. Without a GPU it prints
`skipped: no GPU` and exits 0. `--dry-run --results DIR` runs the whole pipeline on the CPU with tiny
shapes and host-clock timing (meaningless numbers), to check this script without a GPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FAMILIES = ("gemm", "quant_gemm", "attention_fwd")
BUDGET_SHARES = {
    "gemm": 0.15,
    "quant_gemm": 0.5,
    "attention_fwd": 0.35,
}  # unused time passes on to the next family

# ---------------------------------------------------------------------------------------------------
# Pure helpers: shapes, FLOP and byte counts, file names (no torch; tests/bench/test_gpu_bench.py)
# ---------------------------------------------------------------------------------------------------

GEMM_SIZES = (2048, 4096, 8192, 16384)
GEMM_SIZES_QUICK = (4096, 8192)

# nn.Linear weights as (N, K): y (M, N) = x (M, K) @ W.T; q/k/v and gate/up fused as inference engines run
# them.
# Llama-3-8B: hidden 4096, 32 query heads and 8 KV heads of 128, intermediate 14336.
# Llama-3.3-70B: hidden 8192, 64 query heads and 8 KV heads of 128, intermediate 28672.
LLAMA_SHAPES = {
    "llama3-8b": {"qkv": (6144, 4096), "o": (4096, 4096), "gate_up": (28672, 4096), "down": (4096, 14336)},
    "llama3.3-70b": {
        "qkv": (10240, 8192),
        "o": (8192, 8192),
        "gate_up": (57344, 8192),
        "down": (8192, 28672),
    },
}
QUANT_M = (1, 16, 128, 2048)
QUANT_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
QUANT_GROUP = 128
QUANT_BASELINE_BITS = 4  # the case that also times the baselines (bf16 matmul, tinygemm int4) per (shape, M)
QUICK_QUANT_BITS = (2, 3, 4, 8)

ATTN_SEQLENS = (512, 1024, 2048, 4096, 8192, 16384)
ATTN_SEQLENS_QUICK = (1024, 4096, 16384)
ATTN_HEAD_DIMS = (64, 128, 256)
ATTN_TOKENS = 16384  # batch x seqlen
ATTN_HIDDEN = 2048  # heads x head_dim

# relative Frobenius error vs float32; quant_gemm's correct kernels (and torch's) stay under 3e-3 at every
# shape of the first H100 run, and a racing schedule gave 8e-3 there, under the 1e-2 this was before
TOLERANCE = {"gemm": 1e-2, "quant_gemm": 5e-3, "attention_fwd": 2e-2}

# `--dry-run`: the whole pipeline (processes, checks, timing loop, JSON, plots, table) on the CPU with tiny
# shapes and host-clock "events", for checking this script without a GPU. Its numbers mean nothing.
DRY_RUN = os.environ.get("GPU_BENCH_DRY_RUN") == "1"
DEVICE = "cpu" if DRY_RUN else "cuda"
if DRY_RUN:
    GEMM_SIZES = GEMM_SIZES_QUICK = (256, 512)
    LLAMA_SHAPES = {"llama3-8b": {"qkv": (768, 512), "o": (512, 512)}, "llama3.3-70b": {"down": (512, 1024)}}
    QUANT_M = (1, 16)
    ATTN_SEQLENS = ATTN_SEQLENS_QUICK = (128, 256)
    ATTN_TOKENS, ATTN_HIDDEN = 512, 512


def gemm_flops(m: int, n: int, k: int) -> int:
    return 2 * m * n * k


def gemm_bytes(m: int, n: int, k: int, elem: int = 2) -> int:
    """A (M x K) and B (N x K) read once, C (M x N) written once."""
    return (m * k + n * k + m * n) * elem


def quant_weight_bytes(n: int, k: int, bits: int) -> int:
    return n * math.ceil(k * bits / 8)


def quant_scale_bytes(n: int, k: int, group_size: int, elem: int = 2) -> int:
    return (k // group_size) * n * elem


def quant_bytes(
    m: int, n: int, k: int, bits: int, group_size: int = QUANT_GROUP, elem: int = 2, zeros: bool = False
) -> int:
    """Packed weights + scales (+ zero points) + activations read once, output written once."""
    return (
        quant_weight_bytes(n, k, bits)
        + quant_scale_bytes(n, k, group_size, elem) * (2 if zeros else 1)
        + (m * k + m * n) * elem
    )


def int4pack_bytes(m: int, n: int, k: int, group_size: int = QUANT_GROUP, elem: int = 2) -> int:
    """tinygemm's operands: 4-bit weights, a scale and a zero per group, activations, output."""
    return quant_bytes(m, n, k, 4, group_size, elem, zeros=True)


def attention_flops(batch: int, heads: int, seqlen: int, head_dim: int, causal: bool) -> int:
    """FA3's count: 4 * B * H * N^2 * d (two GEMMs of 2 N^2 d), halved for causal."""
    flops = 4 * batch * heads * seqlen * seqlen * head_dim
    return flops // 2 if causal else flops


def attention_bytes(batch: int, heads: int, seqlen: int, head_dim: int, elem: int = 2) -> int:
    """Q, K, V read once and O written once."""
    return 4 * batch * heads * seqlen * head_dim * elem


def fa3_shape(
    seqlen: int, head_dim: int, tokens: int = ATTN_TOKENS, hidden: int = ATTN_HIDDEN
) -> tuple[int, int, int, int]:
    """(batch, heads, seqlen, head_dim) with batch * seqlen = tokens and heads * head_dim = hidden."""
    if tokens % seqlen or hidden % head_dim:
        raise ValueError(f"seqlen {seqlen} must divide {tokens} and head_dim {head_dim} must divide {hidden}")
    return tokens // seqlen, hidden // head_dim, seqlen, head_dim


def tflops(flops: float, ms: float) -> float:
    return flops / (ms * 1e-3) / 1e12


def tbps(nbytes: float, ms: float) -> float:
    return nbytes / (ms * 1e-3) / 1e12


def rotation_count(
    set_bytes: int, l2_bytes: int = 50 * 2**20, factor: float = 2.0, max_copies: int = 64
) -> int:
    """Copies of one input set so that a rotation through them covers `factor` times the L2 (at least 2)."""
    return max(2, min(max_copies, math.ceil(factor * l2_bytes / max(1, set_bytes))))


def device_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100', 'NVIDIA H200' -> 'h200'; otherwise the name made file-safe."""
    tokens = [t for t in re.split(r"[\s_\-]+", name.strip()) if t and t.upper() != "NVIDIA"]
    for t in tokens:
        if re.fullmatch(r"[A-Za-z]{1,3}\d{2,4}[A-Za-z]?", t):
            return t.lower()
    slug = re.sub(r"[^a-z0-9]+", "-", " ".join(tokens).lower()).strip("-")
    return slug or "gpu"


def result_path(device: str, date: str, results: Path = RESULTS) -> Path:
    return results / f"{device}-{date}.json"


def plot_path(device: str, date: str, family: str, results: Path = RESULTS) -> Path:
    return results / f"{device}-{date}-{family}.png"


def geomean(values) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def gemm_cases(quick: bool) -> list[dict]:
    return [{"m": s, "n": s, "k": s} for s in (GEMM_SIZES_QUICK if quick else GEMM_SIZES)]


def quant_cases(quick: bool) -> list[dict]:
    """(model, layer, n, k, bits, m), grouped by weight matrix (generated once, reused for every M).
    The quick set (Llama-3-8B, bits 2/3/4/8) comes first; the full run adds Llama-3.3-70B and the other
    bits after it, so a run cut short by its budget still covers the quick set."""

    def group(models, bits_list):
        return [
            (model, layer, n, k, bits)
            for model in models
            for layer, (n, k) in LLAMA_SHAPES[model].items()
            for bits in bits_list
        ]

    groups = group(["llama3-8b"], QUICK_QUANT_BITS)
    if not quick:
        groups += group(["llama3-8b"], [b for b in QUANT_BITS if b not in QUICK_QUANT_BITS])
        groups += group(["llama3.3-70b"], QUICK_QUANT_BITS)
        groups += group(["llama3.3-70b"], [b for b in QUANT_BITS if b not in QUICK_QUANT_BITS])
    return [
        {"model": model, "layer": layer, "n": n, "k": k, "bits": bits, "m": m, "group_size": QUANT_GROUP}
        for model, layer, n, k, bits in groups
        for m in QUANT_M
    ]


def attention_cases(quick: bool) -> list[dict]:
    cases = []
    for causal in (False, True):
        for head_dim in ATTN_HEAD_DIMS:
            for seqlen in ATTN_SEQLENS_QUICK if quick else ATTN_SEQLENS:
                b, h, n, d = fa3_shape(seqlen, head_dim)
                cases.append({"batch": b, "heads": h, "seqlen": n, "head_dim": d, "causal": causal})
    return cases


CASES = {"gemm": gemm_cases, "quant_gemm": quant_cases, "attention_fwd": attention_cases}


def case_label(family: str, case: dict) -> str:
    if family == "gemm":
        return f"{case['m']}x{case['n']}x{case['k']}"
    if family == "quant_gemm":
        return f"{case['model']} {case['layer']} {case['n']}x{case['k']} int{case['bits']} M={case['m']}"
    return (
        f"b{case['batch']} h{case['heads']} n{case['seqlen']} d{case['head_dim']}"
        f"{' causal' if case['causal'] else ''}"
    )


def pack_bits_reference(codes, bits: int):
    """The kernels' layout (kernels/quant.py), rebuilt independently: per 128-input chunk and quad thread q,
    the first codes of its 16 pairs (inputs 16 b + 2 q + 8 e, pair 2 b + e) packed as one bit string and the
    second codes as another (bitstring_pack), the two interleaved a 16-bit half at a time into `bits` words
    (at 8 bits, odd rows hold the thread's words 4..7 first).
    The bench cross-checks kernels.quant.pack with it."""
    n, k = codes.shape
    lanes = codes.reshape(n, k // 128, 8, 2, 4, 2)  # (row, chunk, block b, e, thread q, first or second)
    strings = bitstring_pack(
        lanes.permute(0, 1, 4, 5, 2, 3).reshape(-1, 16), bits
    )  # 16 codes: 2 * bits bytes
    halves = strings.reshape(n, k // 128, 4, 2, bits, 2)  # (row, chunk, q, first or second, half word, byte)
    words = halves.permute(0, 1, 2, 4, 3, 5).reshape(n, k // 128, 4, bits, 4)  # word j: low half, then high
    if bits == 8:  # odd rows: the thread's two 16-byte vectors swapped
        words[1::2] = words[1::2].roll(4, dims=3)
    return words.reshape(n, k * bits // 8)


def bitstring_pack(codes, bits: int):
    """Little-endian bit packing along K (torch): element k of row n in bits [k*bits, (k+1)*bits) of row
    n's bit string, bit j of the string in byte j // 8 at position j % 8. codes (N, K) uint8 < 2**bits
    -> uint8 (N, K*bits/8). Row chunks bound the memory."""
    import torch

    n, k = codes.shape
    if (k * bits) % 8:
        raise ValueError(f"K * bits = {k * bits} is not a whole number of bytes")
    out = torch.empty(n, k * bits // 8, dtype=torch.uint8, device=codes.device)
    shifts = torch.arange(bits, device=codes.device, dtype=torch.uint8)
    weights = 2 ** torch.arange(8, device=codes.device, dtype=torch.int32)
    step = max(1, (1 << 26) // max(1, k * bits))
    for r0 in range(0, n, step):
        c = codes[r0 : r0 + step]
        bitstr = ((c.unsqueeze(-1) >> shifts) & 1).reshape(c.shape[0], -1, 8).to(torch.int32)
        out[r0 : r0 + step] = (bitstr * weights).sum(-1).to(torch.uint8)
    return out


def dequant_reference(codes, scales, bits: int, group_size: int):
    """Symmetric int weights in float32: w[n, k] = (code - 2**(bits-1)) * scales[k // group, n]; (N, K)."""
    import torch

    off = 2 ** (bits - 1)
    return (codes.to(torch.float32) - off) * scales.to(torch.float32).t().repeat_interleave(group_size, dim=1)


def int4pack_operands(codes, scales):
    """tinygemm's operands for 4-bit codes (N, K) and scales (K//group, N): its dequantization is
    (q - 8) * scale + zero, the symmetric offset of our format with zero 0. Returns (packed (N, K/2)
    uint8, high nibble = even k; scales_and_zeros (K//group, N, 2))."""
    import torch

    packed = ((codes[:, ::2].to(torch.int32) << 4) | codes[:, 1::2].to(torch.int32)).to(torch.uint8)
    return packed, torch.stack([scales, torch.zeros_like(scales)], dim=2).contiguous()


# ---------------------------------------------------------------------------------------------------
# Device side (one process per family)
# ---------------------------------------------------------------------------------------------------


class _HostEvent:
    """A CUDA event's face on the host clock (`--dry-run` only)."""

    def record(self) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: "_HostEvent") -> float:
        return (end.t - self.t) * 1e3


class ContextLost(Exception):
    """The CUDA context is unusable (an illegal address, a launch failure): the process must end."""


_STICKY = (
    "illegal memory access",
    "unspecified launch failure",
    "illegal instruction",
    "misaligned address",
    "device-side assert",
    "CUDA_ERROR_ILLEGAL",
    "CUDA_ERROR_LAUNCH_FAILED",
    "an illegal",
    "ECC error",
)


def _skip_errors() -> tuple:
    errors = [NotImplementedError, AttributeError, ImportError]
    try:
        from warpsched.kernels import KernelError

        errors.append(KernelError)
    except Exception:  # noqa: BLE001 - kernels itself may not import; the entry points then skip
        pass
    return tuple(errors)


class Device:
    def __init__(self, deadline: float, quick: bool, emit):
        import torch

        self.torch = torch
        self.deadline = deadline
        self.quick = quick
        self.emit = emit
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        props = None if DRY_RUN else torch.cuda.get_device_properties(0)
        self.l2 = int(getattr(props, "L2_cache_size", 0) or 50 * 2**20)
        self.skip_errors = _skip_errors()
        self.gen = torch.Generator(device=DEVICE).manual_seed(0)

    def sync(self) -> None:
        if not DRY_RUN:
            self.torch.cuda.synchronize()

    def event(self):
        return _HostEvent() if DRY_RUN else self.torch.cuda.Event(enable_timing=True)

    def empty_cache(self) -> None:
        if not DRY_RUN:
            self.torch.cuda.empty_cache()

    # -- inputs ------------------------------------------------------------------------------------
    def randn(self, shape, dtype, scale: float = 1.0):
        """Normal random values, never exactly zero."""
        torch = self.torch
        t = torch.randn(shape, device=DEVICE, dtype=torch.float32, generator=self.gen)
        t = torch.where(t == 0, torch.ones_like(t), t)
        return (t * scale).to(dtype)

    def copies(self, tensors: tuple, n: int) -> list[tuple]:
        return [tensors] + [tuple(t.clone() for t in tensors) for _ in range(n - 1)]

    # -- checks and timing ---------------------------------------------------------------------------
    def rel_err(self, out, ref) -> float:
        torch = self.torch
        out = out.float()
        if out.shape != ref.shape:
            raise ValueError(f"output shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
        if not bool(torch.isfinite(out).all()):
            return math.inf
        return float((out - ref).norm() / ref.norm().clamp_min(1e-30))

    def time_ms(self, fn, n_sets: int) -> dict:
        """Median of per-call CUDA-event times; call i reads input set i % n_sets."""
        torch = self.torch
        for i in range(2):
            fn(i % n_sets)
        self.sync()
        s, e = self.event(), self.event()
        t0 = time.perf_counter()
        s.record()
        for i in range(3):
            fn(i % n_sets)
        e.record()
        host = (time.perf_counter() - t0) / 3
        self.sync()
        est = max(s.elapsed_time(e) / 3, 1e-3)
        target = 150.0 if self.quick else 400.0  # ms of timed work
        reps = int(min(100, max(10, target / est)))
        events = [(self.event(), self.event()) for _ in range(reps)]
        if not DRY_RUN and hasattr(
            torch.cuda, "_sleep"
        ):  # keep the GPU busy while the host queues the timed calls
            torch.cuda._sleep(int(min(0.5, 1.5 * host * reps) * 1.5e9))
        for i, (a, b) in enumerate(events):
            a.record()
            fn(i % n_sets)
            b.record()
        self.sync()
        times = sorted(a.elapsed_time(b) for a, b in events)
        q = lambda f: times[min(len(times) - 1, int(f * len(times)))]  # noqa: E731
        return {
            "ms": statistics.median(times),
            "ms_p10": q(0.1),
            "ms_p90": q(0.9),
            "reps": reps,
            "sets": n_sets,
        }

    def run_impl(
        self, base: dict, impl: str, call, n_sets: int, ref, tol: float, flops: int, nbytes: int, ours: bool
    ) -> dict:
        """Check `call(0)` against `ref`, then time `call(i)`; one result row."""
        row = {**base, "impl": impl, "flops": flops, "bytes": nbytes}
        try:
            t0 = time.perf_counter()
            out = call(0)
            self.sync()
            row["first_call_s"] = round(time.perf_counter() - t0, 3)
            if ours:
                row["kernel_id"] = _last_kernel_id()
            err = self.rel_err(out, ref)
            del out
            row["rel_err"] = err if math.isfinite(err) else "inf"
            if not err <= tol:
                row.update(status="wrong", reason=f"relative error {err:.3g} above {tol:g}; not timed")
                return row
            row.update(status="ok", **self.time_ms(call, n_sets))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row
            msg = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[
                :400
            ]
            if any(s.lower() in str(exc).lower() for s in _STICKY):
                row.update(status="failed", reason=msg)
                self.emit(row)
                raise ContextLost(msg) from exc
            if isinstance(exc, self.skip_errors) or not ours:
                row.update(status="skipped", reason=msg)
            else:
                row.update(status="failed", reason=msg)
            return row
        row["tflops"] = round(tflops(flops, row["ms"]), 2)
        row["tbps"] = round(tbps(nbytes, row["ms"]), 3)
        return row

    def copy_bandwidth(self) -> dict:
        """Device-to-device copy of 1 GiB: bytes read + written over the median time."""
        torch = self.torch
        n = 1 << (24 if DRY_RUN else 30)
        src = torch.empty(n, dtype=torch.uint8, device=DEVICE).random_(1, 255, generator=self.gen)
        dst = torch.empty_like(src)
        t = self.time_ms(lambda i: dst.copy_(src), 1)
        src = dst = None  # free the 2 GiB before the cases
        self.empty_cache()
        return {"copy_ms": t["ms"], "copy_tbps": round(tbps(2 * n, t["ms"]), 3)}


def _last_kernel_id() -> str | None:
    """The kernel the latest warpsched call ran (its source's digest; the kernels folder has its source)."""
    from warpsched.kernels.runtime import default_runtime

    last = default_runtime().last
    return last.kernel_id if last is not None else None


def write_kernels(folder: Path) -> None:
    """Every kernel this process built, as the backtest reads them (bench/backtest.py): per kernel id a
    folder with its exact kernel.cu and a config.json (family, entry, tile, stages, the commit)."""
    from warpsched.kernels.runtime import default_runtime

    commit = None
    for kid, info in default_runtime().sources.items():
        where = folder / kid
        if (where / "kernel.cu").is_file():
            continue
        commit = commit if commit is not None else _commit()  # git once, and only for a new kernel
        where.mkdir(parents=True, exist_ok=True)
        (where / "kernel.cu").write_text(info["source"])
        config = {k: v for k, v in info.items() if k != "source"}
        (where / "config.json").write_text(json.dumps({**config, "commit": commit}, indent=1) + "\n")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return ""


def write_rows(report: dict, folder: Path, results_file: str) -> None:
    """rows.json beside the kernels: each timed warpsched row with its kernel and call shape."""
    from warpsched.kernels.families import FAMILIES

    rows = []
    for family, data in report["families"].items():
        names = FAMILIES[family].geometry_module().SHAPE
        for r in data.get("rows", []):
            if r.get("impl") == "warpsched" and r.get("kernel_id"):
                rows.append(
                    {
                        "file": results_file,
                        "index": r["index"],
                        "family": family,
                        "case": r["case"],
                        "shape": {n: r[n] for n in names},
                        "measured_ms": r.get("ms"),
                        "status": r.get("status"),
                        "kernel_id": r["kernel_id"],
                    }
                )
    if rows:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")


def _kernels_entry(name: str):
    from warpsched import kernels

    return getattr(kernels, name)


def run_gemm(dev: Device, index: int, case: dict) -> list[dict]:
    torch = dev.torch
    m, n, k = case["m"], case["n"], case["k"]
    base = {"family": "gemm", "index": index, "case": case_label("gemm", case), **case}
    a, b = dev.randn((m, k), torch.bfloat16), dev.randn((n, k), torch.bfloat16)
    ref = a.float() @ b.float().t()
    sets = dev.copies((a, b), rotation_count(gemm_bytes(m, n, k), dev.l2))
    flops, nbytes, tol = gemm_flops(m, n, k), gemm_bytes(m, n, k), TOLERANCE["gemm"]
    rows = []

    def ours(i):
        return _kernels_entry("gemm")(*sets[i])

    rows.append(dev.run_impl(base, "warpsched", ours, len(sets), ref, tol, flops, nbytes, True))
    rows.append(
        dev.run_impl(
            base,
            "torch.matmul",
            lambda i: torch.matmul(sets[i][0], sets[i][1].t()),
            len(sets),
            ref,
            tol,
            flops,
            nbytes,
            False,
        )
    )
    return rows


class QuantState:
    """The weight matrix of the current (model, layer, bits), reused across M."""

    def __init__(self):
        self.key = None
        self.data: dict = {}


def run_quant(dev: Device, index: int, case: dict, state: QuantState) -> list[dict]:
    torch = dev.torch
    n, k, bits, m, g = case["n"], case["k"], case["bits"], case["m"], case["group_size"]
    key = (case["model"], case["layer"], bits)
    if state.key != key:
        state.key, state.data = key, {}
        dev.empty_cache()
        codes = torch.randint(0, 2**bits, (n, k), dtype=torch.uint8, device=DEVICE, generator=dev.gen)
        scales = (
            (torch.rand((k // g, n), device=DEVICE, generator=dev.gen) + 0.5) * (2.0 / math.sqrt(k))
        ).to(torch.bfloat16)
        d = state.data
        d["codes"], d["scales"] = codes, scales
        d["w32"] = dequant_reference(codes, scales, bits, g)
        t0 = time.perf_counter()
        try:
            from warpsched.kernels.quant import pack
        except (ImportError, AttributeError) as exc:
            d["pack_error"] = f"{type(exc).__name__}: {exc}"
        else:
            try:
                try:
                    packed = pack(codes, bits)
                except Exception:  # noqa: BLE001 - a CPU-only packer: pack on the host and move
                    packed = pack(codes.cpu(), bits)
                packed = torch.as_tensor(packed).to(DEVICE)
                d["pack_s"] = round(time.perf_counter() - t0, 3)
                want = pack_bits_reference(codes[:64], bits)
                if tuple(packed.shape) != (n, k * bits // 8) or packed.dtype != torch.uint8:
                    d["pack_error"] = (
                        f"kernels.quant.pack gave {packed.dtype} {tuple(packed.shape)}, "
                        f"expected uint8 {(n, k * bits // 8)}"
                    )
                elif not torch.equal(packed[:64], want):
                    d["pack_warning"] = (
                        "kernels.quant.pack differs from the documented layout (pairs 16 bits apart, "
                        "little-endian words)"
                    )
                d["packed"] = packed
            except Exception as exc:  # noqa: BLE001
                d["pack_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    d = state.data
    x = dev.randn((m, k), torch.bfloat16)
    ref = x.float() @ d["w32"].t()
    tol = TOLERANCE["quant_gemm"]
    flops = gemm_flops(m, n, k)
    base = {"family": "quant_gemm", "index": index, "case": case_label("quant_gemm", case), **case}
    if "pack_s" in d:
        base["pack_s"] = d["pack_s"]
    if "pack_warning" in d:
        base["warning"] = d["pack_warning"]
    rows = []
    nbytes = quant_bytes(m, n, k, bits, g)
    if "packed" in d and "pack_error" not in d:
        sets = dev.copies((x, d["packed"], d["scales"]), rotation_count(nbytes, dev.l2))

        def ours(i):
            xi, wi, si = sets[i]
            return _kernels_entry("quant_gemm")(xi, wi, si, None, bits=bits, group_size=g, fmt="int")

        rows.append(dev.run_impl(base, "warpsched", ours, len(sets), ref, tol, flops, nbytes, True))
        del sets
    else:
        rows.append(
            {
                **base,
                "impl": "warpsched",
                "flops": flops,
                "bytes": nbytes,
                "status": "skipped",
                "reason": d.get("pack_error", "no packed weights"),
            }
        )
    if bits == QUANT_BASELINE_BITS:
        if "w_bf16" not in d:
            d["w_bf16"] = d["w32"].to(torch.bfloat16)
        dense = gemm_bytes(m, n, k)
        sets = dev.copies((x, d["w_bf16"]), rotation_count(dense, dev.l2))
        rows.append(
            dev.run_impl(
                base,
                "torch.matmul bf16",
                lambda i: torch.matmul(sets[i][0], sets[i][1].t()),
                len(sets),
                ref,
                tol,
                flops,
                dense,
                False,
            )
        )
        del sets
        row = {
            **base,
            "impl": "torch int4pack (tinygemm)",
            "flops": flops,
            "bytes": int4pack_bytes(m, n, k, g),
        }
        if not hasattr(torch, "_weight_int4pack_mm"):
            rows.append({**row, "status": "skipped", "reason": "torch._weight_int4pack_mm is absent"})
        else:
            try:
                if "int4" not in d:
                    packed4, sz = int4pack_operands(d["codes"], d["scales"])
                    if DRY_RUN:  # the CPU variant of the same kernel and convention
                        d["int4"] = (
                            torch._convert_weight_to_int4pack_for_cpu(d["codes"].to(torch.int32), 8),
                            sz,
                        )
                    else:
                        d["int4"] = (torch._convert_weight_to_int4pack(packed4, 8), sz)
                w4, sz = d["int4"]
                mm = torch._weight_int4pack_mm_for_cpu if DRY_RUN else torch._weight_int4pack_mm
                sets = dev.copies((x, w4, sz), rotation_count(row["bytes"], dev.l2))
                rows.append(
                    dev.run_impl(
                        base,
                        row["impl"],
                        lambda i: mm(sets[i][0], sets[i][1], g, sets[i][2]),
                        len(sets),
                        ref,
                        tol,
                        flops,
                        row["bytes"],
                        False,
                    )
                )
                del sets
            except Exception as exc:  # noqa: BLE001
                rows.append({**row, "status": "skipped", "reason": f"{type(exc).__name__}: {str(exc)[:300]}"})
    return rows


def attention_reference(torch, q, k, v, causal: bool):
    """float32 softmax(q k^T / sqrt(d)) v, in slices of (batch x heads) that keep the scores near 1 GiB."""
    b, h, n, d = q.shape
    qf, kf, vf = (t.reshape(b * h, n, d) for t in (q, k, v))
    out = torch.empty(b * h, n, d, dtype=torch.float32, device=q.device)
    step = max(1, (1 << 28) // (n * n))
    mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu_(1) if causal else None
    for s0 in range(0, b * h, step):
        sl = slice(s0, s0 + step)
        scores = torch.bmm(qf[sl].float(), kf[sl].float().transpose(1, 2)).mul_(1.0 / math.sqrt(d))
        if mask is not None:
            scores.masked_fill_(mask, float("-inf"))
        out[sl] = torch.bmm(torch.softmax(scores, dim=-1), vf[sl].float())
        del scores
    return out.reshape(b, h, n, d)


def run_attention(dev: Device, index: int, case: dict) -> list[dict]:
    torch = dev.torch
    import torch.nn.functional as F

    b, h, n, d, causal = case["batch"], case["heads"], case["seqlen"], case["head_dim"], case["causal"]
    base = {"family": "attention_fwd", "index": index, "case": case_label("attention_fwd", case), **case}
    q, k, v = (dev.randn((b, h, n, d), torch.bfloat16) for _ in range(3))
    ref = attention_reference(torch, q, k, v, causal)
    dev.empty_cache()
    sets = dev.copies((q, k, v), rotation_count(attention_bytes(b, h, n, d), dev.l2))
    flops, nbytes, tol = (
        attention_flops(b, h, n, d, causal),
        attention_bytes(b, h, n, d),
        TOLERANCE["attention_fwd"],
    )

    def ours(i):
        return _kernels_entry("attention_fwd")(*sets[i], causal=causal)

    rows = [dev.run_impl(base, "warpsched", ours, len(sets), ref, tol, flops, nbytes, True)]
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as exc:
        return rows + [
            {**base, "impl": name, "status": "skipped", "reason": f"torch.nn.attention: {exc}"}
            for name in ("sdpa flash", "sdpa cudnn")
        ]
    for name, backend in (
        ("sdpa flash", SDPBackend.FLASH_ATTENTION),
        ("sdpa cudnn", SDPBackend.CUDNN_ATTENTION),
    ):

        def call(i, backend=backend):
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(*sets[i], is_causal=causal)

        rows.append(dev.run_impl(base, name, call, len(sets), ref, tol, flops, nbytes, False))
    return rows


def _prewarm_calls(dev: "Device", family: str, cases: list[dict]) -> list:
    """One small call per kernel configuration the cases need (the runtime solves and compiles a
    configuration on its first call): quant_gemm's are keyed by bits, the batch's power-of-two regime and
    K, attention's by head_dim and causal."""
    torch = dev.torch
    calls, seen = [], set()
    for c in cases:
        if family == "gemm":
            key = ("gemm",)
        elif family == "quant_gemm":
            key = (c["bits"], 1 << max(0, (c["m"] - 1).bit_length()), c["k"])
        else:
            key = (c["head_dim"], c["causal"])
        if key in seen:
            continue
        seen.add(key)
        if family == "gemm":

            def call():
                return _kernels_entry("gemm")(
                    dev.randn((128, 64), torch.bfloat16), dev.randn((256, 64), torch.bfloat16)
                )
        elif family == "quant_gemm":
            n = min(nn for shapes in LLAMA_SHAPES.values() for nn, kk in shapes.values() if kk == c["k"])

            def call(c=c, n=n):
                from warpsched.kernels.quant import pack

                codes = torch.randint(0, 2 ** c["bits"], (n, c["k"]), dtype=torch.uint8, device=DEVICE)
                scales = torch.ones((c["k"] // c["group_size"], n), dtype=torch.bfloat16, device=DEVICE)
                return _kernels_entry("quant_gemm")(
                    dev.randn((c["m"], c["k"]), torch.bfloat16),
                    pack(codes, c["bits"]),
                    scales,
                    None,
                    bits=c["bits"],
                    group_size=c["group_size"],
                    fmt="int",
                )
        else:

            def call(c=c):
                q, k, v = (dev.randn((1, 1, 1024, c["head_dim"]), torch.bfloat16) for _ in range(3))
                return _kernels_entry("attention_fwd")(q, k, v, causal=c["causal"])

        calls.append((key, call))
    return calls


def prewarm(dev: "Device", family: str, cases: list[dict], limit_s: float, workers: int = 8) -> dict:
    """Build the kernels the cases will need in parallel threads (CP-SAT and nvcc release the GIL), so
    the cases find them loaded; stops waiting after `limit_s`. Failures are only counted: the case
    that needs the kernel reports them."""
    import queue
    import threading

    try:
        import warpsched.kernels.runtime as rt

        rt.default_runtime()  # one runtime, made before the threads share it
    except Exception as exc:  # noqa: BLE001
        return {"prewarm": f"skipped: {type(exc).__name__}: {exc}"[:200]}
    calls = _prewarm_calls(dev, family, cases)
    todo: "queue.Queue" = queue.Queue()
    for item in calls:
        todo.put(item)
    results: dict = {}

    def worker():
        while True:
            try:
                key, call = todo.get_nowait()
            except queue.Empty:
                return
            t0 = time.perf_counter()
            try:
                call()
                dev.sync()
                results[key] = ("ok", time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                results[key] = (f"{type(exc).__name__}", time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(workers, max(1, len(calls))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, limit_s - (time.perf_counter() - t0)))
    ok = sum(1 for v in results.values() if v[0] == "ok")
    errors = sorted({v[0] for v in results.values() if v[0] != "ok"})
    info = {
        "prewarm_configs": len(calls),
        "prewarm_ok": ok,
        "prewarm_errors": errors,
        "prewarm_s": round(time.perf_counter() - t0, 1),
        "prewarm_unfinished": len(calls) - len(results),
    }
    print(
        f"  prewarm: {ok} of {len(calls)} kernel configurations ready in {info['prewarm_s']} s"
        + (f"; errors {', '.join(errors)}" if errors else "")
        + (f"; {info['prewarm_unfinished']} unfinished" if info["prewarm_unfinished"] else ""),
        flush=True,
    )
    return info


def child_main(args) -> int:
    """Run one family's cases from `--start` on, one JSON line per row into `--part`."""
    family = args.child
    cases = CASES[family](args.quick)
    part = open(args.part, "a", buffering=1)

    def emit(obj):
        part.write(json.dumps(obj) + "\n")

    dev = Device(args.deadline, args.quick, emit)
    if family == "quant_gemm" and args.start == 0:
        emit({"meta": dev.copy_bandwidth()})
    if args.start == 0 and not args.no_prewarm:
        emit({"meta": prewarm(dev, family, cases, limit_s=0.6 * max(0.0, args.deadline - time.time()))})
    state = QuantState()
    for index in range(args.start, len(cases)):
        if time.time() > args.deadline:
            emit({"meta": {"stopped_at": index, "why": "time budget"}})
            return 0
        case = cases[index]
        t0 = time.perf_counter()
        try:
            if family == "gemm":
                rows = run_gemm(dev, index, case)
            elif family == "quant_gemm":
                rows = run_quant(dev, index, case, state)
            else:
                rows = run_attention(dev, index, case)
        except ContextLost as exc:
            print(f"  CUDA context lost at {case_label(family, case)}: {exc}", flush=True)
            return 3
        except Exception as exc:  # noqa: BLE001 - set-up failures (out of memory, a torch error) become a row
            msg = f"{type(exc).__name__}: {str(exc)[:300]}"
            if any(s.lower() in msg.lower() for s in _STICKY):
                emit(
                    {
                        "family": family,
                        "index": index,
                        "case": case_label(family, case),
                        **case,
                        "impl": "setup",
                        "status": "failed",
                        "reason": msg,
                    }
                )
                return 3
            rows = [
                {
                    "family": family,
                    "index": index,
                    "case": case_label(family, case),
                    **case,
                    "impl": "setup",
                    "status": "failed",
                    "reason": msg,
                }
            ]
            state.key = None
            dev.empty_cache()
        for r in rows:
            emit(r)
        if args.kernels:
            write_kernels(args.kernels)
        print(
            f"  {case_label(family, case):52s} "
            + "  ".join(_brief(r) for r in rows)
            + f"  [{time.perf_counter() - t0:.1f}s]",
            flush=True,
        )
    return 0


def _brief(r: dict) -> str:
    if r.get("status") == "ok":
        metric = (
            f"{r['tbps']:.2f} TB/s"
            if r["family"] == "quant_gemm" and r.get("m", 0) <= 16
            else f"{r['tflops']:.0f} TF/s"
        )
        return f"{r['impl']}: {r['ms'] * 1e3:.1f} us {metric}"
    return f"{r['impl']}: {r.get('status')}"


# ---------------------------------------------------------------------------------------------------
# Orchestration, results file, plots, the table
# ---------------------------------------------------------------------------------------------------


def _read_part(path: Path) -> tuple[list[dict], list[dict]]:
    rows, metas = [], []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a killed process
            (metas if "meta" in obj else rows).append(obj.get("meta", obj))
    return rows, metas


def run_family(
    family: str,
    quick: bool,
    budget_s: float,
    tmp: Path,
    no_prewarm: bool = False,
    kernels: Path | None = None,
) -> dict:
    cases = CASES[family](quick)
    part = tmp / f"{family}.jsonl"
    deadline = time.time() + budget_s
    start, exits, stalls = 0, [], 0
    while start < len(cases) and time.time() < deadline and stalls < 3:
        cmd = (
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                family,
                "--start",
                str(start),
                "--deadline",
                str(deadline),
                "--part",
                str(part),
            ]
            + (["--quick"] if quick else [])
            + (["--no-prewarm"] if no_prewarm else [])
            + (["--kernels", str(kernels)] if kernels else [])
        )
        try:
            rc = subprocess.run(cmd, timeout=max(30.0, deadline - time.time() + 60)).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        exits.append(rc)
        if rc == 0 or rc == "timeout":
            break
        # the process ended early: rc 3 after a lost CUDA context (the case's row written), else a crash
        seen = {r["index"] for r in _read_part(part)[0]}
        nxt = start
        while nxt in seen:
            nxt += 1
        stalls = stalls + 1 if nxt == start else 0
        if (rc != 3 or nxt == start) and nxt < len(cases):
            case = cases[nxt]
            with open(part, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "family": family,
                            "index": nxt,
                            "case": case_label(family, case),
                            **case,
                            "impl": "process",
                            "status": "failed",
                            "reason": f"the process ended with {rc}",
                        }
                    )
                    + "\n"
                )
            nxt += 1
        start = nxt
    rows, metas = _read_part(part)
    seen = {r["index"] for r in rows}
    not_run = [i for i in range(len(cases)) if i not in seen]
    for i in not_run:
        rows.append(
            {
                "family": family,
                "index": i,
                "case": case_label(family, cases[i]),
                **cases[i],
                "impl": "-",
                "status": "not_run",
                "reason": "time budget",
            }
        )
    rows.sort(key=lambda r: r["index"])
    meta = {}
    for m in metas:
        meta.update(m)
    return {"cases": len(cases), "not_run": len(not_run), "exits": exits, "meta": meta, "rows": rows}


def _ok(rows, impl=None, **match):
    return [
        r
        for r in rows
        if r.get("status") == "ok"
        and (impl is None or r["impl"] == impl)
        and all(r.get(k) == v for k, v in match.items())
    ]


def add_ratios(report: dict) -> None:
    """speedup_vs_<baseline> = baseline median ms / warpsched median ms on the same case (> 1: warpsched
    faster)."""
    for family, fam in report["families"].items():
        rows = fam["rows"]
        if family == "quant_gemm":
            # the baselines run once per (model, layer, M) at 4 bits and stand for every bit width
            base = {}
            for r in _ok(rows):
                if r["impl"] != "warpsched":
                    base[(r["model"], r["layer"], r["m"], r["impl"])] = r["ms"]
            for r in _ok(rows, "warpsched"):
                for impl, key in (
                    ("torch.matmul bf16", "speedup_vs_bf16"),
                    ("torch int4pack (tinygemm)", "speedup_vs_int4pack"),
                ):
                    ms = base.get((r["model"], r["layer"], r["m"], impl))
                    if ms:
                        r[key] = round(ms / r["ms"], 3)
                if fam["meta"].get("copy_tbps"):
                    r["copy_frac"] = round(r["tbps"] / fam["meta"]["copy_tbps"], 3)
            for r in _ok(rows):
                if r["impl"] != "warpsched" and fam["meta"].get("copy_tbps"):
                    r["copy_frac"] = round(r["tbps"] / fam["meta"]["copy_tbps"], 3)
        else:
            by_case: dict = {}
            for r in _ok(rows):
                by_case.setdefault(r["index"], {})[r["impl"]] = r
            for impls in by_case.values():
                ours = impls.get("warpsched")
                if ours:
                    for impl, r in impls.items():
                        if impl != "warpsched":
                            ours[f"speedup_vs_{impl.replace('torch.', '').replace('sdpa ', '')}"] = round(
                                r["ms"] / ours["ms"], 3
                            )


def _skip_reason(rows, impl="warpsched") -> str | None:
    mine = [r for r in rows if r["impl"] == impl]
    if mine and not any(r["status"] == "ok" for r in mine):
        reasons = sorted({r.get("reason", r["status"]) for r in mine if r["status"] != "not_run"})
        return "; ".join(reasons[:2]) or "not run (time budget)"
    return None


def table(report: dict) -> str:
    """The short table printed last."""
    fams = report["families"]
    out = [
        f"== {report['device_name']} ({report['device']}), torch {report['torch']}, {report['date']}"
        f"{', quick' if report['quick'] else ''}; copy bandwidth {report.get('copy_tbps') or '-'} TB/s; "
        f"GPU tests: {report.get('gpu_tests') or '-'}; {report['wall_s']:.0f} s"
    ]
    if "gemm" in fams:
        rows = fams["gemm"]["rows"]
        out.append(
            "gemm (bf16, a @ b.T)      TFLOP/s: warpsched | torch.matmul | speedup (torch ms / warpsched ms)"
        )
        for c in gemm_cases(report["quick"]):
            ours = _ok(rows, "warpsched", m=c["m"], n=c["n"], k=c["k"])
            ref = _ok(rows, "torch.matmul", m=c["m"], n=c["n"], k=c["k"])
            mine = f"{ours[0]['tflops']:.0f}" if ours else "-"
            theirs = f"{ref[0]['tflops']:.0f}" if ref else "-"
            ratio = str(ours[0].get("speedup_vs_matmul", "-")) if ours else "-"
            out.append(f"  {c['m']:>6} {mine:>10} {theirs:>14} {ratio:>9}")
        if why := _skip_reason(rows):
            out.append(f"  warpsched gemm: {why}")
    if "quant_gemm" in fams:
        rows = fams["quant_gemm"]["rows"]
        ms_ = QUANT_M
        out.append(
            "quant_gemm (int, group 128; geomean over the Llama layers): warpsched speedup vs bf16 matmul "
            "| share of copy bandwidth"
        )
        out.append("  bits " + " ".join(f"{'M=' + str(m):>13}" for m in ms_))
        for bits in QUANT_BITS:
            cells = []
            for m in ms_:
                sel = _ok(rows, "warpsched", bits=bits, m=m)
                sp = geomean(r.get("speedup_vs_bf16") for r in sel)
                fr = geomean(r.get("copy_frac") for r in sel)
                cells.append(
                    f"{sp:.2f}x|{fr:.2f}" if sp and fr else ("-" if not sel else f"{sp or 0:.2f}x|-")
                )
            if any(c != "-" for c in cells):
                out.append(f"  {bits:>4} " + " ".join(f"{c:>13}" for c in cells))
        sel4 = [
            geomean(r.get("speedup_vs_int4pack") for r in _ok(rows, "warpsched", bits=4, m=m)) for m in ms_
        ]
        if any(sel4):
            out.append("  int4 vs tinygemm " + " ".join(f"{(f'{v:.2f}x' if v else '-'):>13}" for v in sel4))
        for impl in ("torch.matmul bf16", "torch int4pack (tinygemm)"):
            cells = []
            for m in ms_:
                sel = _ok(rows, impl, m=m)
                tb = geomean(r["tbps"] for r in sel)
                tf = geomean(r["tflops"] for r in sel)
                cells.append(f"{tb:.2f}TB/s {tf:.0f}TF" if tb else "-")
            out.append(f"  {impl:26s} " + " | ".join(cells))
        if why := _skip_reason(rows):
            out.append(f"  warpsched quant_gemm: {why}")
    if "attention_fwd" in fams:
        rows = fams["attention_fwd"]["rows"]
        seqlens = ATTN_SEQLENS_QUICK if report["quick"] else ATTN_SEQLENS
        out.append("attention_fwd (bf16, FA3 convention) TFLOP/s warpsched/flash/cudnn per seqlen")
        out.append("  d    causal " + " ".join(f"{n:>15}" for n in seqlens))
        for causal in (False, True):
            for d in ATTN_HEAD_DIMS:
                cells = []
                for n in seqlens:
                    vals = []
                    for impl in ("warpsched", "sdpa flash", "sdpa cudnn"):
                        sel = _ok(rows, impl, seqlen=n, head_dim=d, causal=causal)
                        vals.append(f"{sel[0]['tflops']:.0f}" if sel else "-")
                    cells.append("/".join(vals))
                out.append(f"  {d:<4} {str(causal):6s} " + " ".join(f"{c:>15}" for c in cells))
        if why := _skip_reason(rows):
            out.append(f"  warpsched attention_fwd: {why}")
    out.append("not timed (status: impl count, first reason):")
    for family, fam in fams.items():
        counts: dict = {}
        for r in fam["rows"]:
            if r.get("status") != "ok":
                counts.setdefault((r["status"], r["impl"]), []).append(r.get("reason", ""))
        for (status, impl), reasons in sorted(counts.items()):
            out.append(f"  {family} {status}: {impl} x{len(reasons)}: {reasons[0][:110]}")
    return "\n".join(out)


def plots(report: dict, results: Path = RESULTS) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing; no plots", file=sys.stderr)
        return []
    written = []
    title = f"{report['device_name']}, {report['date']}"
    colours = {
        "warpsched": "tab:red",
        "torch.matmul": "tab:blue",
        "torch.matmul bf16": "tab:blue",
        "torch int4pack (tinygemm)": "tab:green",
        "sdpa flash": "tab:blue",
        "sdpa cudnn": "tab:green",
    }
    fams = report["families"]
    if "gemm" in fams:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        for impl in ("warpsched", "torch.matmul"):
            sel = sorted(_ok(fams["gemm"]["rows"], impl), key=lambda r: r["m"])
            if sel:
                ax.plot(
                    [r["m"] for r in sel], [r["tflops"] for r in sel], "o-", label=impl, color=colours[impl]
                )
        ax.set_xscale("log", base=2)
        sizes = [c["m"] for c in gemm_cases(report["quick"])]
        ax.set_xticks(sizes, [str(x) for x in sizes])
        ax.set_xlabel("M = N = K")
        ax.set_ylabel("TFLOP/s")
        ax.set_title(f"gemm bf16 ({title})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        written.append(_save(fig, plt, plot_path(report["device"], report["date"], "gemm", results)))
    if "quant_gemm" in fams:
        rows = fams["quant_gemm"]["rows"]
        fig, axes = plt.subplots(2, len(QUANT_M), figsize=(4.2 * len(QUANT_M), 7.5), dpi=100, sharex=True)
        layers = [(model, layer) for model in LLAMA_SHAPES for layer in LLAMA_SHAPES[model]]
        cmap = plt.get_cmap("tab10")
        copy = fams["quant_gemm"]["meta"].get("copy_tbps")
        for j, m in enumerate(QUANT_M):
            for li, (model, layer) in enumerate(layers):
                colour = cmap(li % 10)
                style = "-" if model == "llama3-8b" else "--"
                sel = sorted(_ok(rows, "warpsched", model=model, layer=layer, m=m), key=lambda r: r["bits"])
                base = {
                    impl: _ok(rows, impl, model=model, layer=layer, m=m)
                    for impl in ("torch.matmul bf16", "torch int4pack (tinygemm)")
                }
                if not sel and not any(base.values()):
                    continue
                label = f"{model} {layer}"
                for i, key in enumerate(("ms", "tbps" if m <= 16 else "tflops")):
                    ax = axes[i][j]
                    scale = 1e3 if key == "ms" else 1.0
                    if sel:
                        ax.plot(
                            [r["bits"] for r in sel],
                            [r[key] * scale for r in sel],
                            style,
                            marker="o",
                            ms=3,
                            color=colour,
                            label=label if (i == 0 and j == 0) else None,
                        )
                    for impl, marker, x in (
                        ("torch.matmul bf16", "s", 16),
                        ("torch int4pack (tinygemm)", "*", 4),
                    ):
                        for r in base[impl]:
                            ax.scatter(
                                [x],
                                [r[key] * scale],
                                marker=marker,
                                s=40 if marker == "*" else 22,
                                color=colour,
                                label=label
                                if (i == 0 and j == 0 and not sel and impl == "torch.matmul bf16")
                                else None,
                            )
            axes[0][j].set_title(f"M = {m}", fontsize=9)
            axes[0][j].set_yscale("log")
            axes[0][j].set_ylabel("median time, us (log)")
            axes[1][j].set_ylabel("achieved TB/s" if m <= 16 else "TFLOP/s")
            axes[1][j].set_xlabel("weight bits")
            if copy and m <= 16:
                axes[1][j].axhline(copy, color="0.4", lw=1, ls=":")
                axes[1][j].text(1, copy, f" copy {copy:.2f} TB/s", fontsize=7, va="bottom")
            for i in range(2):
                axes[i][j].grid(alpha=0.3)
                axes[i][j].set_xticks(
                    [1, 2, 3, 4, 5, 6, 7, 8, 16], ["1", "2", "3", "4", "5", "6", "7", "8", "bf16"]
                )
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
        fig.suptitle(
            f"quant_gemm, int weights, group 128 ({title}): warpsched = lines (solid Llama-3-8B, dashed "
            "70B); "
            "torch.matmul on bf16 weights = squares at 'bf16'; tinygemm int4 = stars at 4",
            fontsize=9,
        )
        fig.tight_layout(rect=(0, 0.07, 1, 0.97))
        written.append(_save(fig, plt, plot_path(report["device"], report["date"], "quant_gemm", results)))
    if "attention_fwd" in fams:
        rows = fams["attention_fwd"]["rows"]
        fig, axes = plt.subplots(
            2, len(ATTN_HEAD_DIMS), figsize=(4.2 * len(ATTN_HEAD_DIMS), 7), dpi=100, sharey=True
        )
        for i, causal in enumerate((False, True)):
            for j, d in enumerate(ATTN_HEAD_DIMS):
                ax = axes[i][j]
                for impl in ("warpsched", "sdpa flash", "sdpa cudnn"):
                    sel = sorted(_ok(rows, impl, head_dim=d, causal=causal), key=lambda r: r["seqlen"])
                    if sel:
                        ax.plot(
                            [r["seqlen"] for r in sel],
                            [r["tflops"] for r in sel],
                            "o-",
                            label=impl,
                            color=colours[impl],
                        )
                ax.set_xscale("log", base=2)
                seqlens = ATTN_SEQLENS_QUICK if report["quick"] else ATTN_SEQLENS
                ax.set_xticks(seqlens, [f"{n // 1024}k" if n >= 1024 else str(n) for n in seqlens])
                ax.set_title(f"head_dim {d}{', causal' if causal else ''}", fontsize=9)
                ax.set_xlabel("seqlen (batch x seqlen = 16k, heads x head_dim = 2048)", fontsize=7)
                ax.set_ylabel("TFLOP/s")
                ax.grid(alpha=0.3)
                if ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=7)
        fig.suptitle(f"attention forward, bf16 ({title})", fontsize=10)
        fig.tight_layout()
        written.append(_save(fig, plt, plot_path(report["device"], report["date"], "attention_fwd", results)))
    return written


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def gpu_info():
    """(torch module, None) when a CUDA GPU is usable, else (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if DRY_RUN:
        return torch, None
    if not torch.cuda.is_available():
        return None, "no CUDA GPU is visible on this machine"
    return torch, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer cases (gemm 2 sizes, quant_gemm Llama-3-8B bits 2/3/4/8, attention 3 seqlens)",
    )
    ap.add_argument(
        "--budget-s", type=float, default=480.0, help="seconds for all families together (default 480)"
    )
    ap.add_argument(
        "--families", default=",".join(FAMILIES), help="comma-separated subset of " + ", ".join(FAMILIES)
    )
    ap.add_argument(
        "--results", type=Path, default=RESULTS, help="folder for the JSON and PNGs (default bench/results)"
    )
    ap.add_argument(
        "--dry-run",
        action="store_true",
        help="check this script without a GPU: tiny shapes on the CPU, "
        "host-clock timing, meaningless numbers (use with --results)",
    )
    ap.add_argument(
        "--gpu-tests",
        default=None,
        help="the GPU tests' summary line, recorded in the results (gpu_suite.sh)",
    )
    ap.add_argument(
        "--no-prewarm",
        action="store_true",
        help="build each kernel on its first case instead of all of them up front in parallel threads",
    )
    ap.add_argument("--child", choices=FAMILIES, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--part", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--kernels", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if (
        args.dry_run and not DRY_RUN
    ):  # the constants above are read at import: start again with the flag in the environment
        env = {**os.environ, "GPU_BENCH_DRY_RUN": "1"}
        return subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])],
            env=env,
        ).returncode
    if args.child:
        return child_main(args)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        ap.error(f"unknown families {bad}; choose from {', '.join(FAMILIES)}")
    torch, why = gpu_info()
    if torch is None:
        print(f"gpu_bench: skipped: no GPU ({why}); nothing timed, no results written")
        return 0
    t0 = time.time()
    if DRY_RUN:
        from types import SimpleNamespace

        name, cap = "CPU dry run", (9, 0)
        props = SimpleNamespace(
            multi_processor_count=os.cpu_count(), L2_cache_size=50 * 2**20, total_memory=0
        )
    else:
        name = torch.cuda.get_device_name(0)
        props = torch.cuda.get_device_properties(0)
        cap = torch.cuda.get_device_capability(0)
    date = dt.date.today().isoformat()
    report = {
        "device": device_slug(name),
        "device_name": name,
        "date": date,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "capability": f"{cap[0]}.{cap[1]}",
        "sm_count": props.multi_processor_count,
        "l2_bytes": int(getattr(props, "L2_cache_size", 0)),
        "memory_bytes": props.total_memory,
        "quick": args.quick,
        "budget_s": args.budget_s,
        "gpu_tests": args.gpu_tests,
        "copy_tbps": None,
        "method": "CUDA events per call, median; warm-up; inputs rotated over copies covering 2x L2; random "
        "never-zero inputs; output checked vs float32 torch before timing",
        "families": {},
    }
    if cap != (9, 0):
        print(
            f"gpu_bench: this GPU is sm_{cap[0]}{cap[1]}, not sm_90: warpsched's kernels will report "
            "skipped; "
            "torch baselines still run"
        )
    out = result_path(report["device"], date, args.results)
    print(
        f"gpu_bench: {name}, {props.multi_processor_count} SMs, L2 {report['l2_bytes'] / 2**20:.0f} MiB, "
        "torch "
        f"{torch.__version__}; budget {args.budget_s:.0f} s; results -> {out}",
        flush=True,
    )
    kernels = out.with_name(out.stem + "-kernels")  # the exact source of every kernel timed
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        for i, family in enumerate(families):
            left = args.budget_s - (time.time() - t0)
            rest = sum(BUDGET_SHARES[f] for f in families[i:])
            budget = max(0.0, left * BUDGET_SHARES[family] / rest) if rest else left
            print(f"-- {family}: {len(CASES[family](args.quick))} cases, {budget:.0f} s", flush=True)
            try:
                report["families"][family] = run_family(
                    family, args.quick, budget, Path(tmp), args.no_prewarm, kernels
                )
            except KeyboardInterrupt:
                print(f"gpu_bench: interrupted during {family}; writing what was measured", flush=True)
                report["families"][family] = run_family(family, args.quick, 0.0, Path(tmp))
                break
            finally:
                if family in report["families"]:
                    report["copy_tbps"] = report["copy_tbps"] or report["families"][family]["meta"].get(
                        "copy_tbps"
                    )
                    report["wall_s"] = round(time.time() - t0, 1)
                    add_ratios(report)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(report, indent=1) + "\n")
    report["wall_s"] = round(time.time() - t0, 1)
    add_ratios(report)
    out.write_text(json.dumps(report, indent=1) + "\n")
    write_rows(report, kernels, out.name)
    pngs = plots(report, args.results)
    print(f"gpu_bench: wrote {out}" + "".join(f", {p}" for p in pngs))
    print(table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
