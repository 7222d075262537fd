"""The CUDA toolchain comes from NVIDIA's wheels, and a build never lies or caches a failure.

The real toolchain is a dependency, so these tests never skip for want of it. Failures are staged with a
stub toolchain (`WARPSCHED_CUDA_HOME` pointing at small scripts): a tool that fails, one that complains on
stderr, SASS without the kernel, a toolchain whose version changes.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from warpsched.kernels import build as kbuild
from warpsched.kernels.toolchain import TOOLS, WHEEL_OF, BuildError, find_toolchain

SOURCE = 'extern "C" __global__ void k() {}\n'
GOOD_SASS = (
    "code for sm_90a\n  Function : k\n  HGMMA.64x256x16.F32.BF16 R24, gdesc[UR4], R24 ;\n  UTMALDG.2D [UR8], "
    "[UR4] ;\n"
    "  SYNCS.ARRIVE.TRANS64 RZ, [UR4] ;\n  USETMAXREG.DEALLOC.CTAPOOL 0x18 ;\n"
)


def test_every_tool_is_found_in_its_wheel_never_on_path(monkeypatch):
    monkeypatch.delenv("WARPSCHED_CUDA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # a system nvcc on PATH or in CUDA_HOME must not matter
    monkeypatch.setenv("CUDA_HOME", "/usr/local/cuda")
    chain = find_toolchain()
    assert chain.origin == "pip wheels"
    for tool in TOOLS:
        root = Path(str(metadata.distribution(WHEEL_OF[tool]).locate_file(""))).resolve()
        assert Path(chain.path(tool)).is_relative_to(root), (tool, chain.path(tool))
    versions = dict(chain.versions)
    assert versions["nvcc"].startswith("release 13.0, V13.0.88")  # the pinned compiler
    assert set(versions) == set(TOOLS) | {"nvidia-cutlass"}


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys, pathlib\nargs = sys.argv[1:]\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def stub_toolchain(
    home: Path, nvcc: str = "", sass: str = GOOD_SASS, cuobjdump_stderr: str = "", version: str = "V13.0.88"
) -> Path:
    """A CUDA home whose nvcc writes a cubin and ptxas's report (`nvcc`: extra code run first), whose
    cuobjdump
    prints `sass` (and `cuobjdump_stderr` on stderr), every tool answering --version with `version`."""
    folder = home / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    version_check = (
        f"if args == ['--version']:\n"
        f"    print('Cuda compilation tools, release 13.0, {version}'); sys.exit(0)\n"
    )
    _stub(
        folder,
        "nvcc",
        version_check
        + nvcc
        + """
out = pathlib.Path(args[args.index('-o') + 1])
out.write_bytes(b'cubin')
sys.stderr.write("ptxas info    : Compiling entry function 'k' for 'sm_90a'\\n"
                 "ptxas info    : Function properties for k\\n"
                 "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\\n"
                 "ptxas info    : Used 168 registers, used 1 barriers\\n")""",
    )
    _stub(folder, "cuobjdump", version_check + f"sys.stderr.write({cuobjdump_stderr!r})\nprint({sass!r})")
    for tool in ("ptxas", "nvdisasm"):
        _stub(folder, tool, version_check)
    return home


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "cubins"


def use(monkeypatch, home: Path) -> None:
    monkeypatch.setenv("WARPSCHED_CUDA_HOME", str(home))


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("*") if p.is_dir()) if cache.exists() else []


def test_a_failing_tool_is_a_build_error_quoting_it_and_nothing_is_cached(tmp_path, cache, monkeypatch):
    use(
        monkeypatch,
        stub_toolchain(
            tmp_path / "cuda",
            nvcc="sys.stderr.write('k.cu(3): error: identifier \"x\" is undefined\\n'); sys.exit(2)",
        ),
    )
    with pytest.raises(BuildError, match=r"nvcc .* failed with exit code 2: .*identifier \"x\" is undefined"):
        kbuild.build(SOURCE, "k")
    assert entries(cache) == [] and kbuild.cached_report(SOURCE) is None
    assert [p.suffix for p in cache.glob("*.failed.cu")] == [".cu"]  # the source is kept to look at


def test_a_tool_that_complains_on_stderr_fails_the_build(tmp_path, cache, monkeypatch):
    use(
        monkeypatch,
        stub_toolchain(
            tmp_path / "cuda", sass="", cuobjdump_stderr="Could not find executable file 'nvdisasm'\n"
        ),
    )
    with pytest.raises(
        BuildError, match="cuobjdump -sass complained: .*Could not find executable file 'nvdisasm'"
    ):
        kbuild.build(SOURCE, "k")
    assert entries(cache) == []


def test_sass_without_the_kernel_is_an_error_not_a_report(tmp_path, cache, monkeypatch):
    use(monkeypatch, stub_toolchain(tmp_path / "cuda", sass="code for sm_90a\n"))
    with pytest.raises(BuildError, match="printed no SASS for k"):
        kbuild.build(SOURCE, "k")
    assert entries(cache) == []


def test_the_cache_says_cached_only_when_it_was_and_is_keyed_by_the_toolchain(tmp_path, cache, monkeypatch):
    use(monkeypatch, stub_toolchain(tmp_path / "cuda"))
    first = kbuild.build(SOURCE, "k")
    assert first.sass_ok and not first.cached and "nvcc release 13.0, V13.0.88" in first.toolchain
    again = kbuild.build(SOURCE, "k")
    assert again.cached and again.cubin == first.cubin
    use(
        monkeypatch, stub_toolchain(tmp_path / "cuda-next", version="V13.0.99")
    )  # another compiler: another entry
    other = kbuild.build(SOURCE, "k")
    assert not other.cached and other.cubin != first.cubin and len(entries(cache)) == 2


def test_a_missing_toolchain_is_one_sentence(tmp_path, cache, monkeypatch):
    use(monkeypatch, tmp_path / "no-cuda")
    with pytest.raises(BuildError, match="has no nvcc, ptxas, cuobjdump, nvdisasm") as info:
        kbuild.build(SOURCE, "k")
    assert "\n" not in str(info.value)


def test_compile_exits_nonzero_with_an_error_line_when_a_sass_check_fails(tmp_path):
    """SASS without HGMMA (stub toolchain): the files are written for a look, and the exit says it failed."""
    home = stub_toolchain(
        tmp_path / "cuda", sass="  Function : warpsched_gemm\n  UTMALDG.2D [UR8], [UR4] ;\n"
    )
    for tool in ("nvcc",):  # the stub reports registers for the entry it is asked about
        text = (home / "bin" / tool).read_text().replace("'k'", "'warpsched_gemm'")
        (home / "bin" / tool).write_text(text)
    env = {**os.environ, "WARPSCHED_CUDA_HOME": str(home), "WARPSCHED_CACHE": str(tmp_path / "cache")}
    r = subprocess.run(
        [sys.executable, "-m", "warpsched", "compile", "gemm", "--out", "k", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("warpsched: error: the kernel failed its SASS checks: no HGMMA")
    )
    report = json.loads((tmp_path / "k" / "report.json").read_text())
    assert not report["sass_ok"] and not report["cached"]
