"""Tests of the `warpsched` command (warpsched/cli.py), run as `python -m warpsched` in a subprocess.

Every user mistake must end as exit code 2 and ONE line on stderr, "warpsched: error: <sentence>",
never a traceback. Each process pays ~0.6 s of imports (OR-Tools), so the independent runs are
started together on a small pool once per module and the tests read their results.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from warpsched import cli
from warpsched.scheduler.config import available_presets
from warpsched.scheduler.machine import available_machines
from warpsched.scheduler.verify import verify
from tests.conftest import DATA, ROOT, Run, assert_user_error, run_all, run_cli

PROBLEMS = ROOT / "solver_configs" / "problems"
TOY = PROBLEMS / "twill_toy.yaml"
SAMPLE = DATA / "hatschet"
STENCIL = SAMPLE / "stencil3d" / "graph9.graphml"  # classic: MII 7, proven optimum 9, ~1.5-2.5 s
STENCIL_RM = SAMPLE / "stencil3d" / "graph9_RM.xml"
PROGRESS_LINE = re.compile(r"^\[\s*\d+\.\d+s\] ")


# ------------------------------------------------------------------ inputs

TWO_ACCUMULATORS = """\
# Two loop-carried 128-register accumulators on one warpgroup of at most 240 registers:
# each fits alone, both never do, whatever the II.
name: two_accumulators
machine:
  name: tiny
  units: {tensor: 1}
  sync_latency: 1
  smem_bytes: 232448
  registers: {file: 65536, min: 24, max: 240, step: 8, reserved: 0}
  warpgroups: {max: 1, threads: 128}
ops:
  - {name: A, kind: gemm_acc, unit: tensor, latency: 1, occupancy: 1, issue: 1, space: regs,
     regs_per_thread: 128}
  - {name: B, kind: gemm_acc, unit: tensor, latency: 1, occupancy: 1, issue: 1, space: regs,
     regs_per_thread: 128}
edges:
  - {src: A, dst: A, distance: 1}
  - {src: B, dst: B, distance: 1}
