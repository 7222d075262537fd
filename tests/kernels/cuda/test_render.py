"""kernels/cuda/render.py: the kernel source states the schedule (rings, budgets, stage offsets, releases,
the tensor core's order), refuses what it cannot generate in one sentence, and packs TMA-only warpgroups."""

from __future__ import annotations

import collections
import re

import pytest

from warpsched.kernels.cuda.render import render
from warpsched.kernels.driver import build_schedule
from warpsched.kernels.program import lower
from warpsched.models import build_model
from warpsched.scheduler import solve
from warpsched.scheduler.errors import InputError
from tests.kernels.conftest import TARGETS, target


@pytest.mark.parametrize("name", TARGETS)
def test_the_source_states_the_schedule(name):
    s = target(name)
    program = lower(s)
    kernel = render(s, program)
    for ring in program.rings:  # ring depths and reader counts come from the schedule
        assert re.search(rf"\b{ring.value}\[{ring.depth}\]\[", kernel.source)
        assert (
            f"Empty::init(&s.empty_{ring.value}[i], {4 * len(ring.readers)})" in kernel.source
        )  # every reader's warps
    for w in program.warpgroups:  # setmaxnreg budgets and stage offsets
        assert re.search(rf"warpgroup_reg_(alloc|dealloc)<{w.registers}>", kernel.source)
        for step in w.steps:
            assert f"// {step.op}: iteration j - {step.stage}" in kernel.source
            for ring, distance, _ in step.releases:  # released where the program says, after its last read
                assert (
                    f"Ring<{program.ring(ring).depth}>::release(s.empty_{ring}, it - {distance});"
                    in kernel.source
                )
    assert kernel.threads == 128 * len(program.warpgroups)
    # the tensor core's order across warpgroups: one named barrier per hand-over, each synced and arrived on
    syncs = re.findall(r"Order::sync\(256, (\d+)\)", kernel.source)
    arrives = re.findall(r"Order::arrive\(256, (\d+)\)", kernel.source)
    shared = any(n for _, n in program.token_units)
    assert bool(syncs) == shared and sorted(set(syncs)) == sorted(set(arrives))


def test_the_ping_pong_order_of_attention_follows_the_schedule():
    s = target("attention_fwd")
    program = lower(s)
    kernel = render(s, program)
    chain = sorted((st.token[1], st.op, w.index) for w in program.warpgroups for st in w.steps if st.token)
    hand_overs = sum(chain[p - 1][2] != chain[p][2] for p in range(len(chain)))
    assert hand_overs >= 2  # the two consumers take turns on the tensor core
    copies = 2  # the consumers mask keys: a guarded copy of the trip (prologue, epilogue) and a steady one
    syncs = collections.Counter(re.findall(r"Order::sync\(256, (\d+)\);  // after (\w+)", kernel.source))
    assert len(syncs) == hand_overs and set(syncs.values()) == {copies}
    wraps = (
        chain[-1][2] != chain[0][2]
    )  # the period's last op hands over to the next trip's first: a first token
    assert len(re.findall(r"Order::arrive\(256, \d+\);  // \w+ goes first", kernel.source)) == wraps
    passes = collections.Counter(re.findall(r"Order::arrive\(256, (\d+)\);  // to (\w+)", kernel.source))
    assert len(passes) == hand_overs and set(passes.values()) == {
        2 * copies
    }  # passed whether the step is live or not


def test_unsupported_configurations_are_refused_in_one_sentence():
    r = solve(build_model("gemm", "h100", tile_k=128), "h100", objectives=("makespan",))
    with pytest.raises(InputError, match="tile_k = 64"):
        render(r.schedule)
    with pytest.raises(InputError, match="64 weight rows per consumer"):
        render(
            solve(build_model("quant_gemm", "h100", consumers=1), "h100", objectives=("makespan",)).schedule
        )


def test_tma_only_warpgroups_share_one_warpgroup_a_warp_each():
    """Prefill quant_gemm: the schedule loads weights and activations from two producer warpgroups; the
    kernel gives each a warp of one warpgroup, so the consumers keep 168 registers at launch (ptxas sizes
    each wgmma at the launch value: a 64 x 256 accumulator does not fit the 128 of four warpgroups)."""
    s = solve(build_model("quant_gemm", "h100", bits=4, m=2048), "h100").schedule
    program = lower(s)
    loaders = [w for w in program.warpgroups if all(st.kind == "tma_load" for st in w.steps)]
    assert len(loaders) == 2
    kernel = render(s, program)
    assert kernel.threads == 128 * (len(program.warpgroups) - 1)
    assert "the TMA producers of the schedule's warpgroups" in kernel.source
    assert kernel.source.count("const bool leader = threadIdx.x % 32 == 0;") == 2
    report = build_schedule(
        s, program
    ).report  # nvcc warned here once (an unused kernel-wide leader): a failed build now
    assert report.sass_ok and report.registers <= 168, report


def test_a_dequantization_handed_over_through_shared_memory_builds_clean():
    """Two warpgroups dequantize, a third issues the wgmma from the staged slots (the solver's int2 decode
    schedule with the counted costs). Every kernel with a staging ring declared its slot twice until this
    schedule was first compiled (2026-12-02); the staged slice is written a dequantized pair at a time."""
    s = solve(build_model("quant_gemm", "h100", bits=2), "h100", config="deterministic").schedule
    program = lower(s)
    staged = [r for r in program.rings if r.kind == "staging"]
    assert staged and all(r.value.startswith("dequant") for r in staged)
    kernel = render(s, program)
    assert kernel.source.count("dequant_pair_at(w, i, scale, zero)") == 2  # one per dequantizing warpgroup
    report = build_schedule(s, program).report
    assert report.sass_ok and report.spill_stores == 0, report
