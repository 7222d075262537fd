"""Tests of the HatScheT loader (scheduler/hatschet.py) and classic-mode solves of a MachSuite sample.

The sample lives in tests/data/hatschet/ (LGPL-3.0 data, see its README.md). Golden IIs were
recorded from `scheduler.solve(..., mode="classic")` with the default preset; each is proven
optimal (every smaller candidate from MII up is INFEASIBLE) and checked by the verifier.
"""

from __future__ import annotations

import shutil
from math import ceil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from warpsched.scheduler import solve
from warpsched.scheduler.errors import InputError, WarpschedError
from warpsched.scheduler.hatschet import (
    default_rm_path,
    hatschet_instance,
    load_hatschet,
    load_resources,
    write_hatschet,
)
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from tests.conftest import DATA

SAMPLE_DIR = DATA / "hatschet"

# graph -> (MII, proven optimal II).  What each one exercises:
GOLDEN = {
    "aes2/graph14": (
        4,
        4,
    ),  # 84 ops; II == MII, found by CP-SAT (the heuristic gets 5); 8 mem_read on limit 2 give ResMII 4
    "stencil3d/graph9": (7, 9),  # 77 ops; optimum above MII: II 7 and 8 proven INFEASIBLE; mem_read limit 2
    "md_grid/graph2": (5, 6),  # 63 ops; optimum above MII by one
    "bfs_queue/graph1": (10, 10),  # 104 ops: the mid-size graph; RecMII-bound
    "sort_merge/graph2": (6, 6),  # 103 ops, 19 loop-carried edges; special_loop limit 1 saturated (ResMII 6)
    "gemm_blocked/graph5": (32, 32),  # long FP recurrence; FP units with limit 4
    "viterbi/graph4": (23, 23),  # four limited resources (mem_read 2, mem_write 1, fp_plus 4, special_loop 1)
    "md_grid/graph10": (2, 2),  # 23 ops: the smallest
}


def graph_path(key: str) -> Path:
    return SAMPLE_DIR / f"{key}.graphml"


def one_sentence(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert isinstance(exc.value, WarpschedError)
    assert msg and "\n" not in msg, f"not one sentence: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{needle!r} not named in {msg!r}"
    return msg


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def graphml_counts(path: Path) -> tuple[int, int, int]:
    """(nodes, edges, edges with distance > 0), read straight from the XML."""
    root = ET.parse(path).getroot()
    nodes = [e for e in root.iter() if local(e.tag) == "node"]
    edges = [e for e in root.iter() if local(e.tag) == "edge"]
    carried = 0
    for e in edges:
        data = {d.get("key"): d.text for d in e if local(d.tag) == "data"}
        carried += int(data.get("distance", "0")) > 0
    return len(nodes), len(edges), carried


def rm_table(path: Path) -> dict[str, tuple[int, int, int]]:
    """resource -> (latency, blockingTime, limit), read straight from the XML."""
    root = ET.parse(path).getroot()
    return {
        r.get("name"): (int(r.get("latency")), int(r.get("blockingTime")), int(r.get("limit")))
        for r in root.iter()
        if local(r.tag) == "Resource"
    }


# ------------------------------------------------------------------ the sample itself


def test_sample_layout():
    graphs = sorted(str(p.relative_to(SAMPLE_DIR).with_suffix("")) for p in SAMPLE_DIR.glob("*/*.graphml"))
    assert graphs == sorted(GOLDEN)
    for key in GOLDEN:
        assert default_rm_path(graph_path(key)).exists()
    for name in ("LICENSE", "UPSTREAM_README.md", "README.md"):
        assert (SAMPLE_DIR / name).exists()
    assert "LESSER GENERAL PUBLIC LICENSE" in (SAMPLE_DIR / "LICENSE").read_text()


# ------------------------------------------------------------------ loader


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_counts_match_the_graphml(key):
    path = graph_path(key)
    problem, machine = load_hatschet(path)
    nodes, edges, carried = graphml_counts(path)
    assert len(problem.ops) == nodes
    assert len(problem.edges) == edges
    assert sum(e.distance > 0 for e in problem.edges) == carried > 0  # every sample loop has a recurrence
    assert len({op.name for op in problem.ops}) == nodes
    assert problem.name == key
    problem.check(machine)


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_resources_become_units_and_op_costs(key):
    path = graph_path(key)
    problem, machine = load_hatschet(path)
    table = rm_table(default_rm_path(path))
    assert set(machine.units) == set(table)
    for name, (latency, blocking, limit) in table.items():
        assert machine.units[name] == (None if limit == -1 else limit)
    used = {op.unit for op in problem.ops}
    assert used <= set(table)
    for op in problem.ops:
        latency, blocking, _ = table[op.unit]
        assert (op.latency, op.occupancy) == (latency, blocking)
        assert op.kind == op.unit and op.issue == 0
    assert not machine.has_warpgroups


def test_stencil3d_graph9_resources():
    problem, machine = load_hatschet(graph_path("stencil3d/graph9"))
    assert machine.units["mem_read"] == 2
    assert machine.units["mem_write"] == 1
    assert machine.units["special_virtual"] is None  # limit -1
    assert machine.units["mult_expr_FU_32_32_32_1"] is None
    reads = [op for op in problem.ops if op.unit == "mem_read"]
    assert len(reads) == 9
    assert all((op.latency, op.occupancy) == (2, 1) for op in reads)  # latency 2, blockingTime 1
    virtual = [op for op in problem.ops if op.unit == "special_virtual"]
    assert virtual and all((op.latency, op.occupancy) == (0, 0) for op in virtual)


def write_instance(tmp_path: Path, nodes: str, edges: str, resources: str, stem: str = "g") -> Path:
    g = tmp_path / f"{stem}.graphml"
    g.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph>'
        + nodes
        + edges
        + "</graph></graphml>"
    )
    (tmp_path / f"{stem}_RM.xml").write_text(
        '<?xml version="1.0"?><ModelInformation><Resources>' + resources + "</Resources></ModelInformation>"
    )
    return g


