"""CUDA generation and the sm_90a build (issue 4): the generated kernels of the three first targets
state their schedule, compile clean with nvcc, and their SASS holds wgmma, TMA and mbarriers
without local memory; runtime mistakes are one sentence; on an H100 they match torch."""

from __future__ import annotations

import collections
import math
import re
from functools import cache
from pathlib import Path

import pytest

from warpsched.kernels.build import SASS_FORBIDDEN, SASS_REQUIRED, build
from warpsched.kernels.cuda.render import render
from warpsched.kernels.driver import build_schedule, kernel_for
from warpsched.kernels.program import lower
from warpsched import kernels as kernel_api
from warpsched.kernels.runtime import KernelError, check_operand, require_sm90
from warpsched.models import build_model
from warpsched.scheduler import solve
from warpsched.scheduler.errors import InputError


TARGETS = {  # issue 4's first targets (solver_configs/problems/*.yaml hold the same)
    "gemm": ("gemm", {}),
    "quant_gemm": ("quant_gemm", {"bits": 4, "group_size": 128}),
    "attention_fwd": ("attention_fwd", {"head_dim": 128}),
}


@cache
def schedule_of(name: str, **params):
    r = solve(build_model(name, "h100", **params), "h100", objectives=("makespan",))
    assert r.proven and r.verdict.ok
    return r.schedule


def target(name):
    model, params = TARGETS[name]
    if model == "attention_fwd":  # the shipped schedule (deterministic preset): a default-preset solve picks one of many
        from warpsched.kernels.package import find  # optimal schedules, and ptxas spills a few bytes of some (DESIGN.md)

        shipped = find(model, params, "h100")
        assert shipped is not None and shipped.ii_proven_optimal
        return shipped
    return schedule_of(model, **params)


@pytest.mark.parametrize("name", TARGETS)
def test_the_source_states_the_schedule(name):
    s = target(name)
    program = lower(s)
    kernel = render(s, program)
    for ring in program.rings:  # ring depths and reader counts come from the schedule
        assert re.search(rf"\b{ring.value}\[{ring.depth}\]\[", kernel.source)
        assert f"Empty::init(&s.empty_{ring.value}[i], {4 * len(ring.readers)})" in kernel.source  # every reader's warps
    for w in program.warpgroups:  # setmaxnreg budgets and stage offsets
        assert re.search(rf"warpgroup_reg_(alloc|dealloc)<{w.registers}>", kernel.source)
        for step in w.steps:
            assert f"// {step.op}: iteration j - {step.stage}" in kernel.source
            for ring, distance, _ in step.releases:  # released where the program says, after its last read
                assert f"Ring<{program.ring(ring).depth}>::release(s.empty_{ring}, it - {distance});" in kernel.source
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
    wraps = chain[-1][2] != chain[0][2]  # the period's last op hands over to the next trip's first: a first token
    assert len(re.findall(r"Order::arrive\(256, \d+\);  // \w+ goes first", kernel.source)) == wraps
    passes = collections.Counter(re.findall(r"Order::arrive\(256, (\d+)\);  // to (\w+)", kernel.source))
    assert len(passes) == hand_overs and set(passes.values()) == {2 * copies}  # passed whether the step is live or not


def test_unsupported_configurations_are_refused_in_one_sentence():
    r = solve(build_model("gemm", "h100", tile_k=128), "h100", objectives=("makespan",))
    with pytest.raises(InputError, match="tile_k = 64"):
        render(r.schedule)
    with pytest.raises(InputError, match="64 weight rows per consumer"):
        render(solve(build_model("quant_gemm", "h100", consumers=1), "h100", objectives=("makespan",)).schedule)


@pytest.mark.parametrize("name", TARGETS)
def test_the_first_targets_compile_clean_for_sm90a(name, tmp_path, monkeypatch):
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    built = build_schedule(target(name))  # what warpsched builds (attention: branch-free unless ptxas spills it)
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
    if name == "quant_gemm":  # the packed layout pays off: word loads of whole fields, integers to float without I2F
        assert "LDS.U8" not in sass and "I2F" not in sass
        assert re.search(r"\bLDS\b", sass)
        # the dequant reads TMA-filled slots with LDS: a proxy fence orders them before the slot's next TMA write
        assert "FENCE.VIEW.ASYNC.S" in sass
        steps = [b for b in kernel.source.split("{  // ")[1:] if b.startswith("dequant")]
        assert steps
        for block in steps:
            first_release = min(block.index(f"::release(s.empty_load_{r},") for r in "ws")
            assert -1 < block.find("fence_view_async_shared") < first_release, block
    if name == "gemm":
        again = build(kernel.source, kernel.entry)
        assert again.cached and again.cubin == report.cubin  # cached by content


