"""Tests of the IR (scheduler/ir.py): `Problem.check()` input sanity and the graph view (DESIGN.md section 2).

Every mistake must raise `InputError` with one sentence that names what is wrong
(the op, the field, the cycle, the unit) so the CLI can print it as is.
"""

from __future__ import annotations

import networkx as nx
import pytest

from warpsched.scheduler.errors import InputError, WarpschedError
from warpsched.scheduler.ir import Edge, Op, Problem
from tests.conftest import toy_machine, twill_chain


def one_sentence(exc: pytest.ExceptionInfo, *needles: str) -> str:
    """The error's message, checked to be a single non-empty line naming every needle."""
    msg = str(exc.value)
    assert isinstance(exc.value, WarpschedError)
    assert msg and "\n" not in msg, f"not one sentence: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{needle!r} not named in {msg!r}"
    return msg


def problem(ops, edges=()) -> Problem:
    return Problem.build("p", ops, edges)


def chain() -> list[Op]:
    return [Op("a", "tensor", 1), Op("b", "sfu", 1), Op("c", "tensor", 1)]


# ------------------------------------------------------------------ valid problems


def test_twill_toy_is_valid_with_and_without_a_machine(twill_toy):
    twill_toy.check()
    twill_toy.check(toy_machine(warpgroups=2))


def test_pingpong_toy_is_valid(pingpong_toy):
    pingpong_toy.check(toy_machine(warpgroups=4))


def test_loop_carried_cycle_with_positive_distance_is_valid():
    p = problem(
        chain(), [Edge("a", "b"), Edge("b", "c"), Edge("c", "a", distance=1), Edge("c", "c", distance=2)]
    )
    p.check()
    p.check(toy_machine())


def test_values_at_the_machine_limits_are_valid():
    m = toy_machine(reg_max=240, register_overhead=24)
    most_smem = m.smem_bytes - m.ring_slot_overhead
    p = problem(
        [
            Op("acc", "tensor", 1, space="regs", regs_per_thread=216),  # exactly 240 - 24
            Op("tile", "tensor", 1, space="smem", bytes=most_smem),
        ]
    )
    p.check(m)


def test_zero_latency_and_zero_occupancy_are_valid():
    problem([Op("v", "tensor", 0, occupancy=0)]).check(toy_machine())


# ------------------------------------------------------------------ ops


def test_negative_latency():
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", -1)]).check()
    one_sentence(exc, "'a'", "negative latency", "-1")


@pytest.mark.parametrize("field", ["occupancy", "issue", "bytes"])
def test_negative_cost_fields(field):
    op = Op("a", "tensor", 1, **{field: -2})
    with pytest.raises(InputError) as exc:
        problem([op]).check()
    one_sentence(exc, "'a'", field, "-2")


@pytest.mark.parametrize("value", [1.5, "3", True, None])
def test_non_integer_latency(value):
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", value)]).check()
    one_sentence(exc, "'a'", "latency", "whole number")


def test_duplicate_op_names():
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1), Op("b", "sfu", 1), Op("a", "sfu", 2)]).check()
    one_sentence(exc, "'a'", "twice")


def test_empty_op_name():
    with pytest.raises(InputError) as exc:
        problem([Op("", "tensor", 1)]).check()
    one_sentence(exc, "empty name")


def test_no_ops():
    with pytest.raises(InputError) as exc:
        problem([]).check()
    one_sentence(exc, "no ops")


def test_unknown_issuer():
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1, issuer="cta")]).check()
    one_sentence(exc, "'a'", "'cta'", "thread", "warp", "warpgroup")


def test_unknown_space():
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1, space="gmem")]).check()
    one_sentence(exc, "'a'", "'gmem'", "regs", "smem", "none")


@pytest.mark.parametrize("space", ["none", "smem"])
def test_regs_per_thread_on_a_non_register_value(space):
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1, space=space, regs_per_thread=32)]).check()
    one_sentence(exc, "'a'", "regs_per_thread", repr(space), "space: regs")


# ------------------------------------------------------------------ edges


def test_edge_to_a_missing_op():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("a", "b"), Edge("b", "zz")]).check()
    one_sentence(exc, "b -> zz", "'zz'", "not in the graph")


def test_edge_from_a_missing_op():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("ghost", "a", distance=1)]).check()
    one_sentence(exc, "'ghost'", "not in the graph")


def test_negative_distance():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("a", "b"), Edge("c", "a", distance=-1)]).check()
    one_sentence(exc, "c -> a", "negative distance", "-1")


