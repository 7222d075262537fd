"""The attention family's CUDA: scaled scores get their own registers where the schedule needs it, nothing is
masked before mask_from, and the peeled steady state has every stage live and nothing masked."""

from __future__ import annotations

import re
from pathlib import Path


from warpsched.kernels.cuda.render import render
from warpsched.kernels.program import lower


def test_scaled_scores_get_their_own_registers_when_the_next_qk_comes_first():
    """The first GPU run found attention d64 wrong: its schedule issues iteration i+1's QK^T before exp2 reads
    iteration i's S * scale - m, which the template had kept in S's own registers. The alias replay finds
    that read, and the kernel then keeps the scaled scores apart (x0); d128's schedule needs nothing."""
    from warpsched.kernels.cuda.aliases import clobbered_reads
    from warpsched.kernels.package import find

    shared = {
        "wgmma_qk": "s",
        "scale": "s",
        "exp2": "p",
        "rescale_o": "o",
        "wgmma_pv": "o",
        "row_max": "m",
        "row_sum": "l",
    }
    from warpsched.scheduler.schedule import read

    d64 = read(
        Path(__file__).resolve().parents[1] / "data" / "attention_d64_qk_before_exp2.json"
    )  # the d64 schedule shipped until 2026-12-02
    d128 = find("attention_fwd", {"head_dim": 128, "dtype": "bf16", "causal": False}, "h100")
    for s, split in ((d64, True), (d128, False)):
        program = lower(s)
        kinds = {n: st.kind for w in program.warpgroups for n, st in ((st.op, st) for st in w.steps)}
        found = clobbered_reads(
            program, lambda v: None if kinds[v] == "tma_load" else shared[kinds[v]] + v[-1]
        )
        assert bool(found) == split and all(
            c.reader.startswith("exp") and c.value.startswith("scale") for c in found
        )
        source = render(s, program).source
        assert ("Tensor x0 = make_fragment_like(s0);" in source) == split
        assert ("p0(i) = Element(exp2f(x0(i)))" in source) == split


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
    """attention's MASK_FROM: its causal and non-causal C++ expressions, with integer division read as
    Python."""
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
        last = int(
            re.search(r"for \(; j < \(phase \? trips : (\d+)\); \+\+j\) \{  // prologue", group).group(1)
        )
        steady_to = re.search(r"const int steady_to = (.*);", group).group(1)
        steady_copy = group.split("// steady state")[1].split("// every wgmma has completed")[0]
        steps = [
            re.match(r"(\w+): iteration j - (\d+)\n", b).groups() + (b,)
            for b in steady_copy.split("{  // ")[1:]
        ]
        assert (
            steps and kernel.branch_free and "steady || (it >= 0" in steady_copy
        )  # the guards' text, folded by `steady`
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
