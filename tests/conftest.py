"""Shared fixtures: the repository root, shipped problems, small hand-built problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def toy_machine(warpgroups: int = 1, sync: int = 1, **kw) -> Machine:
    """Twill's toy machine: one tensor core, one SFU, unit-cost hand-offs."""
    return Machine("toy", units={"tensor": 1, "sfu": 1}, sync_latency=sync, smem_bytes=232448,
                   register_file=65536, max_warpgroups=warpgroups, **kw)


def twill_chain(suffix: str = "", issue_s: int = 1, issue_o: int = 1) -> tuple[list[Op], list[Edge]]:
    s, p, o = f"S{suffix}", f"P{suffix}", f"O{suffix}"
    ops = [Op(s, "tensor", 1, 1, issue_s, kind="gemm", space="regs"),
           Op(p, "sfu", 1, 1, 1, kind="exp", space="regs"),
           Op(o, "tensor", 1, 1, issue_o, kind="gemm_acc", space="regs")]
    return ops, [Edge(s, p), Edge(p, o), Edge(o, o, 1)]


@pytest.fixture
def twill_toy() -> Problem:
    ops, edges = twill_chain()
    return Problem.build("twill_toy", ops, edges)


@pytest.fixture
def pingpong_toy() -> Problem:
    a_ops, a_edges = twill_chain("a")
    b_ops, b_edges = twill_chain("b")
    return Problem.build("pingpong_toy", a_ops + b_ops, a_edges + b_edges)


@pytest.fixture
def circt_loop() -> tuple[Problem, Machine]:
    """CIRCT's modulo-problems test: II 3 is optimal, an LP-based heuristic finds 4."""
    m = Machine("one_port", units={"mem": 1, "add": None})
    p = Problem.build("circt4", [Op("load_A", "mem", 1), Op("load_B", "mem", 1), Op("add", "add", 1), Op("store_A", "mem", 1)],
                      [Edge("load_A", "add"), Edge("load_B", "add"), Edge("add", "store_A"), Edge("store_A", "load_A", 1)])
    return p, m


def _sm90_gpu() -> str | None:
    """None when an sm_90 GPU is usable, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible on this machine"
    if torch.cuda.get_device_capability() != (9, 0):
        return f"the GPU is sm_{''.join(map(str, torch.cuda.get_device_capability()))}, not sm_90"
    return None


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip with the reason where no sm_90 GPU is usable."""
    reason = None
    for item in items:
        if "gpu" in item.keywords:
            reason = reason or _sm90_gpu() or ""
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
