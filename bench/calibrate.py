#!/usr/bin/env python3
"""Calibrate the machine model on the GPU at hand: the chip numbers the prediction and the solver use.

    python3 bench/calibrate.py [--machine h100] [--out FILE.json] [--dry-run]

Microbenchmarks of one SM (bench/calibrate_probes.cu, timed with clock64() on the SM) and of the whole chip
(CUDA events), under a minute once built:

- pipes: cycles a warp instruction holds its pipe (MUFU ex2, FFMA, LOP3; four warps per sub-partition,
  eight independent chains each) and its dependent latency (one warp, one chain);
- hand-offs between two warpgroups: an mbarrier arrive/wait round trip, a named-barrier round trip;
- wgmma m64nNk16 (N = 64, 128, 256; A from shared memory or registers): a batch of four streamed (the tensor
  rate) and waited for after each batch (its completion); fitted to `completion = occupancy * (1 + drain)
  + fill` as kernels/perf.py models it;
- the TMA unit: a bulk copy's latency from HBM and from L2, and the chip's copy bandwidth against the bytes
  in flight per SM;
- a kernel launch as CUDA events around one call see it.

It writes bench/results/<device>-<date>-calibration.json: every raw number, and `chip_delta`, the values of
the machine YAML's `chip` section (and `sync_latency`) measured here beside the ones the YAML has, with the
device and the date, for a person to copy into solver_configs/machines/<machine>.yaml with a `[M]` source.
`--dry-run` (no GPU needed) builds the probes and checks their SASS: what the CPU tests run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT / "bench" / "calibrate_probes.cu"
RESULTS = ROOT / "bench" / "results"
CHAINS = 8  # as calibrate_probes.cu
PIPES = {"mufu": "probe_mufu", "fma": "probe_fma", "alu": "probe_alu"}
WGMMA_N = (64, 128, 256)
WGMMA_BATCH = 4  # m64nNk16 instructions per batch (K = 64)
COPY_BYTES = 16384
INFLIGHT = (1, 2, 4, 8)
# what each probe's SASS must hold, and the wgmma probes that must not be serialized
SASS_EXPECTED = {
    "probe_mufu": "MUFU.EX2",
    "probe_fma": "FFMA",
    "probe_alu": "LOP3",
    "probe_mbarrier": "SYNCS",
    "probe_named_barrier": "BAR.SYNC",
    "probe_bulk_copy": "UBLKCP",
    "probe_fenced_loads": "FENCE.VIEW.ASYNC.S",
    "probe_loads": "LDS.128",
    **{
        f"probe_wgmma_{src}_n{n}_{mode}": "HGMMA"
        for src in ("ss", "rs")
        for n in WGMMA_N
        for mode in ("wait", "stream")
    },
}


def build_probes():
    """The probes' cubin (cached like every kernel build) and its SASS; a `BuildError` says why not."""
    from warpsched.kernels.build import build

    report = build(
        PROBES.read_text(), "probe_mufu"
    )  # the generated kernels' checks do not apply: read the SASS
    sass = Path(report.cubin).with_name("kernel.sass").read_text()
    return report, sass


def check_sass(sass: str) -> list[str]:
    """Problems with the probes' SASS: an expected instruction missing, a wgmma batch serialized."""
    problems = []
    functions = {part.split("\n", 1)[0].strip(): part for part in sass.split("Function : ")[1:]}
    for name, opcode in SASS_EXPECTED.items():
        body = functions.get(name)
        if body is None:
            problems.append(f"{name} is not in the cubin")
        elif opcode not in body:
            problems.append(f"{name} has no {opcode}")
        elif opcode == "HGMMA":
            hgmma = re.findall(r"HGMMA\.[^;]*;", body)
            if sum("gsb0" in h for h in hgmma) * WGMMA_BATCH > len(hgmma):
                problems.append(f"{name}: ptxas serialized its wgmma batches")
    return problems


