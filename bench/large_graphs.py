"""Large loop graphs for the solver (issue 19 item 2): a seeded generator and its benchmark.

`generate(ops, seed)` builds a random loop body shaped like the HatScheT MachSuite graphs, only larger
(500-3,000 ops): a DAG of short-range dependences (most ops read one or two values from the last few
dozen), a few recurrences (edges back with distance 1-2), and a resource model in HatScheT's style:
memory ports, multipliers, adders and a divider limited, logic unlimited (an op on an unlimited unit
only relays latency). The same (ops, seed) gives the same graph on any
machine.

    python bench/large_graphs.py                        # 12 graphs, 500-3,000 ops, 60 s each
    python bench/large_graphs.py --sizes 500 1000 --seeds 1 --time-limit 20

writes bench/results/large_graphs.{json,md}: per graph the bounds, the II found, whether it is
proven, and the gap to the best lower bound when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from warpsched.scheduler import solve  # noqa: E402
from warpsched.scheduler.ir import Edge, Op, Problem  # noqa: E402
from warpsched.scheduler.machine import Machine  # noqa: E402
from warpsched.scheduler.search import proof_covers  # noqa: E402

# unit -> (latency, blocking time, limit; None unlimited, share of the ops): HatScheT's MachSuite
# resource models limit memory ports and DSP-heavy units and leave the rest unlimited, or nearly
# unlimited (an adder tree as wide as it needs); here the limits are set so that several units are nearly
# critical at once (memory ports, multipliers, adders and a divider that blocks 4 cycles), which is what
# makes the II hard to prove
UNITS: dict[str, tuple[int, int, int | None, int]] = {
    "mem_read": (2, 1, 2, 18),
    "mem_write": (1, 1, 1, 6),
    "mul": (3, 1, 2, 16),
    "div": (12, 4, 1, 2),
    "add": (1, 1, 4, 30),
    "logic": (0, 0, None, 28),
}
SIZES = (500, 1000, 1500, 2000, 2500, 3000)
SEEDS = (1, 2)


def machine() -> Machine:
    return Machine(
        name="hls-large",
        units={u: limit for u, (_, _, limit, _) in UNITS.items()},
        description="HatScheT-style resource model of the large-graph generator (bench/large_graphs.py)",
    )


def generate(ops: int, seed: int) -> Problem:
    """A random loop body of `ops` ops; the same arguments give the same graph."""
    if ops < 2:
        raise ValueError(f"a loop graph needs at least 2 ops, not {ops}")
    rng = random.Random(f"{ops}/{seed}")
    names = [f"n{i}" for i in range(ops)]
    kinds = rng.choices(list(UNITS), weights=[w for *_, w in UNITS.values()], k=ops)
    body = [
        Op(name=n, unit=k, latency=UNITS[k][0], occupancy=UNITS[k][1], kind=k) for n, k in zip(names, kinds)
    ]
    edges = set()
    for i in range(1, ops):
        for _ in range(rng.choice((1, 1, 2, 2, 3))):  # operands from the recent past
            j = max(0, i - 1 - int(rng.expovariate(1 / 12)))
            edges.add(Edge(names[j], names[i]))
    for _ in range(max(1, ops // 60)):  # loop-carried values: accumulators, pointers, running state
        i = rng.randrange(ops // 4, ops)
        j = max(0, i - rng.randint(1, 40))
        edges.add(Edge(names[i], names[j], distance=rng.choice((1, 1, 2))))
    return Problem.build(f"large{ops}_s{seed}", body, sorted(edges, key=lambda e: (e.src, e.dst, e.distance)))


def run(sizes, seeds, time_limit: float, preset: str) -> list[dict]:
    rows = []
    mach = machine()
    for ops in sizes:
        for seed in seeds:
            problem = generate(ops, seed)
            started = time.perf_counter()
            result = solve(problem, mach, mode="classic", config=preset, total_time_limit=time_limit)
            s = result.schedule
            lower = s.mii  # every candidate below it proven infeasible
            while lower < s.ii and proof_covers(list(s.attempts), s.mii, lower + 1):
                lower += 1
            row = {
                "graph": problem.name,
                "mode": "classic",
                "ops": len(problem.ops),
                "edges": len(problem.edges),
                "mii": s.mii,
                "ii": s.ii,
                "heuristic_ii": result.heuristic_ii,
                "proven": s.ii_proven_optimal,
                "lower_bound": s.ii if s.ii_proven_optimal else lower,
                "gap": 0.0 if s.ii_proven_optimal else round((s.ii - lower) / s.ii, 4),
                "seconds": round(time.perf_counter() - started, 2),
                "verified": result.verdict.ok,
            }
            rows.append(row)
            print(
                f"{row['graph']:16s} ops {row['ops']:5d} MII {row['mii']:4d} II {row['ii']:4d} heur "
                f"{row['heuristic_ii']} proven {row['proven']!s:5s} gap {row['gap']:.2%} "
                f"{row['seconds']:6.1f}s",
                flush=True,
            )
    return rows


def markdown(report: dict) -> str:
    lines = [
        f"# Large loop graphs ({report['date']}, {report['host']}, preset {report['preset']}, "
        f"{report['time_limit']:g} s per graph)",
        "",
        *table(report["rows"]),
    ]
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> list[str]:
    """The markdown of a run: what the rows are, the summary and one row per graph."""
    proven = sum(r["proven"] for r in rows)
    lines = [
        "Random loop bodies from `bench/large_graphs.py` (seeded; HatScheT-style resource model: memory "
        "ports, multipliers, adders and a divider limited, logic unlimited), classic mode. `lower`: "
        "the largest II below which every candidate is proven infeasible (MII at least); `gap`: "
        "(II - lower) / II where the II is not proven.",
        "",
        f"**{proven}/{len(rows)} proven optimal**, every graph scheduled and verified: "
        f"{all(r['verified'] for r in rows)}; largest gap {max(r['gap'] for r in rows):.2%}, "
        f"{sum(r['seconds'] for r in rows):.1f} s in all, slowest {max(r['seconds'] for r in rows):.1f} s.",
        "",
        "| graph | ops | edges | MII | II | heuristic II | proven | lower | gap | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['graph']} | {r['ops']} | {r['edges']} | {r['mii']} | {r['ii']} | {r['heuristic_ii']} | "
            f"{r['proven']} | {r['lower_bound']} | {r['gap']:.2%} | {r['seconds']} |"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--time-limit", type=float, default=60.0, help="wall seconds per graph")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "large_graphs")
    args = ap.parse_args()
    report = {
        "date": date.today().isoformat(),
        "host": f"{platform.machine()} {os.cpu_count()} cpus",
        "preset": args.preset,
        "time_limit": args.time_limit,
        "rows": run(args.sizes, args.seeds, args.time_limit, args.preset),
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
