"""Tests of the independent verifier (scheduler/verify.py) against DESIGN.md 3.1.

Schedules are written by hand here (with a small builder); the expected
numbers in the comments are worked out by hand from the contract.
"""

from __future__ import annotations

import copy
import math
import random
import time

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.verify import Verdict, _rec_mii, _parse, verify


# ---------------------------------------------------------------- builders


def op(name, unit, latency=1, occupancy=1, issue=0, bytes=0, space="none", regs=0, vl=False):
    return {
        "name": name,
        "kind": "op",
        "unit": unit,
        "latency": latency,
        "occupancy": occupancy,
        "issue": issue,
        "issuer": "warpgroup",
        "bytes": bytes,
        "space": space,
        "regs_per_thread": regs,
        "variable_latency": vl,
    }


def edge(src, dst, distance=0, delay=0):
    return {"src": src, "dst": dst, "distance": distance, "delay": delay}


def machine(units, **kw):
    m = {
        "name": "toy",
        "units": units,
        "sync_latency": 10,
        "smem_bytes": 100_000,
        "smem_bytes_per_cycle": 128,
        "ring_slot_overhead": 16,
        "register_file": 65536,
        "registers": {"min": 24, "max": 256, "step": 8, "reserved": 24},
        "max_warpgroups": 4,
        "warpgroup_threads": 128,
        "clock_ghz": 1.0,
    }
    m.update(kw)
    return m


def brute_bounds(ops, edges, units):
    """ResMII and RecMII by enumerating every simple cycle (networkx), independent of verify.py."""
    load = {}
    for o in ops:
        load[o["unit"]] = load.get(o["unit"], 0) + o["occupancy"]
    res = max([1] + [math.ceil(t / units[u]) for u, t in load.items() if units.get(u)])
    g = nx.MultiDiGraph()
    g.add_nodes_from(o["name"] for o in ops)
    lat = {o["name"]: o["latency"] for o in ops}
    for e in edges:
        g.add_edge(e["src"], e["dst"], w=lat[e["src"]] + e["delay"], d=e["distance"])
    rec = 1
    for cyc in nx.simple_cycles(nx.DiGraph(g)):
        # the multigraph may hold parallel edges: take every combination via the best ratio per pair
        pairs = list(zip(cyc, cyc[1:] + cyc[:1]))
        choices = [[(d["w"], d["d"]) for d in g.get_edge_data(u, v).values()] for u, v in pairs]
        for combo in _product(choices):
            w, d = sum(c[0] for c in combo), sum(c[1] for c in combo)
            if d:
                rec = max(rec, math.ceil(w / d))
    return res, rec


def _product(choices):
    if not choices:
        yield ()
        return
    for c in choices[0]:
        for rest in _product(choices[1:]):
            yield (c,) + rest


