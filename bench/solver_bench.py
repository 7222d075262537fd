"""Solver benchmark (CPU): how fast warpsched proves optimal IIs, and how the modes compare.

    python bench/solver_bench.py [--quick] [--instances DIR] [--out FILE.json]

Sections:
- models: the kernel models (models/) on h100, h200 and b200 in every mode: II, MII, proven, the
  seconds until the II was proven (the attempts) and in all (with the secondary objectives);
- problems: every shipped problem file (solver_configs/problems/*.yaml) in every mode
  (joint, swp, ws, heuristic): II, MII, proven or not, seconds, stages, registers, smem;
- hatschet: the HatScheT MachSuite graphs (default ../shared/instances/hatschet/MachSuite):
  MII, II, proven or not, seconds per graph, the heuristic's II for comparison;
- large: random loop graphs of 500-3,000 ops from bench/large_graphs.py (classic): the same, with
  the bound gap where the II is not proven.

Writes JSON (with the machine, the preset, the date and the run's wall time), a markdown table and a
PNG plot of solve time against graph size (ops + edges; MachSuite and the kernel models told apart,
proven optima filled, unproven hollow, no schedule a cross) beside it (FILE.md, FILE.png).
`--quick` runs one graph in four of MachSuite and five model configurations (about 1.5 minutes on 2
cores). Timings are wall seconds on this machine; compare ratios from one run, never absolute numbers
across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from warpsched.models import build_model, model_reference  # noqa: E402
from warpsched.scheduler import load_hatschet, solve  # noqa: E402
from warpsched.scheduler.problem_io import problem_from_dict  # noqa: E402
from warpsched.scheduler.yaml_files import read_yaml  # noqa: E402
from warpsched.scheduler.errors import WarpschedError  # noqa: E402

MODES = ("joint", "swp", "ws", "heuristic")


# (model, machine, parameters): the shipped configurations, every family on every machine it targets
MODEL_CASES = [
    ("gemm", "h100", {}),
    ("gemm", "h200", {}),
    ("quant_gemm", "h100", {"bits": 4}),
    ("quant_gemm", "h100", {"bits": 2}),
    ("quant_gemm", "h100", {"bits": 3}),
    ("quant_gemm", "h100", {"bits": 8}),
    ("quant_gemm", "h100", {"fmt": "e2m1"}),
    ("quant_gemm", "h100", {"bits": 4, "m": 2048}),
    ("attention_fwd", "h100", {"head_dim": 128}),
    ("attention_fwd", "h100", {"head_dim": 64}),
    ("attention_fwd", "h100", {"head_dim": 256}),
    ("attention_fwd", "h200", {"head_dim": 128}),
    ("attention_fwd", "b200", {"head_dim": 128}),
]
QUICK_CASES = {0, 2, 4, 8, 12}


def bench_models(preset: str, quick: bool) -> list[dict]:
    rows = []
    for i, (name, machine, params) in enumerate(MODEL_CASES):
        if quick and i not in QUICK_CASES:
            continue
        problem = build_model(name, machine, **params)
        label = f"{name} {machine} " + " ".join(f"{k}={v}" for k, v in params.items())
        for mode in MODES:
            limit = (
                (10.0 if quick else 30.0) if mode in ("swp", "ws") else 90.0
            )  # swp/ws optima are often unprovable
            row = _run(
                label.strip(),
                lambda: solve(
                    problem,
                    machine,
                    mode=mode,
                    config=preset,
                    total_time_limit=limit,
                    time_limit=min(limit, 45.0),
                ),
                mode,
                problem,
            )
            rows.append(row)
            proof = row.get("proof_seconds")
            print(
                f"{row['instance']:40s} {mode:9s} MII {row.get('mii', '-')!s:>5} II "
                f"{row.get('ii', '-')!s:>5} "
                f"proven {row.get('proven', False)!s:5s} proof {'-' if proof is None else proof!s:>6}s all "
                f"{row['seconds']:6.2f}s" + (f"  ({row['error']})" if "error" in row else ""),
                flush=True,
            )
    return rows


def bench_problems(preset: str) -> list[dict]:
    rows = []
    for path in sorted((ROOT / "solver_configs" / "problems").glob("*.yaml")):
        data = read_yaml(path, "problem")
        if model_reference(data, str(path)) is not None:
            continue  # the kernel models have their own section
        problem, machine = problem_from_dict(data, origin=str(path), default_name=path.stem)
        for mode in MODES:
            rows.append(
                _run(
                    problem.name,
                    lambda: solve(problem, machine or "h100", mode=mode, config=preset),
                    mode,
                    problem,
                )
            )
    return rows


def bench_hatschet(folder: Path, preset: str, quick: bool, time_limit: float) -> list[dict]:
    graphs = sorted(p for p in folder.glob("*/*.graphml") if "200MHz" not in p.name)
    if quick:
        graphs = graphs[::4]
    rows = []
    for g in graphs:
        problem, machine = load_hatschet(g)
        row = _run(
            problem.name,
            lambda: solve(problem, machine, mode="classic", config=preset, total_time_limit=time_limit),
            "classic",
            problem,
        )
        rows.append(row)
        print(
            f"{row['instance']:24s} ops {row['ops']:4d} MII {row.get('mii', '-'):>4} II "
            f"{row.get('ii', '-'):>4} "
            f"heur {row.get('heuristic_ii', '-'):>4} proven {row.get('proven', False)!s:5s} "
            f"{row['seconds']:7.2f}s",
            flush=True,
        )
    return rows


def _run(name: str, call, mode: str, problem) -> dict:
    size = {"ops": len(problem.ops), "edges": len(problem.edges)}
    t0 = time.perf_counter()
    try:
        r = call()
    except WarpschedError as exc:
        return {
            "instance": name,
            "mode": mode,
            **size,
            "error": str(exc),
            "seconds": round(time.perf_counter() - t0, 3),
        }
    s = r.schedule
    return {
        "instance": name,
        "mode": mode,
        **size,
        "mii": s.mii,
        "ii": s.ii,
        "proven": s.ii_proven_optimal,
        "heuristic_ii": r.heuristic_ii,
        "seconds": round(time.perf_counter() - t0, 3),
        "stages": s.stages,
        "makespan": s.makespan,
        "smem_bytes": s.smem_bytes,
        "registers": {str(g): w.registers for g, w in s.warpgroups.items()},
        "attempts": len(s.attempts),
        "verified": r.verdict.ok,
        "proof_seconds": round(sum(a.seconds for a in s.attempts), 3) if s.ii_proven_optimal else None,
    }


def _mode_row(r: dict, proof: bool) -> str:
    """One markdown row of a mode table (with the seconds to the II proof where `proof`)."""
    extra = ["" if r.get("proof_seconds") is None else str(r["proof_seconds"])] if proof else []
    size = f"{r.get('ops', '')}/{r.get('edges', '')}"
    if "error" in r:
        cells = [
            r["instance"],
            size,
            r["mode"],
            "",
            f"error: {r['error']}",
            "",
            *extra,
            str(r["seconds"]),
            "",
            "",
            "",
        ]
    else:
        regs = "/".join(str(x) for x in r["registers"].values()) if r["registers"] else ""
        cells = [
            r["instance"],
            size,
            r["mode"],
            str(r["mii"]),
            str(r["ii"]),
            str(r["proven"]),
            *extra,
            str(r["seconds"]),
            str(r["stages"]),
            regs,
            str(r["smem_bytes"]),
        ]
    return "| " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    wall = f", {report['wall_seconds']:.0f} s wall" if report.get("wall_seconds") is not None else ""
    lines = [
        f"# Solver benchmark ({report['date']}, {report['machine']}, preset {report['preset']}"
        f"{', quick' if report.get('quick') else ''}{wall})",
        "",
        "`ops/edges`: the loop body's size; `regs`: the `setmaxnreg` budget per warpgroup (producer first); "
        "`smem`: shared-memory bytes of the rings; `stages`: pipeline stages of the schedule.",
        "",
    ]
    if report.get("models"):
        lines += [
            "## Kernel models: joint vs swp vs ws vs heuristic",
            "",
            "`proof s`: the attempts until the II was proven optimal; `s`: in all, with the secondary "
            "objectives "
            "(time-limited, best effort). swp/ws run under a short limit: their own optima are often "
            "unproven, "
            "but the IIs below joint's are proven infeasible where the table shows them larger.",
            "",
            "| model | ops/edges | mode | MII | II | proven | proof s | s | stages | regs | smem |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_mode_row(r, proof=True) for r in report["models"]]
        lines.append("")
    if report["problems"]:
        lines += [
            "## Shipped problems",
            "",
            "| problem | ops/edges | mode | MII | II | proven | s | stages | regs | smem |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_mode_row(r, proof=False) for r in report["problems"]]
    h = report["hatschet"]
    if h:
        solved = [r for r in h if "error" not in r]
        proven = sum(r["proven"] for r in solved)
        lines += [
            "",
            f"## HatScheT MachSuite: {proven}/{len(h)} proven optimal, "
            f"{sum(r['seconds'] for r in h):.1f} s in all, slowest {max(r['seconds'] for r in h):.1f} s",
            "",
            "| graph | ops | edges | MII | II | heuristic II | proven | s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in h:
            lines.append(
                f"| {r['instance']} | {r.get('ops', '')} | {r.get('edges', '')} | {r.get('mii', '')} | "
                f"{r.get('ii', r.get('error', ''))} | "
                f"{r.get('heuristic_ii', '')} | {r.get('proven', False)} | {r['seconds']} |"
            )
    if report.get("large"):
        lines += ["", "## Large loop graphs (500-3,000 ops)", "", *_large_graphs().table(report["large"])]
    return "\n".join(lines) + "\n"


def _large_graphs():
    """bench/large_graphs.py as a module (the generator and its table), from wherever this runs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("large_graphs", ROOT / "bench" / "large_graphs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# plot groups: (section, modes) -> label, colour, marker
PLOT_GROUPS = (
    ("hatschet", ("classic",), "MachSuite (classic)", "tab:blue", "o"),
    ("models", ("joint",), "kernel models, joint", "tab:red", "s"),
    ("models", ("swp",), "kernel models, swp", "tab:orange", "^"),
    ("models", ("ws",), "kernel models, ws", "tab:green", "v"),
    ("problems", ("joint", "swp", "ws"), "shipped toy problems", "tab:purple", "D"),
    ("large", ("classic",), "random large graphs (classic)", "tab:brown", "P"),
)


def plot(report: dict, path: Path) -> Path | None:
    """Solve seconds (log) against graph size (ops + edges, log): one colour and marker per group, proven
    optima filled, feasible but unproven hollow, no schedule (error or time-out) a cross. The heuristic is
    left out (it is no solve)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing; no plot written", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(10.5, 5.5), dpi=110)
    for section, modes, label, colour, marker in PLOT_GROUPS:
        rows = [r for r in report.get(section, []) if r["mode"] in modes and "ops" in r and "edges" in r]
        if not rows:
            continue
        kinds = {
            "proven": [r for r in rows if "error" not in r and r["proven"]],
            "unproven": [r for r in rows if "error" not in r and not r["proven"]],
            "error": [r for r in rows if "error" in r],
        }
        first = True
        for kind, sel in kinds.items():
            if not sel:
                continue
            xs = [r["ops"] + r["edges"] for r in sel]
            ys = [max(r["seconds"], 1e-3) for r in sel]
            style = {
                "proven": dict(marker=marker, facecolors=colour, edgecolors=colour),
                "unproven": dict(marker=marker, facecolors="none", edgecolors=colour),
                "error": dict(marker="x", c=colour),
            }[kind]
            ax.scatter(xs, ys, s=34, linewidths=1.2, alpha=0.85, label=label if first else None, **style)
            first = False
            if section == "models" and modes == (
                "joint",
            ):  # name the kernel models once, beside their joint solve
                placed: list[tuple[float, float]] = []
                for r, x, y in zip(sel, xs, ys):
                    near = sum(
                        1 for px, py in placed if px == x and abs(math.log10(py / y)) < 0.15
                    )  # stack close labels
                    placed.append((x, y))
                    name = (
                        r["instance"]
                        .replace("attention_fwd", "attn")
                        .replace("quant_gemm", "qgemm")
                        .replace("head_dim=", "d")
                    )
                    ax.annotate(
                        name,
                        (x, y),
                        xytext=(4, -3 - 7 * near),
                        textcoords="offset points",
                        fontsize=6,
                        color="0.3",
                    )
    # the legend's fill key
    ax.scatter([], [], marker="o", facecolors="grey", edgecolors="grey", label="filled: II proven optimal")
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="grey", label="hollow: II found, not proven")
    ax.scatter([], [], marker="x", c="grey", label="x: no schedule within the limit")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("graph size (ops + edges)")
    ax.set_ylabel("solve time, wall seconds (log)")
    ax.set_title(
        f"warpsched solve time vs graph size ({report['date']}, {report['machine']}"
        f"{', quick' if report.get('quick') else ''})",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="a quarter of MachSuite, five model configurations, short swp/ws limits",
    )
    ap.add_argument(
        "--instances", type=Path, default=ROOT.parent / "shared" / "instances" / "hatschet" / "MachSuite"
    )
    ap.add_argument("--preset", default="default")
    ap.add_argument("--time-limit", type=float, default=60.0, help="wall seconds per graph")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "solver_bench.json")
    ap.add_argument("--skip-hatschet", action="store_true")
    ap.add_argument("--skip-models", action="store_true")
    ap.add_argument("--skip-large", action="store_true", help="no random large graphs")
    ap.add_argument("--no-plot", action="store_true", help="write no PNG")
    args = ap.parse_args()
    if not args.skip_hatschet and not args.instances.is_dir():
        print(
            f"no HatScheT instances at {args.instances}; pass --instances DIR (or --skip-hatschet)",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    report = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "preset": args.preset,
        "quick": args.quick,
        "models": [] if args.skip_models else bench_models(args.preset, args.quick),
        "problems": bench_problems(args.preset),
        "hatschet": [],
    }
    if not args.skip_hatschet:
        report["hatschet"] = bench_hatschet(args.instances, args.preset, args.quick, args.time_limit)
    if not args.skip_large:
        large = _large_graphs()
        sizes, seeds = (large.SIZES[::2], large.SEEDS[:1]) if args.quick else (large.SIZES, large.SEEDS)
        report["large"] = large.run(sizes, seeds, args.time_limit, args.preset)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    png = None if args.no_plot else plot(report, args.out.with_suffix(".png"))
    print(markdown(report).split("## HatScheT")[-1].splitlines()[0] if report["hatschet"] else "")
    print(
        f"wall {report['wall_seconds']} s; wrote {args.out}, {args.out.with_suffix('.md')}"
        + (f" and {png}" if png else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
