"""The family registry: every kernel model has one folder that provides every part of the protocol."""

from __future__ import annotations

import pytest

from warpsched import kernels
from warpsched.kernels.families import FAMILIES
from warpsched.kernels.families.base import CudaFamily, Semantics
from warpsched.models import MODELS, build_model


def test_every_kernel_model_has_a_family_and_every_family_a_model():
    assert set(FAMILIES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_family_provides_every_part(name):
    family = FAMILIES[name]
    assert issubclass(family.cuda, CudaFamily) and family.cuda.entry.startswith("warpsched_")
    assert issubclass(family.semantics_class(), Semantics)
    assert family.calls and family.entry_points
    for entry in family.entry_points:
        assert getattr(kernels, entry) is family.entry_point(entry)  # warpsched.kernels exports it
    semantics = family.semantics_class()(build_model(name, "h100"), 2, 0)
    assert callable(semantics.apply) and callable(semantics.error)
