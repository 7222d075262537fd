#!/usr/bin/env python3
"""Run quant_gemm schedule files on the GPU against torch: which schedules give wrong numbers?

    python3 bench/schedule_check.py SCHEDULE.json ... [--m M] [--repeats 3] [--no-fence-too] [--out FILE.json]

Each schedule (scheduler.schedule.write's JSON, e.g. from `warpsched solve --out`) is rendered, built
and run on Llama-3-8B's layer shapes at batch M, several times each, against a float32
dequantize-then-matmul reference; it prints the worst relative error per schedule and shape. With
--no-fence-too it also runs each kernel with the A-operand register fences of the register (RS)
wgmma path taken out, to tell whether they matter. For a schedule that the runtime might pick
(solves under wall-clock limits vary), this is how a wrong one is found and kept as a test case."""

from __future__ import annotations

import argparse
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHAPES = ((4096, 4096), (6144, 4096), (28672, 4096), (4096, 14336))  # (N, K): o, qkv, gate_up, down


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("schedules", nargs="+", type=Path)
    ap.add_argument("--m", type=int, help="batch rows (default: each schedule's own m)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-fence-too", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("skipped: no GPU")
        return 0
    from gpu_bench import (
        TOLERANCE,
    )  # the benchmark's quant_gemm tolerance (this script's folder is on sys.path)
    from warpsched.kernels.build import build
    from warpsched.kernels.cuda.render import render
    from warpsched.kernels.quant import dequantize, pack
    from warpsched.kernels.families.quant_gemm.launch import quant_gemm
    from warpsched.kernels.runtime import PinnedRuntime
    from warpsched.scheduler.schedule import read

    kernels = []
    for path in args.schedules:
        s = read(path)
        k = render(s)
        kernels.append((path.stem, "fenced", s, k))
        if args.no_fence_too:
            bare = (
                "\n".join(line for line in k.source.splitlines() if "// A-operand fence" not in line) + "\n"
            )
            kernels.append((path.stem, "no fence", s, dataclasses.replace(k, source=bare)))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda c: build(c[3].source, c[3].entry), kernels))

    g = torch.Generator(device="cuda").manual_seed(1)
    rows = []
    for name, variant, s, kernel in kernels:
        src = s.problem.source
        bits, group = src["bits"], src["group_size"]
        rt = PinnedRuntime(kernel)
        worst = {}
        for n, kdim in SHAPES:
            codes = torch.randint(0, 1 << bits, (n, kdim), device="cuda", generator=g)
            scales = (torch.rand(kdim // group, n, device="cuda", generator=g) + 0.5).to(torch.bfloat16) / (
                1 << (bits - 1)
            )
            x = torch.randn(args.m or src["m"], kdim, device="cuda", dtype=torch.bfloat16, generator=g)
            ref = x.float() @ dequantize(codes, scales, None, bits=bits, group_size=group, fmt="int").T
            w = pack(codes, bits)
            errs = []
            for _ in range(args.repeats):
                y = quant_gemm(x, w, scales, bits=bits, group_size=group, fmt="int", runtime=rt).float()
                errs.append(((y - ref).norm() / ref.norm()).item())
            worst[f"{n}x{kdim}"] = max(errs)
        rows.append(
            {
                "schedule": name,
                "variant": variant,
                "bits": bits,
                "m": args.m or src["m"],
                "worst_rel_err": worst,
            }
        )
        bad = [k for k, e in worst.items() if e > TOLERANCE["quant_gemm"]]
        print(
            f"{name:40s} {variant:9s} {'WRONG on ' + ', '.join(bad) if bad else 'ok':30s} "
            + " ".join(f"{e:.1e}" for e in worst.values()),
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