"""


def toy_variant(old: str, new: str) -> str:
    text = TOY.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def write_inputs(work: Path) -> None:
    (work / "malformed.yaml").write_text("name: broken\nops: [\n  - {name: a, unit: tensor\n")
    (work / "negative_latency.yaml").write_text(
        toy_variant(
            "{name: P, kind: exp, unit: sfu, latency: 1", "{name: P, kind: exp, unit: sfu, latency: -3"
        )
    )
    (work / "unknown_unit.yaml").write_text(toy_variant("unit: sfu", "unit: warp_shuffle"))
    (work / "zero_cycle.yaml").write_text(toy_variant("{src: O, dst: O, distance: 1}", "{src: O, dst: S}"))
    text = STENCIL.read_text()
    (work / "cut.graphml").write_text(text[: len(text) // 2])
    (work / "cut_RM.xml").write_text(STENCIL_RM.read_text())
    (work / "notjson.json").write_text("ii: 3\nthis is not JSON\n")
    (work / "notschedule.json").write_text(json.dumps({"format": "someone.else/2", "ii": 3, "ops": {}}))
    (work / "two_accumulators.yaml").write_text(TWO_ACCUMULATORS)
    (work / "classic.json").write_text((DATA / "classic_schedule.json").read_text())
    (work / "array.json").write_text("[1, 2, 3]\n")


BAD = {
    # case: (argv, words the sentence must contain)
    "missing-problem": (["solve", "nonexistent.yaml"], ["nonexistent.yaml", "does not exist"]),
    "malformed-yaml": (["solve", "malformed.yaml"], ["malformed.yaml", "not valid YAML"]),
    "negative-latency": (["solve", "negative_latency.yaml"], ["'P'", "negative latency", "-3"]),
    "unknown-unit": (["solve", "unknown_unit.yaml"], ["'warp_shuffle'", "sfu, tensor"]),
    "zero-distance-cycle": (["solve", "zero_cycle.yaml"], ["zero total distance", " -> "]),
    "missing-graphml": (["solve", "--hatschet", "nonexistent.graphml"], ["nonexistent", "does not exist"]),
    "malformed-graphml": (["solve", "--hatschet", "cut.graphml"], ["cut.graphml", "not well-formed XML"]),
    "problem-and-hatschet": (["solve", TOY, "--hatschet", STENCIL], ["--hatschet"]),
    "neither": (["solve"], ["--hatschet"]),
    "rm-without-hatschet": (["solve", TOY, "--rm", STENCIL_RM], ["--rm", "--hatschet"]),
    "unknown-machine": (["solve", TOY, "--machine", "h900"], ["'h900'", "h100", "h200"]),
    "unknown-preset": (["solve", TOY, "--preset", "turbo"], ["'turbo'", "default", "deterministic", "fast"]),
    "negative-time-limit": (["solve", TOY, "--time-limit", "-1"], ["--time-limit", "positive"]),
    "validate-not-json": (["validate", "notjson.json"], ["notjson.json", "not valid JSON"]),
    "validate-not-a-schedule": (["validate", "notschedule.json"], ["not a warpsched schedule"]),
    "show-missing": (["show", "missing.json"], ["missing.json", "does not exist"]),
    "model-bits-9": (["solve", "quant_gemm", "--param", "bits=9"], ["bits", "9", "<= 8"]),
    "model-bits-0": (["solve", "quant_gemm", "--param", "bits=0"], ["bits", ">= 1"]),
    "model-head-dim-96": (
        ["solve", "attention_fwd", "--param", "head_dim=96"],
        ["head_dim", "96", "64, 128, 256"],
    ),
    "model-group-not-dividing-k": (
        ["solve", "quant_gemm", "--param", "k=4000", "--param", "group_size=128"],
        ["group_size 128", "does not divide", "4000"],
    ),
    "model-unknown-param": (["solve", "gemm", "--param", "bits=4"], ["gemm", "'bits'", "tile_m"]),
    "model-param-not-key-value": (["solve", "gemm", "--param", "tile_m"], ["'tile_m'", "key=value"]),
    "param-without-model": (["solve", TOY, "--param", "bits=4"], ["--param", "model"]),
    "unknown-model": (["solve", "flash_decoding"], ["'flash_decoding'", "gemm", "attention_fwd"]),
    "show-png-suffix": (["show", "missing.json", "--png", "out.jpg"], ["--png", ".png"]),
    "compile-without-templates": (
        ["compile", "gemm", "--param", "tile_k=128", "--out", "att"],
        ["tile_k = 64", "got 128"],
    ),
    "check-no-interleavings": (["check", "gemm", "--interleavings", "0"], ["--interleavings", "at least 1"]),
    "check-classic-schedule": (["check", "classic.json"], ["no warpgroups", "classic"]),
    "registers-infeasible": (
        ["solve", "two_accumulators.yaml", "--max-ii", "6"],
        ["no schedule exists", "to 6", "(5a) registers"],
    ),
    # output paths are checked before any work: missing, a directory, read-only (even for root), a file
    "json-missing-folder": (["solve", TOY, "--json", "nofolder/out.json"], ["'nofolder'", "does not exist"]),
    "json-is-a-directory": (["solve", TOY, "--json", "."], ["is a directory"]),
    "json-read-only": (["solve", TOY, "--json", "/sys/out.json"], ["cannot write", "/sys"]),
    "out-is-a-file": (["compile", "gemm", "--out", "notjson.json"], ["--out", "is a file"]),
    "out-read-only": (["compile", "gemm", "--out", "/sys/warpsched_kernel"], ["--out", "cannot be written"]),
    "compile-b200": (
        ["compile", "gemm", "--machine", "b200", "--out", "b200_kernel"],
        ["'b200'", "sm_90a", "tcgen05"],
    ),
    "validate-json-array": (["validate", "array.json"], ["array.json", "JSON array"]),
    "option-on-a-schedule-file": (
        ["compile", "classic.json", "--seed", "3", "--out", "x"],
        ["--seed", "schedule file"],
    ),
    "check-workers-0": (["check", "gemm", "--workers", "0"], ["--workers", "at least 1"]),
    "compile-time-limit-0": (
        ["compile", "gemm", "--time-limit", "0", "--out", "x"],
        ["--time-limit", "positive"],
    ),
    "compile-one-warpgroup": (
        ["compile", "gemm", "--warpgroups", "1", "--out", "x", "--quiet"],
        ["no schedule exists"],
    ),
    "check-one-warpgroup": (["check", "gemm", "--warpgroups", "1", "--quiet"], ["no schedule exists"]),
}

MODES = {  # mode -> (II, proven): the toy's machine has 2 warpgroups
    "joint": (2, True),  # S, P on one warpgroup, O on the other
    "swp": (3, True),  # one warpgroup issues everything: 3 synchronous unit ops per iteration
    "ws": (3, True),  # no cross-iteration overlap
    "heuristic": (3, False),  # the baseline finds 3 and cannot prove it
    "classic": (2, True),  # no warpgroups, units only
}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    write_inputs(path)
    return path


@pytest.fixture(scope="module")
def runs(work: Path) -> dict[str, Run]:
    """Every independent command at once, then the ones that read a schedule written by the first wave."""
    jobs: dict[str, list] = {  # the long ones first, so that they overlap the many short ones
        # nvcc: the longest, first; deterministic, so that the compile below solves the same schedule again
        # (the default preset's secondary objectives run on wall-clock limits: a loaded machine may differ)
        "compile:gemm": ["compile", "gemm", "--out", "gemm_kernel", "--preset", "deterministic"],
        # every solver option on a command that compiles (each reaches the solve: schedule.json's solver
        # record)
        "compile:options": [
            "compile",
            "gemm",
            "--preset",
            "fast",
            "--seed",
            "3",
            "--workers",
            "1",
            "--warpgroups",
            "3",
            "--max-ii",
            "4096",
            "--time-limit",
            "60",
            "--out",
            "options_kernel",
            "--quiet",
        ],
        "check:options": [
            "check",
            "gemm",
            "--preset",
            "fast",
            "--seed",
            "3",
            "--workers",
            "1",
            "--warpgroups",
            "3",
            "--max-ii",
            "4096",
            "--time-limit",
            "60",
            "--interleavings",
            "2",
            "--sim-seed",
            "1",
        ],
        # a shipped schedule file: a fresh solve picks one of many optimal schedules, and ptxas spills a few
        # of them
        "compile:attention": [
            "compile",
            str(
                ROOT
                / "kernels"
                / "package"
                / "schedules"
                / "attention_fwd_h100_head_dim128_dtypebf16_causaltrue_gqa1.json"
            ),
            "--out",
            "attention_kernel",
            "--shape",
            "2,16,4096,128",
            "--quiet",
        ],
        "predict:gemm": [
            "predict",
            "gemm",
            "--shape",
            "8192,8192,8192",
            "--shape",
            "2048,2048,2048",
            "--quiet",
        ],
        "predict:bad-shape": ["predict", "gemm", "--shape", "100,256,64"],
        "predict:short-shape": ["predict", "attention_fwd", "--shape", "1,16,4096"],
        # the support matrix says causal d64 builds: with no tile given, compile takes the shipped package's
        # tile
        "compile:d64-causal": [
            "compile",
            "attention_fwd",
            "--param",
            "head_dim=64",
            "--param",
            "causal=true",
            "--out",
            "d64_causal_kernel",
            "--quiet",
        ],
        "stencil": ["solve", "--hatschet", STENCIL, "--json", "stencil.json"],
        "stencil-quiet": ["solve", "--hatschet", STENCIL, "--rm", STENCIL_RM, "--quiet"],
        "toy": ["solve", TOY, "--json", "out.json"],
        **{
            f"mode:{m}": ["solve", TOY, "--mode", m, "--json", f"out_{m}.json"] for m in MODES if m != "joint"
        },
        "model:gemm": ["solve", "gemm", "--machine", "h200", "--param", "tile_k=64", "--json", "gemm.json"],
        "models": ["models"],
        "check:gemm": [
            "check",
            ROOT / "solver_configs" / "problems" / "gemm_bf16_128x256x64.yaml",
            "--interleavings",
            "20",
            "--quiet",
        ],
        "machines": ["machines"],
        "presets": ["presets"],
        **{f"bad:{name}": argv for name, (argv, _) in BAD.items()},
    }
    results = run_all(jobs, work)
    if results["toy"].returncode == 0:
        data = json.loads((work / "out.json").read_text())
        victim = tamper(data)
        (work / "tampered.json").write_text(json.dumps(data))
        (work / "victim.txt").write_text(victim)
        (work / "shifted.json").write_text(
            json.dumps(shift_one_period(json.loads((work / "out.json").read_text())))
        )
        results.update(
            run_all(
                {
                    "validate": ["validate", "out.json"],
                    "validate-tampered": ["validate", "tampered.json"],
                    "show": ["show", "out.json"],
                    "check:toy": ["check", "out.json", "--interleavings", "10"],
                    "show-tampered": ["show", "tampered.json"],
                    "check-tampered": ["check", "tampered.json"],
                    "compile-tampered": ["compile", "tampered.json", "--out", "tampered_kernel"],
                    "validate-shifted": ["validate", "shifted.json"],
                    "show-shifted": ["show", "shifted.json"],
                    "check-shifted": ["check", "shifted.json", "--interleavings", "5"],
                },
                work,
            )
        )
    if (
        results["compile:gemm"].returncode == 0
    ):  # the same kernel again: from the cache, and the report says so
        results["compile:gemm-again"] = run_cli(
            ["compile", "gemm", "--out", "gemm_again", "--preset", "deterministic"], work
        )
    if results["model:gemm"].returncode == 0:
        results["show:png"] = run_cli(["show", "gemm.json", "--png", "gemm.png", "--svg", "gemm.svg"], work)
    return results


def shift_one_period(data: dict) -> dict:
    """The same schedule one period later (every start + II, stage + 1): valid, and still 'stages' stages."""
    shifted = json.loads(json.dumps(data))
    for p in shifted["ops"].values():
        p.update(start=p["start"] + data["ii"], stage=p["stage"] + 1)
    return shifted


def tamper(data: dict) -> str:
    """Move one op a whole II earlier (same row, stage - 1) so that one of its same-iteration
    dependences breaks even without a hand-off; return its name."""
    ii = data["ii"]
    lat = {o["name"]: o["latency"] for o in data["graph"]["ops"]}
    ops = data["ops"]
    for e in data["graph"]["edges"]:
        u, v = e["src"], e["dst"]
        new = ops[v]["start"] - ii
        if u != v and e["distance"] == 0 and new >= 0 and new < ops[u]["start"] + lat[u] + e["delay"]:
            ops[v].update(start=new, stage=ops[v]["stage"] - 1)
            assert ops[v]["row"] == new % ii and ops[v]["stage"] == new // ii
            return v
    raise AssertionError(f"no op of {ops} can be moved a period earlier to break a dependence")


# ------------------------------------------------------------------ solving the toy


def test_solve_toy_prints_the_proven_optimum(runs, work):
    r = runs["toy"]
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("twill_toy: II = 2 (proven optimal; MII = 2"), first
    assert "NOT proven" not in r.stdout
    assert "mode joint" in first and "machine toy" in first
    assert "schedule written to out.json" in r.stdout
    data = json.loads((work / "out.json").read_text())
    assert data["format"] == "warpsched.schedule/1"
    assert data["ii"] == 2 and data["ii_proven_optimal"] is True and data["mode"] == "joint"
    assert data["verified"] is True
    assert set(data["ops"]) == {"S", "P", "O"}
    assert verify(data).ok


def test_validate_accepts_the_written_schedule(runs):
    r = runs["validate"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "out.json: valid" in r.stdout
    assert r.stderr == ""


def test_validate_rejects_a_broken_dependence(runs, work):
    victim = (work / "victim.txt").read_text()
    r = runs["validate-tampered"]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("tampered.json: INVALID: dependence ")
    assert f"-> {victim} " in first and "violated" in first, first


def test_show_prints_the_steady_state(runs):
    r = runs["show"]
    assert r.returncode == 0, r.stderr
    assert "twill_toy" in r.stdout and "II 2" in r.stdout
    for name in ("S", "P", "O", "tensor", "sfu"):
        assert name in r.stdout


@pytest.mark.parametrize("mode", [m for m in MODES if m != "joint"])
def test_modes_on_the_toy(runs, work, mode):
    ii, proven = MODES[mode]
    r = runs[f"mode:{mode}"]
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    proof = "proven optimal" if proven else "NOT proven optimal"
    assert first.startswith(f"twill_toy: II = {ii} ({proof};"), first
    assert f"mode {mode}" in first
    data = json.loads((work / f"out_{mode}.json").read_text())
    assert (data["mode"], data["ii"], data["ii_proven_optimal"]) == (mode, ii, proven)
    assert verify(data).ok


def test_machines_and_presets_list_their_names(runs):
    machines, presets = runs["machines"], runs["presets"]
    assert machines.returncode == 0 and presets.returncode == 0
    listed = [line.split(":", 1)[0] for line in machines.stdout.splitlines()]
    assert listed == available_machines() and {"h100", "h200"} <= set(listed)
    listed = [line.split(":", 1)[0] for line in presets.stdout.splitlines()]
    assert listed == available_presets() and {"default", "deterministic", "fast"} <= set(listed)


# ------------------------------------------------------------------ HatScheT instances and progress


def test_solve_hatschet_with_the_default_rm(runs, work):
    r = runs["stencil"]
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("stencil3d/graph9: II = 9 (proven optimal; MII = 7"), first
    assert "mode classic" in first and "graph9_RM.xml" in first
    assert "attempt II 7: INFEASIBLE" in r.stdout and "attempt II 8: INFEASIBLE" in r.stdout
    data = json.loads((work / "stencil.json").read_text())
    assert data["source"]["rm"].endswith("graph9_RM.xml")
    assert verify(data).ok


def solve_seconds(stdout: str) -> float:
    return float(re.search(r"solved in (\d+\.\d+)s", stdout).group(1))


def test_long_solve_reports_progress(runs):
    r = runs["stencil"]
    assert r.returncode == 0, r.stderr
    seconds = solve_seconds(r.stdout)
    if seconds < 1.2:
        pytest.skip(f"stencil3d/graph9 solved in {seconds:.2f}s here, under the CLI's 1 s progress threshold")
    lines = r.stderr.splitlines()
    assert lines and all(PROGRESS_LINE.match(line) for line in lines), r.stderr
    # the candidate II and its status: the message pending at the 1 s mark is printed too, so the
    # attempt that proves II 8 infeasible always shows
    assert any(re.search(r"\] II 8: (solving|INFEASIBLE)", line) for line in lines), r.stderr


def test_quiet_suppresses_progress(runs):
    r = runs["stencil-quiet"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stencil3d/graph9: II = 9 (proven optimal;")
    if solve_seconds(r.stdout) < 1.2:
        pytest.skip("the solve finished under the 1 s progress threshold, so --quiet had nothing to suppress")
    assert r.stderr == ""


# ------------------------------------------------------------------ kernel models


def test_models_lists_every_model_with_its_parameters(runs):
    from warpsched.models import MODELS

    r = runs["models"]
    assert r.returncode == 0, r.stderr
    for spec in MODELS.values():
        assert f"{spec.name}: " in r.stdout
        for p in spec.params:
            assert re.search(rf"^\s+{p.name}\s+default ", r.stdout, re.M), p.name


def test_solve_a_model_by_name_on_a_named_machine(runs, work):
    r = runs["model:gemm"]
    assert r.returncode == 0, r.stderr
    assert "(proven optimal;" in r.stdout and "machine h200" in r.stdout
    data = json.loads((work / "gemm.json").read_text())
    assert data["machine"]["name"] == "h200" and verify(data).ok


def test_show_draws_png_and_svg(runs, work):
    r = runs["show:png"]
    assert r.returncode == 0, r.stderr
    assert (work / "gemm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (work / "gemm.svg").read_bytes()[:400]


def test_check_simulates_a_shipped_configuration(runs):
    r = runs["check:gemm"]
    assert r.returncode == 0, r.stderr
    assert "ring load_a: tma" in r.stdout and "warpgroup 0 (producer" in r.stdout
    assert (
        "20 interleaving(s) of 4 iterations plus the schedule's clock: no deadlock, race or stall" in r.stdout
    )
    err = float(re.search(r"max relative error (\S+) over", r.stdout).group(1))
    assert err < 1e-2


def test_compile_writes_the_kernel_its_report_and_picture(runs, work):
    r = runs["compile:gemm"]
    assert r.returncode == 0, r.stderr
    out = work / "gemm_kernel"
    assert {p.name for p in out.iterdir()} >= {
        "schedule.json",
        "kernel.cu",
        "kernel.cubin",
        "report.json",
        "schedule.png",
    }
    report = json.loads((out / "report.json").read_text())
    assert report["sass_ok"] and report["sass"]["HGMMA"] > 0 and report["sass"]["LDL"] == 0
    assert [w["role"] for w in report["roles"]] == ["producer", "consumer", "consumer"]
    assert report["predicted_cycles_per_iteration"] == json.loads((out / "schedule.json").read_text())["ii"]
    assert not (work / "att").exists()  # a refused compile writes nothing


def test_compile_says_it_runs_nvcc_and_reports_a_cached_build_only_when_it_was(runs, work):
    first, again = runs["compile:gemm"], runs["compile:gemm-again"]
    assert first.returncode == 0 and again.returncode == 0, (first.stderr, again.stderr)
    assert "nvcc: building warpsched_gemm" in first.stderr and "nvcc" not in again.stderr
    assert not json.loads((work / "gemm_kernel" / "report.json").read_text())["cached"]
    assert (
        json.loads((work / "gemm_again" / "report.json").read_text())["cached"]
        and "(cached build)" in again.stdout
    )


def test_every_solver_option_reaches_the_solve_of_compile_and_check(runs, work):
    for name in ("compile:options", "check:options"):
        assert runs[name].returncode == 0, (name, runs[name].stderr)
    solver = json.loads((work / "options_kernel" / "schedule.json").read_text())["solver"]
    assert (solver["preset"], solver["random_seed"], solver["num_workers"], solver["time_limit"]) == (
        "fast",
        3,
        1,
        60,
    )
    for name in (
        "compile-one-warpgroup",
        "check-one-warpgroup",
    ):  # --warpgroups 1: no room for a TMA producer
        assert "warpgroup" in runs[f"bad:{name}"].stderr


def test_a_schedule_the_verifier_rejects_is_refused_by_compile_and_check_and_shown_invalid(runs, work):
    victim = (work / "victim.txt").read_text()
    for name in ("compile-tampered", "check-tampered"):
        assert_user_error(runs[name], "tampered.json", "not a valid schedule", victim)
    assert not (work / "tampered_kernel").exists()
    shown = runs["show-tampered"]
    assert (
        shown.returncode == 1
        and shown.stdout.startswith("INVALID schedule: ")
        and victim in shown.stdout.splitlines()[0]
    )


def test_stage_counts_agree_between_solve_show_and_check(runs):
    """One schedule, written one period later by hand (valid: the same rows, warpgroups and stage count)."""
    stages = int(re.search(r"(\d+) stage\(s\), solved", runs["toy"].stdout).group(1))
    assert runs["validate-shifted"].returncode == 0, runs["validate-shifted"].stdout
    assert f"stages {stages};" in runs["show-shifted"].stdout
    assert runs["check-shifted"].returncode == 0, runs["check-shifted"].stderr
    assert f", {stages} stage(s), " in runs["check-shifted"].stdout


def test_compile_b200_is_refused_before_any_work(runs, work):
    r = runs["bad:compile-b200"]
    assert "[" not in r.stderr.split("error:", 1)[0] and not (work / "b200_kernel").exists()


def test_compile_a_causal_attention_schedule_file(runs, work):
    """Causal d128 (FA3's tile) builds peeled, its steady state without guards or masking: the spill
    fallback (one guarded loop) must stay the exception."""
    r = runs["compile:attention"]
    assert r.returncode == 0, r.stderr
    report = json.loads((work / "attention_kernel" / "report.json").read_text())
    assert report["sass_ok"] and report["spill_stores"] == report["spill_loads"] == 0
    assert (
        report["kernel"] == "warpsched_attention_fwd"
        and report["ii_proven_optimal"]
        and report["tile"]["causal"]
    )
    assert report["steady_state_branch_free"] and "steady state: branch-free" in r.stdout
    source = (work / "attention_kernel" / "kernel.cu").read_text()
    assert "Order::sync" in source and "// steady state" in source  # the ping-pong order; the peel


def test_compile_causal_d64_with_the_defaults_builds_clean(runs, work):
    r = runs["compile:d64-causal"]
    assert r.returncode == 0, r.stderr
    assert (
        "tile from the shipped package (its best clean build): q_tiles=2 block_m=64 block_n=192" in r.stdout
    )
    report = json.loads((work / "d64_causal_kernel" / "report.json").read_text())
    assert report["sass_ok"] and report["tile"]["causal"] and report["tile"]["head_dim"] == 64


def test_check_a_schedule_file_without_numerics(runs):
    r = runs["check:toy"]
    assert r.returncode == 0, r.stderr
    assert "no deadlock, race or stall; tags only" in r.stdout


# ------------------------------------------------------------------ user mistakes: exit 2, one sentence


@pytest.mark.parametrize("case", list(BAD))
def test_user_mistake_is_one_sentence(runs, case):
    assert_user_error(runs[f"bad:{case}"], *BAD[case][1])


def test_zero_distance_cycle_names_its_ops(runs):
    line = assert_user_error(runs["bad:zero-distance-cycle"])
    cycle = line.split("the cycle ", 1)[1].split(" has ", 1)[0].split(" -> ")
    assert cycle[0] == cycle[-1] and set(cycle) == {"S", "P", "O"}, line


# Mistakes that still escape as tracebacks. Run in-process through `cli.main` (an escaping
# exception fails the test) to keep the suite fast; each is documented as a known bug.


def main_in_process(argv: list, capsys) -> str:
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warpsched: error: "), err
    return lines[0]


def test_problem_path_is_a_directory(tmp_path, capsys):
    main_in_process(["solve", tmp_path], capsys)


def test_problem_file_that_is_not_text(tmp_path, capsys):
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")
    main_in_process(["solve", tmp_path / "binary.yaml"], capsys)


@pytest.mark.parametrize(
    "edge",
    [
        "{src: O, dst: O, distance: 1.5}",
        "{src: O, dst: O, distance: '1'}",
        "{src: O, dst: O, distance: 1, delay: soon}",
    ],
)
def test_problem_with_a_non_integer_distance_or_delay(tmp_path, capsys, edge):
    (tmp_path / "p.yaml").write_text(toy_variant("{src: O, dst: O, distance: 1}", edge))
    main_in_process(["solve", tmp_path / "p.yaml"], capsys)


def test_inline_machine_with_registers_not_a_mapping(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(
        toy_variant("registers: {file: 65536, min: 24, max: 256, step: 8, reserved: 0}", "registers: 65536")
    )
    main_in_process(["solve", tmp_path / "p.yaml"], capsys)


def test_validate_on_a_directory(tmp_path, capsys):
    main_in_process(["validate", tmp_path], capsys)


def test_in_process_user_errors_match_the_subprocess_contract(tmp_path, capsys):
    # the same contract through cli.main, for a mistake that is handled
    line = main_in_process(["solve", tmp_path / "absent.yaml"], capsys)
    assert "absent.yaml" in line and "does not exist" in line


# ------------------------------------------------------------------ Ctrl-C, and machines without torch


@pytest.mark.parametrize("write_json", [True, False])
def test_ctrl_c_stops_a_solve_within_2_seconds_with_the_best_schedule_so_far(tmp_path, write_json):
    """The deterministic preset spends minutes on attention's first candidate II: Ctrl-C there."""
    env = {**os.environ, "WARPSCHED_CACHE": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "warpsched", "solve", "attention_fwd", "--preset", "deterministic"]
    argv += ["--json", "out.json"] if write_json else []
    p = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # as a terminal delivers it
    try:
        first = p.stderr.readline()  # progress starts once the solve has run a second: CP-SAT is busy now
        assert PROGRESS_LINE.match(first), first
        time.sleep(0.5)
        sent = time.perf_counter()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        took = time.perf_counter() - sent
    finally:
        p.kill()
    assert p.returncode == 130 and took < 2.0, (p.returncode, took, err)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"warpsched: interrupted after \d+\.\ds; the best schedule so far has II \d+ \(not proven optimal\)",
        last,
    ), last
    assert "NOT proven optimal" in out
    if write_json:
        data = json.loads((tmp_path / "out.json").read_text())
        assert data["interrupted"] and not data["ii_proven_optimal"] and verify(data).ok
    else:
        assert not list(tmp_path.glob("*.json"))


