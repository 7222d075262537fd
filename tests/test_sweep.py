"""`warpsched sweep` (issue 6): a grid of tiles x parameters x machines, solved on local worker
processes or on a real Dask cluster with the same choices, the best predicted schedule per problem,
the package filled from it; config mistakes are one sentence (exit 2 from the CLI)."""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import time
from fractions import Fraction

import pytest
import yaml

from warpsched.kernels.cuda.render import schedule_digest
from warpsched.kernels.package import find, precompiled, read
from warpsched.kernels.package.manifest import PINNED
from warpsched.scheduler.schedule import from_json
from warpsched.sweep import PointResult, dask_client, results_json, run_sweep
from warpsched.sweep_config import load_sweep, sweep_from_dict
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.verify import verify
from tests.conftest import ROOT
from tests.conftest import run_all, run_cli
from warpsched.models import split_source


# Two problems (bf16, fp16) x two tiles; the tile_m 64 rows cannot hold two 64-row consumers: skipped.
TINY = {
    "name": "tiny",
    "machines": ["h100"],
    "grids": [
        {
            "model": "gemm",
            "params": {
                "dtype": ["bf16", "fp16"],
                "tile_n": [128, 256],
                "tile_m, consumers": [[128, 2], [64, 2]],
            },
        }
    ],
}


def choices(result) -> list[tuple]:
    return [(c.key, c.point.index, c.schedule.ii, schedule_digest(c.schedule)) for c in result.choices]


@pytest.fixture(scope="module")
def local():
    return run_sweep(sweep_from_dict(TINY), workers=2)  # two spawned worker processes


def test_the_grid_expands_and_skips_invalid_points_with_their_reason():
    sweep = sweep_from_dict(TINY)
    assert len(sweep.points) == 4 and len(sweep.skipped) == 4
    assert all("multiple of 64 * consumers" in s.reason for s in sweep.skipped)
    assert {(p.params["dtype"], p.params["tile_n"]) for p in sweep.points} == {
        (d, n) for d in ("bf16", "fp16") for n in (128, 256)
    }
    assert sweep.solver.name == "deterministic" and sweep.solver.interleave_search  # reproducible by default
    twice = sweep_from_dict({**TINY, "grids": TINY["grids"] * 2})
    assert len(twice.points) == 4  # a point named twice is solved once


def test_the_sweep_picks_the_least_predicted_time_per_problem(local):
    rows = results_json(local)["points"]
    assert all(r["status"] == "solved" for r in rows)
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["params"]["dtype"], []).append(r)
    assert len(local.choices) == len(by_problem) == 2 and not local.unresolved
    for c in local.choices:
        group = by_problem[dict(c.key.params)["dtype"]]
        p = lambda r: Fraction(r["ii"], r["params"]["tile_m"] * r["params"]["tile_n"] * r["params"]["tile_k"])
        best = min(group, key=lambda r: (p(r), r["makespan"], r["smem_bytes"], r["index"]))
        assert c.point.index == best["index"] and [r["chosen"] for r in group].count(True) == 1
        assert c.predicted == p(best) and verify(c.schedule).ok and c.candidates == 2
        assert (
            c.schedule.problem.source["tile_n"] == 256
        )  # the 128-wide tile has the shorter II, not the shorter time


def test_rows_padded_past_the_batch_are_not_counted_as_work():
    # batch 16: a 32-row tile computes 16 wasted rows; counted as work they would make it look 40% faster
    grid = {
        "model": "quant_gemm",
        "params": {"bits": 4, "m": 16, "tile_n": 64, "tile_k": 64, "tile_m": [16, 32]},
    }
    result = run_sweep(sweep_from_dict({"grids": [grid]}), workers=1)
    (choice,) = result.choices
    assert choice.schedule.problem.source["tile_m"] == 16
    for point, r in zip(result.config.points, result.results):
        predicted = Fraction(r.schedule["ii"], 16 * 64 * 64)  # 16 useful rows whichever the tile
        assert choice.predicted <= predicted
        if point.params["tile_m"] == 32:
            assert Fraction(r.schedule["ii"], 32 * 64 * 64) < choice.predicted


def test_a_real_dask_cluster_gives_the_same_choices(local):
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = run_sweep(sweep_from_dict(TINY), dask=cluster.scheduler_address)
    assert choices(remote) == choices(local)
    assert [r.schedule["ii"] for r in remote.results] == [r.schedule["ii"] for r in local.results]