def node(i: int, res: str) -> str:
    return f'<node id="{i}"><data key="name">n{i}</data><data key="uses_resource">{res}</data></node>'


def edge(s: int, t: int, distance="0", delay="0") -> str:
    return (
        f'<edge source="{s}" target="{t}"><data key="delay">{delay}</data>'
        f'<data key="distance">{distance}</data><data key="deptype">Data</data></edge>'
    )


MUL = '<Resource name="mul" latency="5" blockingTime="3" limit="1"/>'
ADD = '<Resource name="add" latency="1" blockingTime="1" limit="-1"/>'


def test_blocking_time_is_the_occupancy_and_latency_comes_from_the_rm(tmp_path):
    g = write_instance(
        tmp_path,
        node(1, "mul") + node(2, "add") + node(3, "mul"),
        edge(1, 2) + edge(2, 3, delay="1") + edge(3, 1, distance="2"),
        MUL + ADD,
    )
    problem, machine = load_hatschet(g)
    ops = problem.op_by_name
    assert (ops["n1"].latency, ops["n1"].occupancy, ops["n1"].unit) == (5, 3, "mul")
    assert (ops["n2"].latency, ops["n2"].occupancy) == (1, 1)
    assert machine.units == {"mul": 1, "add": None}
    assert [(e.src, e.dst, e.distance, e.delay) for e in problem.edges] == [
        ("n1", "n2", 0, 0),
        ("n2", "n3", 0, 1),
        ("n3", "n1", 2, 0),
    ]
    r = solve(problem, machine, mode="classic")
    # two mul ops of occupancy 3 on one unit: ResMII 6; the recurrence 5 + 1+1 + 5 = 12 over distance 2:
    # RecMII 6.
    # But the recurrence pins t3 - t1 to [7, 2*II - 5], and the two 3-cycle occupancies need
    # (t3 - t1) mod II in [3, II - 3]: impossible at II 6 and 7, first possible at II 8 (t3 - t1 = 11).
    # With blockingTime read as 1 (or as the latency 5) the answer would differ (6 or infeasible below 10).
    assert r.schedule.mii == 6 and r.ii == 8 and r.proven and r.verdict.ok
    assert [(a.ii, a.status) for a in r.schedule.attempts][:2] == [(6, "INFEASIBLE"), (7, "INFEASIBLE")]


def test_rm_defaults_to_graph_rm_xml():
    path = graph_path("md_grid/graph2")
    assert default_rm_path(path) == path.with_name("graph2_RM.xml")
    p1, m1 = load_hatschet(path)
    p2, m2 = load_hatschet(path, path.with_name("graph2_RM.xml"))
    assert p1 == p2 and m1 == m2
    assert p1.source["rm"].endswith("graph2_RM.xml")
    assert p1.source["hatschet"].endswith("graph2.graphml")


def test_explicit_rm_elsewhere(tmp_path):
    src = graph_path("md_grid/graph10")
    rm = tmp_path / "renamed.xml"
    shutil.copy(default_rm_path(src), rm)
    graph = tmp_path / "graph10.graphml"
    shutil.copy(src, graph)  # no graph10_RM.xml beside it
    problem, machine = load_hatschet(graph, rm)
    assert len(problem.ops) == graphml_counts(src)[0]
    assert machine.units["mem_read"] == 2
    with pytest.raises(InputError):
        load_hatschet(graph)  # the default RM is absent


