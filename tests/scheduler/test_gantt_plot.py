"""Tests of the PNG/SVG picture of one steady-state period (scheduler/gantt_plot.py).

The pictures are checked as files (PNG magic bytes and size, SVG parsed as
XML) and through the text they carry: the SVG is written with real <text>
elements, so the II, every lane label and every op's name or tag must be
there. The bar geometry is checked against the reservation table
(DESIGN.md 3.1): bars cover exactly the rows the table gives, never cross
row II-1 -> 0, and in-flight bars never sit under an issue row.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("matplotlib")

from warpsched.scheduler import schedule as schedule_io
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.gantt import op_tags, reservation_table
from warpsched.scheduler.gantt_plot import DPI, _layout, _runs, render_figure
from warpsched.scheduler.ir import Edge, Op
from warpsched.scheduler.schedule import Buffer, Schedule, WarpgroupPlan
from tests.scheduler.test_gantt import make  # the same toy schedules as the text chart's tests

ROOT = Path(__file__).resolve().parents[2]
SVG_NS = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------- builders


def twill_classic() -> Schedule:
    """Twill's toy, classic: S at 0, P at 1, O at 3 (stage 1), II 2; no warpgroups."""
    ops = [Op("S", "tensor", 1, 1, 0), Op("P", "sfu", 1, 1, 1), Op("O", "tensor", 1, 1, 0)]
    return make(ops, {"S": 0, "P": 1, "O": 3}, 2, edges=(Edge("S", "P"), Edge("P", "O"), Edge("O", "O", 1)))


def twill_joint() -> Schedule:
    """The same toy on two warpgroups, each hand-off a cycle; S and O async (issue 0: only in flight on
    wg0)."""
    ops = [Op("S", "tensor", 1, 1, 0), Op("P", "sfu", 1, 1, 1), Op("O", "tensor", 1, 1, 0)]
    plans = {0: WarpgroupPlan("consumer", 240, 0, ("S", "O")), 1: WarpgroupPlan("consumer", 240, 0, ("P",))}
    return make(
        ops,
        {"S": 0, "P": 2, "O": 5},
        2,
        edges=(Edge("S", "P"), Edge("P", "O"), Edge("O", "O", 1)),
        wgs={"S": 0, "P": 1, "O": 0},
        plans=plans,
        mode="joint",
        proven=False,
    )


def gpu_sized() -> Schedule:
    """An FA3-like period: II 3000, a TMA producer and three consumers, 17 ops over 3 stages.

    load_v wraps around the period (2400 + 900 > 3000), so it is two bars on the tma lane.
    """
    ii = 3000
    units = {"tma": 1, "tensor": 1, "mufu": 1, "alu": 1}
    ops = [Op("load_k", "tma", 1000, 900, 8, kind="load"), Op("load_v", "tma", 1000, 900, 8, kind="load")]
    starts, wgs = {"load_k": 1450, "load_v": 2400}, {"load_k": 0, "load_v": 0}
    for c in (1, 2, 3):
        off = (c - 1) * 1000
        for name, unit, lat, occ, issue, t in (
            (f"gemm_qk{c}", "tensor", 400, 330, 32, ii + off),
            (f"softmax_max{c}", "alu", 100, 90, 96, ii + off + 340),
            (f"exp{c}", "mufu", 620, 600, 600, ii + off + 440),
            (f"rescale{c}", "alu", 70, 64, 64, ii + off + 1050),
            (f"gemm_pv{c}", "tensor", 400, 330, 44, 2 * ii + off + 1340 - ii),
        ):
            ops.append(Op(name, unit, lat, occ, issue))
            starts[name], wgs[name] = t, c
    plans = {0: WarpgroupPlan("producer", 24, 20, ("load_k", "load_v"))}
    plans.update(
        {c: WarpgroupPlan("consumer", 160, 150, tuple(n for n in starts if wgs[n] == c)) for c in (1, 2, 3)}
    )
    return make(
        ops,
        starts,
        ii,
        units=units,
        wgs=wgs,
        plans=plans,
        mode="joint",
        name="fa3_like",
        buffers={"load_k": Buffer("ring", 2, 45056, 3000), "load_v": Buffer("ring", 2, 45056, 3000)},
    )


