"""Shared fixtures and helpers: the repository root, shipped problems, small hand-built problems, and running
the `warpsched` command with its one-sentence contract for user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from warpsched.scheduler.ir import Edge, Op, Problem
from warpsched.scheduler.machine import Machine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _repository_root_last() -> None:
    """`python3 -m pytest` puts the repository root first on sys.path, where its folders (kernels/, models/,
    scheduler/: warpsched's subpackages) hide same-named installed packages that libraries import
    (transformers imports Hugging Face's `kernels`). The root stays on the path (tests import tests.*), behind
    everything installed."""
    root = [p for p in sys.path if Path(p or ".").resolve() == ROOT]
    for p in root:
        sys.path.remove(p)
    sys.path.extend(root[:1])


_repository_root_last()


def toy_machine(warpgroups: int = 1, sync: int = 1, **kw) -> Machine:
    """Twill's toy machine: one tensor core, one SFU, unit-cost hand-offs."""
    return Machine(
        "toy",
        units={"tensor": 1, "sfu": 1},
        sync_latency=sync,
        smem_bytes=232448,
        register_file=65536,
        max_warpgroups=warpgroups,
        **kw,
    )


def twill_chain(suffix: str = "", issue_s: int = 1, issue_o: int = 1) -> tuple[list[Op], list[Edge]]:
    s, p, o = f"S{suffix}", f"P{suffix}", f"O{suffix}"
    ops = [
        Op(s, "tensor", 1, 1, issue_s, kind="gemm", space="regs"),
        Op(p, "sfu", 1, 1, 1, kind="exp", space="regs"),
        Op(o, "tensor", 1, 1, issue_o, kind="gemm_acc", space="regs"),
    ]
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
    p = Problem.build(
        "circt4",
        [Op("load_A", "mem", 1), Op("load_B", "mem", 1), Op("add", "add", 1), Op("store_A", "mem", 1)],
        [Edge("load_A", "add"), Edge("load_B", "add"), Edge("add", "store_A"), Edge("store_A", "load_A", 1)],
    )
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


# ---------------------------------------------------------------- the command, in a subprocess

POOL = 3


@dataclass
class Run:
    args: list[str]
    returncode: int | None
    stdout: str
    stderr: str


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> Run:
    env = dict(os.environ)
    env["WARPSCHED_CACHE"] = str(cwd / "cache")  # cubins built here stay here
    args = [str(a) for a in args]
    try:
        p = subprocess.run(
            [sys.executable, "-m", "warpsched", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        return Run(args, None, str(exc.stdout or ""), f"timed out after {timeout}s")
    return Run(args, p.returncode, p.stdout, p.stderr)


def run_all(jobs: dict[str, list], cwd: Path) -> dict[str, Run]:
    with ThreadPoolExecutor(max_workers=POOL) as pool:
        futures = {name: pool.submit(run_cli, args, cwd) for name, args in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def assert_user_error(r: Run, *needles: str) -> str:
    """Exit 2 and exactly one stderr line, 'warpsched: error: ...', naming every needle."""
    assert r.returncode == 2, f"exit {r.returncode} for {r.args}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{r.stderr}"
    line = lines[0]
    assert line.startswith("warpsched: error: "), line
    assert len(line) > len("warpsched: error: ") + 10, line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line
