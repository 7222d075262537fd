"""kernels/build.py on the real toolchain: the first targets compile clean for sm_90a, their SASS holds
wgmma, TMA and mbarriers without local memory, and ptxas pipelines each wgmma batch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from warpsched.kernels.build import SASS_FORBIDDEN, SASS_REQUIRED, build
from warpsched.kernels.driver import build_schedule
from tests.kernels.conftest import TARGETS, target


@pytest.mark.parametrize("name", TARGETS)
def test_the_first_targets_compile_clean_for_sm90a(name, tmp_path, monkeypatch):
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    built = build_schedule(
        target(name)
    )  # what warpsched builds (attention: branch-free unless ptxas spills it)
    kernel, report = built.kernel, built.report
    assert report.sass_ok, report.sass_problems
    assert all(report.sass_counts[op] > 0 for op in SASS_REQUIRED)
    assert all(report.sass_counts[op] == 0 for op in SASS_FORBIDDEN)
    assert report.spill_stores == report.spill_loads == 0
    assert report.registers <= 65536 // kernel.threads  # fits the launch; setmaxnreg moves them after
    # the tensor cores pipeline each batch: only its last HGMMA waits (gsb0); ptxas serializing the kernel
    # (a wait after every HGMMA) costs most of their rate and is refused by the build
    sass = Path(report.cubin).with_name("kernel.sass").read_text()
    hgmma = re.findall(r"HGMMA\.[^;]*;", sass)
    assert 0 < sum("gsb0" in h for h in hgmma) <= len(hgmma) // 4, hgmma
    if (
        name == "quant_gemm"
    ):  # the packed layout pays off: word loads of whole fields, integers to float without I2F in the loop
        from warpsched.kernels.cuda import sass as sass_reader

        loops = sass_reader.steady_loops(sass_reader.parse(sass, kernel.entry))
        assert loops and all(i.base != "I2F" for lp in loops for i in lp.body)
        assert "LDS.U8" not in sass  # (the prologue's split-K division by gridDim.z may use I2F.RP)
        assert re.search(r"\bLDS\b", sass)
        # the dequant reads TMA-filled slots with LDS: a proxy fence orders them before the slot's next TMA
        # write
        assert "FENCE.VIEW.ASYNC.S" in sass
        steps = [
            b for b in re.split(r"\{  // (?=\w+: iteration)", kernel.source)[1:] if b.startswith("dequant")
        ]
        assert steps
        for block in steps:
            first_release = min(block.index(f"::release(s.empty_load_{r},") for r in "ws")
            assert -1 < block.find("fence_view_async_shared") < first_release, block
    if name == "gemm":
        again = build(kernel.source, kernel.entry)
        assert again.cached and again.cubin == report.cubin  # cached by content
