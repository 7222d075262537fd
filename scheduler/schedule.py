"""The schedule and its JSON file (DESIGN.md section 5).

`Schedule` is what a solve produces and what `kernels/` consumes. The JSON
writer never drops a contract field; the reader ignores unknown fields and
rebuilds the problem and machine from the file alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine, machine_from_dict, machine_to_dict
from warpsched.scheduler.paths import check_writable_file
from warpsched.scheduler.yaml_files import read_text

FORMAT = "warpsched.schedule/1"
MODES = ("joint", "swp", "ws", "heuristic", "classic")


@dataclass(frozen=True)
class Placement:
    start: int
    stage: int
    row: int
    warpgroup: int | None


@dataclass(frozen=True)
class WarpgroupPlan:
    role: str
    registers: int
    need: int
    ops: tuple[str, ...]


@dataclass(frozen=True)
class Buffer:
    kind: str  # "ring" (an smem value) or "staging" (a register value handed across warpgroups)
    depth: int
    bytes: int
    hold: int  # cycles a slot is held per iteration


@dataclass(frozen=True)
class Attempt:
    """One CP-SAT solve over the candidates `ii..ii_max`."""

    ii: int
    ii_max: int
    status: str
    seconds: float
    deterministic_time: float
    bound: float | None = None
    found_ii: int | None = None
    relaxed: bool = False  # solved without the shared register file: its INFEASIBLE and bound still prove

    def to_json(self) -> dict:
        out = {
            "ii": self.ii,
            "ii_max": self.ii_max,
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "deterministic_time": round(self.deterministic_time, 4),
            "bound": self.bound,
        }
        if self.found_ii is not None:
            out["found_ii"] = self.found_ii
        if self.relaxed:
            out["relaxed"] = True
        return out


@dataclass(frozen=True)
class Objective:
    name: str
    value: int
    bound: float | None
    status: str


@dataclass(frozen=True)
class Schedule:
    problem: Problem
    machine: Machine
    mode: str
    ii: int
    mii: int
    res_mii: int
    rec_mii: int
    ii_proven_optimal: bool
    attempts: tuple[Attempt, ...]
    ops: dict[str, Placement]
    warpgroups: dict[int, WarpgroupPlan]
    buffers: dict[str, Buffer]
    smem_bytes: int
    makespan: int
    solve_seconds: float
    objectives: tuple[Objective, ...] = ()
    solver: dict = field(default_factory=dict)
    verified: bool | None = None
    interrupted: bool = (
        False  # the search was stopped (Ctrl-C): the best schedule found by then, claimed optimal in nothing
    )

    @property
    def stages(self) -> int:
        stages = [p.stage for p in self.ops.values()]
        return max(stages) - min(stages) + 1

    def start(self, name: str) -> int:
        return self.ops[name].start


def graph_to_json(problem: Problem) -> dict:
    return {
        "ops": [
            {
                "name": o.name,
                "kind": o.kind,
                "unit": o.unit,
                "occupancy": o.occupancy,
                "issue": o.issue,
                "latency": o.latency,
                "issuer": o.issuer,
                "bytes": o.bytes,
                "space": o.space,
                "regs_per_thread": o.regs_per_thread,
                "variable_latency": o.variable_latency,
                **({"index": o.index} if o.index is not None else {}),
            }
            for o in problem.ops
        ],
        "edges": [
            {"src": e.src, "dst": e.dst, "distance": e.distance, "delay": e.delay} for e in problem.edges
        ],
        "reserved_smem": problem.reserved_smem,
    }


def graph_from_json(name: str, graph: Any, source: dict | None = None) -> Problem:
    if not isinstance(graph, dict) or not isinstance(graph.get("ops"), list):
        raise InputError("the schedule file has no graph.ops list; it was not written by warpsched")
    op_fields = set(Op.__dataclass_fields__)
    try:
        ops = [Op(**{k: v for k, v in o.items() if k in op_fields}) for o in graph["ops"]]
        edges = [
            Edge(e["src"], e["dst"], e.get("distance", 0), e.get("delay", 0)) for e in graph.get("edges", [])
        ]
    except (TypeError, KeyError, AttributeError) as exc:
        raise InputError(
            f"the schedule file's graph is malformed ({exc}); regenerate it with warpsched solve"
        ) from None
    return Problem.build(name, ops, edges, source, graph.get("reserved_smem", 0))


def to_json(s: Schedule) -> dict:
    return {
        "format": FORMAT,
        "problem": s.problem.name,
        "source": s.problem.source,
        "mode": s.mode,
        "machine": machine_to_dict(s.machine),
        "graph": graph_to_json(s.problem),
        "ii": s.ii,
        "mii": s.mii,
        "res_mii": s.res_mii,
        "rec_mii": s.rec_mii,
        "ii_proven_optimal": s.ii_proven_optimal,
        "attempts": [a.to_json() for a in s.attempts],
        "ops": {
            n: {"start": p.start, "stage": p.stage, "row": p.row, "warpgroup": p.warpgroup}
            for n, p in s.ops.items()
        },
        "warpgroups": {
            str(i): {"role": w.role, "registers": w.registers, "need": w.need, "ops": list(w.ops)}
            for i, w in sorted(s.warpgroups.items())
        },
        "buffers": {
            n: {"kind": b.kind, "depth": b.depth, "bytes": b.bytes, "hold": b.hold}
            for n, b in s.buffers.items()
        },
        "smem_bytes": s.smem_bytes,
        "makespan": s.makespan,
        "stages": s.stages,
        "objectives": [
            {"name": o.name, "value": o.value, "bound": o.bound, "status": o.status} for o in s.objectives
        ],
        "solve_seconds": round(s.solve_seconds, 4),
        "solver": s.solver,
        "verified": s.verified,
        "interrupted": s.interrupted,
    }


def from_json(data: Any) -> Schedule:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"this is not a warpsched schedule file (expected format {FORMAT!r})")
    try:
        machine = machine_from_dict(data["machine"], origin="the schedule file's machine")
        problem = graph_from_json(data["problem"], data["graph"], data.get("source"))
        ops = {
            n: Placement(p["start"], p["stage"], p["row"], p.get("warpgroup")) for n, p in data["ops"].items()
        }
        wgs = {
            int(i): WarpgroupPlan(w["role"], w["registers"], w.get("need", 0), tuple(w.get("ops", ())))
            for i, w in data.get("warpgroups", {}).items()
        }
        bufs = {
            n: Buffer(b.get("kind", "ring"), b["depth"], b["bytes"], b.get("hold", 0))
            for n, b in data.get("buffers", {}).items()
        }
        attempts = tuple(
            Attempt(
                a["ii"],
                a.get("ii_max", a["ii"]),
                a["status"],
                a.get("seconds", 0.0),
                a.get("deterministic_time", 0.0),
                a.get("bound"),
                a.get("found_ii"),
                bool(a.get("relaxed", False)),
            )
            for a in data.get("attempts", [])
        )
        objectives = tuple(
            Objective(o["name"], o["value"], o.get("bound"), o.get("status", ""))
            for o in data.get("objectives", [])
        )
        return Schedule(
            problem=problem,
            machine=machine,
            mode=data["mode"],
            ii=data["ii"],
            mii=data["mii"],
            res_mii=data.get("res_mii", 0),
            rec_mii=data.get("rec_mii", 0),
            ii_proven_optimal=bool(data["ii_proven_optimal"]),
            attempts=attempts,
            ops=ops,
            warpgroups=wgs,
            buffers=bufs,
            smem_bytes=data.get("smem_bytes", 0),
            makespan=data.get("makespan", 0),
            solve_seconds=data.get("solve_seconds", 0.0),
            objectives=objectives,
            solver=data.get("solver", {}),
            verified=data.get("verified"),
            interrupted=bool(data.get("interrupted", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"the schedule file is missing or mangles a required field ({exc!s}); regenerate it with "
            "warpsched solve"
        ) from None


def write(s: Schedule, path: str | Path) -> None:
    check_writable_file(path, "schedule file")
    Path(path).write_text(json.dumps(to_json(s), indent=1) + "\n")


def read_json(path: str | Path) -> dict:
    p = Path(path)
    text = read_text(p, "schedule")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"schedule file {str(p)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        kind = {"list": "array", "str": "string", "int": "number", "float": "number", "bool": "boolean"}
        raise InputError(
            f"schedule file {str(p)!r} holds a JSON {kind.get(type(data).__name__, 'null')}, "
            f"not a warpsched schedule (an object with format {FORMAT!r})"
        )
    return data


def read(path: str | Path) -> Schedule:
    return from_json(read_json(path))
