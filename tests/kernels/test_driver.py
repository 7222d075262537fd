"""kernels/driver.py: which variant warpsched builds (branch-free unless ptxas spills it)."""

from __future__ import annotations


from warpsched.kernels.cuda.render import render
from warpsched.kernels.driver import kernel_for
from tests.kernels.conftest import target


def test_a_branch_free_steady_state_that_spills_is_built_as_one_guarded_loop(monkeypatch):
    """The driver keeps the peeled, branch-free variant when it builds clean and takes one guarded
    loop when ptxas spills it; gemm has nothing to peel."""
    from dataclasses import replace

    from warpsched.kernels import driver

    clean = driver.BuildReport("k.cubin", 168, 0, 0, {}, True, (), False, "test")

    def fake_build(spilling):
        return lambda source, entry: replace(
            clean, spill_stores=spilling(source), spill_loads=spilling(source)
        )

    attention = target("attention_fwd")
    monkeypatch.setattr(driver, "cached_report", lambda source: None)
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 0))
    assert kernel_for(attention).branch_free
    monkeypatch.setattr(
        driver, "build", fake_build(lambda source: 64 if "steady || (it >= 0" in source else 0)
    )
    kernel = kernel_for(attention)
    assert not kernel.branch_free and kernel.source == render(attention, peel=False).source
    assert "// steady state" not in kernel.source and "steady || (it >= 0" not in kernel.source
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 64))
    assert (
        kernel_for(target("gemm")).source == render(target("gemm")).source
    )  # nothing peeled, nothing to choose