def schedule(
    ops,
    edges,
    ii,
    starts,
    mode="classic",
    units=None,
    wg=None,
    warpgroups=None,
    buffers=None,
    mach=None,
    attempts=(),
    proven=False,
    **override,
):
    """A schedule dict with every contract field; derived fields (stage, row, makespan, MII, smem) computed
    from the contract so that only the placements and plans given by the test decide the verdict."""
    mach = mach or machine(units or {"tensor": 1, "sfu": 1})
    res, rec = brute_bounds(ops, edges, mach["units"])
    lat = {o["name"]: o["latency"] for o in ops}
    buffers = buffers or {}
    byts = {o["name"]: o["bytes"] for o in ops}
    d = {
        "format": "warpsched.schedule/1",
        "problem": "toy",
        "source": {},
        "mode": mode,
        "machine": mach,
        "graph": {"ops": ops, "edges": edges},
        "ii": ii,
        "mii": max(1, res, rec),
        "res_mii": res,
        "rec_mii": rec,
        "ii_proven_optimal": proven,
        "attempts": list(attempts),
        "ops": {
            n: {"start": t, "stage": t // ii, "row": t % ii, "warpgroup": (wg or {}).get(n)}
            for n, t in starts.items()
        },
        "warpgroups": {str(k): v for k, v in (warpgroups or {}).items()},
        "buffers": buffers,
        "smem_bytes": sum(b["depth"] * (byts[n] + mach["ring_slot_overhead"]) for n, b in buffers.items()),
        "makespan": max(t + lat[n] for n, t in starts.items()),
        "stages": max(t // ii for t in starts.values()) - min(t // ii for t in starts.values()) + 1,
        "objectives": [],
        "solve_seconds": 0.0,
        "solver": {},
        "verified": None,
    }
    d.update(override)
    return d


def first(v: Verdict) -> str:
    assert not v.ok and v.violations, v
    return v.violations[0]


# ---------------------------------------------------------------- the Twill toy (classic)

TOY_OPS = [op("S", "tensor"), op("P", "sfu"), op("O", "tensor")]
TOY_EDGES = [edge("S", "P"), edge("P", "O"), edge("O", "O", 1)]


def toy(starts, ii=2, **kw):
    return schedule(copy.deepcopy(TOY_OPS), copy.deepcopy(TOY_EDGES), ii, starts, **kw)


def test_toy_valid_classic():
    v = verify(toy({"S": 0, "P": 1, "O": 3}))
    assert v.ok and bool(v) and v.violations == ()
    assert v.makespan == 4 and v.smem_bytes == 0 and v.register_need == {}


def test_toy_tensor_clash_on_row_0():
    v = verify(toy({"S": 0, "P": 1, "O": 2}))
    assert not v
    msg = first(v)
    assert "unit tensor" in msg and "row 0" in msg and "S" in msg and "O" in msg
    assert len(v.violations) == 1


def test_dependence_violation_names_edge():
    v = verify(toy({"S": 0, "P": 0, "O": 3}))
    msg = first(v)
    assert msg.startswith("dependence S -> P")
    assert "P at 0" in msg and "S at 0 + latency 1" in msg


def test_loop_carried_dependence():
    # O -> O distance 1 with latency 3 needs II >= 3: at II 2 the self edge fails (and II < RecMII)
    ops = [op("S", "tensor"), op("P", "sfu"), op("O", "tensor", latency=3)]
    d = schedule(ops, copy.deepcopy(TOY_EDGES), 2, {"S": 0, "P": 1, "O": 3})
    v = verify(d)
    assert first(v).startswith("dependence O -> O (distance 1")
    assert any("below the lower bound MII 3" in x for x in v.violations)


def test_occupancy_longer_than_ii_folds_onto_rows():
    ops = [op("A", "tensor", occupancy=3), op("B", "sfu")]
    d = schedule(ops, [edge("A", "B")], 2, {"A": 0, "B": 1})
    v = verify(d)
    msg = first(v)
    assert "unit tensor" in msg and "row 0" in msg and "A (2)" in msg
    # ResMII = 3 > II 2
    assert any("below the lower bound MII 3" in x for x in v.violations)
    d = schedule(ops, [edge("A", "B")], 3, {"A": 0, "B": 1})
    assert verify(d).ok


def test_unlimited_unit_never_overflows():
    d = toy({"S": 0, "P": 1, "O": 2}, units={"tensor": None, "sfu": 1})
    assert verify(d).ok


def test_classic_rejects_warpgroups():
    d = toy({"S": 0, "P": 1, "O": 3}, wg={"S": 0})
    assert "warpgroup 0" in first(verify(d)) and "classic" in first(verify(d))


def test_missing_and_extra_placement():
    d = toy({"S": 0, "P": 1, "O": 3})
    del d["ops"]["P"]
    d["ops"]["Q"] = {"start": 0, "stage": 0, "row": 0, "warpgroup": None}
    v = verify(d)
    assert first(v) == "op P has no placement in ops"
    assert "'Q'" in v.violations[1]


def test_stage_and_row_must_match_start():
    d = toy({"S": 0, "P": 1, "O": 3})
    d["ops"]["O"]["stage"] = 0
    assert first(verify(d)).startswith("op O starts at 3 with II 2, so its stage is 1")


def test_negative_start():
    d = toy({"S": 0, "P": 1, "O": 3})
    d["ops"]["S"].update(start=-2, stage=-1, row=0)
    assert first(verify(d)) == "op S starts at -2; starts must be >= 0"


def test_wrong_makespan():
    d = toy({"S": 0, "P": 1, "O": 3}, makespan=3)
    msg = first(verify(d))
    assert "makespan" in msg and "3" in msg and "4" in msg and "O at 3" in msg


# ---------------------------------------------------------------- a warp-specialized pipeline (joint)
#
# L (TMA load, variable latency, 1024 B in smem) -> M (wgmma, 32 regs/thread, 16 KiB) -> E (alu, 16 regs)
# M -> M distance 1 (accumulator). II 16 = ResMII (tensor) = RecMII (M latency 16).
# L on warpgroup 1 (producer), M and E on warpgroup 0 (consumer); sync_latency 10.
#   M >= 0 + 40 + hand-off 10 = 50; E >= 50 + 16 = 66, at 68 so its issue (rows 4..11) misses M's (rows 2..3).
#   Registers of warpgroup 0: M lives [50, 68) = 18 cycles -> 2 copies on rows 2, 3, else 1 (x32);
#   E lives [68, 78) -> rows 4..13 (x16). Max 64 -> need 24 + 64 = 88.
#   Ring of L: held until M at 50 + latency 16 + sync 10 = 76 -> depth ceil(76/16) = 5; 5 * (1024 + 16) =
# 5200 B.

WS_UNITS = {"tma": 1, "tensor": 1, "alu": 1}


def ws_ops(m_latency=16):
    return [
        op("L", "tma", latency=40, occupancy=8, issue=1, bytes=1024, space="smem", vl=True),
        op("M", "tensor", latency=m_latency, occupancy=16, issue=2, bytes=16384, space="regs", regs=32),
        op("E", "alu", latency=10, occupancy=8, issue=8, bytes=8192, space="regs", regs=16),
    ]


WS_EDGES = [edge("L", "M"), edge("M", "E"), edge("M", "M", 1)]


def ws(starts=None, wg=None, warpgroups=None, buffers=None, mode="joint", mach=None, **kw):
    return schedule(
        ws_ops(),
        copy.deepcopy(WS_EDGES),
        16,
        starts or {"L": 0, "M": 50, "E": 68},
        mode=mode,
        wg=wg or {"L": 1, "M": 0, "E": 0},
        warpgroups=warpgroups
        or {
            0: {"role": "consumer", "registers": 88, "need": 88, "ops": ["M", "E"]},
            1: {"role": "producer", "registers": 24, "need": 24, "ops": ["L"]},
        },
        buffers=buffers or {"L": {"kind": "ring", "depth": 5, "bytes": 1024, "hold": 76}},
        mach=mach or machine(WS_UNITS),
        **kw,
    )


def test_ws_pipeline_valid():
    v = verify(ws())
    assert v.ok, v.violations
    assert v.makespan == 78 and v.smem_bytes == 5200 and v.register_need == {0: 88, 1: 24}


def test_heuristic_mode_checked_like_joint():
    assert verify(ws(mode="heuristic")).ok
    assert verify(ws(mode="swp")).ok  # the fixed-latency ops share warpgroup 0


def test_issue_overlap_on_one_warpgroup():
    d = ws(starts={"L": 0, "M": 50, "E": 66})
    msg = first(verify(d))
    assert "warpgroup 0" in msg and "row 2" in msg and "M (1) and E (1)" in msg
    assert msg.endswith("(and 1 more row)")  # row 3


def test_cross_warpgroup_edge_missing_its_handoff():
    # E moved to warpgroup 2: M -> E now needs 10 + ceil(2 * 16384 / 128) = 266 cycles of hand-off
    d = ws(wg={"L": 1, "M": 0, "E": 2})
    msg = first(verify(d))
    assert msg.startswith("dependence M -> E")
    assert "hand-off 266 (warpgroup 0 to 2)" in msg and "= 332" in msg


def test_cross_warpgroup_register_value_needs_staging():
    # M shrunk to 1024 bytes and E moved to warpgroup 2: hand-off 10 + ceil(2 * 1024 / 128) = 26, E >= 92.
    ops = ws_ops()
    ops[1]["bytes"] = 1024
    d = schedule(
        ops,
        copy.deepcopy(WS_EDGES),
        16,
        {"L": 0, "M": 50, "E": 92},
        mode="joint",
        wg={"L": 1, "M": 0, "E": 2},
        mach=machine(WS_UNITS, smem_bytes=9000),
        warpgroups={
            0: {"role": "consumer", "registers": 88},
            1: {"role": "producer", "registers": 24},
            2: {"role": "consumer", "registers": 40},
        },
        buffers={"L": {"kind": "ring", "depth": 5, "bytes": 1024}},
    )
    v = verify(d)
    assert first(v) == "value M needs a staging buffer (regs, 1024 bytes) but buffers has no entry for it"
    # staging held from M at 50 until E at 92 + latency 10 + sync 10 = 112: 62 cycles -> depth 4
    d["buffers"]["M"] = {"kind": "staging", "depth": 4, "bytes": 1024}
    d["smem_bytes"] = 5200 + 4 * (1024 + 16)
    v = verify(d)
    assert first(v) == "the buffers take 9360 bytes of shared memory, more than machine toy's 9000"
    d["machine"]["smem_bytes"] = 10_000
    v = verify(d)
    assert v.ok, v.violations
    # M lives [50, max(50 + 16 + 16 staging, 66 for M -> M)) = 32 cycles: 2 copies x 32 on every row
    assert v.register_need == {0: 24 + 64, 1: 24, 2: 24 + 16}
    assert v.smem_bytes == 9360
    d["buffers"]["M"]["depth"] = 3
    d["smem_bytes"] = 5200 + 3 * (1024 + 16)
    assert first(verify(d)) == (
        "buffer M has depth 3 but a slot is held 62 cycles (until E is done), which at II 16 needs depth >= 4"
    )


def test_register_budget_below_need():
    d = ws(warpgroups={0: {"role": "consumer", "registers": 80}, 1: {"role": "producer", "registers": 24}})
    msg = first(verify(d))
    assert msg.startswith("warpgroup 0 has register budget 80 but needs 88 (24 reserved + 64 live at row 2")
    assert "M 32x2" in msg


def test_register_budget_not_a_setmaxnreg_value():
    d = ws(warpgroups={0: {"role": "consumer", "registers": 100}, 1: {"role": "producer", "registers": 24}})
    msg = first(verify(d))
    assert "warpgroup 0" in msg and "100" in msg and "steps of 8" in msg
    d = ws(warpgroups={0: {"role": "consumer", "registers": 264}, 1: {"role": "producer", "registers": 24}})
    assert "264" in first(verify(d))


def test_used_warpgroup_must_be_listed():
    d = ws(warpgroups={0: {"role": "consumer", "registers": 88}})
    assert first(verify(d)) == "warpgroup 1 holds L but has no entry in warpgroups"


def test_register_file_overflow():
    d = ws(mach=machine(WS_UNITS, register_file=12000))
    msg = first(verify(d))
    assert "88 + 24" in msg and "14336" in msg and "12000" in msg


def test_wrong_role():
    d = ws(warpgroups={0: {"role": "consumer", "registers": 88}, 1: {"role": "consumer", "registers": 24}})
    assert first(verify(d)) == (
        "warpgroup 1 has role 'consumer' but holds only variable-latency ops, so it is a producer"
    )


def test_variable_latency_isolation():
    d = ws(wg={"L": 0, "M": 0, "E": 0})
    msg = first(verify(d))
    assert msg.startswith("warpgroup 0 holds variable-latency op(s) L beside fixed-latency op(s) M and E")


def test_swp_all_fixed_latency_ops_on_one_warpgroup():
    d = ws(starts={"L": 0, "M": 50, "E": 332}, wg={"L": 1, "M": 0, "E": 2}, mode="swp")
    msg = first(verify(d))
    assert msg.startswith("mode swp") and "M on 0" in msg and "E on 2" in msg


def test_ws_all_non_streaming_ops_in_one_stage():
    msg = first(verify(ws(mode="ws")))
    assert msg == "mode ws keeps every non-streaming op in one stage, but M is in stage 3 and E in stage 4"


def test_ring_too_shallow():
    d = ws(buffers={"L": {"kind": "ring", "depth": 4, "bytes": 1024}})
    msg = first(verify(d))
    assert msg == (
        "buffer L has depth 4 but a slot is held 76 cycles (until M is done), which at II 16 needs depth >= 5"
    )


def test_buffer_bytes_kind_and_extra_buffers():
    d = ws(buffers={"L": {"kind": "staging", "depth": 5, "bytes": 1000}})
    v = verify(d)
    assert first(v) == "buffer L has kind 'staging' but must be 'ring'"
    assert v.violations[1] == "buffer L has 1000 bytes per slot but op L produces 1024"
    d = ws()
    d["buffers"]["E"] = {"kind": "staging", "depth": 1, "bytes": 8192}
    d["smem_bytes"] += 8192 + 16
    assert first(verify(d)) == "buffer E is not needed: regs value E has no consumer on another warpgroup"


def test_smem_total_written_wrong_and_over_limit():
    d = ws(smem_bytes=5000)
    assert first(verify(d)).startswith("smem_bytes is 5000 but the buffers take 5200 bytes")
    d = ws(mach=machine(WS_UNITS, smem_bytes=5000))
    assert first(verify(d)) == "the buffers take 5200 bytes of shared memory, more than machine toy's 5000"


def test_warpgroup_out_of_range():
    d = ws(wg={"L": 4, "M": 0, "E": 0})
    assert first(verify(d)) == "op L is on warpgroup 4, outside [0, 4) of machine toy"


# ---------------------------------------------------------------- claims


def test_wrong_mii_claims():
    d = toy({"S": 0, "P": 1, "O": 3}, mii=1)
    assert first(verify(d)) == "mii is written as 1 but max(1, ResMII 2, RecMII 1) is 2"
    d = toy({"S": 0, "P": 1, "O": 3}, res_mii=1)
    assert first(verify(d)) == "res_mii is written as 1 but the units' occupancy gives ResMII 2"
    d = schedule(
        ws_ops(m_latency=16),
        copy.deepcopy(WS_EDGES),
        16,
        {"L": 0, "M": 50, "E": 68},
        mode="classic",
        mach=machine(WS_UNITS),
        rec_mii=15,
    )
    assert (
        first(verify(d)) == "rec_mii is written as 15 but the dependence cycles give RecMII 16 (cycle M -> M)"
    )


def test_proof_by_infeasible_attempts():
    starts = {"S": 0, "P": 1, "O": 2}  # II 3, MII 2
    d = toy(
        starts, ii=3, proven=True, attempts=[{"ii": 2, "ii_max": 2, "status": "INFEASIBLE", "seconds": 0.1}]
    )
    assert verify(d).ok
    d = toy(starts, ii=3, proven=True, attempts=[])
    assert (
        first(verify(d))
        == "ii_proven_optimal is true but no attempt proves II 2 infeasible (no attempt tried it)"
    )
    d = toy(starts, ii=3, proven=False, attempts=[])
    assert verify(d).ok  # no claim, nothing to prove


def test_unknown_attempt_does_not_prove():
    d = toy(
        {"S": 0, "P": 1, "O": 2},
        ii=3,
        proven=True,
        attempts=[{"ii": 2, "ii_max": 2, "status": "UNKNOWN", "seconds": 10.0, "bound": None}],
    )
    assert first(verify(d)) == (
        "ii_proven_optimal is true but no attempt proves II 2 infeasible (attempt 2..2 ended UNKNOWN)"
    )


def test_attempt_gap():
    d = toy(
        {"S": 0, "P": 1, "O": 2},
        ii=5,
        proven=True,
        attempts=[
            {"ii": 2, "status": "INFEASIBLE"},
            {"ii": 4, "ii_max": 4, "status": "INFEASIBLE"},
            {"ii": 3, "ii_max": 3, "status": "MODEL_INVALID"},
        ],
    )
    v = verify(d)
    assert v.violations == (
        "ii_proven_optimal is true but no attempt proves II 3 infeasible (attempt 3..3 ended MODEL_INVALID)",
    )


def test_proof_by_range_attempt_with_found_ii_and_bound():
    starts = {"S": 0, "P": 1, "O": 2}
    rng = {"ii": 2, "ii_max": 6, "status": "OPTIMAL", "found_ii": 3, "bound": 3.0, "seconds": 1.0}
    assert verify(toy(starts, ii=3, proven=True, attempts=[rng])).ok
    rng = dict(rng, status="FEASIBLE", bound=2.5)  # ceil(2.5) - 1 = 2: still covers II 2
    assert verify(toy(starts, ii=3, proven=True, attempts=[rng])).ok
    rng = dict(rng, bound=2.0)  # covers nothing
    assert "II 2" in first(verify(toy(starts, ii=3, proven=True, attempts=[rng])))
    rng = dict(rng, bound=3.0, found_ii=None)  # no found_ii: not a minimising range solve
    assert "II 2" in first(verify(toy(starts, ii=3, proven=True, attempts=[rng])))


def test_infeasible_claim_at_the_schedules_own_ii():
    d = toy({"S": 0, "P": 1, "O": 3}, attempts=[{"ii": 2, "status": "INFEASIBLE"}])
    assert first(verify(d)) == "the attempt over II 2..2 is INFEASIBLE, yet this schedule has II 2"


def test_ii_below_mii_is_always_a_violation():
    d = toy({"S": 0, "P": 0, "O": 1}, ii=1)
    v = verify(d)
    assert any(
        x == "II 1 is below the lower bound MII 2, so the schedule cannot be valid" for x in v.violations
    )


# ---------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.pop("ii"), "'ii'"),
        (lambda d: d["graph"]["ops"][0].pop("latency"), "'latency'"),
        (lambda d: d["ops"]["S"].update(start="0"), "start '0'"),
        (lambda d: d["machine"].pop("units"), "'units'"),
        (lambda d: d["graph"]["edges"].append({"src": "S", "dst": "X", "distance": 0}), "'X'"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(attempts=[{"status": "INFEASIBLE"}]), "'ii'"),
        (lambda d: d["machine"]["units"].update(tensor="two"), "'two'"),
        (lambda d: d.update(ii_proven_optimal="yes"), "ii_proven_optimal"),
    ],
)
def test_malformed_input_raises_input_error(mutate, words):
    d = toy({"S": 0, "P": 1, "O": 3})
    mutate(d)
    with pytest.raises(InputError) as exc:
        verify(d)
    assert words in str(exc.value)