def test_the_cli_fills_a_package_that_find_and_precompiled_read(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    run = run_cli(
        [
            "sweep",
            config,
            "--processes",
            "1",
            "--seed",
            "0",
            "--workers",
            "1",
            "--package",
            tmp_path / "pkg",
            "--out",
            tmp_path / "r.json",
        ],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr
    solver = json.loads((tmp_path / "r.json").read_text())["solver"]
    assert (
        solver["num_workers"] == 1 and solver["random_seed"] == 0
    )  # --workers: CP-SAT threads, as on every command
    assert "4/4 gemm on h100" in run.stderr and "4/4" not in run.stdout  # progress on stderr
    assert "package written" in run.stdout
    entries = read(tmp_path / "pkg")
    assert [dict(e.key.params)["dtype"] for e in entries] == ["bf16", "fp16"]
    listed = precompiled(package=tmp_path / "pkg")
    assert [k.schedule_digest for k in listed] == [e.schedule_digest for e in entries] and all(
        k.current for k in listed
    )
    s = find("gemm", {"dtype": "fp16"}, "h100", package=tmp_path / "pkg")
    assert s is not None and schedule_digest(s) == entries[1].schedule_digest
    assert sum(r["chosen"] for r in json.loads((tmp_path / "r.json").read_text())["points"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "config, words",
    [
        ({"grids": [{"model": "gemmm"}]}, ["unknown model 'gemmm'"]),
        ({"grids": [{"model": "gemm", "params": {"tile_q": 4}}]}, ["no parameter 'tile_q'"]),
        ({"grids": [{"model": "quant_gemm", "params": {"bits": [4, 9]}}]}, ["bits = 9 is out of range"]),
        ({"grids": [{"model": "gemm", "params": {"tile_m, consumers": [[128]]}}]}, ["list of 2 values"]),
        (
            {"grids": [{"model": "gemm", "params": {"tile_m": 64, "consumers": 2}}]},
            ["grid 1 has no valid point"],
        ),
        ({"grid": []}, ["unknown key 'grid'"]),
        ({"machines": ["h999"], "grids": [{"model": "gemm"}]}, ["unknown machine 'h999'"]),
        ({"solver": {"random_seed": -1}, "grids": [{"model": "gemm"}]}, ["random_seed"]),
        ({"preset": "nope", "grids": [{"model": "gemm"}]}, ["unknown solver preset 'nope'"]),
        ([1, 2], ["must be a YAML mapping"]),
    ],
)
def test_config_mistakes_are_one_sentence(config, words):
    with pytest.raises(InputError) as info:
        sweep_from_dict(config)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_cli_mistakes_exit_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"grids": [{"model": "gemm", "params": {"tile_q": 4}}]}))
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"grids": [{"model": "gemm"}]}))
    jobs = {
        "bad": ["sweep", bad],
        "missing": ["sweep", tmp_path / "nope.yaml"],
        "dead_dask": ["sweep", good, "--dask", f"127.0.0.1:{_free_port()}"],
        "processes": ["sweep", good, "--processes", "0"],
        "workers": ["sweep", good, "--workers", "0"],
        "time_limit": ["sweep", good, "--time-limit", "0"],
    }
    runs = run_all(jobs, tmp_path)
    for name, words in {
        "bad": "no parameter 'tile_q'",
        "missing": "does not exist",
        "dead_dask": "no Dask scheduler answers",
        "processes": "--processes",
        "workers": "--workers",
        "time_limit": "--time-limit",
    }.items():
        run = runs[name]
        assert run.returncode == 2, (name, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("warpsched: error: ") and words in lines[0], (
            name,
            run.stderr,
        )


def test_dask_without_distributed_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError, match="pip install distributed"):
        dask_client("127.0.0.1:8786")


def test_the_shipped_sweep_configs_parse():
    example = load_sweep(ROOT / "solver_configs" / "sweeps" / "quant_gemm_tiles.yaml")
    assert len(example.points) == 4 and example.solver.interleave_search
    catalog = load_sweep(ROOT / "solver_configs" / "precompiled.yaml")
    assert catalog.origin == "solver_configs/precompiled.yaml" and not catalog.skipped
    swept = [e for e in read() if not e.origin.startswith(PINNED)]
    assert {e.origin for e in swept} == {
        catalog.origin
    }  # the shipped package came from the catalog, or was pinned
    problems = {
        (p.model, p.machine.name, tuple(sorted(split_source({"model": p.model, **p.params})[0].items())))
        for p in catalog.points
    }
    assert len(problems) == len(swept)  # one shipped entry per problem of the catalog
    for e in read():  # a pinned problem outside the catalog, which a regenerate would otherwise replace
        if e.origin.startswith(PINNED):
            assert (
                e.key.model,
                e.key.machine,
                tuple(sorted(e.key.params)),
            ) not in problems and "GPU" in e.origin


