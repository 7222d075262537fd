"""Kernel models: parameters checked with one sentence, costs taken from the machine model."""

from __future__ import annotations

import dataclasses
import math
import shutil

import pytest
import yaml

from warpsched.models import MODELS, build_model, parse_assignments
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import config_root, load_machine
from warpsched.scheduler.yaml_files import read_yaml


@pytest.mark.parametrize(
    "name, machine",
    [
        ("gemm", "h100"),
        ("gemm", "h200"),
        ("gemm", "b200"),
        ("quant_gemm", "h100"),
        ("quant_gemm", "h200"),
        ("attention_fwd", "h100"),
        ("attention_fwd", "h200"),
        ("attention_fwd", "b200"),
    ],
)
def test_every_model_builds_a_valid_problem_with_defaults(name, machine):
    problem = build_model(name, machine)
    problem.check(load_machine(machine))
    assert problem.source["model"] == name
    assert any(op.variable_latency for op in problem.ops)  # the TMA loads


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("quant_gemm", {"bits": 0}, ["bits", "out of range"]),
        ("quant_gemm", {"bits": 9}, ["bits", "out of range"]),
        ("quant_gemm", {"bits": "four"}, ["bits", "whole number"]),
        ("quant_gemm", {"group_size": 100}, ["group_size", "32, 64, 128, -1"]),
        ("quant_gemm", {"group_size": 128, "k": 4160}, ["group_size 128", "does not divide"]),
        ("quant_gemm", {"fmt": "e4m3", "bits": 4}, ["e4m3 has 8 bits"]),
        ("quant_gemm", {"fmt": "nf4"}, ["fmt", "int_zp"]),
        ("attention_fwd", {"head_dim": 96}, ["head_dim", "64, 128, 256"]),
        ("attention_fwd", {"causal": "maybe"}, ["causal", "true or false"]),
        ("gemm", {"tile_m": 96}, ["tile_m", "multiple of 64"]),
        ("gemm", {"tile_q": 1}, ["no parameter", "tile_q"]),
    ],
)
def test_bad_parameters_are_one_sentence(name, params, words):
    with pytest.raises(InputError) as err:
        build_model(name, "h100", **params)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(InputError) as err:
        build_model("conv2d")
    assert all(name in str(err.value) for name in MODELS)


def test_param_assignments_parse_and_reject_junk():
    assert parse_assignments(["bits=3", "fmt = int_zp"]) == {"bits": "3", "fmt": "int_zp"}
    with pytest.raises(InputError):
        parse_assignments(["bits"])


def test_costs_come_from_the_machine_model():
    h100 = load_machine("h100")
    faster = dataclasses.replace(
        h100, rates={**h100.rates, "tensor_flops_bf16": 2 * h100.rates["tensor_flops_bf16"]}
    )
    base = build_model("gemm", h100).op_by_name["mma0"]
    fast = build_model("gemm", faster).op_by_name["mma0"]
    assert base.occupancy == 2 * 64 * 256 * 64 // 4096 == 2 * fast.occupancy


@pytest.mark.parametrize("bits", range(1, 9))
def test_packed_weights_scale_with_the_bit_width(bits):
    p = build_model("quant_gemm", "h100", bits=bits)
    assert p.op_by_name["load_w"].bytes == 128 * 128 * bits // 8
    assert p.op_by_name["load_w"].occupancy > 0


def test_dequant_costs_what_its_template_compiles_to():
    """The dequant op's cycles are its template's instruction counts (solver_configs/template_costs.yaml)
    over the slice it unpacks, at the machine's pipe rates: one issue cycle per instruction per warp, the
    integer pipe at half rate (here without the ring reads' synchronisation, tested below)."""
    machine = dataclasses.replace(load_machine("h100"), sync_costs={})
    p = build_model("quant_gemm", machine, bits=4, tile_n=128, tile_k=128, consumers=2)
    counts = read_yaml(config_root() / "template_costs.yaml", "costs")["templates"]["quant_gemm.dequant.int4"]
    per_thread = {pipe: n * 64 * 128 / 128 for pipe, n in counts["per_element"].items()}
    op = p.op_by_name["dequant0"]
    assert op.issue == math.ceil(sum(per_thread.values()))
    assert op.occupancy == max(op.issue, math.ceil(per_thread["alu"] * 128 / machine.rates["int32_lanes"]))