def test_runtime_refuses_machines_without_an_sm90_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(KernelError, match="need a CUDA GPU of compute capability 9.0"):
        require_sm90()
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.gemm(torch.zeros(128, 64, dtype=torch.bfloat16), torch.zeros(256, 64, dtype=torch.bfloat16))
    x = torch.zeros(16, 128, dtype=torch.bfloat16)
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.quant_gemm(x, torch.zeros(128, 64, dtype=torch.uint8), torch.zeros(1, 128, dtype=torch.bfloat16),
                              bits=4, group_size=128)
    q = torch.zeros(1, 1, 64, 128, dtype=torch.bfloat16)
    with pytest.raises(KernelError, match="need a CUDA GPU"):
        kernel_api.attention_fwd(q, q, q)


@pytest.mark.parametrize("make, words", [
    (lambda t: t.zeros(128, 64, dtype=t.bfloat16), ["is on cpu", ".cuda()"]),
    (lambda t: [[1.0]], ["torch.Tensor", "list"]),
])
def test_operand_mistakes_are_one_sentence(make, words):
    torch = pytest.importorskip("torch")
    with pytest.raises(KernelError) as exc:
        check_operand("a", make(torch), (torch.bfloat16,))
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value)


def _driver_or_skip():
    return pytest.importorskip("cuda.bindings.driver", reason="cuda-python is not installed")


def _reaches_the_driver(call, *args) -> None:
    """cuda-python converts the arguments before it loads libcuda: on a machine without a driver the call
    ends at the library lookup, so a TypeError here is an argument the GPU would refuse too."""
    try:
        call(*args)
    except TypeError:
        raise
    except Exception as exc:  # noqa: BLE001 - no libcuda here, or the driver refusing the null address
        assert "cuda" in str(exc).lower() or "driver" in str(exc).lower(), exc


def test_tensor_map_and_launch_arguments_convert_in_cuda_python():
    """The GPU's first run failed here: cuTensorMapEncodeTiled takes cuuint64_t / cuuint32_t lists, not ints."""
    import ctypes

    from warpsched.kernels.runtime import _tensor_map_arguments

    driver = _driver_or_skip()
    args = _tensor_map_arguments(driver.CUtensorMapDataType.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 0, [128, 64, 8],
                                 [256, 256 * 64], [64, 64, 1], driver.CUtensorMapSwizzle.CU_TENSOR_MAP_SWIZZLE_128B)
    _reaches_the_driver(driver.cuTensorMapEncodeTiled, *args)
    with pytest.raises(TypeError):
        driver.cuTensorMapEncodeTiled(*args[:3], [128, 64, 8], *args[4:])
    kernel_args = ((driver.CUtensorMap(), 0, 7, 0.5), (None, ctypes.c_void_p, ctypes.c_int, ctypes.c_float))
    _reaches_the_driver(driver.cuLaunchKernel, driver.CUfunction(0), 1, 1, 1, 128, 1, 1, 0, 0, kernel_args, 0)


# correct quant_gemm kernels stay under 3e-3 (bf16 output rounding); a racing schedule gave 8e-3 on an H100
QUANT_TOLERANCE = 5e-3


def _relative_error(out, ref) -> float:
    assert ref.abs().max() > 0 and out.isfinite().all()
    return ((out.float() - ref).norm() / ref.norm()).item()


