"""Build a rendered kernel into an sm_90a cubin and check what the compiler made of it (DESIGN.md 6.4).

`nvcc -gencode=arch=compute_90a,code=sm_90a` with the CUTLASS/CuTe headers of the `nvidia-cutlass`
wheel; `-Xptxas -v` gives registers and spills; `cuobjdump -sass` (the `nvidia-cuda-cuobjdump`
wheel, else the one on PATH) gives the SASS, which must hold HGMMA (wgmma), UTMALDG (TMA loads)
and SYNCS (mbarriers), USETMAXREG (ptxas kept the setmaxnreg budgets: it drops them, with warning C7508,
when it cannot tell the entry register count) and no LDL/STL (local memory: spills). Cubins are cached by the hash of
the source and the toolchain in `$WARPSCHED_CACHE` (default `~/.cache/warpsched`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from scheduler.errors import WarpschedError

SASS_REQUIRED = ("HGMMA", "UTMALDG", "SYNCS", "USETMAXREG")  # USETMAXREG: ptxas kept the setmaxnreg budgets
SASS_FORBIDDEN = ("LDL", "STL")


class BuildError(WarpschedError):
    """The toolchain is missing or rejected the generated source (a warpsched bug, not a user mistake)."""


@dataclass(frozen=True)
class BuildReport:
    cubin: str
    registers: int
    spill_stores: int
    spill_loads: int
    sass_counts: dict
    sass_ok: bool
    sass_problems: tuple[str, ...]
    cached: bool
    toolchain: str


def cutlass_include() -> Path:
    try:
        import cutlass_library
    except ImportError:
        raise BuildError("the CUTLASS headers are missing; pip install nvidia-cutlass") from None
    path = Path(cutlass_library.__file__).parent / "source" / "include"
    if not (path / "cute" / "tensor.hpp").exists():
        raise BuildError(f"the nvidia-cutlass wheel has no CuTe headers under {path}")
    return path


def _tool(name: str) -> str:
    """A CUDA tool: from the nvidia-* wheels (cuobjdump, nvdisasm), else CUDA_HOME or PATH (nvcc)."""
    try:
        import nvidia

        for base in getattr(nvidia, "__path__", []):
            candidate = Path(base) / "cu13" / "bin" / name
            if candidate.exists():
                return str(candidate)
    except ImportError:
        pass
    home = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / name
    found = shutil.which(name) or (str(home) if home.exists() else None)
    if not found:
        raise BuildError(f"{name} was not found; install the CUDA toolkit (nvcc) and pip install nvidia-cuda-cuobjdump")
    return found


@functools.cache
def toolchain_version() -> str:
    out = subprocess.run([_tool("nvcc"), "--version"], capture_output=True, text=True).stdout
    return (re.search(r"release [\d.]+, V[\d.]+", out) or re.search(r".+$", out.strip())).group(0)


def cache_dir() -> Path:
    return Path(os.environ.get("WARPSCHED_CACHE", Path.home() / ".cache" / "warpsched")) / "cubins"


def _cache_folder(source: str) -> Path:
    return cache_dir() / hashlib.sha256((toolchain_version() + "\0" + source).encode()).hexdigest()[:24]


def cached_report(source: str) -> BuildReport | None:
    """The report of an earlier build of `source` with this toolchain, without running nvcc; None if none."""
    meta = _cache_folder(source) / "report.json"
    return BuildReport(**{**json.loads(meta.read_text()), "cached": True}) if meta.exists() else None


def build(source: str, entry: str) -> BuildReport:
    """Compile `source` (or take it from the cache) and check its registers, spills and SASS."""
    cached = cached_report(source)
    if cached is not None:
        return cached
    version = toolchain_version()
    folder = _cache_folder(source)
    folder.mkdir(parents=True, exist_ok=True)
    cu, cubin = folder / "kernel.cu", folder / "kernel.cubin"
    cu.write_text(source)
    cmd = [_tool("nvcc"), "-std=c++17", "--expt-relaxed-constexpr", "-gencode=arch=compute_90a,code=sm_90a",
           "-cubin", "-Xptxas", "-v", "-I", str(cutlass_include()), "-o", str(cubin), str(cu)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        first = next((line for line in p.stderr.splitlines() if "error" in line), p.stderr.strip()[:300])
        raise BuildError(f"nvcc rejected the generated kernel ({first}); the source is in {cu}")
    info = p.stderr + p.stdout
    block = info.split(f"Compiling entry function '{entry}'", 1)[-1]
    regs = int(re.search(r"Used (\d+) registers", block).group(1))
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", block)
    sass = subprocess.run([_tool("cuobjdump"), "-sass", str(cubin)], capture_output=True, text=True).stdout
    (folder / "kernel.sass").write_text(sass)
    counts = {op: len(re.findall(rf"\b{op}\b", sass)) for op in SASS_REQUIRED + SASS_FORBIDDEN}
    problems = tuple([f"no {op} in the SASS" for op in SASS_REQUIRED if counts[op] == 0]
                     + [f"{counts[op]} {op} (local memory) in the SASS" for op in SASS_FORBIDDEN if counts[op]]
                     + _wgmma_serialized(info, entry, sass))
    report = BuildReport(str(cubin), regs, int(spills.group(1)), int(spills.group(2)), counts, not problems, problems,
                         False, version)
    (folder / "report.json").write_text(json.dumps(asdict(report)))
    return report


def _wgmma_serialized(ptxas_info: str, entry: str, sass: str) -> list[str]:
    """ptxas serializes every wgmma of a kernel when it sees a path on which other code touches a wgmma's
    registers before a wait (its remarks C7514, C7515, C7518, ...): each HGMMA then waits for the one before
    (gsb0 + WARPGROUP.DEPBAR), and the tensor cores run a fraction of their rate. A correct kernel, a slow
    one: refused like a spill."""
    remarks = sorted(set(re.findall(rf"\((C\d+)\)[^\n]*instructions are serialized[^\n]*'{re.escape(entry)}'", ptxas_info)))
    if not remarks:
        return []
    hgmma = re.findall(r"HGMMA\.[^;]*;", sass)
    waited = sum("gsb0" in h for h in hgmma)
    return [f"ptxas serialized the wgmma instructions (remark {', '.join(remarks)}: {waited} of {len(hgmma)} HGMMA "
            f"wait for the one before)"]

