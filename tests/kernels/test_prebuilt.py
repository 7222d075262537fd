"""The cubins a wheel ships (kernels/prebuilt.py, issue 20): found by their source with no compiler at all,
digests checked, and the driver's choice among variants made from the shipped reports alone."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import tomllib
from pathlib import Path

import pytest
import setuptools.command.build_py

from warpsched.kernels import prebuilt
from warpsched.kernels.build import BuildError
from warpsched.kernels.driver import _variants, build_schedule, tried_variants
from warpsched.kernels.package import bundle, manifest, precompiled
from warpsched.kernels import toolchain
from warpsched.kernels.toolchain import find_toolchain
from tests.kernels.conftest import target

ROOT = Path(__file__).resolve().parents[2]


def _remove_compiler(tmp_path, monkeypatch) -> None:
    """As if the compiler wheels were not installed, with an empty build cache: from here on a build that
    is not shipped fails."""
    monkeypatch.delenv("WARPSCHED_CUDA_HOME", raising=False)
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(toolchain, "_from_wheel", lambda tool: None)
    toolchain._find.cache_clear()
    with pytest.raises(BuildError, match=r"warpsched\[compile\]"):
        find_toolchain()


@pytest.fixture(autouse=True)
def _find_the_real_toolchain_again():
    yield
    toolchain._find.cache_clear()


def _store(tmp_path, monkeypatch, builds) -> Path:
    store = tmp_path / "prebuilt"
    prebuilt.write(store, builds)
    monkeypatch.setattr(prebuilt, "STORE", store)
    return store


def _gemm_builds():
    """The shipped gemm's tried variants, built here (through the cache) as the wheel's build builds them."""
    gemm = next(e for e in manifest.read() if e.key.model == "gemm")
    return gemm, bundle._build_entry(gemm.name)


def test_a_shipped_kernel_loads_without_a_compiler(tmp_path, monkeypatch):
    gemm, builds = _gemm_builds()
    store = _store(tmp_path, monkeypatch, builds)
    shipped = [b for b in builds if b[3]]
    assert len(shipped) == 1 and prebuilt.shipped_cubins(store) == 1
    original = Path(shipped[0][2].cubin).read_bytes()
    _remove_compiler(tmp_path, monkeypatch)

    built = build_schedule(manifest.load_schedule(gemm))
    assert built.report.prebuilt and built.report.cached and built.report.sass_ok
    assert Path(built.report.cubin).read_bytes() == original and Path(built.report.cubin).parent == store
    listed = {k.name: k for k in precompiled()}
    assert listed[gemm.name].prebuilt and listed[gemm.name].note == ""
    others = [k for k in listed.values() if k.buildable and k.name != gemm.name]
    assert others and not any(k.built for k in others)
    assert all("warpsched[compile]" in k.note for k in others if not k.note.startswith("pinned"))
    with pytest.raises(BuildError, match=r"warpsched\[compile\]"):  # one not shipped needs the compiler
        build_schedule(manifest.load_schedule(next(e for e in manifest.read() if e.name == others[0].name)))


def test_a_damaged_cubin_is_refused(tmp_path, monkeypatch):
    gemm, builds = _gemm_builds()
    store = _store(tmp_path, monkeypatch, builds)
    _remove_compiler(tmp_path, monkeypatch)
    cubin = next(store.glob("*.cubin"))
    data = bytearray(cubin.read_bytes())
    data[len(data) // 2] ^= 1
    cubin.write_bytes(bytes(data))
    with pytest.raises(BuildError, match="damaged"):
        build_schedule(manifest.load_schedule(gemm))
    cubin.unlink()
    with pytest.raises(BuildError, match="missing"):
        build_schedule(manifest.load_schedule(gemm))


def test_the_driver_chooses_from_shipped_reports_alone(tmp_path, monkeypatch):
    """A first variant the wheel's build refused (spills) is shipped as a report only; without a compiler
    the driver still skips it and loads the next one's cubin."""
    schedule = target("gemm")
    variants = list(_variants(schedule, None))
    (first, report), *_ = tried_variants(schedule)
    assert len(variants) > 1 and variants[0].source == first.source
    spilled = dataclasses.replace(report, spill_stores=8, spill_loads=8)
    builds = [
        (variants[0].source, variants[0].entry, spilled, False),
        (variants[1].source, variants[1].entry, report, True),
    ]
    _store(tmp_path, monkeypatch, builds)
    _remove_compiler(tmp_path, monkeypatch)
    built = build_schedule(schedule)
    assert built.fell_back and built.kernel.source == variants[1].source and built.report.prebuilt
    _store(tmp_path, monkeypatch, builds[1:])  # without the refusal the first variant needs nvcc
    with pytest.raises(BuildError, match=r"warpsched\[compile\]"):
        build_schedule(schedule)


def test_the_store_is_deterministic(tmp_path):
    _, builds = _gemm_builds()
    a = prebuilt.write(tmp_path / "a", builds).read_bytes()
    b = prebuilt.write(tmp_path / "b", list(reversed(builds))).read_bytes()
    records = json.loads(a)["kernels"].values()
    assert a == b and not any({"cached", "prebuilt"} & set(r) for r in records)


def test_a_source_checkout_ships_no_cubins():
    assert prebuilt.shipped_cubins() == 0 and not prebuilt.STORE.exists()


def _backend():
    spec = importlib.util.spec_from_file_location(
        "warpsched_build", ROOT / "build_backend" / "warpsched_build.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_a_wheel_build_asks_for_the_compiler(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "build_backend"))  # pyproject's backend-path, as pip does
    backend = _backend()
    wheel, editable = backend.get_requires_for_build_wheel(), backend.get_requires_for_build_editable()
    assert "nvidia-cuda-nvcc==13.0.88" in wheel and any(r.startswith("ortools") for r in wheel)
    assert not any("nvidia" in r or "ortools" in r for r in editable)
    cmdclass = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["cmdclass"]
    assert cmdclass["build_py"] == "warpsched_build.BuildPyWithCubins"  # the step that builds the cubins
    assert issubclass(backend.BuildPyWithCubins, setuptools.command.build_py.build_py)