@pytest.mark.gpu
def test_gemm_matches_torch_on_the_gpu():
    import torch

    from warpsched import kernels

    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(256, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    b = torch.randn(512, 512, device="cuda", dtype=torch.bfloat16, generator=g)
    c = kernels.gemm(a, b)
    assert _relative_error(c, a.float() @ b.float().T) < 1e-2
    with pytest.raises(KernelError, match="not a multiple of the tile"):
        kernels.gemm(a[:100].contiguous(), b)


@pytest.mark.gpu
@pytest.mark.parametrize("bits, fmt, group, m, k", [(4, "int", 128, 16, 1024), (4, "int", 128, 5, 1024), (3, "int", 128, 16, 1024),
                                                    (2, "int_zp", 64, 16, 1024), (8, "int", -1, 16, 1024), (4, "e2m1", 128, 16, 1024),
                                                    (4, "int_zp", 32, 16, 4096), (5, "int", -1, 3, 4096),  # k 4096: split K
                                                    (8, "int", 128, 2048, 1024), (4, "int", 128, 2048, 1024)])  # prefill
def test_quant_gemm_matches_torch_on_the_gpu(bits, fmt, group, m, k):
    import torch

    from warpsched import kernels
    from warpsched.kernels.quant import dequantize, pack

    g = torch.Generator(device="cuda").manual_seed(bits)
    n = 256
    codes = torch.randint(0, 1 << bits, (n, k), device="cuda", generator=g)
    groups = (n,) if group == -1 else (k // group, n)
    scales = (torch.rand(groups, device="cuda", generator=g) + 0.5).to(torch.bfloat16) / (1 << (bits - 1))
    zeros = torch.randint(0, 1 << bits, groups, device="cuda", generator=g).to(torch.bfloat16) if fmt == "int_zp" else None
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
    y = kernels.quant_gemm(x, pack(codes, bits), scales, zeros, bits=bits, group_size=group, fmt=fmt)
    ref = x.float() @ dequantize(codes, scales, zeros, bits=bits, group_size=group, fmt=fmt).T
    assert y.shape == (m, n) and _relative_error(y, ref) < QUANT_TOLERANCE


@pytest.mark.gpu
@pytest.mark.parametrize("d, n, heads, kv_heads, causal", [(128, 1024, 4, 4, False), (128, 1000, 4, 2, False),
                                                         (64, 512, 2, 1, False), (256, 384, 2, 2, False),
                                                         (128, 1000, 2, 2, True), (64, 640, 2, 1, True)])
def test_attention_matches_torch_on_the_gpu(d, n, heads, kv_heads, causal):
    import torch

    from warpsched import kernels

    g = torch.Generator(device="cuda").manual_seed(d)
    q = torch.randn(2, heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(2, kv_heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(2, kv_heads, n, d, device="cuda", dtype=torch.bfloat16, generator=g)
    o = kernels.attention_fwd(q, k, v, causal=causal, softmax_scale=0.5 / math.sqrt(d))
    rep = heads // kv_heads
    ref = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float().repeat_interleave(rep, 1),
                                                           v.float().repeat_interleave(rep, 1), is_causal=causal,
                                                           scale=0.5 / math.sqrt(d))
    assert o.shape == q.shape and _relative_error(o, ref) < 1e-2
    if not causal and kv_heads == heads:
        o2, lse = kernels.attention_fwd(q, k, v, softmax_scale=0.5 / math.sqrt(d), return_lse=True)
        scores = (q.float() @ k.float().transpose(-1, -2)) * (0.5 / math.sqrt(d))
        assert torch.equal(o2, o) and (lse - torch.logsumexp(scores, dim=-1)).abs().max().item() < 1e-2


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
    report = build_schedule(s, program).report  # nvcc warned here once (an unused kernel-wide leader): a failed build now
    assert report.sass_ok and report.registers <= 168, report


def test_scaled_scores_get_their_own_registers_when_the_next_qk_comes_first():
    """The first GPU run found attention d64 wrong: its schedule issues iteration i+1's QK^T before exp2 reads
    iteration i's S * scale - m, which the template had kept in S's own registers. The alias replay finds
    that read, and the kernel then keeps the scaled scores apart (x0); d128's schedule needs nothing."""
    from warpsched.kernels.cuda.aliases import clobbered_reads
    from warpsched.kernels.package import find

    shared = {"wgmma_qk": "s", "scale": "s", "exp2": "p", "rescale_o": "o", "wgmma_pv": "o", "row_max": "m", "row_sum": "l"}
    for d, split in ((64, True), (128, False)):
        s = find("attention_fwd", {"head_dim": d, "dtype": "bf16", "causal": False}, "h100")
        program = lower(s)
        kinds = {n: st.kind for w in program.warpgroups for n, st in ((st.op, st) for st in w.steps)}
        found = clobbered_reads(program, lambda v: None if kinds[v] == "tma_load" else shared[kinds[v]] + v[-1])
        assert bool(found) == split and all(c.reader.startswith("exp") and c.value.startswith("scale") for c in found)
        source = render(s, program).source
        assert ("Tensor x0 = make_fragment_like(s0);" in source) == split
        assert ("p0(i) = Element(exp2f(x0(i)))" in source) == split


def test_split_k_fills_the_sms_with_whole_groups_and_long_runs():
    from warpsched.kernels.families.quant_gemm.launch import MIN_K_TILES_PER_SPLIT, split_k

    assert split_k(64, 64, 132) == 2 and split_k(32, 32, 132) == 4  # Llama decode: 8192 and 4096 rows
    assert split_k(448, 64, 132) == 1 and split_k(2, 8, 132) == 1
    for ctas in (1, 2, 3, 7, 32, 64, 65, 131, 132, 500):
        for k_tiles in (1, 8, 24, 32, 56, 64, 224, 1024):
            for per_group in (1, 2):
                s = split_k(ctas, k_tiles, 132, per_group)
                assert s & (s - 1) == 0
                if s > 1:
                    assert ctas * s <= 132 and k_tiles % (s * per_group) == 0 and k_tiles // s >= MIN_K_TILES_PER_SPLIT


@pytest.mark.gpu
@pytest.mark.xfail(strict=True, raises=AssertionError, reason="known: this int8 prefill schedule (the deterministic preset's choice before the "
                   "package pinned another) gave wrong sums on an H100 at 256..384 CTAs, a race the CPU simulator does not "
                   "model; the likely cause (LDS of TMA slots released without a proxy fence) is fixed since, unchecked "
                   "on a GPU: when this passes, drop the xfail and the package pin; bench/results/h100-2026-11-24-schedule_check.json")
def test_the_int8_prefill_schedule_that_races_on_the_h100():
    """Kept so the next GPU session can find the cause: when it is fixed this xfail fails and goes."""
    import torch

    from warpsched.kernels.families.quant_gemm.launch import quant_gemm
    from warpsched.kernels.quant import dequantize, pack
    from warpsched.kernels.runtime import PinnedRuntime
    from warpsched.scheduler.schedule import read

    runtime = PinnedRuntime(render(read(Path(__file__).parent / "data" / "quant_int8_m2048_wrong_on_h100.json")))

    g = torch.Generator(device="cuda").manual_seed(8)
    worst = 0.0
    for n, k in ((4096, 4096), (6144, 4096), (4096, 14336)):
        codes = torch.randint(0, 256, (n, k), device="cuda", generator=g)
        scales = (torch.rand(k // 128, n, device="cuda", generator=g) + 0.5).to(torch.bfloat16) / 128
        x = torch.randn(2048, k, device="cuda", dtype=torch.bfloat16, generator=g)
        y = quant_gemm(x, pack(codes, 8), scales, bits=8, group_size=128, fmt="int", runtime=runtime)
        ref = x.float() @ dequantize(codes, scales, None, bits=8, group_size=128, fmt="int").T
        worst = max(worst, _relative_error(y, ref))
    assert worst < QUANT_TOLERANCE


def test_attention_masks_nothing_before_mask_from():
    """The kernel runs its masking block only from `mask_from` on: brute force over shapes that no key
    the template would mask (partial last block, causal diagonal of any tile) comes earlier. The C++
    expression itself is evaluated (its ?: and integer division read as Python)."""
    import itertools
    import random

    causal_expr, plain_expr = _mask_from_as_python()
    rng = random.Random(0)
    bm, tiles = 64, 2
    for _ in range(300):
        bn = rng.choice((64, 80, 128, 176))
        n_q = rng.randint(1, 700)
        n_kv = n_q + rng.choice((0, 0, rng.randint(0, 400)))
        for causal, q_row0 in itertools.product((False, True), range(0, n_q, bm * tiles)):
            scope = {"n_kv": n_kv, "n_q": n_q, "q_row0": q_row0, "BLOCK_N": bn, "min": min}
            mask_from = eval(causal_expr if causal else plain_expr, scope)  # noqa: S307 - our own constant
            last = min(n_kv, q_row0 + tiles * bm + n_kv - n_q) if causal else n_kv
            for it in range(min(mask_from, -(-last // bn))):
                valid = n_kv - it * bn
                assert valid >= bn, (n_q, n_kv, bn, it)
                if causal:
                    first_row = q_row0 + n_kv - n_q  # tile 0, row 0: the earliest diagonal
                    assert (it + 1) * bn - 1 <= first_row, (n_q, n_kv, bn, q_row0, it)


def _mask_from_as_python() -> tuple[str, str]:
    """attention's MASK_FROM: its causal and non-causal C++ expressions, with integer division read as Python."""
    from warpsched.kernels.families.attention.cuda import MASK_FROM

    cond, rest = MASK_FROM.split(" ? ")
    assert cond == "CAUSAL"
    causal_expr, plain_expr = rest.split(" : ")
    return causal_expr.replace("/", "//"), plain_expr.replace("/", "//")


def test_the_peeled_steady_state_has_every_stage_live_and_nothing_masked():
    """Attention consumers run their trips as prologue, steady state and epilogue (the steady copy has no
    live guard and no masking code). Brute force over shapes, with the shipped schedules' stage offsets and
    the C++ bounds as rendered: every steady trip has each step's iteration in range, no masking step at or
    past mask_from and no next-trip order pass past the last trip; prologue and steady state stay within
    the trips."""
    import random

    from warpsched.kernels.package import manifest

    causal_expr, plain_expr = _mask_from_as_python()
    rng = random.Random(1)
    peeled = 0
    for entry in manifest.read():
        if entry.key.model != "attention_fwd":
            continue
        schedule = manifest.load_schedule(entry)
        peeled += _check_peeled_bounds(entry.name, schedule, render(schedule), rng, causal_expr, plain_expr)
        assert "// steady state" not in render(schedule, peel=False).source
    assert peeled >= 6  # every shipped attention schedule's consumers


def _check_peeled_bounds(name, schedule, kernel, rng, causal_expr, plain_expr) -> int:
    peeled = 0
    src, source = schedule.problem.source, kernel.source
    bm, bn, tiles, causal = src["block_m"], src["block_n"], src["q_tiles"], src["causal"]
    stages = int(re.search(r"const int trips = iterations \+ (\d+) - 1;", source).group(1))
    for group in source.split("  if (wg == ")[1:]:
        if "// steady state" not in group:
            assert "mask_from" not in group  # only warpgroups that mask are peeled
            continue
        peeled += 1
        last = int(re.search(r"for \(; j < \(phase \? trips : (\d+)\); \+\+j\) \{  // prologue", group).group(1))
        steady_to = re.search(r"const int steady_to = (.*);", group).group(1)
        steady_copy = group.split("// steady state")[1].split("// every wgmma has completed")[0]
        steps = [re.match(r"(\w+): iteration j - (\d+)\n", b).groups() + (b,) for b in steady_copy.split("{  // ")[1:]]
        assert steps and kernel.branch_free and "steady || (it >= 0" in steady_copy  # the guards' text, folded by `steady`
        masking = [int(k) for _, k, body in steps if "it >= mask_from" in body]
        passes_next_trip = any("j + 1 < trips" in body for _, _, body in steps)
        assert masking
        for _ in range(200):
            n_q = rng.randint(1, 900)
            n_kv = n_q + rng.choice((0, rng.randint(0, 500)))
            q_row0 = rng.randrange(0, n_q, bm * tiles) if n_q > bm * tiles else 0
            scope = {"n_kv": n_kv, "n_q": n_q, "q_row0": q_row0, "BLOCK_N": bn, "min": min, "max": max}
            mask_from = eval(causal_expr if causal else plain_expr, scope)  # noqa: S307 - our own constant
            reach = min(n_kv, q_row0 + tiles * bm + n_kv - n_q) if causal else n_kv
            iterations = -(-reach // bn)
            trips = iterations + stages - 1
            scope.update(iterations=iterations, trips=trips, mask_from=mask_from)
            end = eval(steady_to.replace("/", "//"), scope)  # noqa: S307
            assert last <= trips and end <= trips  # the loops stay within the trips, in order
            for j in range(last, end):
                for _, k, _ in steps:
                    assert 0 <= j - int(k) < iterations, (name, n_q, n_kv, j, k)
                assert all(j - k < mask_from for k in masking), (name, n_q, n_kv, q_row0, j)
                assert not passes_next_trip or j + 1 < trips
    return peeled


def test_a_branch_free_steady_state_that_spills_is_built_as_one_guarded_loop(monkeypatch):
    """The driver keeps the peeled, branch-free variant when it builds clean and takes one guarded
    loop when ptxas spills it; gemm has nothing to peel."""
    from dataclasses import replace

    from warpsched.kernels import driver

    clean = driver.BuildReport("k.cubin", 168, 0, 0, {}, True, (), False, "test")

    def fake_build(spilling):
        return lambda source, entry: replace(clean, spill_stores=spilling(source), spill_loads=spilling(source))

    attention = target("attention_fwd")
    monkeypatch.setattr(driver, "cached_report", lambda source: None)
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 0))
    assert kernel_for(attention).branch_free
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 64 if "steady || (it >= 0" in source else 0))
    kernel = kernel_for(attention)
    assert not kernel.branch_free and kernel.source == render(attention, peel=False).source
    assert "// steady state" not in kernel.source and "steady || (it >= 0" not in kernel.source
    monkeypatch.setattr(driver, "build", fake_build(lambda source: 64))
    assert kernel_for(target("gemm")).source == render(target("gemm")).source  # nothing peeled, nothing to choose