def fit_completion(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares of `extra = drain * occupancy + fill` over (occupancy, extra) points: (fill, drain)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    drain = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - drain * mx, drain


class Probes:
    """The probes loaded on the current GPU, launched through the CUDA driver on torch's stream."""

    def __init__(self, cubin: str):
        import torch
        from cuda.bindings import driver

        self.torch, self.driver = torch, driver
        torch.cuda.synchronize()  # the primary context, current
        self.module = self._ok(driver.cuModuleLoadData(Path(cubin).read_bytes()))
        self.sms = torch.cuda.get_device_properties(0).multi_processor_count

    def _ok(self, result):
        err, *values = result if isinstance(result, tuple) else (result,)
        if err != self.driver.CUresult.CUDA_SUCCESS:
            raise RuntimeError(f"the CUDA driver failed: {err}")
        return values[0] if len(values) == 1 else (values or None)

    def launch(self, name: str, grid: int, threads: int, args: tuple, types: tuple, smem: int = 0) -> None:
        d = self.driver
        function = self._ok(d.cuModuleGetFunction(self.module, name.encode()))
        if smem > 48 * 1024:
            self._ok(
                d.cuFuncSetAttribute(
                    function, d.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem
                )
            )
        stream = self.torch.cuda.current_stream().cuda_stream
        self._ok(d.cuLaunchKernel(function, grid, 1, 1, threads, 1, 1, smem, stream, (args, types), 0))

    def cycles(
        self, name: str, grid: int, threads: int, args: tuple, types: tuple, smem: int = 0, slots: int = 64
    ):
        """The probe's `cycles` array after a launch (a warm-up launch first)."""
        torch = self.torch
        out = torch.zeros(max(slots, grid), dtype=torch.int64, device="cuda")
        for _ in range(2):
            out.zero_()
            self.launch(name, grid, threads, (out.data_ptr(), *args), (None, *types), smem)
            torch.cuda.synchronize()
        return out.cpu().tolist()

    def pipe(self, name: str, reps: int = 4096) -> dict:
        ctypes = _ctypes()
        sink = self.torch.zeros(512, dtype=self.torch.float32, device="cuda")
        types = (None, ctypes.c_int, ctypes.c_int)

        # the sink is the first argument of the pipe probes, the cycles the second
        def run(threads, chains):
            out = self.torch.zeros(16, dtype=self.torch.int64, device="cuda")
            for _ in range(2):
                self.launch(name, 1, threads, (sink.data_ptr(), out.data_ptr(), reps, chains), (None, *types))
                self.torch.cuda.synchronize()
            return max(out.cpu().tolist()[: threads // 32])

        throughput = run(512, CHAINS) / (reps * CHAINS * 4)  # 16 warps: 4 per sub-partition
        latency = run(32, 1) / reps
        return {"issue_cycles": round(throughput, 3), "latency_cycles": round(latency, 2)}

    def handoff(self, name: str, reps: int = 2048) -> float:
        ctypes = _ctypes()
        return self.cycles(name, 1, 256, (reps,), (ctypes.c_int,))[0] / reps

    def fence_after_loads(self, reps: int = 4096) -> float:
        """Cycles a fence.proxy.async adds to a round of dependent shared loads (MEMBAR + FENCE in SASS)."""
        ctypes = _ctypes()
        fenced = self.cycles("probe_fenced_loads", 1, 128, (reps,), (ctypes.c_int,))[0]
        plain = self.cycles("probe_loads", 1, 128, (reps,), (ctypes.c_int,))[0]
        return (fenced - plain) / reps

    def wgmma(self, n: int, rs: bool, reps: int = 1024) -> dict:
        ctypes = _ctypes()
        smem = (64 + n) * 64 * 2
        src = "rs" if rs else "ss"
        wait = self.cycles(f"probe_wgmma_{src}_n{n}_wait", 1, 128, (reps,), (ctypes.c_int,), smem)[0] / reps
        stream = (
            self.cycles(f"probe_wgmma_{src}_n{n}_stream", 1, 128, (reps,), (ctypes.c_int,), smem)[0] / reps
        )
        return {"batch_waited": round(wait, 1), "batch_streamed": round(stream, 1)}

    def bulk_copy_latency(self, warm: bool, reps: int = 64) -> float:
        ctypes = _ctypes()
        torch = self.torch
        src = torch.zeros(COPY_BYTES * reps, dtype=torch.uint8, device="cuda")
        if not warm:  # evict it: write more than the L2 holds
            torch.empty(256 << 20, dtype=torch.uint8, device="cuda").fill_(1)
        out = torch.zeros(1, dtype=torch.int64, device="cuda")
        self.launch(
            "probe_bulk_copy",
            1,
            128,
            (src.data_ptr(), out.data_ptr(), COPY_BYTES, 1, reps),
            (None, None, ctypes.c_int, ctypes.c_int, ctypes.c_int),
            COPY_BYTES,
        )
        torch.cuda.synchronize()
        return out.item() / reps

    def copy_bandwidth(self, inflight: int, reps: int = 16) -> float:
        """TB/s of bulk copies on every SM with `inflight` copies of COPY_BYTES each in flight per SM."""
        ctypes = _ctypes()
        torch = self.torch
        total = COPY_BYTES * inflight * reps * self.sms
        src = torch.zeros(total, dtype=torch.uint8, device="cuda")
        out = torch.zeros(self.sms, dtype=torch.int64, device="cuda")
        args = (src.data_ptr(), out.data_ptr(), COPY_BYTES, inflight, reps)
        types = (None, None, ctypes.c_int, ctypes.c_int, ctypes.c_int)
        torch.empty(256 << 20, dtype=torch.uint8, device="cuda").fill_(1)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        self.launch("probe_bulk_copy", self.sms, 128, args, types, COPY_BYTES * inflight)
        end.record()
        torch.cuda.synchronize()
        return total / (start.elapsed_time(end) * 1e-3) / 1e12

    def launch_us(self, n: int = 50) -> float:
        torch = self.torch
        times = []
        for _ in range(n):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self.launch("probe_empty", 1, 32, (), ())
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1e3)
        return statistics.median(times)


def _ctypes():
    import ctypes

    return ctypes


def measure(probes: Probes, machine: str) -> dict:
    from warpsched.kernels.perf import load_chip
    from warpsched.scheduler.machine import load_machine

    chip = load_chip(machine)
    raw: dict = {"pipes": {p: probes.pipe(name) for p, name in PIPES.items()}}
    raw["mbarrier_round_trip"] = round(probes.handoff("probe_mbarrier"), 1)
    raw["named_barrier_round_trip"] = round(probes.handoff("probe_named_barrier"), 1)
    raw["fence_after_loads"] = round(probes.fence_after_loads(), 1)
    raw["wgmma"] = {
        f"{'rs' if rs else 'ss'}_n{n}": probes.wgmma(n, rs) for rs in (False, True) for n in WGMMA_N
    }
    raw["bulk_copy_latency"] = {
        "hbm": round(probes.bulk_copy_latency(False), 1),
        "l2": round(probes.bulk_copy_latency(True), 1),
    }
    raw["copy_tbps_by_inflight"] = {i * COPY_BYTES: round(probes.copy_bandwidth(i), 3) for i in INFLIGHT}
    raw["launch_us"] = round(probes.launch_us(), 2)

    # the chip section's terms, as kernels/perf.py reads them
    occupancy = {n: 2 * 64 * n * 16 / chip.tensor_flops["bf16"] for n in WGMMA_N}
    ss = [raw["wgmma"][f"ss_n{n}"] for n in WGMMA_N]
    rate = [2 * 64 * n * 16 * WGMMA_BATCH / w["batch_streamed"] for n, w in zip(WGMMA_N, ss)]
    fill, drain = fit_completion(
        [(occupancy[n], (w["batch_waited"] - w["batch_streamed"])) for n, w in zip(WGMMA_N, ss)]
    )
    measured = {
        "issue.mufu": raw["pipes"]["mufu"]["issue_cycles"],
        "issue.fma": raw["pipes"]["fma"]["issue_cycles"],
        "issue.alu": raw["pipes"]["alu"]["issue_cycles"],
        "latency.mufu": raw["pipes"]["mufu"]["latency_cycles"],
        "latency.fma": raw["pipes"]["fma"]["latency_cycles"],
        "latency.alu": raw["pipes"]["alu"]["latency_cycles"],
        "sync.mbarrier_wait": round(raw["mbarrier_round_trip"] / 2),
        "sync.named_barrier": round(raw["named_barrier_round_trip"] / 2),
        "sync.membar + sync.fence (after loads)": raw["fence_after_loads"],
        "tensor_flops.bf16": round(max(rate)),
        "mma_fill": round(fill, 1),
        "mma_drain": round(drain, 3),
        "launch_us": raw["launch_us"],
        "copy_tbps (most in flight)": max(raw["copy_tbps_by_inflight"].values()),
        "sync_latency (machine)": round(raw["mbarrier_round_trip"] / 2),
    }
    model = {
        "issue.mufu": chip.issue["mufu"],
        "issue.fma": chip.issue["fma"],
        "issue.alu": chip.issue["alu"],
        "latency.mufu": chip.latency["mufu"],
        "latency.fma": chip.latency["fma"],
        "latency.alu": chip.latency["alu"],
        "sync.mbarrier_wait": chip.sync.get("mbarrier_wait"),
        "sync.named_barrier": chip.sync.get("named_barrier"),
        "sync.membar + sync.fence (after loads)": chip.sync.get("membar", 0) + chip.sync.get("fence", 0),
        "tensor_flops.bf16": chip.tensor_flops["bf16"],
        "mma_fill": chip.mma_fill,
        "mma_drain": chip.mma_drain,
        "launch_us": chip.launch_us,
        "copy_tbps (most in flight)": chip.copy_tbps,
        "sync_latency (machine)": load_machine(machine).sync_latency,
    }
    return {"raw": raw, "chip_delta": {k: {"measured": v, "model": model[k]} for k, v in measured.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machine", help="the machine model to compare with (default: from the device name)")
    ap.add_argument(
        "--out", type=Path, help="the JSON to write (default bench/results/<device>-<date>-calibration.json)"
    )
    ap.add_argument(
        "--dry-run", action="store_true", help="build the probes and check their SASS only (no GPU)"
    )
    args = ap.parse_args()
    print("calibrate: building the probes (nvcc, 15-25 s unless cached) ...", flush=True)
    report, sass = build_probes()
    problems = check_sass(sass)
    if problems:
        print("calibrate: the probes' SASS is not what they measure: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"calibrate: {len(SASS_EXPECTED)} probes built ({report.cubin})", flush=True)
    if args.dry_run:
        return 0
    import torch

    if not torch.cuda.is_available():
        print("skipped: no GPU")
        return 0
    device = torch.cuda.get_device_name(0)
    machine = args.machine or ("h200" if "H200" in device else "h100")
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_bench import device_slug

    date = datetime.date.today().isoformat()
    result = {"device": device, "date": date, "machine": machine, **measure(Probes(report.cubin), machine)}
    out = args.out or RESULTS / f"{device_slug(device)}-{date}-calibration.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    width = max(len(k) for k in result["chip_delta"])
    for key, pair in result["chip_delta"].items():
        print(f"  {key:<{width}}  measured {pair['measured']!s:>10}  model {pair['model']!s:>10}")
    print(f"calibrate: written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