def test_load_resources():
    res = load_resources(SAMPLE_DIR / "stencil3d/graph9_RM.xml")
    assert res["mem_read"] == (2, 1, 2)
    assert res["mem_write"] == (1, 1, 1)
    assert res["special_virtual"] == (0, 0, None)


# ------------------------------------------------------------------ loader errors


def test_missing_graph_beside_an_existing_rm(tmp_path):
    shutil.copy(SAMPLE_DIR / "md_grid/graph2_RM.xml", tmp_path / "nope_RM.xml")
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "nope.graphml")
    one_sentence(exc, "nope.graphml", "does not exist")


def test_missing_graph_and_rm_fail_with_one_sentence(tmp_path):
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "nope.graphml")
    one_sentence(exc, "does not exist")


def test_missing_graph_names_the_graph_file(tmp_path):
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "nope.graphml")
    one_sentence(exc, "nope.graphml", "does not exist")


def test_missing_rm(tmp_path):
    with pytest.raises(InputError) as exc:
        load_hatschet(graph_path("md_grid/graph2"), tmp_path / "absent_RM.xml")
    one_sentence(exc, "absent_RM.xml", "does not exist")


def test_truncated_graphml(tmp_path):
    src = graph_path("stencil3d/graph9")
    text = src.read_text()
    (tmp_path / "cut.graphml").write_text(text[: len(text) // 2])
    shutil.copy(default_rm_path(src), tmp_path / "cut_RM.xml")
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "cut.graphml")
    one_sentence(exc, "cut.graphml", "not well-formed XML")


def test_truncated_rm(tmp_path):
    src = graph_path("stencil3d/graph9")
    shutil.copy(src, tmp_path / "g.graphml")
    text = default_rm_path(src).read_text()
    (tmp_path / "g_RM.xml").write_text(text[: len(text) // 3])
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "g.graphml")
    one_sentence(exc, "g_RM.xml", "not well-formed XML")


def test_rm_without_resources(tmp_path):
    g = write_instance(tmp_path, node(1, "add"), "", "")
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "g_RM.xml", "<Resource>")


def test_node_using_an_undefined_resource(tmp_path):
    g = write_instance(tmp_path, node(1, "add") + node(2, "warp_drive"), edge(1, 2), MUL + ADD)
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "'2'", "'warp_drive'", "g_RM.xml")


def test_node_without_a_resource(tmp_path):
    g = write_instance(tmp_path, node(1, "add") + '<node id="2"><data key="name">n2</data></node>', "", ADD)
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "'2'", "uses_resource")


def test_edge_to_an_unknown_node(tmp_path):
    g = write_instance(tmp_path, node(1, "add") + node(2, "add"), edge(1, 2) + edge(2, 99), ADD)
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "2 -> 99", "not in the graph")


def test_sample_edge_to_an_unknown_node(tmp_path):
    src = graph_path("md_grid/graph10")
    text = src.read_text()
    first = text.index('target="', text.index("<edge")) + len('target="')
    end = text.index('"', first)
    (tmp_path / "g.graphml").write_text(text[:first] + "424242" + text[end:])
    shutil.copy(default_rm_path(src), tmp_path / "g_RM.xml")
    with pytest.raises(InputError) as exc:
        load_hatschet(tmp_path / "g.graphml")
    one_sentence(exc, "424242", "not in the graph")


@pytest.mark.parametrize("distance", ["1.5", "one", ""])
def test_non_integer_distance(tmp_path, distance):
    g = write_instance(
        tmp_path, node(1, "add") + node(2, "add"), edge(1, 2) + edge(2, 1, distance=distance), ADD
    )
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "distance", "2 -> 1", "whole number")


def test_non_integer_delay(tmp_path):
    g = write_instance(tmp_path, node(1, "add") + node(2, "add"), edge(1, 2, delay="0.5"), ADD)
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "delay", "1 -> 2")


def test_non_integer_resource_latency(tmp_path):
    g = write_instance(
        tmp_path, node(1, "add"), "", '<Resource name="add" latency="fast" blockingTime="1" limit="1"/>'
    )
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "latency", "'add'", "'fast'")


def test_graph_without_nodes(tmp_path):
    g = write_instance(tmp_path, "", "", ADD)
    with pytest.raises(InputError) as exc:
        load_hatschet(g)
    one_sentence(exc, "g.graphml", "<node>")


