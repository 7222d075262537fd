"""CUDA generation and the sm_90a build (issue 4): the generated GEMM states its schedule, compiles
clean with nvcc, and its SASS holds wgmma, TMA and mbarriers without local memory; runtime
mistakes are one sentence; on an H100 it matches torch."""

from __future__ import annotations

import re
import shutil
from functools import cache

import pytest

from kernels.build import SASS_FORBIDDEN, SASS_REQUIRED, build
from kernels.cuda.render import render
from kernels.program import lower
from kernels.runtime import KernelError, KernelRuntime, _check_operand, require_sm90
from models import build_model
from scheduler import solve
from scheduler.errors import InputError

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None and not __import__("os").path.exists("/usr/local/cuda/bin/nvcc"),
                                reason="nvcc is not installed on this machine")


@cache
def gemm_schedule(**params):
    r = solve(build_model("gemm", "h100", **params), "h100", objectives=("makespan",))
    assert r.proven and r.verdict.ok
    return r.schedule


def test_the_source_states_the_schedule():
    s = gemm_schedule()
    program = lower(s)
    kernel = render(s, program)
    for ring in program.rings:  # ring depths and reader counts come from the schedule
        assert f"Element {ring.value}[{ring.depth}][" in kernel.source
        assert f"Empty::init(&s.empty_{ring.value}[i], {len(ring.readers)})" in kernel.source
    for w in program.warpgroups:  # setmaxnreg budgets and stage offsets
        assert re.search(rf"warpgroup_reg_(alloc|dealloc)<{w.registers}>", kernel.source)
        for step in w.steps:
            assert f"// {step.op}: iteration j - {step.stage}" in kernel.source
    assert kernel.threads == 128 * len(program.warpgroups)


def test_families_without_templates_are_refused_in_one_sentence():
    r = solve(build_model("attention_fwd", "h100"), "h100", objectives=("makespan",))
    with pytest.raises(InputError, match="covers gemm so far"):
        render(r.schedule)


@needs_nvcc
def test_gemm_compiles_clean_for_sm90a(tmp_path, monkeypatch):
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    kernel = render(gemm_schedule())
    report = build(kernel.source, kernel.entry)
    assert report.sass_ok, report.sass_problems
    assert all(report.sass_counts[op] > 0 for op in SASS_REQUIRED)
    assert all(report.sass_counts[op] == 0 for op in SASS_FORBIDDEN)
    assert report.spill_stores == report.spill_loads == 0
    assert report.registers <= 65536 // kernel.threads  # fits the launch; setmaxnreg moves them after
    again = build(kernel.source, kernel.entry)
    assert again.cached and again.cubin == report.cubin  # cached by content


def test_runtime_refuses_machines_without_an_sm90_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(KernelError, match="need a CUDA GPU of compute capability 9.0"):
        require_sm90()
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        KernelRuntime().gemm(torch.zeros(128, 64, dtype=torch.bfloat16), torch.zeros(256, 64, dtype=torch.bfloat16))


@pytest.mark.parametrize("make, words", [
    (lambda t: t.zeros(128, 64, dtype=t.bfloat16), ["is on cpu", ".cuda()"]),
    (lambda t: [[1.0]], ["torch.Tensor", "list"]),
])
def test_operand_mistakes_are_one_sentence(make, words):
    torch = pytest.importorskip("torch")
    with pytest.raises(KernelError) as exc:
        _check_operand("a", make(torch), (torch.bfloat16,))
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value)


@pytest.mark.gpu
def test_gemm_matches_torch_on_the_gpu():
    import torch

    import kernels

    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(256, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(512, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    c = kernels.gemm(a, b)
    ref = a.float() @ b.float().T
    assert ref.abs().max() > 0
    err = ((c.float() - ref).norm() / ref.norm()).item()
    assert err < 1e-2, err
    with pytest.raises(KernelError, match="not a multiple of the tile"):
        kernels.gemm(a[:100].contiguous(), b)
