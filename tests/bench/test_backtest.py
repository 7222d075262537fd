"""bench/backtest.py on a kernels folder as a GPU run leaves it: every timed row gets a prediction."""

from __future__ import annotations

from tests.bench.conftest import bench_script

import json


def load():
    return bench_script("backtest")


def test_each_ok_row_of_a_run_is_predicted_from_its_kernels_sass(tmp_path):
    from warpsched.kernels.driver import build_schedule
    from warpsched.kernels.package import find

    schedule = find("gemm", {"dtype": "bf16"}, "h100")
    kernel = build_schedule(schedule).kernel  # cached after the first build
    folder = tmp_path / "run-kernels" / "k1"
    folder.mkdir(parents=True)
    (folder / "kernel.cu").write_text(kernel.source)
    config = {"family": "gemm", "entry": kernel.entry, "tile": kernel.tile, "stages": schedule.stages}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [
        {
            "file": "run.json",
            "index": i,
            "family": "gemm",
            "case": f"{s}^3",
            "kernel_id": "k1",
            "shape": {"m": s, "n": s, "k": s},
            "measured_ms": ms,
            "status": status,
        }
        for i, (s, ms, status) in enumerate([(2048, 0.03, "ok"), (8192, 1.5, "ok"), (4096, 0.2, "wrong")])
    ]
    (tmp_path / "run-kernels" / "rows.json").write_text(json.dumps(rows))
    assert load().main(["--run", "run", "--results", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "backtest-run.json").read_text())
    assert [r["case"] for r in out] == ["2048^3", "8192^3"]  # the wrong row was never timed
    big = out[1]
    assert big["predicted_ms"] > 8192**3 * 2 / 989e12 * 1e3  # never faster than the tensor cores
    assert big["ratio"] == round(big["predicted_ms"] / big["measured_ms"], 3)
    assert "| gemm | 8192^3 |" in (tmp_path / "backtest-run.md").read_text()
