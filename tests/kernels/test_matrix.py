"""Issue 5's matrix: every weight bit width and format, and every attention head_dim, solves, simulates
correct against torch and compiles to a clean sm_90a cubin (HGMMA, UTMALDG, SYNCS, USETMAXREG, no
LDL/STL). CI runs a sample; `pytest -m slow tests/kernels/test_matrix.py` runs all of it."""

from __future__ import annotations


import pytest

from warpsched.kernels.build import build
from warpsched.kernels.driver import kernel_for
from warpsched.kernels.program import lower
from warpsched.kernels.semantics import semantics_for
from warpsched.kernels.simulate import simulate
from warpsched.models import build_model
from warpsched.models.quant_gemm import FLOAT_FORMATS
from warpsched.scheduler import solve

QUANT = (
    [(bits, "int", 128) for bits in range(1, 9)]
    + [(2, "int_zp", 32), (4, "int_zp", 64), (8, "int_zp", 128)]
    + [(FLOAT_FORMATS[f], f, 128) for f in FLOAT_FORMATS]
    + [(4, "int", -1)]
)
CASES = (
    [("quant_gemm", {"bits": b, "fmt": f, "group_size": g}) for b, f, g in QUANT]
    + [("quant_gemm", {"bits": 4, "dtype": "fp16"}), ("quant_gemm", {"bits": 4, "m": 2048})]
    + [("attention_fwd", {"head_dim": d}) for d in (128, 256)]
    + [("attention_fwd", {"head_dim": 64, "block_n": 176})]
    + [("attention_fwd", {"head_dim": 128, "dtype": "fp16", "gqa": 4})]
    + [("attention_fwd", {"head_dim": d, "causal": True}) for d in (128, 256)]
    + [("attention_fwd", {"head_dim": 64, "causal": True, "block_n": 176})]
)  # at 128 it keeps two copies of max1
SAMPLE = {
    "quant_gemm:bits=2,fmt=int_zp,group_size=32",
    "quant_gemm:bits=6,fmt=e3m2,group_size=128",
}  # in CI: zero
# points with the smallest groups, and a 6-bit float whose codes straddle bytes


def _label(case):
    model, params = case
    return model + ":" + ",".join(f"{k}={v}" for k, v in params.items())


PARAMS = [pytest.param(c, id=_label(c), marks=() if _label(c) in SAMPLE else pytest.mark.slow) for c in CASES]


@pytest.mark.parametrize("case", PARAMS)
def test_compiles_clean_and_simulates_correct(case, tmp_path, monkeypatch):
    model, params = case
    r = solve(build_model(model, "h100", **params), "h100")  # the default objectives: what the runtime solves
    assert r.verdict.ok
    program = lower(r.schedule)
    latency = {op.name: op.latency for op in r.schedule.problem.ops}
    verdict = simulate(
        program,
        latency,
        r.schedule.machine.sync_latency,
        iterations=4,
        interleavings=10,
        seed=1,
        semantics=semantics_for(r.schedule.problem, 4, 1),
    )
    assert verdict.ok, verdict.summary()
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    kernel = kernel_for(r.schedule, program)  # what warpsched builds: branch-free unless ptxas spills it
    report = build(kernel.source, kernel.entry)
    assert report.sass_ok, report.sass_problems
    assert report.spill_stores == report.spill_loads == 0
