"""Kernel loop-body models: the dataflow graphs warpsched schedules (DESIGN.md section 7).

    from warpsched.models import build_model
    problem = build_model("attention_fwd", "h100", head_dim=128)

Every model is parameterised and takes its costs from the machine model, so a new GPU is a
new YAML file. `warpsched models` lists them with their parameters.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Problem
from warpsched.scheduler.machine import Machine, load_machine

from warpsched.models import attention, gemm, quant_gemm
from warpsched.models.params import ModelSpec, parse_assignments

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


def predicted_time(source: dict, ii: int) -> Fraction:
    """Cycles per useful multiply-accumulate of a schedule of II `ii` for the problem `source` describes:
    II / the model's work per iteration (what a sweep compares; one iteration starts every II cycles)."""
    return Fraction(ii) / Fraction(get_spec(str(source.get("model"))).work(source))


def split_source(source: dict) -> tuple[dict, dict]:
    """A kernel model's `problem.source` as (problem parameters, tile parameters), each in declaration order:
    the first say what is computed (dtype, bits, head_dim, ...), the second how (tiles, warpgroups)."""
    spec = get_spec(str(source.get("model")))
    tiles = set(spec.tile_params)
    names = [p.name for p in spec.params if p.name in source]
    return ({n: source[n] for n in names if n not in tiles}, {n: source[n] for n in names if n in tiles})


def model_reference(data: Any, path: str) -> dict | None:
    """The `{model, machine, params}` of a problem file's contents `data` when it names a kernel model
    instead of listing ops (solver_configs/problems/attention_fwd_d128_bf16.yaml), else None."""
    if not isinstance(data, dict) or "model" not in data:
        return None
    unknown = sorted(set(data) - {"model", "machine", "params", "name"})
    if unknown:
        raise InputError(
            f"problem file {str(path)!r} names a model and also {unknown[0]!r}; a model reference has only "
            f"model, machine and params"
        )
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise InputError(f"problem file {str(path)!r}: params must be a mapping of parameter names to values")
    get_spec(str(data["model"]))
    return {"model": str(data["model"]), "machine": data.get("machine"), "params": params}


__all__ = ["MODELS", "build_model", "get_spec", "model_reference", "parse_assignments", "split_source"]