def test_negative_distance_is_caught_before_solving(tmp_path):
    g = write_instance(tmp_path, node(1, "add") + node(2, "add"), edge(1, 2) + edge(2, 1, distance="-1"), ADD)
    problem, machine = load_hatschet(g)
    with pytest.raises(InputError) as exc:
        solve(problem, machine, mode="classic")
    one_sentence(exc, "negative distance")


# ------------------------------------------------------------------ golden classic solves


@pytest.mark.parametrize("key", sorted(GOLDEN))
def test_classic_solve_matches_the_golden_ii(key):
    mii, ii = GOLDEN[key]
    problem, machine = load_hatschet(graph_path(key))
    r = solve(problem, machine, mode="classic")
    s = r.schedule
    assert r.verdict.ok, r.verdict.violations[:1]
    assert s.verified
    assert r.proven
    assert s.mii == mii
    assert r.ii >= s.mii
    assert r.ii == ii
    assert set(s.ops) == {op.name for op in problem.ops}
    assert all(p.warpgroup is None for p in s.ops.values())
    # the proof record: every candidate below the optimum is INFEASIBLE
    infeasible = {c for a in s.attempts if a.status == "INFEASIBLE" for c in range(a.ii, a.ii_max + 1)}
    ranged = {
        c
        for a in s.attempts
        if a.found_ii is not None and a.bound is not None
        for c in range(a.ii, min(a.ii_max, ceil(a.bound - 1e-9) - 1) + 1)
    }
    assert set(range(mii, ii)) <= infeasible | ranged


# ---------------------------------------------------------------- writing (write_hatschet)


def _shape(problem):
    return (
        [(o.name, o.unit, o.latency, o.occupancy) for o in problem.ops],
        [(e.src, e.dst, e.distance, e.delay) for e in problem.edges],
    )


def test_an_exported_instance_reads_back_as_the_same_classic_problem(tmp_path):
    """Latencies per op (several on one unit) go into the edge delays: exact, the same proven II."""
    problem, machine = load_hatschet(graph_path("md_grid/graph2"))
    ops = [
        Op(o.name, o.unit, o.latency + n % 3, o.occupancy, 0, kind=o.kind) for n, o in enumerate(problem.ops)
    ]
    varied = Problem.build("varied", ops, problem.edges)
    graph, rm, relaxed = write_hatschet(varied, machine, tmp_path / "varied.graphml")
    assert relaxed == () and rm == tmp_path / "varied_RM.xml"
    back, resources = load_hatschet(graph)
    instance, exported, _ = hatschet_instance(varied, machine)
    assert _shape(back) == _shape(instance) and resources.units == exported.units
    latency = {o.name: o.latency for o in varied.ops}
    assert [e.delay for e in back.edges] == [latency[e.src] + e.delay for e in varied.edges]
    a, b = solve(varied, machine, mode="classic"), solve(back, resources, mode="classic")
    assert a.proven and b.proven and a.ii == b.ii


def test_a_unit_held_for_different_times_is_split_as_a_named_relaxation(tmp_path):
    ops = [Op("a", "mul", 2, 3, 0), Op("b", "mul", 2, 2, 0), Op("c", "add", 1, 1, 0), Op("d", "add", 1, 2, 0)]
    edges = [Edge("a", "b"), Edge("b", "c"), Edge("c", "d"), Edge("d", "a", 2)]  # RecMII 3
    machine = Machine("m", units={"mul": 1, "add": None})
    problem = Problem.build("mixed", ops, edges)
    graph, rm, relaxed = write_hatschet(problem, machine, tmp_path / "mixed.graphml")
    assert relaxed == ("mul",)  # add is unlimited: splitting it loses nothing
    back, resources = load_hatschet(graph)
    assert resources.units == {"mul_hold3": 1, "mul_hold2": 1, "add_hold1": None, "add_hold2": None}
    exact = solve(problem, machine, mode="classic")
    loose = solve(back, resources, mode="classic")
    assert exact.proven and loose.proven and (exact.ii, loose.ii) == (5, 3)  # mul ResMII 3 + 2 -> 3
    blocking = {r.get("name"): r.get("blockingTime") for r in ET.parse(rm).getroot().iter("Resource")}
    assert blocking == {"mul_hold3": "3", "mul_hold2": "2", "add_hold1": "1", "add_hold2": "2"}


def test_export_needs_a_graphml_name(tmp_path):
    problem, machine = load_hatschet(graph_path("md_grid/graph2"))
    with pytest.raises(InputError, match=r"ends in \.graphml"):
        write_hatschet(problem, machine, tmp_path / "graph.xml")
