"""kernels/driver.py: which variant warpsched builds (branch-free unless ptxas spills it)."""

from __future__ import annotations


from warpsched.kernels.cuda.render import render
from warpsched.kernels.driver import kernel_for
from tests.kernels.conftest import target


def test_the_driver_falls_back_from_deferred_waits_to_waits_at_issue_to_one_guarded_loop(monkeypatch):
    """The driver keeps deferred wgmma waits when they build clean, waits at each issue when ptxas serializes
    the deferred ones, and takes one guarded loop when the peeled steady state spills."""
    from dataclasses import replace

    from warpsched.kernels import driver

    clean = driver.BuildReport("k.cubin", 168, 0, 0, {}, True, (), False, "test")
    serialized = (
        "ptxas serialized the wgmma instructions (remark C7515: 4 of 4 HGMMA wait for the one before)",
    )

    def fake_build(spilling, serializes=lambda source: False):
        return lambda source, entry: replace(
            clean,
            spill_stores=spilling(source),
            spill_loads=spilling(source),
            sass_problems=serialized if serializes(source) else (),
        )

    attention = target("attention_fwd")
    monkeypatch.setattr(driver, "cached_report", lambda source: None)
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 0))
    kernel = kernel_for(attention)
    assert kernel.branch_free and kernel.deferred_waits and "// deferred wait: gemm" in kernel.source
    monkeypatch.setattr(
        driver, "build", fake_build(lambda source: 0, lambda source: "// deferred wait: gemm" in source)
    )
    kernel = kernel_for(attention)
    assert kernel.branch_free and not kernel.deferred_waits
    assert kernel.source == render(attention, defer=False).source and "warpgroup_wait<1>" not in kernel.source
    monkeypatch.setattr(
        driver, "build", fake_build(lambda source: 64 if "steady || (it >= 0" in source else 0)
    )
    kernel = kernel_for(attention)
    assert not kernel.branch_free and kernel.source == render(attention, peel=False).source
    assert "// steady state" not in kernel.source and "steady || (it >= 0" not in kernel.source
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 64))  # every variant refused: the last
    assert kernel_for(target("gemm")).source == render(target("gemm"), peel=False).source
