"""The mutation score (issue 18 item 3): every mutation of the lowering is caught, on every shipped kernel of
every family it applies to, by the simulator or the static check, with a finding that names its cause."""

from __future__ import annotations

from dataclasses import replace

from warpsched.kernels import mutate

MIN_PER_FAMILY = 15


def test_every_mutation_is_caught_on_every_shipped_family():
    scores = mutate.score(mutate.shipped())
    assert set(scores) == {"attention_fwd", "gemm", "quant_gemm"}
    for family, per_mutation in scores.items():
        applied = [outs for outs in per_mutation if any(o.status != "n/a" for o in outs)]
        assert len(applied) >= MIN_PER_FAMILY, family
        escaped = [o for outs in applied for o in outs if o.status == "escaped"]
        assert not escaped, escaped
    text, ok = mutate.report(scores)
    assert ok and "attention_fwd: 20/20 mutations caught" in text.splitlines()


def test_the_catalogue_covers_the_issues_list():
    names = {m.name for m in mutate.CATALOGUE}
    assert len(names) == len(mutate.CATALOGUE) >= 20
    for wanted in (
        "fence-dropped",  # drop a fence
        "wait-dropped",  # drop a wait
        "wait-after-read",  # a wgmma result read before its wait
        "release-early",  # release a slot before its last read
        "ring-one-short",  # ring depth one short
        "empty-parity",  # wrong parity
        "expect-tx-bytes",  # wrong transaction bytes
        "named-barrier-threads",  # a named barrier with the wrong thread count
    ):
        assert wanted in names


def test_an_escaped_mutation_is_reported_and_fails_the_run():
    harmless = mutate.Mutation("no-op", "changes nothing", frozenset({"deadlock"}), lambda s, p: p)
    kernels = {"gemm": mutate.shipped()["gemm"]}
    scores = mutate.score(kernels, (harmless, mutate.CATALOGUE[0]))
    text, ok = mutate.report(scores)
    assert not ok
    assert text.splitlines()[0] == "gemm: 1/2 mutations caught"
    assert "ESCAPED no-op on gemm_h100" in text


def test_a_finding_of_another_cause_does_not_count():
    # a ring one short stalls; a mutation that claims a deadlock must not be credited with the stall
    wrong = replace(mutate.CATALOGUE[0], catches=frozenset({"deadlock"}))
    label, schedule = mutate.shipped()["gemm"][0]
    outcome = mutate.evaluate(wrong, schedule, label)
    assert outcome.status == "escaped" and "stall" in outcome.message


def test_the_command_prints_one_line_per_family(capsys):
    assert mutate.main([]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert [line.split(":")[0] for line in lines] == ["attention_fwd", "gemm", "quant_gemm"]