def test_template_costs_follow_the_counts_file(tmp_path, monkeypatch):
    """Double every count in a copy of the configs: the dequant ops cost twice the issue cycles."""
    bare = dataclasses.replace(load_machine("h100"), sync_costs={})  # the ring reads' waits stay as they are
    before = build_model("quant_gemm", bare)
    shutil.copytree(config_root(), tmp_path / "configs")
    path = tmp_path / "configs" / "template_costs.yaml"
    data = yaml.safe_load(path.read_text())
    for entry in data["templates"].values():
        entry["per_element"] = {pipe: 2 * n for pipe, n in entry["per_element"].items()}
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("WARPSCHED_CONFIG_DIR", str(tmp_path / "configs"))
    after = build_model("quant_gemm", bare)
    for name in ("dequant0", "dequant1"):
        assert after.op_by_name[name].issue in (2 * before.op_by_name[name].issue + d for d in (-1, 0))
    assert after.op_by_name["mma0"] == before.op_by_name["mma0"]


def test_a_template_without_counts_is_one_sentence(tmp_path, monkeypatch):
    shutil.copytree(config_root(), tmp_path / "configs")
    path = tmp_path / "configs" / "template_costs.yaml"
    data = yaml.safe_load(path.read_text())
    del data["templates"]["quant_gemm.dequant.int5"]
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("WARPSCHED_CONFIG_DIR", str(tmp_path / "configs"))
    with pytest.raises(InputError, match="quant_gemm.dequant.int5.*warpsched costs"):
        build_model("quant_gemm", "h100", bits=5)


def test_channelwise_scales_stay_in_shared_memory():
    grouped = build_model("quant_gemm", "h100", group_size=128)
    channelwise = build_model("quant_gemm", "h100", group_size=-1)
    assert "load_s" in grouped.op_by_name and "load_s" not in channelwise.op_by_name
    assert channelwise.reserved_smem > 0


def test_attention_holds_q_in_shared_memory_and_has_one_chain_per_tile():
    p = build_model("attention_fwd", "h100", head_dim=128, q_tiles=3)
    assert p.reserved_smem == 3 * 64 * 128 * 2
    assert {f"gemm0_{t}" for t in range(3)} <= set(p.op_by_name)
    blackwell = build_model("attention_fwd", "b200")
    assert {"ld_s0", "st_p0", "ld_o0", "st_o0"} <= set(blackwell.op_by_name)  # tensor memory traffic
    assert blackwell.op_by_name["ld_s0"].issue >= blackwell.op_by_name["ld_s0"].occupancy  # blocking


def test_fa3_tile_sizes_are_the_defaults():
    for d, bn in ((64, 192), (128, 176), (256, 80)):
        assert build_model("attention_fwd", "h100", head_dim=d).source["block_n"] == bn
    assert build_model("attention_fwd", "h100", causal=True).source["block_n"] == 128


def test_a_ring_read_costs_its_reader_the_wait_the_arrive_and_a_fence_off_the_tensor_core():
    """What the lowering emits around each read of a TMA ring, at the machine's chip.sync cycles; a machine
    without them (b200) charges nothing."""
    machine = load_machine("h100")
    sync = machine.sync_costs
    bare = dataclasses.replace(machine, sync_costs={})
    with_sync, without = build_model("quant_gemm", machine), build_model("quant_gemm", bare)
    wait, arrive, fence = sync["mbarrier_wait"], sync["arrive"], sync["fence"]
    # dequant reads the weights and the group scales with generic loads: a fence before each release
    dq, dq0 = with_sync.op_by_name["dequant0"], without.op_by_name["dequant0"]
    assert dq.issue - dq0.issue == 2 * (wait + arrive + fence)
    assert dq.latency - dq0.latency == 2 * wait
    assert dq.occupancy == dq0.occupancy
    # the wgmma reads the activations in the async proxy: no fence
    mma, mma0 = with_sync.op_by_name["mma0"], without.op_by_name["mma0"]
    assert mma.issue - mma0.issue == wait + arrive
    assert with_sync.op_by_name["load_w"] == without.op_by_name["load_w"]
    assert build_model("gemm", "b200") == build_model(
        "gemm", dataclasses.replace(load_machine("b200"), sync_costs={})
    )
