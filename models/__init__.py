"""Kernel loop-body models: the dataflow graphs warpsched schedules (DESIGN.md section 7).

    from models import build_model
    problem = build_model("attention_fwd", "h100", head_dim=128)

Every model is parameterised and takes its costs from the machine model, so a new GPU is a
new YAML file. `warpsched models` lists them with their parameters.
"""

from __future__ import annotations

from typing import Any

from scheduler.errors import InputError
from scheduler.ir import Problem
from scheduler.machine import Machine, load_machine

from models import attention, gemm, quant_gemm
from models.params import ModelSpec, parse_assignments

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (gemm.SPEC, quant_gemm.SPEC, attention.SPEC)}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; use one of {', '.join(MODELS)}") from None


def build_model(name: str, machine: Machine | str = "h100", **params: Any) -> Problem:
    """The loop body of model `name` on `machine`, with `params` over the model's defaults."""
    spec = get_spec(name)
    machine = load_machine(machine) if isinstance(machine, str) else machine
    problem = spec.build(machine, **spec.resolve(params))
    problem.check(machine)
    return problem


__all__ = ["MODELS", "build_model", "get_spec", "parse_assignments"]
