"""The precompiled kernel package (DESIGN.md 6.6): schedules solved offline, cubins built once here.

This folder holds `manifest.json` and one schedule file per problem under `schedules/`, written by
`warpsched sweep solver_configs/precompiled.yaml --package`, or pinned by
`warpsched.package_writer.pinned_entry` after a GPU check
(the origin field says which). Listing needs no solve
and no compiler; building uses kernels/build.py's content-hash cache.

    from warpsched import kernels
    for k in kernels.precompiled():          # build=True builds the missing cubins first
        print(k.name, k.schedule_digest, k.cubin_digest, k.built)
    schedule = kernels.package.find("quant_gemm", {"bits": 4}, "h100")   # a Schedule, or None
"""

from warpsched.kernels.package.cubins import Cubin
from warpsched.kernels.package.listing import PackagedKernel, precompiled
from warpsched.kernels.package.lookup import find, is_current, shipped_tile, ships
from warpsched.kernels.package.manifest import FORMAT, PACKAGE_DIR, Entry, ProblemKey, problem_key, read

__all__ = [
    "FORMAT",
    "PACKAGE_DIR",
    "Cubin",
    "Entry",
    "PackagedKernel",
    "ProblemKey",
    "find",
    "is_current",
    "precompiled",
    "problem_key",
    "read",
    "shipped_tile",
    "ships",
]
