"""Tests of the text Gantt chart (scheduler/gantt.py).

Schedules are built by hand; the expected rows come from DESIGN.md 3.1: an op
started at t occupies its unit at rows (t + j) % II, j < occupancy, and issues
on its warpgroup at rows (t + j) % II, j < issue.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warpsched.scheduler import schedule as schedule_io
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.gantt import MIN_WIDTH, render_text, reservation_table, op_tags
from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine
from warpsched.scheduler.schedule import Buffer, Placement, Schedule, WarpgroupPlan


# ---------------------------------------------------------------- builders


def make(
    ops,
    starts,
    ii,
    *,
    edges=(),
    units=None,
    wgs=None,
    plans=None,
    buffers=None,
    mode="classic",
    proven=True,
    name="twill_toy",
    res=None,
    rec=1,
) -> Schedule:
    machine = Machine(
        "toy",
        units=units or {"tensor": 1, "sfu": 1},
        sync_latency=1,
        smem_bytes=232448,
        register_file=65536,
        max_warpgroups=4,
    )
    problem = Problem.build(name, ops, edges)
    wgs = wgs or {}
    placements = {n: Placement(t, t // ii, t % ii, wgs.get(n)) for n, t in starts.items()}
    lat = {o.name: o.latency for o in ops}
    return Schedule(
        problem=problem,
        machine=machine,
        mode=mode,
        ii=ii,
        mii=ii,
        res_mii=res or ii,
        rec_mii=rec,
        ii_proven_optimal=proven,
        attempts=(),
        ops=placements,
        warpgroups=plans or {},
        buffers=buffers or {},
        smem_bytes=sum(b.depth * (b.bytes + 16) for b in (buffers or {}).values()),
        makespan=max(t + lat[n] for n, t in starts.items()),
        solve_seconds=0.0,
    )


def twill_ops(issue_s=0, issue_o=0):
    return [Op("S", "tensor", 1, 1, issue_s), Op("P", "sfu", 1, 1, 1), Op("O", "tensor", 1, 1, issue_o)]


TWILL_EDGES = (Edge("S", "P"), Edge("P", "O"), Edge("O", "O", 1))


def twill_classic(**kw) -> Schedule:
    return make(twill_ops(), {"S": 0, "P": 1, "O": 3}, 2, edges=TWILL_EDGES, **kw)


def chart(text: str) -> dict[str, str]:
    """Lane label -> body (the characters between the bars)."""
    out = {}
    for line in text.splitlines():
        if line.endswith("|") and " |" in line and not line.startswith(" "):
            label, body = line.split(" |", 1)
            out[label.rstrip()] = body[:-1]
    return out


def runs(body: str) -> list[tuple[int, int, str]]:
    """(first column, end column, label) for every labelled run in a run-mode body."""
    return [(m.start(), m.end(), m.group(1)) for m in re.finditer(r"([A-Za-z][A-Za-z0-9]*\+\d+)[=~]*", body)]


def scale(text: str) -> int:
    m = re.search(r"1 column = (\d+) cycles?", text)
    assert m, text
    return int(m.group(1))


def check_lines(text: str, width: int) -> None:
    for line in text.splitlines():
        assert len(line) <= width, (len(line), line)
        assert all(" " <= ch <= "~" for ch in line), line


# ---------------------------------------------------------------- the Twill toy


def test_twill_toy_lanes_rows_and_no_warpgroup_lanes():
    text = render_text(twill_classic())
    lanes = chart(text)
    # S at t=0 -> row 0 stage 0; O at t=3 -> row 1 stage 1; P at t=1 -> row 1 stage 0
    assert lanes["tensor"].split() == ["S+0", "O+1"]
    assert lanes["sfu"].split() == [".", "P+0"]
    assert lanes["row"].split() == ["0", "1"]
    assert not any(label.startswith("wg") for label in lanes)
    check_lines(text, 100)


def test_header_shows_ii_mii_optimality_and_totals():
    text = render_text(twill_classic())
    head = "\n".join(text.splitlines()[:3])
    assert "twill_toy" in head and "mode classic" in head and "machine toy" in head
    assert "II 2 (proven optimal)" in head
    assert "MII 2 (res 2, rec 1)" in head
    assert "makespan 4" in head and "stages 2" in head and "smem 0 B" in head
    assert "1 column = 1 cycle" in head
    unproven = render_text(make(twill_ops(), {"S": 0, "P": 1, "O": 3}, 3, proven=False))
    assert "II 3 (not proven optimal)" in unproven


def test_legend_maps_tags_to_ops_with_placement():
    s = make(
        [Op("load_k", "tensor", 1, 1), Op("softmax_exp", "sfu", 1, 1, 1), Op("wgmma_pv", "tensor", 1, 1)],
        {"load_k": 0, "softmax_exp": 5, "wgmma_pv": 7},
        3,
        wgs={"load_k": 0, "softmax_exp": 1, "wgmma_pv": 1},
    )
    text = render_text(s)
    legend = {
        line.split()[0]: line.split()
        for line in text.splitlines()
        if re.match(r"^  [A-Z][A-Z0-9]* +\d", line)
    }
    assert legend["LK"] == ["LK", "0", "0", "0", "0", "tensor", "1", "0", "load_k"]
    assert legend["SE"] == ["SE", "5", "1", "2", "1", "sfu", "1", "1", "softmax_exp"]
    assert legend["WP"] == ["WP", "7", "2", "1", "1", "tensor", "1", "0", "wgmma_pv"]
    lanes = chart(text)
    assert lanes["tensor"].split() == ["LK+0", "WP+2", "."]


def test_lines_fit_every_width_and_rendering_is_deterministic():
    for width in (MIN_WIDTH, 41, 60, 80, 100, 160):
        s = twill_classic()
        text = render_text(s, width)
        check_lines(text, width)
        assert text == render_text(twill_classic(), width)
        assert chart(text)["tensor"].split() == ["S+0", "O+1"]


# ---------------------------------------------------------------- warpgroups


def two_warpgroups() -> Schedule:
    # II 4. S (async, issue 1) at 0 and O at 6 on wg1; P (synchronous, issue 2) at 2 on wg2.
    ops = [Op("S", "tensor", 2, 2, 1), Op("P", "sfu", 2, 2, 2), Op("O", "tensor", 2, 2, 1)]
    plans = {
        1: WarpgroupPlan("consumer", 240, 100, ("S", "O")),
        2: WarpgroupPlan("consumer", 160, 80, ("P",)),
    }
    return make(
        ops,
        {"S": 0, "P": 2, "O": 6},
        4,
        edges=TWILL_EDGES,
        wgs={"S": 1, "P": 2, "O": 1},
        plans=plans,
        mode="joint",
        buffers={"S": Buffer("staging", 2, 4096, 5)},
    )


def test_two_warpgroups_issue_and_in_flight_rows():
    text = render_text(two_warpgroups())
    lanes = chart(text)
    assert lanes["tensor"].split() == ["S+0", "S+0", "O+1", "O+1"]
    assert lanes["sfu"].split() == [".", ".", "P+0", "P+0"]
    # wg1 issues S at row 0 and O at row 2; the other rows they are in flight (lower case)
    assert lanes["wg1 consumer 240r"].split() == ["S+0", "s+0", "O+1", "o+1"]
    assert lanes["wg2 consumer 160r"].split() == [".", ".", "P+0", "P+0"]
    labels = list(lanes)
    assert labels.index("sfu") < labels.index("wg1 consumer 240r") < labels.index("wg2 consumer 160r")


def test_async_only_warpgroup_lane_is_not_blank():
    text = render_text(
        twill_classic(
            wgs={"S": 1, "P": 2, "O": 1},
            mode="joint",
            plans={1: WarpgroupPlan("consumer", 240, 0, ()), 2: WarpgroupPlan("producer", 24, 0, ())},
        )
    )
    lanes = chart(text)
    assert lanes["wg1 consumer 240r"].split() == ["s+0", "o+1"]  # issue 0: only in flight
    assert lanes["wg2 producer 24r"].split() == [".", "P+0"]


def test_buffers_section():
    text = render_text(two_warpgroups())
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("buffers"))
    assert lines[i + 1].split() == ["kind", "depth", "bytes", "hold", "total", "value"]
    assert lines[i + 2].split() == ["staging", "2", "4096", "5", str(2 * (4096 + 16)), "S"]
    assert "buffers: none" in render_text(twill_classic())


# ---------------------------------------------------------------- scaling


def large() -> Schedule:
    # II 2048: S [0, 1024) and O [1024, 2048) (stage 1) fill the tensor core; P [1100, 1612) on the sfu,
    # issued (synchronously) by the same warpgroup as the async S and O.
    ops = [Op("S", "tensor", 1100, 1024, 1), Op("P", "sfu", 600, 512, 512), Op("O", "tensor", 1100, 1024, 1)]
    return make(
        ops,
        {"S": 0, "P": 1100, "O": 3072},
        2048,
        edges=TWILL_EDGES,
        wgs={"S": 1, "P": 1, "O": 1},
        plans={1: WarpgroupPlan("consumer", 240, 0, ())},
        mode="joint",
    )


@pytest.mark.parametrize("width", [MIN_WIDTH, 72, 100, 137])
def test_large_ii_is_scaled_to_fit(width):
    text = render_text(large(), width)
    check_lines(text, width)
    k = scale(text)
    assert k > 1 and "scaled" in text
    lanes = chart(text)
    body = lanes["tensor"]
    assert math.ceil(2048 / k) == len(body)
    wg1 = [label for label in lanes if label.startswith("wg1")]
    assert wg1 == (["wg1 consumer 240r"] if width >= 72 else ["wg1 consumer"])  # labels are cut to fit
    assert len(lanes[wg1[0]]) == len(body)
    owner = {}
    for a, b, label in runs(body):
        for c in range(a, b):
            owner[c] = label
    for c in range(len(body)):
        lo, hi = c * k, min(c * k + k, 2048)
        if hi <= 1024:
            assert owner.get(c) == "S+0", (c, body)
        elif lo >= 1024:
            assert owner.get(c) == "O+1", (c, body)
    sfu = lanes["sfu"]
    for c in range(len(sfu)):
        lo, hi = c * k, min(c * k + k, 2048)
        if 1100 <= lo and hi <= 1612:
            assert sfu[c] not in ".#", (c, sfu)
        elif hi <= 1100 or lo >= 1612:
            assert sfu[c] == ".", (c, sfu)
    assert [r[2] for r in runs(sfu)] == ["P+0"]


def test_large_ii_warpgroup_lane_shows_async_work_in_flight():
    text = render_text(large(), 100)
    wg = chart(text)["wg1 consumer 240r"]
    assert "." not in wg  # S, P and O cover the whole period
    assert "~" in wg and "=" in wg  # async S/O in flight; synchronous P issuing
    assert {r[2] for r in runs(wg)} >= {"S+0", "O+1", "P+0"}


def test_small_ii_has_one_column_per_cycle_and_medium_ii_uses_runs():
    text = render_text(make([Op("A", "tensor", 1, 30)], {"A": 5}, 50), 100)
    assert "1 column = 1 cycle" in text and "scaled" not in text
    body = chart(text)["tensor"]
    cw = len(body) // 50
    assert len(body) == 50 * cw
    ((a, b, label),) = runs(body)
    assert (label, a, b) == ("A+0", 5 * cw, 35 * cw)


def test_column_shared_by_ops_shows_majority_or_hash():
    # II 1000 at width 40: 33 cycles per column. B (1 cycle at 500) shares its column with the end of A
    # ([0, 500)), which covers more of it: B would vanish, so the column shows '#'.
    s = make(
        [Op("A", "tensor", 1, 500), Op("B", "tensor", 1, 1), Op("C", "sfu", 1, 10)],
        {"A": 0, "B": 500, "C": 10},
        1000,
    )
    text = render_text(s, MIN_WIDTH)
    check_lines(text, MIN_WIDTH)
    body = chart(text)["tensor"]
    k = scale(text)
    assert k == 33 and 500 % k > 1
    assert body[500 // k] == "#"
    assert [r[2] for r in runs(body)] == ["A+0"]
    assert runs(body)[0][:2] == (0, 500 // k)
    assert set(body[500 // k + 1 :]) == {"."}


# ---------------------------------------------------------------- sub-lanes


def test_capacity_two_unit_gets_two_sub_lanes_when_ops_overlap():
    units = {"tensor": 2, "sfu": 1}
    s = make([Op("A", "tensor", 1, 2), Op("B", "tensor", 1, 2)], {"A": 0, "B": 1}, 4, units=units)
    lanes = chart(render_text(s))
    assert "tensor" not in lanes
    rows = sorted([lanes["tensor[0]"].split(), lanes["tensor[1]"].split()])
    assert rows == sorted([["A+0", "A+0", ".", "."], [".", "B+0", "B+0", "."]])
    apart = chart(
        render_text(
            make([Op("A", "tensor", 1, 2), Op("B", "tensor", 1, 2)], {"A": 0, "B": 2}, 4, units=units)
        )
    )
    assert apart["tensor"].split() == ["A+0", "A+0", "B+0", "B+0"]
    assert "tensor[1]" not in apart


def test_ring_of_overlapping_ops_packs_into_two_sub_lanes():
    # II 4, each op 2 cycles, one starting every cycle: every row holds 2 ops, and D wraps to row 0.
    # Two sub-lanes suffice: A with C, B with D.
    ops = [Op(n, "tensor", 1, 2) for n in "ABCD"]
    s = make(ops, {"A": 0, "B": 1, "C": 2, "D": 3}, 4, units={"tensor": 2})
    lanes = chart(render_text(s))
    got = sorted([lanes["tensor[0]"].split(), lanes["tensor[1]"].split()])
    assert got == sorted([["A+0", "A+0", "C+0", "C+0"], ["D+0", "B+0", "B+0", "D+0"]])
    assert "tensor[2]" not in lanes


def test_occupancy_longer_than_ii_wraps_into_sub_lanes():
    # M occupies 3 cycles from t=0 with II 2: rows 0, 1, 0 -> row 0 holds two copies
    units = {"tensor": 2}
    s = make([Op("M", "tensor", 1, 3)], {"M": 0}, 2, units=units)
    lanes = chart(render_text(s))
    assert lanes["tensor[0]"].split() == ["M+0", "M+0"]
    assert lanes["tensor[1]"].split() == ["M+0", "."]
    table = reservation_table(s)
    assert [sum(lane.solid[x].count("M") for lane in table) for x in range(2)] == [2, 1]
    over = render_text(make([Op("M", "tensor", 1, 3)], {"M": 1}, 2, units={"tensor": 1}))
    assert "! unit tensor holds 2 ops at row 1, over its capacity 1" in over


def test_unused_units_have_no_lane():
    s = make([Op("A", "tensor", 1, 1)], {"A": 0}, 1, units={"tma": 1, "tensor": 1, "sfu": 1})
    assert set(chart(render_text(s))) == {"row", "tensor"}


# ---------------------------------------------------------------- inputs


def test_round_trip_through_the_schedule_file(tmp_path):
    s = two_warpgroups()
    path = tmp_path / "s.json"
    schedule_io.write(s, path)
    assert render_text(schedule_io.read(path)) == render_text(s)


def test_bad_width_and_ii_are_user_errors():
    with pytest.raises(InputError, match="width"):
        render_text(twill_classic(), MIN_WIDTH - 1)
    s = twill_classic()
    broken = Schedule(**{**s.__dict__, "ii": 0})
    with pytest.raises(InputError, match="II"):
        render_text(broken)


def test_non_ascii_names_are_escaped():
    s = make([Op("sofmax\u00e9", "tensor", 1, 1)], {"sofmax\u00e9": 0}, 1, name="probl\u00e8me")
    text = render_text(s)
    check_lines(text, 100)
    assert "probl\\xe8me" in text and "sofmax\\xe9" in text


def test_tags_are_short_unique_and_upper_case():
    ops = [
        Op(n, "u", 1)
        for n in ("S", "s", "load_k", "load_v", "wgmma_qk", "wgmma_qk1", "loadK", "exp2", "\u00e9")
    ]
    tags = op_tags(ops)
    assert len(set(tags.values())) == len(ops)
    assert tags["S"] == "S" and tags["load_k"] == "LK" and tags["wgmma_qk1"] == "WQ1"
    for tag in tags.values():
        assert re.fullmatch(r"[A-Z][A-Z0-9]*", tag) and len(tag) <= 6


# ---------------------------------------------------------------- property


@st.composite
def schedules(draw):
    ii = draw(st.one_of(st.integers(1, 12), st.integers(13, 3000)))
    units = {"a": 1, "b": 2, "c": None}
    n = draw(st.integers(1, 4))
    ops, starts, wgs = [], {}, {}
    use_wgs = draw(st.booleans())
    for i in range(n):
        occ = draw(st.integers(0, 2 * ii))
        ops.append(Op(f"op_{i}", draw(st.sampled_from(sorted(units))), 1, occ, draw(st.integers(0, ii))))
        starts[f"op_{i}"] = draw(st.integers(0, 3 * ii))
        if use_wgs:
            wgs[f"op_{i}"] = draw(st.integers(0, 2))
    return make(ops, starts, ii, units=units, wgs=wgs, mode="joint" if use_wgs else "classic")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.integers(MIN_WIDTH, 160))
def test_property_rows_match_the_contract_and_lines_fit(s, width):
    text = render_text(s, width)
    check_lines(text, width)
    assert text == render_text(s, width)
    ii = s.ii
    table = reservation_table(s)
    for op in s.problem.ops:
        t = s.ops[op.name].start
        expect = [0] * ii
        for j in range(op.occupancy):
            expect[(t + j) % ii] += 1
        got = [
            sum(lane.solid[x].count(op.name) for lane in table if lane.kind == "unit" and lane.key == op.unit)
            for x in range(ii)
        ]
        assert got == expect
        if s.ops[op.name].warpgroup is not None:
            issue = [0] * ii
            for j in range(op.issue):
                issue[(t + j) % ii] += 1
            wg = [
                lane
                for lane in table
                if lane.kind == "warpgroup" and lane.key == str(s.ops[op.name].warpgroup)
            ]
            assert [sum(lane.solid[x].count(op.name) for lane in wg) for x in range(ii)] == issue
            assert [op.name in wg[0].light[x] for x in range(ii)] == [e > 0 for e in expect]
    # sub-lanes: never two ops in one row of a sub-lane, and at most one sub-lane per op copy
    for unit in {op.unit for op in s.problem.ops if op.occupancy}:
        lanes = [lane for lane in table if lane.kind == "unit" and lane.key == unit]
        busiest = max(sum(len(lane.solid[x]) for lane in lanes) for x in range(ii))
        assert all(len(lane.solid[x]) <= 1 for lane in lanes for x in range(ii))
        copies = sum(math.ceil(op.occupancy / ii) for op in s.problem.ops if op.unit == unit)
        assert busiest <= len(lanes) <= copies
    # in cell mode every unit lane cell is exactly its op's label
    if "1 column = 1 cycle (" in text and "scaled" not in text:
        lanes = chart(text)
        tags = op_tags(s.problem.ops)
        for lane in table:
            if lane.kind != "unit":
                continue
            cells = lanes[lane.label].split()
            if len(cells) == ii and all(len(c) > 0 for c in cells):
                want = [f"{tags[r[0]]}+{s.ops[r[0]].start // ii}" if r else "." for r in lane.solid]
                assert cells == want
