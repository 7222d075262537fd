"""Kernel families, one folder each behind one protocol (base.py: `Family`, `CudaFamily`, `Semantics`).

Each subpackage names its `FAMILY`; this registry finds them, so that adding a family touches two places:
its model (models/<family>.py) and its folder here (listed in pyproject.toml's packages; a test checks).
The generic lowering asks `FAMILIES[model]` for the parts and knows no family by name.
"""

from __future__ import annotations

import importlib
import pkgutil

from warpsched.kernels.families.base import Family


def _discover() -> dict[str, Family]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg:
            family = importlib.import_module(f"{__name__}.{info.name}").FAMILY
            found[family.name] = family
    return found


FAMILIES: dict[str, Family] = _discover()