# ---------------------------------------------------------------- readers


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def check_picture(s: Schedule, tmp_path: Path, stem: str, width_in: float = 12.0) -> list[str]:
    png, svg = tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg"
    render_figure(s, png, width_in=width_in)
    render_figure(s, svg, width_in=width_in)
    w, h = png_size(png)
    assert w == round(width_in * DPI)
    lanes = reservation_table(s)
    assert 1.5 * DPI <= h <= (2.5 + 0.5 * len(lanes)) * DPI, (
        w,
        h,
    )  # about 0.36 in a lane plus title and legend
    texts = svg_texts(svg)
    joined = "\n".join(texts)
    optimal = "(proven optimal)" if s.ii_proven_optimal else "(not proven optimal)"
    assert (
        f"II = {s.ii} {optimal}" in joined
        and f"MII = {s.mii}" in joined
        and f"makespan = {s.makespan}" in joined
    )
    assert f"II = {s.ii}" in texts  # the tick at II
    for lane in lanes:
        assert lane.label in texts, lane.label
    for k in {p.start // s.ii for p in s.ops.values()}:
        assert f"stage {k}: " + ("iteration i" if k == 0 else f"iteration i - {k}") in texts
    return texts


# ---------------------------------------------------------------- the pictures


def test_twill_toy_classic(tmp_path):
    s = twill_classic()
    texts = check_picture(s, tmp_path, "toy")
    assert not any(t.startswith("wg") for t in texts)  # no warpgroups, no warpgroup lanes
    for op in ("S", "P", "O"):
        assert op in texts
    assert texts.count("S") == 1 and texts.count("O") == 1  # one bar each: II 2 has room for every name
    assert not any("in flight" in t for t in texts)


def test_twill_toy_on_warpgroups(tmp_path):
    s = twill_joint()
    texts = check_picture(s, tmp_path, "toy_wg")
    assert "wg0 consumer 240r" in texts and "wg1 consumer 240r" in texts
    # S and O are labelled on the tensor lane and, in flight, on wg0; P on the sfu lane and wg1
    assert texts.count("S") == 2 and texts.count("O") == 2 and texts.count("P") == 2
    assert any("in flight" in t for t in texts)


def test_gpu_sized_schedule_shows_every_op(tmp_path):
    s = gpu_sized()
    texts = check_picture(s, tmp_path, "gpu")
    tags = op_tags(s.problem.ops)
    shown = set(texts)
    for op in s.problem.ops:
        assert op.name in shown or tags[op.name] in shown, op.name
    key = next((t for t in texts if t.startswith("tags: ")), "")
    for op in s.problem.ops:  # a tag standing in for a name is spelled out under the legend
        if op.name not in shown:
            assert f"{tags[op.name]} = {op.name}" in key
    assert texts.count("load_v") >= 2  # wraps around the period: two bars, each named
    for g in (1, 2, 3):
        assert f"wg{g} consumer 160r" in texts
    assert "wg0 producer 24r" in texts


def test_solved_attention_schedule(tmp_path):
    from warpsched.models import build_model
    from warpsched.scheduler import solve

    s = solve(build_model("attention_fwd", "h100"), "h100").schedule
    texts = check_picture(s, tmp_path, "attention")
    tags = op_tags(s.problem.ops)
    assert 16 <= len(s.ops) and len(s.warpgroups) >= 3
    for op in s.problem.ops:
        assert op.name in texts or tags[op.name] in texts, op.name
    for g, plan in s.warpgroups.items():
        assert f"wg{g} {plan.role} {plan.registers}r" in texts


def test_narrow_chart_skips_labels_that_do_not_fit(tmp_path):
    s = gpu_sized()
    wide = check_picture(s, tmp_path, "wide", 12.0)
    narrow = check_picture(s, tmp_path, "narrow", 4.0)
    tags = set(op_tags(s.problem.ops).values())
    names = {op.name for op in s.problem.ops}

    def labels(texts):
        return [t for t in texts if t in names or t in tags]

    assert len(labels(narrow)) < len(labels(wide))


def test_rendering_is_deterministic(tmp_path):
    s = gpu_sized()
    for suffix in ("png", "svg"):
        a, b = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
        render_figure(s, a)
        render_figure(s, b)
        assert a.read_bytes() == b.read_bytes()


def test_names_are_text_not_markup(tmp_path):
    ops = [Op("$x$", "tensor", 1, 2, 1), Op("a<b>&c", "sfu", 1, 2, 1), Op("caf\u00e9", "tensor", 1, 2, 1)]
    s = make(
        ops,
        {"$x$": 0, "a<b>&c": 1, "caf\u00e9": 2},
        4,
        wgs={"$x$": 0, "a<b>&c": 0, "caf\u00e9": 1},
        mode="joint",
    )
    texts = check_picture(s, tmp_path, "odd")
    assert "$x$" in texts and "a<b>&c" in texts and "caf\\xe9" in texts  # escaped as in the text chart


def test_bad_suffix_width_and_path_are_user_errors(tmp_path):
    s = twill_classic()
    for name in ("chart.pdf", "chart", "chart.png.txt"):
        with pytest.raises(InputError, match=r"\*\.png or \*\.svg"):
            render_figure(s, tmp_path / name)
        assert not (tmp_path / name).exists()
    with pytest.raises(InputError, match="width"):
        render_figure(s, tmp_path / "x.png", width_in=1.0)
    with pytest.raises(InputError, match="cannot write"):
        render_figure(s, tmp_path / "no" / "such" / "dir" / "x.png")
    render_figure(s, tmp_path / "UPPER.PNG")
    assert png_size(tmp_path / "UPPER.PNG")[0] == 12 * DPI


def test_missing_matplotlib_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(InputError, match="pip install matplotlib"):
        render_figure(twill_classic(), tmp_path / "x.png")


# ---------------------------------------------------------------- geometry


@st.composite
def schedules(draw):
    ii = draw(st.one_of(st.integers(1, 12), st.integers(13, 3000)))
    units = {"a": 1, "b": 2}
    n = draw(st.integers(1, 5))
    ops, starts, wgs = [], {}, {}
    use_wgs = draw(st.booleans())
    for i in range(n):
        ops.append(
            Op(
                f"op_{i}",
                draw(st.sampled_from(sorted(units))),
                1,
                draw(st.integers(0, 2 * ii)),
                draw(st.integers(0, ii)),
            )
        )
        starts[f"op_{i}"] = draw(st.integers(0, 3 * ii))
        if use_wgs:
            wgs[f"op_{i}"] = draw(st.integers(0, 2))
    return make(ops, starts, ii, units=units, wgs=wgs, mode="joint" if use_wgs else "classic")


def test_an_op_in_a_row_twice_gets_a_bar_per_copy():
    """An occupancy longer than II puts an op in a row more than once (hypothesis found II 1, occupancy 2):
    each copy is a run of its own."""
    assert _runs((("a", "a"), ("a",), ())) == [("a", 0, 1), ("a", 0, 2)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_property_bars_cover_exactly_the_reservation_table(s):
    ii = s.ii
    lanes = reservation_table(s)
    tops, bars, total = _layout(lanes)
    issuing: dict[str, set[int]] = {}
    for lane in lanes:
        if lane.kind == "warpgroup":
            issuing.setdefault(lane.key, set()).update(x for x in range(ii) if lane.solid[x])
    for lane, y0 in zip(lanes, tops):
        mine = [b for b in bars if y0 <= b.y0 and b.y1 <= y0 + 1]
        for b in mine:
            assert 0 <= b.x0 < b.x1 <= ii  # never across the end of the period
        for light in (False, True):
            got: dict[str, list[int]] = {}
            for b in mine:
                if b.light == light:
                    got.setdefault(b.op, []).extend(range(b.x0, b.x1))
            rows = lane.light if light else lane.solid
            skip = issuing.get(lane.key, set()) if light else set()
            want: dict[str, list[int]] = {}
            for x in range(ii if rows else 0):
                if x not in skip:
                    for op in rows[x]:
                        want.setdefault(op, []).append(x)
            assert {op: sorted(r) for op, r in got.items()} == want
        # bars of one op in one lane and layer are maximal runs: they never touch
        for a in mine:
            for b in mine:
                if a is not b and a.op == b.op and a.light == b.light and a.y0 == b.y0:
                    assert a.x1 != b.x0
        # in-flight bars on one track never overlap
        light = sorted((b for b in mine if b.light), key=lambda b: (b.y0, b.x0))
        for a, b in zip(light, light[1:]):
            if a.y0 == b.y0:
                assert a.x1 <= b.x0
    assert total >= len(lanes)


# ---------------------------------------------------------------- the command


def test_show_writes_png_and_svg(tmp_path):
    path = tmp_path / "toy.json"
    schedule_io.write(twill_joint(), path)
    env = dict(os.environ)
    p = subprocess.run(
        [sys.executable, "-m", "warpsched", "show", str(path), "--png", "out.png", "--svg", "out.svg"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "twill_toy" in p.stdout and "II 2" in p.stdout  # the text chart is still printed
    assert p.stdout.rstrip().splitlines()[-2:] == ["wrote out.png", "wrote out.svg"]
    assert png_size(tmp_path / "out.png")[0] == 12 * DPI
    assert "wg0 consumer 240r" in svg_texts(tmp_path / "out.svg")
    bad = subprocess.run(
        [sys.executable, "-m", "warpsched", "show", str(path), "--png", "out.svg"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("warpsched: error: --png needs a file name ending in .png")
    assert "Traceback" not in bad.stderr
