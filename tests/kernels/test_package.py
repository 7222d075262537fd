"""The precompiled kernel package (issue 6): it ships the required kernels, its schedules pass the
independent verifier, match the manifest's digests and are what the models build today; lookups
need no solve; listing never fails for families without CUDA templates; cubins build once."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from warpsched import kernels
from warpsched.kernels.cuda.render import schedule_digest, supported
from warpsched.kernels.package import PACKAGE_DIR, find, precompiled, problem_key, read, ships
from warpsched.scheduler import schedule as schedule_io
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.verify import verify


REQUIRED = [  # issue 6: the first targets, quant_gemm bits 2, 3, 4, 8 and attention d64/128/256
    ("gemm", {"dtype": "bf16", "tile_m": 128, "tile_n": 256, "tile_k": 64}),
    *[
        ("quant_gemm", {"bits": b, "fmt": "int", "group_size": 128, "dtype": "bf16", "m": 16})
        for b in (2, 3, 4, 8)
    ],
    *[("attention_fwd", {"head_dim": d, "dtype": "bf16", "causal": False}) for d in (64, 128, 256)],
]


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_package_lists_the_required_kernels(empty_cache):
    listed = kernels.precompiled()
    for model, params in REQUIRED:
        hits = [
            k
            for k in listed
            if k.model == model
            and k.machine == "h100"
            and all(k.params.get(n) == v for n, v in params.items())
        ]
        assert len(hits) == 1, (model, params)
    assert len({k.name for k in listed}) == len(listed)
    for k in listed:  # a fresh cache: listing builds nothing and says why each is not built
        assert k.current and not k.built and k.cubin_digest is None and k.cubin_file is None and k.note
        assert len(k.schedule_digest) == 16


def test_shipped_schedules_verify_and_match_the_manifest():
    entries = read()
    assert {p.name for p in (PACKAGE_DIR / "schedules").glob("*.json")} == {
        e.schedule.split("/")[-1] for e in entries
    }
    for entry in entries:
        data = schedule_io.read_json(PACKAGE_DIR / entry.schedule)
        verdict = verify(data)
        assert verdict.ok, (entry.name, verdict.violations[:1])
        s = schedule_io.from_json(data)
        assert schedule_digest(s) == entry.schedule_digest
        assert (s.ii, s.ii_proven_optimal, s.makespan) == (entry.ii, entry.ii_proven_optimal, entry.makespan)
        assert s.ii_proven_optimal, entry.name  # the catalog's preset proves every shipped II
        assert problem_key(s.problem.source, s.machine.name) == entry.key
        assert {k: s.problem.source[k] for k in entry.tile} == entry.tile
        assert ships(entry, s), (
            f"{entry.name} is stale: regenerate with warpsched sweep solver_configs/precompiled.yaml "
            "--package"
        )


def test_find_answers_from_the_package_without_solving(monkeypatch):
    from warpsched.scheduler import api

    monkeypatch.setattr(api, "solve", lambda *a, **k: pytest.fail("find must not solve"))
    target = find("quant_gemm", {"bits": 4}, "h100")  # the issue-4 target: group 128, bf16, m 16 are defaults
    assert target is not None and target.ii_proven_optimal and verify(target).ok
    assert target.problem.source["bits"] == 4 and target.problem.source["m"] == 16
    same = find(
        "quant_gemm", {"bits": "4", "group_size": "128", "tile_n": 128}, "h100"
    )  # CLI-style strings, a tile
    assert schedule_digest(same) == schedule_digest(target)
    assert find("attention_fwd", {"head_dim": 64}).problem.source["head_dim"] == 64
    assert find("gemm", {"tile_n": 128}) is None  # a tile the package does not ship
    assert find("quant_gemm", {"bits": 5}) is None  # a problem it does not ship
    assert find("quant_gemm", {"bits": 4}, "h200") is None  # nor for another machine
    with pytest.raises(InputError, match="bits"):
        find("quant_gemm", {"bits": 9})


def test_a_stale_schedule_is_never_used(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(PACKAGE_DIR, package, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    entry = next(e for e in read(package) if e.key.model == "gemm")
    path = package / entry.schedule
    data = json.loads(path.read_text())
    data["graph"]["ops"][0]["latency"] += (
        1  # as if the machine model's TMA latency had changed since the solve
    )
    path.write_text(json.dumps(data))
    assert find("gemm", {}, "h100", package=package) is None
    stale = next(k for k in precompiled(package=package) if k.name == entry.name)
    assert not stale.current and "stale" in stale.note


def test_families_without_templates_are_listed_not_buildable(empty_cache):
    for k in precompiled():
        problem = schedule_io.read(k.schedule_file).problem
        try:
            supported(problem)
            expected = True
        except InputError:
            expected = False
        assert k.buildable == expected, k.name
        if not k.buildable:
            assert k.note and not k.built and k.cubin_digest is None
    assert any(k.buildable for k in precompiled())  # gemm at least


def test_a_missing_package_is_one_sentence(tmp_path):
    with pytest.raises(InputError, match="no package manifest"):
        precompiled(package=tmp_path)


def test_build_makes_each_cubin_once_with_one_progress_line(empty_cache, capsys):
    gemm = next(k for k in precompiled() if k.model == "gemm")
    built = {k.name: k for k in precompiled(build=True, names=(gemm.name,))}[gemm.name]
    assert (
        built.built and built.cubin_digest == hashlib.sha256(open(built.cubin_file, "rb").read()).hexdigest()
    )
    err = capsys.readouterr().err
    assert err.count("warpsched: building") == 1 and gemm.name in err
    again = {k.name: k for k in precompiled(build=True, names=(gemm.name,))}[gemm.name]
    assert again.cubin_digest == built.cubin_digest and "building" not in capsys.readouterr().err
    listed = {k.name: k for k in precompiled()}[gemm.name]  # listing alone now finds it
    assert listed.built and listed.cubin_digest == built.cubin_digest and listed.note == ""


@pytest.mark.slow
def test_every_shipped_kernel_builds_clean(empty_cache):
    """What `warpsched precompiled --build` does on a user's machine: every kernel builds, no warning, no
    spill."""
    built = precompiled(build=True)
    assert all(k.built and k.note == "" for k in built if k.buildable), [
        (k.name, k.note) for k in built if k.note
    ]
