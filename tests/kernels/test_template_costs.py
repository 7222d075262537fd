"""kernels/template_costs.py: the committed instruction counts are those of the templates we emit, a template
edited without regenerating them is caught, and counting a reference again gives the committed numbers."""

from __future__ import annotations

import pytest

from warpsched.kernels import template_costs
from warpsched.kernels.families.attention import templates as attention_templates
from warpsched.kernels.families.quant_gemm import templates as quant_templates
from warpsched.models.kinds import OpKind
from warpsched.scheduler.machine import config_root
from warpsched.scheduler.yaml_files import read_yaml


INT4 = {"fmt": "int", "bits": 4}


def committed() -> dict:
    return read_yaml(config_root() / template_costs.COSTS_FILE, "template costs")["templates"]


def test_every_template_has_costs_counted_from_its_current_text():
    assert template_costs.stale() == []
    keys = {key for r in template_costs.references() for key, _ in r.kinds.values()}
    assert keys == set(committed())
    assert all(
        entry["reference"] != template_costs.PLACEHOLDER["reference"] for entry in committed().values()
    )


@pytest.mark.parametrize(
    "module, name, key",
    [
        (attention_templates, "ATTENTION_EXP", "attention.exp2"),
        (attention_templates, "ATTENTION_HELPERS", "attention.row_max"),  # a helper, through the declarations
        (quant_templates, "DEQUANT", "quant_gemm.dequant.int4"),
    ],
)
def test_an_edited_template_is_stale_until_its_costs_are_counted_again(module, name, key, monkeypatch):
    monkeypatch.setattr(
        module, name, getattr(module, name).replace("CUTE_UNROLL", "CUTE_UNROLL //", 1) + "//\n"
    )
    stale = template_costs.stale()
    assert any(line.startswith(key) for line in stale), stale


def test_the_counts_say_what_the_sass_of_the_templates_does():
    costs = committed()
    exp = costs["attention.exp2"]["per_element"]
    assert exp["mufu"] == 1.0  # one MUFU.EX2 per score, as the template asks
    assert costs["attention.rescale_o"]["per_element"] == {"fma": 1.0}  # one FMUL per element of O
    int4, int8 = (
        costs["quant_gemm.dequant.int4"]["per_element"],
        costs["quant_gemm.dequant.int8"]["per_element"],
    )
    assert sum(int4.values()) > 1.5  # the template is far from the 1.5 instructions per weight of issue 17
    assert "mufu" not in int4 and "mufu" not in int8


def test_counting_a_reference_again_gives_the_committed_numbers(tmp_path, monkeypatch):
    """The command's own path (heuristic schedule, driver build, -lineinfo build, trip attribution) on one
    reference: deterministic, and what is committed."""
    monkeypatch.setenv("WARPSCHED_CACHE", str(tmp_path))
    reference = next(
        r for r in template_costs.references() if OpKind.DEQUANT in r.kinds and r.params == INT4 | r.params
    )
    counted = template_costs.measure(template_costs.reference_schedule(reference), reference)
    (key,) = counted
    assert counted[key]["per_element"] == committed()[key]["per_element"]
    assert counted[key]["template_digest"] == committed()[key]["template_digest"]
