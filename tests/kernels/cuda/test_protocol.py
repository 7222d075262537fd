"""The static check of the rendered CUDA against its program (issue 18 item 2): every shipped kernel passes
it in every variant the driver may build, each rule catches the break it is there for, and render() refuses
a kernel that breaks one."""

from __future__ import annotations

import re

import pytest

from warpsched.kernels import mutate
from warpsched.kernels.cuda import protocol
from warpsched.kernels.cuda import templates as T
from warpsched.kernels.cuda.render import render
from warpsched.kernels.program import lower, synchronous

SHIPPED = mutate.shipped()
ALL = [(label, s) for kernels in SHIPPED.values() for label, s in kernels]


@pytest.mark.parametrize("label, schedule", ALL, ids=[label for label, _ in ALL])
def test_every_shipped_kernel_carries_its_programs_synchronisation(label, schedule):
    program = lower(schedule)
    for peel, defer in ((True, True), (True, False), (False, True)):
        source = render(schedule, peel=peel, defer=defer).source
        assert protocol.check(source, program if peel and defer else synchronous(program)) == ()


def _kernel(family: str, *, tokens: bool = False):
    """A shipped kernel of `family` (one with a tensor-core order across warpgroups if `tokens`) whose
    consumers read the TMA rings themselves (no staging ring)."""
    for label, schedule in SHIPPED[family]:
        program = lower(schedule)
        if bool(program.token_units) == tokens and all(r.kind == "tma" for r in program.rings):
            return schedule, program, render(schedule).source
    raise AssertionError(f"no shipped {family} kernel with tokens={tokens}")


@pytest.mark.parametrize("name, what, rule, mutation", mutate.SOURCE, ids=[m[0] for m in mutate.SOURCE])
def test_each_rule_catches_its_break(name, what, rule, mutation):
    family, tokens = ("quant_gemm", True) if rule == "named-barrier" else ("quant_gemm", False)
    schedule, program, source = _kernel(family, tokens=tokens)
    broken = mutation(source)
    assert broken is not None and broken != source
    rules = {v.rule for v in protocol.check(broken, program)}
    assert rule in rules, (name, rules)


def test_an_rs_wgmma_without_its_a_operand_fence_is_caught():
    """Attention's P V reads P from registers; before this check the template fenced only O around it."""
    schedule, program, source = _kernel("attention_fwd", tokens=True)
    assert "warpgroup_fence_operand(p0);" in source
    old = re.sub(r"^\s*warpgroup_fence_operand\(p\d\);.*\n", "", source, flags=re.M)
    found = [v for v in protocol.check(old, program) if v.rule == "wgmma-batch"]
    assert found and all("'p" in v.message for v in found), found


def test_a_proxy_fence_after_the_reads_only_counts():
    schedule, program, source = _kernel("quant_gemm")
    fence = (
        "cutlass::arch::fence_view_async_shared();  // our loads of these slots before their next TMA write\n"
    )
    assert fence in source
    # the fence moved up to right after the full waits, before the generic loads it must follow
    moved = source.replace(fence, "")
    at = moved.index("asm volatile", moved.index("asm volatile") + 1)
    at = moved.index("\n", at) + 1
    moved = moved[:at] + "            " + fence + moved[at:]
    assert "proxy-fence" in {v.rule for v in protocol.check(moved, program)}
    assert protocol.check(source, program) == ()


def test_render_refuses_a_kernel_that_breaks_the_protocol(monkeypatch):
    schedule, _, _ = _kernel("quant_gemm")
    monkeypatch.setattr(T, "FENCE_BEFORE_TMA_REFILL", "")
    with pytest.raises(protocol.ProtocolError, match="proxy-fence"):
        render(schedule)


def test_split_k_hand_off_out_of_order_or_on_shared_barriers_is_caught():
    schedule, program, source = _kernel("quant_gemm")
    assert source.count("} else {  // split K") == 2 and protocol.check(source, program) == ()
    fence = "        __threadfence();  // split-k: partials published\n"
    count = "        int* count = counters"
    # the count taken before the partials are fenced: another SM's last split may add stale partials
    late = source.replace(fence, "", 1)
    late = late.replace("        if (last) {", fence + "        if (last) {", 1)
    assert "split-k" in {v.rule for v in protocol.check(late, program)}
    # the reduction tells on another barrier than the one the warpgroup met on
    told = source.replace('"r"(1) : "memory");  // split-k', '"r"(3) : "memory");  // split-k', 1)
    assert any("another named barrier" in v.message for v in protocol.check(told, program))
    # both weight slices meet on one barrier (and tell on it): their 256 threads would pass a 128 count
    shared = source.replace(
        ':: "r"(2) : "memory");  // split-k: the warpgroup',
        ':: "r"(1) : "memory");  // split-k: the warpgroup',
    ).replace('"r"(2) : "memory");  // split-k', '"r"(1) : "memory");  // split-k')
    assert any("one per weight slice" in v.message for v in protocol.check(shared, program))
    # a hardware id of the order token's range (CUTLASS's NamedBarrier id 1 is hardware 9)
    clash = source.replace(':: "r"(1) : "memory");', ':: "r"(9) : "memory");')
    assert any("8..15" in v.message for v in protocol.check(clash, program))
    assert count in source
