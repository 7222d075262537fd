"""Solver benchmark (CPU): how fast warpsched proves optimal IIs, and how the modes compare.

    python bench/solver_bench.py [--quick] [--instances DIR] [--out FILE.json]

Sections:
- problems: every shipped problem file (solver_configs/problems/*.yaml) in every mode
  (joint, swp, ws, heuristic): II, MII, proven or not, seconds, stages, registers, smem;
- hatschet: the HatScheT MachSuite graphs (default ../shared/instances/hatschet/MachSuite):
  MII, II, proven or not, seconds per graph, the heuristic's II for comparison.

Writes JSON (with the machine, the preset and the date) and a markdown table beside it.
`--quick` runs one graph in four of MachSuite. Timings are wall seconds on this machine;
compare ratios from one run, never absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scheduler import load_hatschet, load_problem, solve  # noqa: E402
from scheduler.errors import WarpschedError  # noqa: E402

MODES = ("joint", "swp", "ws", "heuristic")


def bench_problems(preset: str) -> list[dict]:
    rows = []
    for path in sorted((ROOT / "solver_configs" / "problems").glob("*.yaml")):
        problem, machine = load_problem(path)
        for mode in MODES:
            rows.append(_run(problem.name, lambda: solve(problem, machine or "h100", mode=mode, config=preset), mode))
    return rows


def bench_hatschet(folder: Path, preset: str, quick: bool, time_limit: float) -> list[dict]:
    graphs = sorted(p for p in folder.glob("*/*.graphml") if "200MHz" not in p.name)
    if quick:
        graphs = graphs[::4]
    rows = []
    for g in graphs:
        problem, machine = load_hatschet(g)
        row = _run(problem.name, lambda: solve(problem, machine, mode="classic", config=preset,
                                               total_time_limit=time_limit), "classic")
        row["ops"] = len(problem.ops)
        rows.append(row)
        print(f"{row['instance']:24s} ops {row['ops']:4d} MII {row.get('mii', '-'):>4} II {row.get('ii', '-'):>4} "
              f"heur {row.get('heuristic_ii', '-'):>4} proven {row.get('proven', False)!s:5s} {row['seconds']:7.2f}s", flush=True)
    return rows


def _run(name: str, call, mode: str) -> dict:
    t0 = time.perf_counter()
    try:
        r = call()
    except WarpschedError as exc:
        return {"instance": name, "mode": mode, "error": str(exc), "seconds": round(time.perf_counter() - t0, 3)}
    s = r.schedule
    return {"instance": name, "mode": mode, "mii": s.mii, "ii": s.ii, "proven": s.ii_proven_optimal,
            "heuristic_ii": r.heuristic_ii, "seconds": round(time.perf_counter() - t0, 3), "stages": s.stages,
            "makespan": s.makespan, "smem_bytes": s.smem_bytes,
            "registers": {str(g): w.registers for g, w in s.warpgroups.items()},
            "attempts": len(s.attempts), "verified": r.verdict.ok}


def markdown(report: dict) -> str:
    lines = [f"# Solver benchmark ({report['date']}, {report['machine']}, preset {report['preset']})", ""]
    if report["problems"]:
        lines += ["## Shipped problems", "", "| problem | mode | MII | II | proven | s | stages | regs | smem |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in report["problems"]:
            if "error" in r:
                lines.append(f"| {r['instance']} | {r['mode']} | | error: {r['error']} | | {r['seconds']} | | | |")
                continue
            regs = "/".join(str(x) for x in r["registers"].values()) if r["registers"] else ""
            lines.append(f"| {r['instance']} | {r['mode']} | {r['mii']} | {r['ii']} | {r['proven']} | {r['seconds']} | "
                         f"{r['stages']} | {regs} | {r['smem_bytes']} |")
    h = report["hatschet"]
    if h:
        solved = [r for r in h if "error" not in r]
        proven = sum(r["proven"] for r in solved)
        lines += ["", f"## HatScheT MachSuite: {proven}/{len(h)} proven optimal, "
                  f"{sum(r['seconds'] for r in h):.1f} s in all, slowest {max(r['seconds'] for r in h):.1f} s", "",
                  "| graph | ops | MII | II | heuristic II | proven | s |", "|---|---|---|---|---|---|---|"]
        for r in h:
            lines.append(f"| {r['instance']} | {r.get('ops', '')} | {r.get('mii', '')} | {r.get('ii', r.get('error', ''))} | "
                         f"{r.get('heuristic_ii', '')} | {r.get('proven', False)} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of MachSuite")
    ap.add_argument("--instances", type=Path, default=ROOT.parent / "shared" / "instances" / "hatschet" / "MachSuite")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--time-limit", type=float, default=60.0, help="wall seconds per graph")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "solver_bench.json")
    ap.add_argument("--skip-hatschet", action="store_true")
    args = ap.parse_args()
    report = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} cpus",
              "preset": args.preset, "quick": args.quick, "problems": bench_problems(args.preset), "hatschet": []}
    if not args.skip_hatschet:
        if not args.instances.is_dir():
            print(f"no HatScheT instances at {args.instances}; pass --instances DIR", file=sys.stderr)
            return 2
        report["hatschet"] = bench_hatschet(args.instances, args.preset, args.quick, args.time_limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report).split("## HatScheT")[-1].splitlines()[0] if report["hatschet"] else "")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
