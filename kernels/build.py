"""Build a rendered kernel into an sm_90a cubin and check what the compiler made of it (DESIGN.md 6.4).

`nvcc -gencode=arch=compute_90a,code=sm_90a` with the CUTLASS/CuTe headers of the `nvidia-cutlass`
wheel, the toolchain from NVIDIA's wheels (kernels/toolchain.py); `-Xptxas -v` gives registers and
spills; `cuobjdump -sass` gives the SASS, which must hold HGMMA (wgmma), UTMALDG (TMA loads) and SYNCS
(mbarriers), USETMAXREG (ptxas kept the setmaxnreg budgets: it drops them, with warning C7508, when it
cannot tell the entry register count) and no LDL/STL (local memory: spills).

A build never lies: a tool that fails or prints anything unexpected on stderr, a missing ptxas report
or SASS without the kernel's entry is a `BuildError` quoting the tool. Only a complete build is cached,
by the hash of the source and every tool's version, in `$WARPSCHED_CACHE` (default
`~/.cache/warpsched`); its report's `cached` is true only when it came from there, or from the cubins an
installed wheel ships (kernels/prebuilt.py; `prebuilt` then too), which are looked up first and need no
toolchain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from warpsched.kernels import prebuilt
from warpsched.kernels.toolchain import BuildError, cutlass_include, find_toolchain, run_tool

__all__ = [
    "BuildError",
    "BuildReport",
    "build",
    "cached_report",
    "cache_dir",
    "source_lines",
    "toolchain_version",
]

SASS_REQUIRED = ("HGMMA", "UTMALDG", "SYNCS", "USETMAXREG")  # USETMAXREG: ptxas kept the setmaxnreg budgets
SASS_FORBIDDEN = ("LDL", "STL")
NVCC_FLAGS = (
    "-std=c++17",
    "--expt-relaxed-constexpr",
    "-gencode=arch=compute_90a,code=sm_90a",
    "-cubin",
    "-Xptxas",
    "-v",
)


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
    prebuilt: bool = False  # shipped in the installed package (kernels/prebuilt.py): no compiler ran here


def toolchain_version() -> str:
    """Every tool's version (what cache entries are keyed by); `BuildError` when the toolchain is missing."""
    return find_toolchain().key


def cache_dir() -> Path:
    return Path(os.environ.get("WARPSCHED_CACHE", Path.home() / ".cache" / "warpsched")) / "cubins"


def _cache_folder(source: str) -> Path:
    return cache_dir() / hashlib.sha256((toolchain_version() + "\0" + source).encode()).hexdigest()[:24]


def cached_report(source: str) -> BuildReport | None:
    """The report of an earlier complete build of `source`, without running nvcc: the package's own
    (kernels/prebuilt.py; no toolchain needed), else this toolchain's in the cache; None if none."""
    shipped = prebuilt.report(source)
    if shipped is not None:
        return shipped
    folder = _cache_folder(source)
    try:
        data = json.loads((folder / "report.json").read_text())
        report = BuildReport(**{**data, "sass_problems": tuple(data["sass_problems"]), "cached": True})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return report if Path(report.cubin).is_file() else None


def build(source: str, entry: str) -> BuildReport:
    """Compile `source` (or take it from the cache) and check its registers, spills and SASS."""
    cached = cached_report(source)
    if cached is not None:
        return cached
    chain = find_toolchain()
    folder = _cache_folder(source)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(
        tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent)
    )  # renamed into place when complete
    try:
        report = _compile(chain, source, entry, work, folder)
        try:
            work.rename(folder)
        except OSError:  # another process finished the same build first: its entry is as good
            shutil.rmtree(work, ignore_errors=True)
        return report
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _compile(chain, source: str, entry: str, work: Path, folder: Path) -> BuildReport:
    cu, cubin = work / "kernel.cu", work / "kernel.cubin"
    cu.write_text(source)
    kept = folder.parent / f"{folder.name}.failed.cu"
    try:
        p = run_tool(
            chain,
            [chain.path("nvcc"), *NVCC_FLAGS, "-I", str(cutlass_include()), "-o", str(cubin), str(cu)],
            f"nvcc (building {entry} for sm_90a; the source is kept in {kept})",
            _ptxas_report_line,
        )
    except BuildError:
        shutil.copyfile(cu, kept)
        raise
    info = p.stderr + p.stdout
    block = info.split(f"Compiling entry function '{entry}'", 1)
    regs = re.search(r"Used (\d+) registers", block[-1])
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", block[-1])
    if len(block) < 2 or regs is None or spills is None:
        raise BuildError(
            f"ptxas reported no registers and spills for {entry} (nvcc -Xptxas -v printed "
            f"{info.strip()[:300]!r})"
        )
    sass = run_tool(chain, [chain.path("cuobjdump"), "-sass", str(cubin)], "cuobjdump -sass").stdout
    if f"Function : {entry}" not in sass:
        raise BuildError(
            f"cuobjdump -sass printed no SASS for {entry} ({sass.strip()[:200]!r}); the cubin is "
            f"incomplete or cuobjdump cannot disassemble it"
        )
    (work / "kernel.sass").write_text(sass)
    counts = {op: len(re.findall(rf"\b{op}\b", sass)) for op in SASS_REQUIRED + SASS_FORBIDDEN}
    problems = tuple(
        [f"no {op} in the SASS" for op in SASS_REQUIRED if counts[op] == 0]
        + [f"{counts[op]} {op} (local memory) in the SASS" for op in SASS_FORBIDDEN if counts[op]]
        + _wgmma_serialized(info, entry, sass)
    )
    report = BuildReport(
        str(folder / "kernel.cubin"),
        int(regs.group(1)),
        int(spills.group(1)),
        int(spills.group(2)),
        counts,
        not problems,
        problems,
        False,
        chain.key,
    )
    (work / "report.json").write_text(json.dumps(asdict(report)))
    return report


