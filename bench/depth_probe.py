#!/usr/bin/env python3
"""Does the GPU want deeper TMA rings than the schedule's? (a check of the machine model's TMA latency)

    python3 bench/depth_probe.py [--out FILE.json]

The shipped gemm (bf16, 8192^3) and decode quant_gemm (int4 g128, M = 16, 8192 x 8192) schedules are
rendered with their own ring depths and with every TMA ring deepened (a deeper ring only lets a load
start earlier: the kernel stays correct), built, checked against torch, and timed with CUDA events
(bench/gpu_bench.py's harness: the median over repeats after warm-up, inputs rotated through copies). If
depth buys a lot, the
loaded TMA latency on this GPU is longer than solver_configs/machines/<machine>.yaml says."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def variants(schedule, deeper: tuple[int, ...]):
    from warpsched.kernels.cuda.render import render
    from warpsched.kernels.program import lower

    base = lower(schedule)
    tma = [r.value for r in base.rings if r.kind == "tma"]
    out = [
        (
            "schedule " + "/".join(f"{r.value}:{r.depth}" for r in base.rings if r.kind == "tma"),
            render(schedule, base),
        )
    ]
    for d in deeper:
        depths = {name: max(d, next(r.depth for r in base.rings if r.value == name)) for name in tma}
        try:
            out.append((f"all TMA rings >= {d}", render(schedule, lower(schedule, depths))))
        except Exception as exc:  # noqa: BLE001 - e.g. shared memory exceeded: report and go on
            print(f"  depth {d}: not rendered ({exc})", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("skipped: no GPU")
        return 0
    from warpsched.kernels.build import build
    from warpsched.kernels.package import find
    from warpsched.kernels.quant import dequantize, pack
    from warpsched.kernels import gemm, quant_gemm
    from warpsched.kernels.runtime import PinnedRuntime
    from gpu_bench import Device  # the GPU benchmark's timing harness (this script's folder is on sys.path)

    dev = Device(deadline=float("inf"), quick=False, emit=print)

    gemm_s = find("gemm", {"dtype": "bf16"}, "h100")
    quant_s = find(
        "quant_gemm", {"bits": 4, "fmt": "int", "group_size": 128, "dtype": "bf16", "m": 16}, "h100"
    )
    cases = [("gemm", k, src) for k, src in variants(gemm_s, (3, 4))] + [
        ("quant_gemm", k, src) for k, src in variants(quant_s, (4, 6, 8))
    ]
    with ThreadPoolExecutor(8) as pool:  # nvcc in parallel; the cache then serves load_kernel
        list(pool.map(lambda c: build(c[2].source, c[2].entry), cases))

    g = torch.Generator(device="cuda").manual_seed(0)
    n = 8192
    a = [torch.randn(n, n, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(2)]
    codes = torch.randint(0, 16, (n, n), device="cuda", generator=g)
    scales = (torch.rand(n // 128, n, device="cuda", generator=g) + 0.5).to(torch.bfloat16) / 8
    packed = pack(codes, 4)
    w = [packed.clone() for _ in range(4)]  # 4 x 32 MiB > L2
    x = torch.randn(16, n, device="cuda", dtype=torch.bfloat16, generator=g)
    ref_gemm = a[0][:256].float() @ a[1].float().T
    ref_quant = x.float() @ dequantize(codes, scales, None, bits=4, group_size=128, fmt="int").T
    rows = []
    for family, label, kernel in cases:
        rt = PinnedRuntime(kernel)
        if family == "gemm":
            out = gemm(a[0], a[1], runtime=rt)[:256].float()
            err = ((out - ref_gemm).norm() / ref_gemm.norm()).item()
            ms = dev.time_ms(lambda i: gemm(a[i % 2], a[1 - i % 2], runtime=rt), 2)["ms"]
            rate = f"{2 * n**3 / ms / 1e9:.0f} TFLOP/s"
        else:
            out = quant_gemm(x, w[0], scales, bits=4, group_size=128, fmt="int", runtime=rt).float()
            err = ((out - ref_quant).norm() / ref_quant.norm()).item()
            ms = dev.time_ms(
                lambda i: quant_gemm(x, w[i], scales, bits=4, group_size=128, fmt="int", runtime=rt), 4
            )["ms"]
            rate = f"{(n * n // 2 + scales.numel() * 2) / ms / 1e9:.2f} TB/s"
        rows.append({"family": family, "variant": label, "ms": ms, "rel_err": err, "rate": rate})
        print(f"{family:10s} {label:44s} {ms * 1e3:9.1f} us  {rate:>14s}  rel err {err:.1e}", flush=True)
    if args.out:
        args.out.write_text(
            json.dumps({"device": torch.cuda.get_device_name(0), "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
