"""HatScheT instances: a GraphML dependence graph plus its `_RM.xml` resource model, read and written.

Format (../shared/research/compiler-anchors.md section 1.7): GraphML nodes with
`name` and `uses_resource` data, edges with `delay`, `distance` and `deptype`;
resources with `latency`, `blockingTime` (the occupancy) and `limit` (-1:
unlimited). Semantics: `t_dst >= t_src + latency(src) + delay - II * distance`.

`write_hatschet` exports a problem for classic modulo scheduling (issue 19: our GPU loop graphs for other
schedulers). A HatScheT resource has one latency and one blocking time for every vertex on it; ours vary
per op. Latencies go exactly into the edges' delays (resources have latency 0). Occupancies cannot: a unit
whose ops hold it for different times becomes one resource per occupancy, each with the unit's limit,
which is a relaxation (`hatschet_instance` says which units it split), so a published instance's II is
its own, at most the problem's classic II and equal where nothing was split.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from warpsched.scheduler.errors import InputError, WarpschedError
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.yaml_files import read_text


def default_rm_path(graphml: str | Path) -> Path:
    p = Path(graphml)
    return p.with_name(p.name.removesuffix(".graphml") + "_RM.xml")


def _parse(path: Path, what: str) -> ET.Element:
    text = read_text(path, what)
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise InputError(f"{what} {str(path)!r} is not well-formed XML ({exc})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _int(text: str | None, what: str, path: Path) -> int:
    try:
        return int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{str(path)!r}: {what} is {text!r}, not a whole number") from None


def load_resources(rm: str | Path) -> dict[str, tuple[int, int, int | None]]:
    """resource name -> (latency, blocking time, capacity or None for unlimited)."""
    path = Path(rm)
    root = _parse(path, "resource model")
    out = {}
    for res in root.iter():
        if _local(res.tag) != "Resource":
            continue
        name = res.get("name")
        if not name:
            raise InputError(f"{str(path)!r}: a <Resource> has no name attribute")
        latency = _int(res.get("latency"), f"latency of resource {name!r}", path)
        blocking = _int(res.get("blockingTime", "1"), f"blockingTime of resource {name!r}", path)
        limit = _int(res.get("limit", "-1"), f"limit of resource {name!r}", path)
        if latency < 0 or blocking < 0:
            raise InputError(f"{str(path)!r}: resource {name!r} has a negative latency or blockingTime")
        out[name] = (latency, blocking, None if limit < 0 else limit)
    if not out:
        raise InputError(f"{str(path)!r} defines no <Resource> elements; is it a HatScheT _RM.xml file?")
    return out


def load_hatschet(graphml: str | Path, rm: str | Path | None = None) -> tuple[Problem, Machine]:
    """The problem and the machine (its resources as units) of one HatScheT instance."""
    gpath = Path(graphml)
    rpath = Path(rm) if rm is not None else default_rm_path(gpath)
    root = _parse(gpath, "graph")
    resources = load_resources(rpath)
    ops, edges, names = [], [], {}
    for node in root.iter():
        if _local(node.tag) != "node":
            continue
        data = {d.get("key"): (d.text or "").strip() for d in node if _local(d.tag) == "data"}
        node_id = node.get("id")
        resource = data.get("uses_resource")
        if node_id is None or not resource:
            raise InputError(f"{str(gpath)!r}: node {node_id!r} has no id or no uses_resource")
        if resource not in resources:
            raise InputError(
                f"{str(gpath)!r}: node {node_id!r} uses resource {resource!r}, which {str(rpath)!r} does not "
                "define"
            )
        latency, blocking, _ = resources[resource]
        name = data.get("name") or f"node_{node_id}"
        names[node_id] = name
        ops.append(Op(name=name, unit=resource, latency=latency, occupancy=blocking, issue=0, kind=resource))
    for edge in root.iter():
        if _local(edge.tag) != "edge":
            continue
        data = {d.get("key"): (d.text or "").strip() for d in edge if _local(d.tag) == "data"}
        src, dst = edge.get("source"), edge.get("target")
        if src not in names or dst not in names:
            raise InputError(f"{str(gpath)!r}: edge {src} -> {dst} names a node that is not in the graph")
        distance = _int(data.get("distance", "0"), f"distance of edge {src} -> {dst}", gpath)
        delay = _int(data.get("delay", "0"), f"delay of edge {src} -> {dst}", gpath)
        edges.append(Edge(names[src], names[dst], distance, delay))
    if not ops:
        raise InputError(f"{str(gpath)!r} has no <node> elements; is it a GraphML dependence graph?")
    units = {name: cap for name, (_, _, cap) in resources.items()}
    machine = Machine(name=f"hatschet:{rpath.name}", units=units, description=f"resource model {rpath}")
    problem = Problem.build(
        gpath.stem if gpath.parent.name == "" else f"{gpath.parent.name}/{gpath.stem}",
        ops,
        edges,
        {"hatschet": str(gpath), "rm": str(rpath)},
    )
    return problem, machine


def _resource(unit: str, occupancy: int, split: bool) -> str:
    return f"{unit}_hold{occupancy}" if split else unit


def hatschet_instance(problem: Problem, machine: Machine) -> tuple[Problem, Machine, tuple[str, ...]]:
    """`problem` as HatScheT can state it (what `write_hatschet` writes and `load_hatschet` reads back):
    latencies folded into the edges, each unit with several occupancies split into one resource per
    occupancy. Returns that problem, its machine and the limited units split (empty: the instance is exact
    for classic modulo scheduling; splitting an unlimited unit loses nothing)."""
    holds: dict[str, set[int]] = {}
    for op in problem.ops:
        holds.setdefault(op.unit, set()).add(op.occupancy)
    split = {unit for unit, values in holds.items() if len(values) > 1}  # exact for an unlimited unit
    resource = {op.name: _resource(op.unit, op.occupancy, op.unit in split) for op in problem.ops}
    ops = [Op(op.name, resource[op.name], 0, op.occupancy, 0, kind=op.kind) for op in problem.ops]
    latency = {op.name: op.latency for op in problem.ops}
    edges = [Edge(e.src, e.dst, e.distance, latency[e.src] + e.delay) for e in problem.edges]
    units = {resource[op.name]: machine.units.get(op.unit) for op in problem.ops}
    exported = Machine(
        name=f"hatschet:{machine.name}", units=units, description=f"{machine.name} for HatScheT"
    )
    relaxed = tuple(sorted(unit for unit in split if machine.units.get(unit) is not None))
    return Problem.build(problem.name, ops, edges, dict(problem.source)), exported, relaxed


def write_hatschet(
    problem: Problem, machine: Machine, graphml: str | Path
) -> tuple[Path, Path, tuple[str, ...]]:
    """Write `problem` on `machine` as `graphml` and its `_RM.xml` beside it (see `hatschet_instance`);
    returns both paths and the limited units split (a relaxation). Deterministic: the ops' order, no
    timestamps."""
    instance, exported, split = hatschet_instance(problem, machine)
    gpath = Path(graphml)
    if gpath.suffix != ".graphml":
        raise InputError(f"{str(gpath)!r}: a HatScheT graph file ends in .graphml")
    ids = {op.name: str(n) for n, op in enumerate(instance.ops)}
    graph = ET.Element("graphml", xmlns="http://graphml.graphdrawing.org/xmlns")
    body = ET.SubElement(graph, "graph")

    def data(parent: ET.Element, key: str, text: str) -> None:
        ET.SubElement(parent, "data", key=key).text = text

    for op in instance.ops:
        node = ET.SubElement(body, "node", id=ids[op.name])
        data(node, "name", op.name)
        data(node, "uses_resource", op.unit)
    for n, e in enumerate(instance.edges):
        edge = ET.SubElement(
            body, "edge", id=f"{ids[e.src]}_{ids[e.dst]}_{n}", source=ids[e.src], target=ids[e.dst]
        )
        data(edge, "delay", str(e.delay))
        data(edge, "distance", str(e.distance))
        data(edge, "deptype", "Precedence")
    model = ET.Element("ModelInformation", Version="1.0")
    resources = ET.SubElement(model, "Resources")
    holds = {op.unit: op.occupancy for op in instance.ops}
    for name, limit in exported.units.items():
        ET.SubElement(
            resources,
            "Resource",
            blockingTime=str(holds[name]),
            latency="0",
            limit=str(-1 if limit is None else limit),
            name=name,
            physicalDelay="0.0",
        )
    rpath = default_rm_path(gpath)
    try:
        gpath.parent.mkdir(parents=True, exist_ok=True)
        for tree, path in ((graph, gpath), (model, rpath)):
            ET.indent(tree, "  ")
            path.write_bytes(ET.tostring(tree, encoding="UTF-8", xml_declaration=True) + b"\n")
    except OSError as exc:
        raise WarpschedError(f"cannot write the HatScheT instance {str(gpath)!r}: {exc.strerror}") from None
    return gpath, rpath, split
