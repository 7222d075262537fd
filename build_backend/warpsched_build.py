"""warpsched's build backend: setuptools, plus the shipped kernels' cubins in every wheel (issue 20).

Not installed and not importable from warpsched: pyproject.toml names it (`backend-path`), and only the
build front end (pip, `python -m build`) imports it, in the build's own environment.

- A wheel (`python -m build`, `pip wheel`, `pip install .`) asks for the compiler wheels and warpsched's
  own dependencies in its build environment, and its `build_py` step runs
  `python -m warpsched.kernels.package.bundle` on the freshly staged package: every shipped kernel is
  built for sm_90a and its cubin lands in `warpsched/kernels/package/prebuilt/`. A kernel that does not
  build clean fails the wheel. `$WARPSCHED_CACHE` is honoured, so a rebuild reuses earlier cubins.
- An editable install (`pip install -e .`) and an sdist build nothing and need nothing more than
  setuptools: a source checkout builds its cubins through the cache when first called.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the PEP 517/660 hooks this backend passes through)
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)
from setuptools.command.build_py import build_py

STORE = Path("warpsched", "kernels", "package", "prebuilt")  # inside the staged package (build_lib)


def _project() -> dict:
    return tomllib.loads(Path("pyproject.toml").read_text())["project"]


def get_requires_for_build_wheel(config_settings=None) -> list[str]:
    """What building the cubins needs: warpsched's dependencies (to render the kernels) and the compiler."""
    project = _project()
    return [
        *build_meta.get_requires_for_build_wheel(config_settings),
        *project["dependencies"],
        *project["optional-dependencies"]["compile"],
    ]


class BuildPyWithCubins(build_py):
    """setuptools' build_py, then (for a wheel, not an editable install) the package's cubins."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        store = Path(self.build_lib) / STORE
        print(f"warpsched: building the shipped kernels' cubins into {store} (minutes)", file=sys.stderr)
        # run from the staged package, so that `warpsched` is the one being built, not the source tree's
        # folder of the same name
        env = {**os.environ, "PYTHONPATH": str(Path(self.build_lib).resolve())}
        done = subprocess.run(
            [sys.executable, "-m", "warpsched.kernels.package.bundle", str(STORE)],
            cwd=self.build_lib,
            env=env,
        )
        if done.returncode != 0:
            raise SystemExit(f"warpsched: the shipped kernels did not build (exit code {done.returncode})")