def _without_torch(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`warpsched ARGV` in a process where `import torch` fails, as on a machine without it."""
    code = (
        "import sys; sys.modules['torch'] = None; from warpsched.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WARPSCHED_CACHE": str(cwd / "cache")},
    )


def test_check_without_torch_names_the_extra_to_install(tmp_path):
    r = _without_torch(["check", "gemm", "--quiet"], tmp_path)
    assert_user_error(
        Run(["check"], r.returncode, r.stdout, r.stderr), "torch", "pip install 'warpsched[gpu]'"
    )


def test_precompiled_lists_the_package_without_torch(tmp_path):
    r = _without_torch(["precompiled"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "attention_fwd_h100_head_dim128" in r.stdout and "12 kernels" in r.stdout


def test_a_solved_schedule_that_spills_gives_way_to_the_shipped_one_of_its_problem(capsys):
    """compile picks, among optimal schedules of one problem, one that builds clean: the shipped one."""
    from dataclasses import replace

    from warpsched.kernels.build import BuildReport
    from warpsched.kernels.cuda.render import schedule_digest
    from warpsched.kernels.package import find

    shipped = find("attention_fwd", {"head_dim": 64, "causal": True}, "h100")
    solved = replace(shipped, ii=shipped.ii + 8)  # another schedule of the same problem (its digest differs)
    spilled = BuildReport(
        "k.cubin", 168, 8, 8, {}, False, ("8 LDL (local memory) in the SASS",), False, "test"
    )
    clean = replace(spilled, spill_stores=0, spill_loads=0, sass_ok=True, sass_problems=())
    chosen = cli._shipped_instead(solved, spilled, solved=True)
    assert chosen is not None and schedule_digest(chosen) == schedule_digest(shipped)
    assert "the solved schedule spilled 16 B; building the shipped schedule" in capsys.readouterr().out
    assert cli._shipped_instead(solved, clean, solved=True) is None  # nothing to replace
    assert cli._shipped_instead(solved, spilled, solved=False) is None  # a schedule file is built as given
    assert (
        cli._shipped_instead(replace(shipped, ii=shipped.ii - 8), spilled, solved=True) is None
    )  # never a larger II


def test_predict_times_the_built_kernel_on_each_shape(runs):
    r = runs["predict:gemm"]
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if "us predicted" in line]
    assert [line.split(":")[0] for line in lines] == ["8192x8192x8192", "2048x2048x2048"]
    big, small = (float(re.search(r"([\d.]+) us predicted", line).group(1)) for line in lines)
    assert big > 8192**3 * 2 / 989e12 * 1e6  # never faster than the tensor cores' peak
    assert big > 20 * small  # 64 times the work, and the small one fills a single wave


def test_predict_refuses_a_shape_the_kernel_cannot_run_in_one_sentence(runs):
    for name, words in (("predict:bad-shape", "not a positive multiple"), ("predict:short-shape", "B,H,N,D")):
        assert_user_error(runs[name], words)  # one line on stderr: refused before any build


def test_compile_with_a_shape_writes_the_prediction_into_its_report(runs, work):
    assert runs["compile:attention"].returncode == 0, runs["compile:attention"].stderr
    report = json.loads((work / "attention_kernel" / "report.json").read_text())
    assert report["predictions"][0]["shape"] == {"batch": 2, "heads": 16, "seqlen": 4096, "head_dim": 128}
    assert report["predicted_us"] > 0 and report["bound"] and 0 < report["predicted_tflops"] < 989
