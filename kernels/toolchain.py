"""The CUDA toolchain warpsched builds with (DESIGN.md 6.4): NVIDIA's pip wheels (the `compile` extra,
`pip install 'warpsched[compile]'`; a wheel's shipped kernels need none), found through the installed
distributions, never through PATH or /usr/local/cuda, so a machine with nothing but pip
builds the same cubins as any other (Triton ships its own ptxas for the same reason).

    nvcc, ptxas   nvidia-cuda-nvcc (with nvidia-nvvm's cicc, nvidia-cuda-crt's and -runtime's headers)
    cuobjdump     nvidia-cuda-cuobjdump
    nvdisasm      nvidia-cuda-nvdisasm (cuobjdump -sass runs it from its own folder)
    CuTe, CUTLASS nvidia-cutlass; cuda/std from nvidia-cuda-cccl

`WARPSCHED_CUDA_HOME=/path/to/cuda` uses a CUDA toolkit installed there instead (its bin/ folder).
NVRTC (nvidia-cuda-nvrtc) was measured and not chosen: it rejects the CuTe headers of nvidia-cutlass 4.2
with CCCL 13 (8 errors of the kind "declaration is incompatible with template parameter _Tp" in
cute/container/tuple.hpp and array.hpp), has no cuda.h for CUtensorMap, and the SASS checks need
cuobjdump and nvdisasm anyway.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from warpsched.scheduler.errors import WarpschedError

TOOLS = ("nvcc", "ptxas", "cuobjdump", "nvdisasm")
WHEEL_OF = {
    "nvcc": "nvidia-cuda-nvcc",
    "ptxas": "nvidia-cuda-nvcc",
    "cuobjdump": "nvidia-cuda-cuobjdump",
    "nvdisasm": "nvidia-cuda-nvdisasm",
}
HOME_VARIABLE = "WARPSCHED_CUDA_HOME"


class BuildError(WarpschedError):
    """The toolchain is missing, or a tool failed or complained; the sentence quotes the tool's own
    message."""


@dataclass(frozen=True)
class Toolchain:
    tools: tuple[tuple[str, str], ...]  # (tool, absolute path) for TOOLS
    versions: tuple[tuple[str, str], ...]  # (tool or package, version), what a build's output depends on
    origin: str  # "pip wheels" or "WARPSCHED_CUDA_HOME=<path>"

    def path(self, tool: str) -> str:
        return dict(self.tools)[tool]

    @property
    def key(self) -> str:
        """What a cache entry is keyed by besides the source: every tool's and the headers' versions."""
        return "; ".join(f"{name} {version}" for name, version in self.versions)

    @property
    def describe(self) -> str:
        versions = dict(self.versions)
        return f"nvcc {versions['nvcc']}, CUTLASS {versions['nvidia-cutlass']} ({self.origin})"

    def environment(self) -> dict[str, str]:
        """The environment the tools run in: their own folders first on PATH (nvcc finds cicc, ptxas and
        fatbinary beside it through nvcc.profile; cuobjdump finds nvdisasm), no CUDA_HOME/CUDA_PATH."""
        env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH")}
        folders = list(dict.fromkeys(str(Path(p).parent) for _, p in self.tools))
        env["PATH"] = os.pathsep.join(folders + [env.get("PATH", "")])
        return env


def find_toolchain() -> Toolchain:
    """The toolchain of this installation (or of `$WARPSCHED_CUDA_HOME`); `BuildError` naming what is
    missing."""
    return _find(os.environ.get(HOME_VARIABLE) or None)


@functools.cache
def _find(home: str | None) -> Toolchain:
    if home is not None:
        folder = Path(home) / "bin"
        tools = {tool: folder / tool for tool in TOOLS}
        missing = [tool for tool, path in tools.items() if not path.is_file()]
        if missing:
            raise BuildError(
                f"{HOME_VARIABLE}={home} has no {', '.join(missing)} in {folder}; point it at a CUDA "
                f"toolkit of version 13 or unset it to use the toolchain from pip's nvidia-* wheels"
            )
        origin = f"{HOME_VARIABLE}={home}"
    else:
        tools = {tool: _from_wheel(tool) for tool in TOOLS}
        missing = sorted({WHEEL_OF[tool] for tool, path in tools.items() if path is None})
        if missing:
            raise BuildError(
                f"the CUDA toolchain wheels {', '.join(missing)} are not installed, and a kernel the package "
                f"does not ship must be compiled: pip install 'warpsched[compile]' installs them (or set "
                f"{HOME_VARIABLE} to a CUDA 13 toolkit)"
            )
        origin = "pip wheels"
    chain = Toolchain(tuple((t, str(p)) for t, p in tools.items()), (), origin)
    versions = tuple((tool, _version(chain, tool)) for tool in TOOLS) + (
        ("nvidia-cutlass", _cutlass_version()),
    )
    return Toolchain(chain.tools, versions, origin)


def _from_wheel(tool: str) -> Path | None:
    """`tool` as installed by its nvidia-* wheel (a bin/ file the distribution's RECORD lists), else None."""
    try:
        dist = metadata.distribution(WHEEL_OF[tool])
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == tool and file.parent.name == "bin":
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def _version(chain: Toolchain, tool: str) -> str:
    out = run_tool(chain, [chain.path(tool), "--version"], f"{tool} --version").stdout
    found = re.search(r"(?:release [\d.]+, )?V[\d.]+", out) or re.search(r"Build \S+", out)
    if found is None:
        raise BuildError(
            f"{tool} --version printed no version ({_quote(out)}); the toolchain at "
            f"{chain.path(tool)} is broken"
        )
    return found.group(0)


def _cutlass_version() -> str:
    try:
        return metadata.version("nvidia-cutlass")
    except metadata.PackageNotFoundError:
        raise BuildError(
            "the CUTLASS/CuTe headers are missing; pip install 'warpsched[compile]' installs them"
        ) from None


def cutlass_include() -> Path:
    try:
        import cutlass_library
    except ImportError:
        raise BuildError(
            "the CUTLASS/CuTe headers are missing; pip install 'warpsched[compile]' installs them"
        ) from None
    path = Path(cutlass_library.__file__).parent / "source" / "include"
    if not (path / "cute" / "tensor.hpp").exists():
        raise BuildError(f"the nvidia-cutlass wheel has no CuTe headers under {path}")
    return path


def run_tool(
    chain: Toolchain, cmd: list[str], what: str, quiet_stderr=lambda line: False
) -> subprocess.CompletedProcess:
    """Run a tool of `chain`. A non-zero exit, or any stderr line `quiet_stderr` does not expect, is a
    `BuildError` quoting the tool's own message."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=chain.environment())
    except OSError as exc:
        raise BuildError(f"{what} could not run ({exc.strerror or exc}: {cmd[0]})") from None
    unexpected = [line for line in p.stderr.splitlines() if line.strip() and not quiet_stderr(line)]
    if p.returncode != 0:
        errors = (
            [line for line in unexpected if "error" in line.lower()] or unexpected or p.stdout.splitlines()
        )
        raise BuildError(f"{what} failed with exit code {p.returncode}: {_quote(chr(10).join(errors))}")
    if unexpected:
        raise BuildError(f"{what} complained: {_quote(chr(10).join(unexpected))}")
    return p


def _quote(text: str, limit: int = 400) -> str:
    text = " / ".join(line.strip() for line in text.strip().splitlines() if line.strip()) or "no message"
    return repr(text if len(text) <= limit else text[:limit] + " ...")