def test_zero_distance_cycle_names_its_ops():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("a", "b"), Edge("b", "c"), Edge("c", "a")]).check()
    msg = one_sentence(exc, "zero total distance", "distance >= 1")
    cycle = msg.split("the cycle ", 1)[1].split(" has ", 1)[0]
    names = cycle.split(" -> ")
    assert names[0] == names[-1] and set(names) == {"a", "b", "c"}, msg


def test_zero_distance_self_loop():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("b", "b")]).check()
    one_sentence(exc, "b -> b", "zero total distance")


def test_zero_distance_cycle_beside_a_loop_carried_parallel_edge():
    # b -> a exists twice: with distance 1 (fine) and 0 (closes a zero-distance cycle)
    edges = [Edge("a", "b"), Edge("b", "a", distance=1), Edge("b", "a")]
    with pytest.raises(InputError) as exc:
        problem(chain(), edges).check()
    msg = one_sentence(exc, "zero total distance")
    assert "'c'" not in msg and " c " not in msg


def test_non_integer_distance():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("a", "b"), Edge("c", "a", distance=1.5)]).check()
    one_sentence(exc, "c -> a", "distance")


def test_string_distance():
    with pytest.raises(InputError) as exc:
        problem(chain(), [Edge("c", "a", distance="1")]).check()
    one_sentence(exc, "c -> a", "distance")


# ------------------------------------------------------------------ against a machine


def test_unknown_unit_lists_the_known_units():
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1), Op("shfl", "warp_shuffle", 1)]).check(toy_machine())
    one_sentence(exc, "'shfl'", "'warp_shuffle'", "'toy'", "sfu, tensor")


def test_unit_of_capacity_zero():
    from warpsched.scheduler.machine import Machine

    m = Machine("m", units={"tensor": 0})
    with pytest.raises(InputError) as exc:
        problem([Op("a", "tensor", 1)]).check(m)
    one_sentence(exc, "'a'", "'tensor'", "capacity 0")


def test_register_value_larger_than_a_warpgroup_can_hold():
    m = toy_machine(reg_max=240, register_overhead=24)
    with pytest.raises(InputError) as exc:
        problem([Op("acc", "tensor", 1, space="regs", regs_per_thread=224)]).check(m)
    one_sentence(exc, "'acc'", "224", "216", "240", "24 reserved")


def test_register_value_larger_than_setmaxnreg_max():
    with pytest.raises(InputError) as exc:
        problem([Op("acc", "tensor", 1, space="regs", regs_per_thread=264)]).check(toy_machine())
    one_sentence(exc, "'acc'", "264", "256")


def test_smem_value_larger_than_shared_memory():
    m = toy_machine()
    with pytest.raises(InputError) as exc:
        problem([Op("tile", "tensor", 1, space="smem", bytes=300_000)]).check(m)
    one_sentence(exc, "'tile'", "300000", str(m.smem_bytes), "shared memory")


def test_machine_checks_need_the_machine():
    p = problem([Op("a", "nowhere", 1, space="regs", regs_per_thread=4000)])
    p.check()  # unit and register limits are machine properties
    with pytest.raises(InputError):
        p.check(toy_machine())


# ------------------------------------------------------------------ the graph view


def test_graph_is_a_multidigraph_keeping_parallel_edges():
    edges = [Edge("a", "b"), Edge("a", "b", distance=1, delay=2), Edge("b", "c"), Edge("c", "c", distance=1)]
    p = problem(chain(), edges)
    p.check()
    g = p.graph
    assert isinstance(g, nx.MultiDiGraph)
    assert set(g.nodes) == {"a", "b", "c"}
    assert g.number_of_edges() == 4
    assert g.number_of_edges("a", "b") == 2
    assert sorted((d["edge"].distance, d["edge"].delay) for _, _, d in g.edges("a", data=True)) == [
        (0, 0),
        (1, 2),
    ]
    assert g.nodes["a"]["op"] == Op("a", "tensor", 1)
    assert sorted(e.distance for e in p.out_edges("a")) == [0, 1]
    assert sorted(e.distance for e in p.in_edges("b")) == [0, 1]
    assert sorted(p.in_edges("c"), key=lambda e: e.src) == [Edge("b", "c"), Edge("c", "c", distance=1)]


def test_problem_is_frozen_and_keeps_order():
    ops, edges = twill_chain()
    p = Problem.build("t", ops, edges)
    assert p.ops == tuple(ops) and p.edges == tuple(edges)
    assert list(p.op_by_name) == ["S", "P", "O"]
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]