def source_lines(source: str, entry: str) -> tuple[str, dict[int, int]]:
    """The SASS of `source` and, for each instruction address of `entry`, the line of `source` it comes from
    (an inlined helper's instructions count for the line that calls it). Built again with `-lineinfo`, which
    leaves the code as it is (the SASS is the plain build's, instruction for instruction); not cached."""
    chain = find_toolchain()
    with tempfile.TemporaryDirectory(prefix="warpsched-lines.") as tmp:
        cu, cubin = Path(tmp) / "kernel.cu", Path(tmp) / "kernel.cubin"
        cu.write_text(source)
        run_tool(
            chain,
            [
                chain.path("nvcc"),
                *NVCC_FLAGS,
                "-lineinfo",
                "-I",
                str(cutlass_include()),
                "-o",
                str(cubin),
                str(cu),
            ],
            f"nvcc -lineinfo (building {entry} for sm_90a)",
            _ptxas_report_line,
        )
        sass = run_tool(chain, [chain.path("cuobjdump"), "-sass", str(cubin)], "cuobjdump -sass").stdout
        listing = run_tool(chain, [chain.path("nvdisasm"), "-gi", "-c", str(cubin)], "nvdisasm -gi").stdout
    return sass, _lines_of(listing, entry, str(cu))


_FILE_LINE = re.compile(r'"([^"]+)", line (\d+)')
_ADDRESS = re.compile(r"/\*([0-9a-f]{4,})\*/")
_COMMENT = re.compile(r"\s*//## File")
_SECTION = re.compile(r"\s*\.text\.")  # the next function


def _lines_of(listing: str, entry: str, cu: str) -> dict[int, int]:
    """Address -> line of `cu` in `nvdisasm -gi` output: each `//## File` comment names the line of the
    instructions after it, the last `"<cu>", line N` of the comment (the call site when inlined)."""
    marker = f".text.{entry}:"
    if marker not in listing:
        raise BuildError(f"nvdisasm printed no code for {entry}; the cubin is incomplete")
    out, line = {}, None
    for text in listing.split(marker, 1)[1].splitlines():
        if _COMMENT.match(text):
            ours = [int(n) for f, n in _FILE_LINE.findall(text) if f == cu]
            if ours:
                line = ours[-1]
        elif _SECTION.match(text):
            break
        else:
            m = _ADDRESS.search(text)
            if m and line is not None:
                out[int(m.group(1), 16)] = line
    return out


def _ptxas_report_line(line: str) -> bool:
    """What nvcc -Xptxas -v prints on stderr when all is well: ptxas's info lines and the remarks the
    build reads itself (wgmma serialization, setmaxnreg), nothing else."""
    return bool(
        re.match(r"\s*(ptxas (info|/ remark|remark)|\d+ bytes stack frame|Compile time)", line)
        or re.search(r"\(C75\d\d\)", line)
    )


def _wgmma_serialized(ptxas_info: str, entry: str, sass: str) -> list[str]:
    """ptxas serializes every wgmma of a kernel when it sees a path on which other code touches a wgmma's
    registers before a wait (its remarks C7514, C7515, C7518, ...): each HGMMA then waits for the one before
    (gsb0 + WARPGROUP.DEPBAR), and the tensor cores run a fraction of their rate. A correct kernel, a slow
    one: refused like a spill."""
    remarks = sorted(
        set(re.findall(rf"\((C\d+)\)[^\n]*instructions are serialized[^\n]*'{re.escape(entry)}'", ptxas_info))
    )
    if not remarks:
        return []
    hgmma = re.findall(r"HGMMA\.[^;]*;", sass)
    waited = sum("gsb0" in h for h in hgmma)
    return [
        f"ptxas serialized the wgmma instructions (remark {', '.join(remarks)}: {waited} of {len(hgmma)} "
        "HGMMA "
        f"wait for the one before)"
    ]
