"""bench/targets.py: each shipped kernel's prediction against the target of each benchmark row it serves."""

from __future__ import annotations

import json
from types import SimpleNamespace

from warpsched.kernels import perf
from tests.bench.conftest import bench_script


def _entry(model: str, **params):
    return SimpleNamespace(name=f"{model}_x", key=SimpleNamespace(model=model, machine="h100", params=params))


def test_rows_pair_each_kernel_with_the_rows_it_serves_and_their_targets(tmp_path, monkeypatch):
    targets = bench_script("targets")
    trip = perf.TripTiming(1024.0, {}, "tensor")
    quant_tile = {"bits": 4, "group_size": 128, "tile_n": 128, "tile_m": 16, "tile_k": 256, "fmt": "int"}
    fake = [
        (
            _entry("gemm", dtype="bf16"),
            {"tile_m": 128, "tile_n": 256, "tile_k": 64, "dtype": "bf16"},
            trip,
            1,
        ),
        (_entry("quant_gemm", bits=4, group_size=128, m=16), quant_tile, trip, 1),
    ]
    monkeypatch.setattr(targets, "kernels", lambda machine: fake)

    def row(family, impl, case, **fields):
        return {"family": family, "impl": impl, "case": case, "status": "ok", **fields}

    gemm = {"m": 8192, "n": 8192, "k": 8192}
    quant = {"m": 1, "n": 57344, "k": 8192, "bits": 4, "group_size": 128}
    run = {
        "copy_tbps": 3.0,
        "families": {
            "gemm": {
                "rows": [
                    row("gemm", "warpsched", "8192^3", **gemm),
                    row("gemm", "torch.matmul", "8192^3", tflops=700.0, **gemm),
                ]
            },
            "attention_fwd": {"rows": []},
            "quant_gemm": {
                "rows": [
                    row("quant_gemm", "warpsched", "gate_up int4 M=1", **quant),
                    row(
                        "quant_gemm", "warpsched", "gate_up int3 M=1", **{**quant, "bits": 3}
                    ),  # no int3 kernel
                ]
            },
        },
    }
    found = targets.rows(run, "h100")
    assert [(r["family"], r["case"]) for r in found] == [
        ("gemm", "8192^3"),
        ("quant_gemm", "gate_up int4 M=1"),
    ]
    g, q = found
    assert g["target"] == 0.9 and g["reference"] == 700.0 and g["met"] == (g["ratio"] >= 0.9)
    assert q["target"] == 0.75 and q["reference"] == 3.0 and q["measure"] == "TB/s of copy"
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert targets.main(["--run", "run", "--results", str(tmp_path)]) == 0
    text = (tmp_path / "targets-run.md").read_text()
    assert "| gemm | 1 |" in text and "| quant_gemm | gate_up int4 M=1 |" in text
