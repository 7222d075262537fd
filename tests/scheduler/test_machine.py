"""Tests of the machine models and solver presets (scheduler/machine.py, scheduler/config.py).

The shipped machines must carry the sourced numbers the design relies on, and
every number in their YAML must say where it comes from (DESIGN.md section 2).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from warpsched.scheduler.config import LEVELS, SolverConfig, available_presets, config_from_dict, load_config
from warpsched.scheduler.errors import InputError, WarpschedError
from warpsched.scheduler.machine import Machine, available_machines, load_machine, machine_from_dict
from tests.conftest import ROOT

MACHINES_DIR = ROOT / "solver_configs" / "machines"
SOLVERS_DIR = ROOT / "solver_configs" / "solvers"
MACHINE_FILES = sorted(MACHINES_DIR.glob("*.yaml"))
PRESET_FILES = sorted(SOLVERS_DIR.glob("*.yaml"))
SOURCE_TAG = re.compile(r"\[(DS|M|D|U|fit)\]")


def one_sentence(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert isinstance(exc.value, WarpschedError)
    assert msg and "\n" not in msg, f"not one sentence: {msg!r}"
    for needle in needles:
        assert needle in msg, f"{needle!r} not named in {msg!r}"
    return msg


# ------------------------------------------------------------------ the shipped machines


def test_shipped_machines_are_h100_and_h200():
    assert {"h100", "h200"} <= set(available_machines())
    assert len(MACHINE_FILES) == len(available_machines())


@pytest.mark.parametrize("name", ["h100", "h200"])
def test_hopper_numbers(name):
    m = load_machine(name)
    assert isinstance(m, Machine) and m.name == name
    # throughput per SM per clock
    assert m.rates["tensor_flops_bf16"] == 4096  # 989.4 TF/s / (132 SMs * 1.83 GHz)
    assert m.rates["mufu_ops"] == 16
    assert m.rates["fp32_lanes"] == 128
    # TMA latency: ~365 cycles from L2, >= 600 from HBM
    assert 330 <= m.latencies["tma_l2"] <= 400
    assert m.latencies["tma_hbm"] >= 600
    assert m.latencies["tma_hbm"] > m.latencies["tma_l2"]
    # memories
    assert m.smem_bytes == 232448  # 227 KB per CTA
    assert m.register_file == 65536
    assert (m.reg_min, m.reg_max, m.reg_step) == (24, 256, 8)
    assert m.budgets() == list(range(24, 257, 8))
    assert m.budgets()[0] == 24 and m.budgets()[-1] == 256 and len(m.budgets()) == 30
    assert m.warpgroup_threads == 128
    assert m.has_warpgroups and m.max_warpgroups >= 2
    # units the model builders use
    for unit in ("tma", "tensor", "mufu", "alu"):
        assert unit in m.units and m.units[unit] is not None and m.units[unit] >= 1
    # a whole warpgroup pool at the smallest budget fits the register file
    assert m.max_warpgroups * m.warpgroup_threads * m.reg_min <= m.register_file


def test_h200_differs_from_h100_in_memory_bandwidth_only():
    h100, h200 = load_machine("h100"), load_machine("h200")
    assert h200.rates["hbm_bytes"] > h100.rates["hbm_bytes"]
    assert {k: v for k, v in h100.rates.items() if k != "hbm_bytes"} == {
        k: v for k, v in h200.rates.items() if k != "hbm_bytes"
    }
    assert h100.units == h200.units
    assert (h100.smem_bytes, h100.register_file, h100.sync_latency) == (
        h200.smem_bytes,
        h200.register_file,
        h200.sync_latency,
    )


def test_machine_loads_from_a_path_too():
    assert load_machine(MACHINES_DIR / "h100.yaml") == load_machine("h100")


# ------------------------------------------------------------------ every number has a source


def unsourced_numbers(text: str) -> list[str]:
    """Lines of a YAML text holding a numeric scalar whose line comment has no [DS]/[M]/[D]/[U] tag.

    Uses the YAML composer so numbers in flow mappings (`units: {tma: 1}`) and lists count too.
    """
    lines = text.splitlines()
    bad: list[str] = []

    def walk(node) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.ScalarNode):
            if node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                line = lines[node.start_mark.line]
                comment = line.split("#", 1)[1] if "#" in line else ""
                if not SOURCE_TAG.search(comment):
                    bad.append(f"line {node.start_mark.line + 1}: {line.strip()}")

    walk(yaml.compose(text))
    return bad


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: p.name)
def test_every_number_in_a_machine_file_has_a_source(path: Path):
    bad = unsourced_numbers(path.read_text())
    assert not bad, f"{path.name}: numbers without a [DS]/[M]/[D]/[U]/[fit] source comment:\n" + "\n".join(
        bad
    )


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: p.name)
def test_machine_file_has_numbers_to_check(path: Path):
    # guards the test above against a parser that sees nothing
    text = path.read_text()
    assert len(re.findall(r"^\s+\w+:\s*-?\d", text, flags=re.M)) >= 20


def test_the_source_check_catches_an_unsourced_number():
    text = (
        "name: x\n"
        "clock_ghz: 1.83          # [DS] datasheet\n"
        "units:\n"
        "  tma: 1                 # [M] measured\n"
        "  tensor: 2              # just a guess\n"
        "inline: {a: 3, b: 4}     # [U]\n"
        "flow: {c: 5}\n"
        "latencies:\n"
        "  smem: 30\n"
        "  l2: 262   # [X] unknown tag\n"
        "  fp32: 4   # [D]/[DS] two tags\n"
        "description: not a number 7\n"
    )
    bad = unsourced_numbers(text)
    assert [b.split(":", 1)[0] for b in bad] == ["line 5", "line 7", "line 9", "line 10"]


# ------------------------------------------------------------------ malformed machines


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_malformed_machine_yaml(tmp_path):
    path = write(tmp_path, "name: broken\nunits: {tma: 1, tensor: [\n")
    with pytest.raises(InputError) as exc:
        load_machine(path)
    one_sentence(exc, "m.yaml", "not valid YAML")


def test_machine_yaml_that_is_not_a_mapping(tmp_path):
    with pytest.raises(InputError) as exc:
        load_machine(write(tmp_path, "- h100\n- h200\n"))
    one_sentence(exc, "YAML mapping", "'units'")


def test_missing_units(tmp_path):
    with pytest.raises(InputError) as exc:
        load_machine(write(tmp_path, "name: nounits\nsmem_bytes: 1024\n"))
    one_sentence(exc, "m.yaml", "'units'")


def test_missing_name():
    with pytest.raises(InputError) as exc:
        machine_from_dict({"units": {"tma": 1}})
    one_sentence(exc, "'name'")


@pytest.mark.parametrize("units", [{}, [1, 2], "tma"])
def test_units_not_a_mapping_of_capacities(units):
    with pytest.raises(InputError) as exc:
        machine_from_dict({"name": "m", "units": units})
    one_sentence(exc, "'units'")


@pytest.mark.parametrize("cap", [-2, -7, 1.5, "many", True])
def test_bad_capacity(cap, tmp_path):
    path = write(tmp_path, f"name: neg\nunits: {{tma: 1, tensor: {cap!r}}}\n".replace("True", "true"))
    with pytest.raises(InputError) as exc:
        load_machine(path)
    one_sentence(exc, "'tensor'", "capacity", "whole number >= 0")


@pytest.mark.parametrize("cap", [None, "unlimited", {"capacity": None}])
def test_unlimited_capacity_spellings(cap):
    assert machine_from_dict({"name": "m", "units": {"alu": cap}}).units == {"alu": None}


def test_capacity_as_a_mapping():
    assert machine_from_dict({"name": "m", "units": {"tma": {"capacity": 2}}}).units == {"tma": 2}


@pytest.mark.parametrize("key, value", [("sync_latency", -1), ("smem_bytes", 1.5), ("smem_bytes", "lots")])
def test_bad_scalar_fields(key, value):
    with pytest.raises(InputError) as exc:
        machine_from_dict({"name": "m", "units": {"tma": 1}, key: value})
    one_sentence(exc, key, "whole number >= 0")


def test_bad_register_step():
    with pytest.raises(InputError) as exc:
        machine_from_dict({"name": "m", "units": {"tma": 1}, "registers": {"step": 0}})
    one_sentence(exc, "registers.step")


def test_warpgroups_that_cannot_fit_the_register_file():
    with pytest.raises(InputError) as exc:
        machine_from_dict(
            {"name": "m", "units": {"tma": 1}, "registers": {"file": 1000}, "warpgroups": {"max": 2}}
        )
    one_sentence(exc, "register file")


@pytest.mark.parametrize("key, value", [("registers", 5), ("warpgroups", [2])])
def test_registers_or_warpgroups_not_a_mapping(key, value):
    with pytest.raises(InputError) as exc:
        machine_from_dict({"name": "m", "units": {"tma": 1}, key: value})
    one_sentence(exc, key)


def test_unknown_machine_name_lists_the_known_ones():
    with pytest.raises(InputError) as exc:
        load_machine("h900")
    one_sentence(exc, "'h900'", "h100", "h200")


def test_missing_machine_file():
    with pytest.raises(InputError) as exc:
        load_machine("/nonexistent/dir/gpu.yaml")
    one_sentence(exc, "gpu.yaml", "does not exist")


# ------------------------------------------------------------------ solver presets


def test_shipped_presets():
    assert {"default", "deterministic", "fast"} <= set(available_presets())
    assert len(PRESET_FILES) == len(available_presets())


@pytest.mark.parametrize("name", [p.stem for p in PRESET_FILES])
def test_every_preset_loads(name):
    cfg = load_config(name)
    assert isinstance(cfg, SolverConfig)
    assert cfg.name == name
    assert cfg.num_workers >= 1
    assert isinstance(cfg.random_seed, int)
    assert cfg.objectives and set(cfg.objectives) <= set(LEVELS)
    assert cfg.time_limit > 0 and cfg.total_time_limit > 0
    assert load_config(SOLVERS_DIR / f"{name}.yaml") == cfg


def test_deterministic_preset_is_deterministic():
    cfg = load_config("deterministic")
    assert cfg.interleave_search and cfg.deterministic_limit is not None and cfg.objective_stall is None


def test_a_stall_must_be_a_positive_number_of_seconds():
    with pytest.raises(InputError) as exc:
        config_from_dict({"objective_stall": 0})
    one_sentence(exc, "objective_stall", "positive number of seconds")


def test_default_config_when_no_name():
    assert load_config() == load_config("default")


def test_unknown_option(tmp_path):
    path = write(tmp_path, "name: mine\nnum_workers: 2\nturbo: true\n", "mine.yaml")
    with pytest.raises(InputError) as exc:
        load_config(path)
    one_sentence(exc, "mine.yaml", "'turbo'", "num_workers")


def test_unknown_objective(tmp_path):
    path = write(tmp_path, "objectives: [makespan, energy]\n", "mine.yaml")
    with pytest.raises(InputError) as exc:
        load_config(path)
    one_sentence(exc, "'energy'", "makespan")


def test_unknown_option_and_objective_from_a_dict():
    with pytest.raises(InputError) as exc:
        config_from_dict({"workers": 2})
    one_sentence(exc, "'workers'")
    with pytest.raises(InputError) as exc:
        config_from_dict({"objectives": ["ii"]})
    one_sentence(exc, "'ii'")


def test_zero_workers(tmp_path):
    with pytest.raises(InputError) as exc:
        load_config(write(tmp_path, "num_workers: 0\n", "mine.yaml"))
    one_sentence(exc, "num_workers")


def test_unknown_preset_name_lists_the_known_ones():
    with pytest.raises(InputError) as exc:
        load_config("turbo")
    one_sentence(exc, "'turbo'", "default", "deterministic", "fast")


def test_malformed_preset_yaml(tmp_path):
    with pytest.raises(InputError) as exc:
        load_config(write(tmp_path, "objectives: [makespan\n", "mine.yaml"))
    one_sentence(exc, "mine.yaml", "not valid YAML")


def test_preset_that_is_not_a_mapping(tmp_path):
    with pytest.raises(InputError) as exc:
        load_config(write(tmp_path, "- fast\n", "mine.yaml"))
    one_sentence(exc, "mapping")


def test_sync_costs_come_from_the_chip_section_and_bad_ones_are_one_sentence():
    assert load_machine("h100").sync_costs["mbarrier_wait"] > 0
    assert load_machine("b200").sync_costs == {}
    with pytest.raises(InputError, match="chip.sync"):
        machine_from_dict({"name": "m", "units": {"alu": 1}, "chip": {"sync": {"arrive": -4}}})