def test_with_compile_a_point_that_does_not_build_clean_is_not_chosen(monkeypatch):
    from warpsched import sweep as ksweep
    from warpsched.kernels import build as kbuild

    def fake_compile(schedule):  # the 256-wide tile (the best predicted) spills
        if schedule.problem.source["tile_n"] == 256:
            return {"status": "failed", "reason": "12 STL (local memory) in the SASS"}
        return {"status": "clean", "reason": ""}

    monkeypatch.setattr(kbuild, "toolchain_version", lambda: "test")
    monkeypatch.setattr(ksweep, "_compile", fake_compile)
    grid = {"model": "gemm", "params": {"tile_n": [128, 256]}}
    result = run_sweep(sweep_from_dict({"grids": [grid]}), workers=1, compile=True)
    (choice,) = result.choices
    assert choice.schedule.problem.source["tile_n"] == 128 and choice.eligible == 1 and choice.candidates == 2
    monkeypatch.setattr(ksweep, "_compile", lambda s: {"status": "failed", "reason": "nvcc rejected it"})
    nothing = run_sweep(sweep_from_dict({"grids": [grid]}), workers=1, compile=True)
    assert not nothing.choices and "nvcc rejected it" in nothing.unresolved[0][1]


@pytest.mark.slow
def test_compile_builds_every_point_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    result = run_sweep(
        sweep_from_dict({"grids": [{"model": "gemm", "params": {"tile_n": [128, 256]}}]}),
        workers=1,
        compile=True,
    )
    assert all(r.build["status"] == "clean" and len(r.build["cubin_sha256"]) == 64 for r in result.results)
    assert result.choices[0].schedule.problem.source["tile_n"] == 256


def test_a_built_kernels_sass_trip_outranks_its_schedules_ii(local):
    # with --compile the sweep ranks by the trip read from each kernel's SASS: a point whose II is the
    # better one loses when its kernel's trip is the slower one
    from dataclasses import replace

    from warpsched.sweep import choose, ranked_time

    group = [r for r in local.results if local.config.points[r.index].params["dtype"] == "bf16"]
    assert len(group) == 2
    schedules = {r.index: from_json(r.schedule) for r in group}
    low, high = sorted(group, key=lambda r: ranked_time(schedules[r.index], None))
    work = schedules[low.index].ii / ranked_time(schedules[low.index], None)  # MACs per iteration
    assert ranked_time(schedules[low.index], {"cycles_per_trip": 512}) == Fraction(512) / work
    slow_build = {"status": "clean", "cycles_per_trip": 10**7}
    fast_build = {"status": "clean", "cycles_per_trip": 10}
    results = list(local.results)
    results[low.index] = replace(low, build=slow_build)
    results[high.index] = replace(high, build=fast_build)
    choices, _ = choose(local.config.points, tuple(results))
    chosen = {dict(c.key.params)["dtype"]: c.point.index for c in choices}
    assert chosen["bf16"] == high.index
    assert ranked_time(schedules[high.index], fast_build) < ranked_time(schedules[high.index], None)


def _dies_on_point_1(point):
    """A worker's job that kills its process on point 1, as a crash in CP-SAT's native code does."""
    import os

    if point.index == 1:
        os._exit(11)
    return PointResult(point.index, "solved", "", None, None, 0.0)


def test_a_worker_that_dies_costs_its_point_not_the_sweep():
    from warpsched import sweep

    points = list(sweep_from_dict(TINY).points)
    got = {}
    sweep._run_local(points, 2, lambda r: got.setdefault(r.index, r), _dies_on_point_1)
    assert sorted(got) == [p.index for p in points]
    assert got[1].status == "crashed" and "warpsched solve" in got[1].reason
    assert all(got[p.index].status == "solved" for p in points if p.index != 1)


def _burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_the_package_regenerates_to_the_byte_under_load(tmp_path):
    """Issue 19 item 3: with the deterministic preset every level is bounded in deterministic time, so one
    shipped entry regenerated on a quiet machine and on one whose cores are busy gives the same bytes, and
    the shipped schedule."""
    shipped = next(e for e in read() if e.name.endswith("bits4_fmtint_group_size128_dtypebf16_m16_k4096"))
    catalog = yaml.safe_load((ROOT / "solver_configs" / "precompiled.yaml").read_text())
    config = tmp_path / "one.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "one",
                "preset": catalog["preset"],
                "solver": catalog["solver"],
                "machines": ["h100"],
                "grids": [{"model": "quant_gemm", "params": {**dict(shipped.key.params), **shipped.tile}}],
            }
        )
    )
    packages = []
    for load in (0, 2):
        burners = [
            multiprocessing.get_context("spawn").Process(target=_burn, args=(60,)) for _ in range(load)
        ]
        for b in burners:
            b.start()
        try:
            out = tmp_path / f"pkg{load}"
            run = run_cli(["sweep", config, "--processes", "1", "--package", out], tmp_path)
            assert run.returncode == 0, run.stderr
        finally:
            for b in burners:
                b.terminate()
        packages.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert packages[0] == packages[1]
    (entry,) = read(tmp_path / "pkg0")
    assert entry.schedule_digest == shipped.schedule_digest and entry.ii == shipped.ii
