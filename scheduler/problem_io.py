"""Problem files: a loop body written as YAML (ops, edges, optionally its machine).

```yaml
name: twill_toy
machine: h100            # a machine name, a path, or an inline mapping (see solver_configs/machines/)
ops:
  - {name: S, unit: tensor, latency: 1, occupancy: 1, issue: 1, space: regs}
edges:
  - {src: S, dst: P}
  - {src: O, dst: O, distance: 1}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine, config_root, load_machine, machine_from_dict
from warpsched.scheduler.yaml_files import read_yaml, resolve


def load_problem(path: str | Path) -> tuple[Problem, Machine | None]:
    """A problem file by path, or a shipped one by name (`pingpong_toy`: solver_configs/problems/)."""
    p = shipped_problem(path)
    return problem_from_dict(read_yaml(p, "problem"), origin=str(p), default_name=p.stem)


def shipped_problem(path: str | Path) -> Path:
    """`path` as given, or the shipped problem file of that name when `path` is a bare name."""
    p = Path(path)
    if p.suffix in (".yaml", ".yml") or p.exists() or len(p.parts) != 1:
        return p
    return resolve(p.name, config_root() / "problems", "problem")


def problem_from_dict(
    data: Any, origin: str = "problem", default_name: str = "problem"
) -> tuple[Problem, Machine | None]:
    if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
        raise InputError(f"{origin} must be a YAML mapping with an 'ops' list (and usually 'edges')")
    op_fields = set(Op.__dataclass_fields__)
    ops = []
    for i, raw in enumerate(data["ops"]):
        if not isinstance(raw, dict):
            raise InputError(f"{origin}: op #{i} is not a mapping of fields")
        unknown = set(raw) - op_fields
        if unknown:
            raise InputError(
                f"{origin}: op {raw.get('name', i)!r} has unknown field {sorted(unknown)[0]!r}; known "
                f"fields: {', '.join(sorted(op_fields))}"
            )
        missing = {"name", "unit", "latency"} - set(raw)
        if missing:
            raise InputError(
                f"{origin}: op {raw.get('name', i)!r} lacks {sorted(missing)[0]!r}; every op needs name, "
                "unit and latency"
            )
        ops.append(Op(**raw))
    edges = []
    for i, raw in enumerate(data.get("edges") or []):
        if not isinstance(raw, dict) or "src" not in raw or "dst" not in raw:
            raise InputError(f"{origin}: edge #{i} needs 'src' and 'dst'")
        unknown = set(raw) - {"src", "dst", "distance", "delay"}
        if unknown:
            raise InputError(
                f"{origin}: edge {raw['src']} -> {raw['dst']} has unknown field {sorted(unknown)[0]!r}"
            )
        edges.append(Edge(str(raw["src"]), str(raw["dst"]), raw.get("distance", 0), raw.get("delay", 0)))
    machine = None
    spec = data.get("machine")
    if isinstance(spec, dict):
        machine = machine_from_dict(spec, origin=f"{origin} machine")
    elif spec is not None:
        machine = load_machine(str(spec))
    problem = Problem.build(
        str(data.get("name", default_name)), ops, edges, {"file": origin}, data.get("reserved_smem", 0)
    )
    return problem, machine
