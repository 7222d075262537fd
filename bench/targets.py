"""Where the shipped kernels stand against the speed issues' CPU targets: every shipped gemm, attention and
quant_gemm kernel's whole-kernel prediction (DESIGN.md 6.7, from its SASS) on the benchmark shapes of a
committed GPU run, beside that run's measured baselines.

    python bench/targets.py [--run h100-2026-11-24] [--out bench/results/targets.md]

Targets (issues 16 and 17, CPU): gemm and attention at least 0.9x the baseline's measured TFLOP/s
(torch.matmul; cuDNN's sdpa), quant_gemm decode (M 1..16) at least 0.75 of the measured copy bandwidth for
int4, 0.6 for int2/int3 and 0.8 for int8, prefill (M 2048) at least 0.95x the bf16 matmul's TFLOP/s.
Builds each shipped kernel once (cached); a few minutes on a cold cache.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from warpsched.kernels import perf, predict
from warpsched.kernels.driver import build_schedule
from warpsched.kernels.package import read
from warpsched.kernels.package.manifest import load_schedule

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUANT_DECODE = {2: 0.6, 3: 0.6, 4: 0.75, 8: 0.8}  # of the copy bandwidth
RATIO = {"gemm": 0.9, "attention_fwd": 0.9, "prefill": 0.95}


def baselines(run: dict) -> dict:
    """(family, case) -> the measured baseline row, and the copy bandwidth under 'copy_tbps'."""
    wanted = {"gemm": "torch.matmul", "attention_fwd": "sdpa cudnn", "quant_gemm": "torch.matmul bf16"}
    out = {"copy_tbps": run["copy_tbps"]}
    for family, impl in wanted.items():
        for row in run["families"][family]["rows"]:
            if row["impl"] == impl and row.get("status") == "ok":
                out[family, _key(family, row)] = row
    return out


def _key(family: str, row: dict):
    """A row's shape: quant_gemm's bf16 baseline was timed once per shape, beside one of the widths."""
    return (row["m"], row["n"], row["k"]) if family == "quant_gemm" else row["case"]


def kernels(machine: str) -> list[tuple]:
    """(entry, tile, trip, stages) of every shipped kernel for `machine`."""
    chip = perf.load_chip(machine)
    out = []
    for entry in read():
        if entry.key.machine != machine:
            continue
        schedule = load_schedule(entry)
        built = build_schedule(schedule)
        sass = predict.sass_of(built.report.cubin)
        trip = predict.trip_of(sass, built.kernel.entry, chip, entry.key.model, built.kernel.tile)
        out.append((entry, built.kernel.tile, trip, schedule.stages))
    return out


def rows(run: dict, machine: str) -> list[dict]:
    base = baselines(run)
    chip = perf.load_chip(machine)
    out = []
    for entry, tile, trip, stages in kernels(machine):
        family, params = entry.key.model, dict(entry.key.params)
        for row in run["families"][family]["rows"]:
            if row["impl"] != "warpsched":
                continue
            shape, target, measure = _case(family, params, tile, row)
            if shape is None or (measure != "copy" and (family, _key(family, row)) not in base):
                continue
            p = perf.predict(trip, predict.launch_for(family, shape, tile, chip), chip, stages)
            if measure == "copy":
                value, reference = p.predicted_tbps, base["copy_tbps"]
            else:
                value, reference = p.predicted_tflops, base[family, _key(family, row)]["tflops"]
            out.append(
                {
                    "family": family,
                    "case": row["case"],
                    "kernel": entry.name,
                    "predicted_us": round(p.predicted_us, 1),
                    "bound": p.bound,
                    "measure": "TB/s of copy" if measure == "copy" else "TFLOP/s of baseline",
                    "predicted": round(value, 3),
                    "reference": reference,
                    "ratio": round(value / reference, 3),
                    "target": target,
                    "met": value / reference >= target,
                }
            )
    return out


def _case(family: str, params: dict, tile: dict, row: dict):
    """The shape a run's row times, the target ratio and what it is a ratio of; (None, ..) when the shipped
    kernel is not the one for that row."""
    if family == "gemm":
        return {"m": row["m"], "n": row["n"], "k": row["k"]}, RATIO["gemm"], "baseline"
    if family == "attention_fwd":
        if row["head_dim"] != params.get("head_dim") or bool(row["causal"]) != bool(params.get("causal")):
            return None, 0, ""
        shape = {
            "batch": row["batch"],
            "heads": row["heads"],
            "seqlen": row["seqlen"],
            "head_dim": row["head_dim"],
        }
        return shape, RATIO["attention_fwd"], "baseline"
    if row["bits"] != params.get("bits") or row["group_size"] != params.get("group_size"):
        return None, 0, ""
    shape = {"m": row["m"], "n": row["n"], "k": row["k"]}
    decode = params.get("m", 16) <= 16
    if decode and row["m"] <= 16:
        return shape, QUANT_DECODE.get(row["bits"], 0.6), "copy"
    if not decode and row["m"] > 16 * 64 and row["m"] <= params.get("m", 0):
        return shape, RATIO["prefill"], "baseline"
    return None, 0, ""


def markdown(found: list[dict], run: str, machine: str) -> str:
    lines = [
        f"# Predicted against the targets ({run} baselines, {machine} chip)",
        "",
        "Every shipped kernel's whole-kernel prediction (its SASS) on the benchmark shapes of the committed "
        f"GPU run `{run}`, beside that run's measured baselines; regenerate with `python bench/targets.py`.",
        "",
        "| family | rows | targets met | worst ratio (target) |",
        "|---|---|---|---|",
    ]
    for family in sorted({r["family"] for r in found}):
        these = [r for r in found if r["family"] == family]
        worst = min(these, key=lambda r: r["ratio"] / r["target"])
        lines.append(
            f"| {family} | {len(these)} | {sum(r['met'] for r in these)} | "
            f"{worst['ratio']:.2f} ({worst['target']}) {worst['case']} |"
        )
    lines += [
        "",
        "| family | case | kernel | predicted us | bound | measure | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in found:
        lines.append(
            f"| {r['family']} | {r['case']} | {r['kernel']} | {r['predicted_us']} | {r['bound']} | "
            f"{r['measure']} | {r['ratio']:.2f} | {r['target']} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="h100-2026-11-24", help="the committed GPU run whose baselines to use")
    ap.add_argument("--machine", default="h100")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, help="markdown to write (default <results>/targets-<run>.md)")
    args = ap.parse_args(argv)
    run = json.loads((args.results / f"{args.run}.json").read_text())
    found = rows(run, args.machine)
    out = args.out or args.results / f"targets-{args.run}.md"
    out.write_text(markdown(found, args.run, args.machine))
    met = sum(r["met"] for r in found)
    print(f"{met}/{len(found)} rows at their target; written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