def test_malformed_warp_specialized_input():
    d = ws()
    del d["warpgroups"]["0"]["registers"]
    with pytest.raises(InputError, match="warpgroup 0 has no 'registers'"):
        verify(d)
    d = ws()
    del d["machine"]["registers"]
    with pytest.raises(InputError, match="registers"):
        verify(d)


def test_not_a_schedule():
    with pytest.raises(InputError):
        verify([1, 2, 3])


def test_schedule_object_verifies_like_its_dict():
    from warpsched.scheduler.schedule import from_json

    d = ws()
    s = from_json(d)
    assert verify(s) == verify(d)
    d = toy({"S": 0, "P": 1, "O": 2})
    assert verify(from_json(d)).violations == verify(d).violations


def test_verifier_shares_no_code_with_the_solver():
    import ast
    import sys

    tree = ast.parse(open(sys.modules["warpsched.scheduler.verify"].__file__).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {
        "__future__",
        "math",
        "dataclasses",
        "typing",
        "warpsched.scheduler.errors",
        "warpsched.scheduler.schedule",
    }


# ---------------------------------------------------------------- RecMII and speed


def _random_graph(rnd, n, m, max_lat=20):
    ops = [
        op(f"v{i}", rnd.choice(["a", "b", "c"]), latency=rnd.randint(0, max_lat), occupancy=rnd.randint(0, 3))
        for i in range(n)
    ]
    edges = []
    for _ in range(m):
        u, v = rnd.randrange(n), rnd.randrange(n)
        # forward edges may have distance 0; backward edges and self loops need distance >= 1
        dist = rnd.randint(0, 2) if u < v else rnd.randint(1, 3)
        edges.append(edge(f"v{u}", f"v{v}", dist, rnd.randint(-2, 5)))
    return ops, edges


@pytest.mark.parametrize("seed", range(30))
def test_rec_mii_matches_brute_force(seed):
    rnd = random.Random(seed)
    ops, edges = _random_graph(rnd, rnd.randint(1, 7), rnd.randint(0, 10))
    d = schedule(ops, edges, 1, {o["name"]: 0 for o in ops}, units={"a": 1, "b": 2, "c": None})
    f = _parse(d)
    rec, cycle = _rec_mii(f.ops, f.edges)
    assert rec == d["rec_mii"]
    if rec > 1:  # the named cycle is critical: positive at II = RecMII - 1 (taking the best parallel edge)
        assert cycle
        lat = {o["name"]: o["latency"] for o in ops}
        total = 0
        for u, v in zip(cycle, cycle[1:] + cycle[:1]):
            total += max(
                lat[u] + e["delay"] - (rec - 1) * e["distance"]
                for e in edges
                if (e["src"], e["dst"]) == (u, v)
            )
        assert total > 0


def test_zero_distance_positive_cycle_is_reported():
    ops = [op("A", "tensor"), op("B", "sfu")]
    d = schedule(ops, [edge("A", "B"), edge("B", "A", 1)], 2, {"A": 0, "B": 1})
    d["graph"]["edges"][1]["distance"] = 0
    v = verify(d)
    assert any("zero distance" in x and "A" in x and "B" in x for x in v.violations)


def test_large_graph_is_fast():
    rnd = random.Random(7)
    ops, edges = _random_graph(rnd, 300, 600, max_lat=500)
    units = {"a": 1, "b": 2, "c": None}
    f_ops = {o["name"]: o for o in ops}
    d = schedule(ops, [], 1, {o["name"]: 0 for o in ops}, units=units)  # bounds of the edge-free graph
    d["graph"]["edges"] = edges
    d["ii"] = 400
    for n, p in d["ops"].items():
        t = 4000 * int(n[1:])
        p.update(start=t, stage=t // 400, row=t % 400)
    d["makespan"] = max(p["start"] + f_ops[n]["latency"] for n, p in d["ops"].items())
    t0 = time.perf_counter()
    v = verify(d)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, elapsed
    assert isinstance(v.ok, bool)


# ---------------------------------------------------------------- property: shifting by a multiple of II


@st.composite
def classic_schedules(draw):
    n = draw(st.integers(1, 5))
    ii = draw(st.integers(1, 5))
    units = {"a": draw(st.sampled_from([1, 2, None])), "b": draw(st.sampled_from([1, 2]))}
    ops = [
        op(
            f"o{i}",
            draw(st.sampled_from(["a", "b"])),
            latency=draw(st.integers(0, 4)),
            occupancy=draw(st.integers(0, 3)),
        )
        for i in range(n)
    ]
    edges = []
    for _ in range(draw(st.integers(0, 6))):
        u, v = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        dist = draw(st.integers(0, 2)) if u < v else draw(st.integers(1, 2))
        edges.append(edge(f"o{u}", f"o{v}", dist, draw(st.integers(0, 2))))
    starts = {f"o{i}": draw(st.integers(0, 12)) for i in range(n)}
    return schedule(ops, edges, ii, starts, units=units)


@settings(max_examples=150, deadline=None)
@given(classic_schedules(), st.integers(-3, 3))
def test_shifting_every_start_by_a_multiple_of_ii_keeps_the_verdict(d, k):
    ii = d["ii"]
    k = max(k, -min(p["stage"] for p in d["ops"].values()))  # keep every start >= 0
    before = verify(d)
    shifted = copy.deepcopy(d)
    for p in shifted["ops"].values():
        p.update(start=p["start"] + k * ii, stage=p["stage"] + k)
    after = verify(shifted)
    assert after.ok == before.ok
    assert len(after.violations) == len(before.violations)
    assert after.makespan == before.makespan  # iteration latency: from the first start
    # the same families fail: compare each violation's opening words
    assert [x.split(":")[0].split(" is ")[0] for x in after.violations] == [
        x.split(":")[0].split(" is ")[0] for x in before.violations
    ]
