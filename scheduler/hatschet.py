"""Loader for HatScheT instances: a GraphML dependence graph plus its `_RM.xml` resource model.

Format (../shared/research/compiler-anchors.md section 1.7): GraphML nodes with
`name` and `uses_resource` data, edges with `delay`, `distance` and `deptype`;
resources with `latency`, `blockingTime` (the occupancy) and `limit` (-1:
unlimited). Semantics: `t_dst >= t_src + latency(src) + delay - II * distance`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from warpsched.scheduler.errors import InputError
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
