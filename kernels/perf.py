"""How long a built kernel takes for a call shape, from its SASS and the chip (DESIGN.md 6.7).

Two levels:

- **One trip** of the main loop: the instructions one warp of each consumer warpgroup issues per trip
  (kernels/cuda/sass.py) run on one SM sub-partition in a small event simulation. Every warp issues at
  most one instruction per cycle and the sub-partition dispatches one per cycle; each instruction holds
  its pipe (FMA, ALU, MUFU, conversion, shared memory) for the chip's cycles per warp instruction and its
  result is ready after the pipe's latency (a register scoreboard). An HGMMA holds the SM's tensor cores
  for its occupancy (2 M N K / the tensor rate) and completes `mma_fill` cycles plus `mma_drain` times its
  occupancy later; `WARPGROUP.DEPBAR.LE gsb0, N` waits until only N groups are in flight, so a kernel
  that waits after each wgmma pays each one's latency (the serialized kernels of 2026-11-24 did). Named
  barriers between consumer warpgroups (`BAR.SYNC`/`BAR.ARV`, the tensor-core order token) block as
  on the GPU; mbarrier waits, arrives and fences cost the chip's cycles. The steady state is the mean
  trip over the second half of 16 simulated trips.
- **The whole kernel**: CTAs in launch order onto the SMs (one each), each running its trips plus a
  fixed prologue (setup and the first load's latency) and its epilogue's stores; the grid's makespan,
  the launch, and no less than the call's bytes at the measured copy bandwidth. Split-K's reduction
  kernels are added where the launch has them.

The chip's numbers live in the machine YAML's `chip` section, each with its source; the ones fitted to
the H100 results of 2026-11-24 say so (bench/backtest.py, bench/results/backtest-h100-2026-11-24.md).
"""

from __future__ import annotations

import heapq
from math import lcm
import re
from dataclasses import dataclass, field

from warpsched.kernels.cuda.sass import Instruction, Loop
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import config_root
from warpsched.scheduler.yaml_files import read_yaml, resolve

TRIPS = 16  # simulated trips; the steady state is the mean over the second half

PIPES = {
    "fma": ("FFMA", "FADD", "FMUL", "HFMA2", "HADD2", "HMUL2", "FSWZADD", "IMAD", "IDP", "DFMA"),
    "alu": (
        "LOP3",
        "SHF",
        "IADD3",
        "ISETP",
        "FSETP",
        "FMNMX",
        "SEL",
        "FSEL",
        "PRMT",
        "LEA",
        "IMNMX",
        "VIADD",
        "VIADDMNMX",
        "MOV",
        "PLOP3",
        "BMSK",
        "F2FP",
        "IABS",
        "HSETP2",
        "HMNMX2",
        "P2R",
        "R2P",
        "FCHK",
        "ISCADD",
        "SGXT",
        "BREV",
        "FLO",
        "POPC",
        "LOP",
        "CSET",
        "CSETP",
        "VOTE",
    ),
    "mufu": ("MUFU",),
    "cvt": ("F2F", "I2F", "F2I", "FRND", "I2I", "F2IP", "I2FP"),
    "shared": ("LDS", "STS", "LDSM", "STSM", "SHFL", "ATOMS", "LD", "ST"),
    "global": ("LDG", "STG", "RED", "ATOMG", "ATOM", "LDL", "STL"),
}
_PIPE_OF = {op: pipe for pipe, ops in PIPES.items() for op in ops}
_NO_DEST = {
    "STS",
    "STG",
    "STL",
    "ST",
    "STSM",
    "BAR",
    "BRA",
    "EXIT",
    "RED",
    "MEMBAR",
    "FENCE",
    "WARPGROUP",
    "NOP",
    "UTMALDG",
    "UTMASTG",
    "UTMAPF",
    "UTMACCTL",
    "SYNCS",
    "WARPSYNC",
    "BSSY",
    "BSYNC",
    "NANOSLEEP",
    "DEPBAR",
    "YIELD",
    "CCTL",
    "ERRBAR",
    "HGMMA",
    "USETMAXREG",
    "ELECT",
}
_REGISTER = re.compile(r"\b(U?R\d+|U?P\d)\b")
_WIDTH = re.compile(r"\.(U8|S8|U16|S16|32|64|128)\b")


@dataclass(frozen=True)
class Chip:
    """A GPU as the whole-kernel prediction sees it: the machine YAML's `chip` section."""

    name: str
    sms: int
    clock_ghz: float  # sustained under tensor-core load
    tensor_flops: dict[str, float]  # per SM per cycle, by operand type
    issue: dict[str, float]  # cycles one warp instruction holds its pipe on one sub-partition
    latency: dict[str, int]  # cycles until its result may be read, by pipe
    sync: dict[str, int]  # mbarrier wait/arrive, named barrier, fences: cycles on the issuing warp
    mma_fill: float  # wgmma: completion = start + occupancy * (1 + mma_drain) + mma_fill
    mma_drain: float
    copy_tbps: float  # measured device-to-device copy bandwidth
    launch_us: float  # one kernel launch as CUDA events around a call see it
    cta_prologue: int  # cycles from a CTA's start to its first trip (setup, first loads)
    store_bytes_per_cycle: float  # an epilogue's register-to-global stores, per SM

    def cycles_to_us(self, cycles: float) -> float:
        return cycles / (self.clock_ghz * 1e3)


def load_chip(machine: str) -> Chip:
    """The `chip` section of machine `machine`'s YAML file (solver_configs/machines)."""
    path = resolve(machine, config_root() / "machines", "machine")
    data = read_yaml(path, "machine")
    chip = data.get("chip") if isinstance(data, dict) else None
    if not isinstance(chip, dict):
        raise InputError(
            f"machine {machine!r} has no 'chip' section ({path}); the whole-kernel prediction needs one "
            "(see solver_configs/machines/h100.yaml)"
        )
    try:
        return Chip(
            name=str(data["name"]),
            sms=int(chip["sms"]),
            clock_ghz=float(chip["clock_ghz"]),
            tensor_flops={str(k): float(v) for k, v in chip["tensor_flops"].items()},
            issue={str(k): float(v) for k, v in chip["issue"].items()},
            latency={str(k): int(v) for k, v in chip["latency"].items()},
            sync={str(k): int(v) for k, v in chip["sync"].items()},
            mma_fill=float(chip["mma_fill"]),
            mma_drain=float(chip["mma_drain"]),
            copy_tbps=float(chip["copy_tbps"]),
            launch_us=float(chip["launch_us"]),
            cta_prologue=int(chip["cta_prologue"]),
            store_bytes_per_cycle=float(chip["store_bytes_per_cycle"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InputError(f"machine {machine!r}: its chip section is incomplete or malformed ({e})") from None


def pipe_of(i: Instruction) -> str:
    """The pipe an instruction occupies: one of PIPES, or 'control' (uniform datapath, branches, NOP)."""
    if i.base == "IMAD" and ".MOV" in i.opcode:
        return "alu"
    return _PIPE_OF.get(i.base, "control")


def shared_wavefronts(i: Instruction) -> int:
    """128-byte shared-memory wavefronts of one warp's access (bank conflicts are not read from SASS)."""
    if i.base in ("SHFL",):
        return 1
    if i.base in ("LDSM", "STSM"):
        return 4 if ".x4" in i.opcode.lower() else 2 if ".x2" in i.opcode.lower() else 1
    m = _WIDTH.search(i.opcode)
    bits = {"U8": 8, "S8": 8, "U16": 16, "S16": 16}.get(m.group(1), 0) if m else 0
    bits = bits or (int(m.group(1)) if m else 32)
    return max(1, 32 * bits // 8 // 128)


@dataclass
class _Warp:
    body: tuple[Instruction, ...]
    pc: int = 0
    trips: list[float] = field(default_factory=list)
    ready: dict[str, float] = field(default_factory=dict)
    groups: list[float] = field(default_factory=list)  # completion of each committed wgmma group in flight
    open_group: float = 0.0


@dataclass(frozen=True)
class TripTiming:
    cycles: float  # one steady-state trip of the main loop, per CTA
    busy: dict[str, float]  # fraction of those cycles each shared resource was busy
    bound: str  # what decides it: 'tensor', a pipe, 'issue', or 'latency' (waits, barriers, dependences)


def trip_timing(
    loops: list[Loop],
    chip: Chip,
    dtype: str = "bf16",
    load_ways: int = 1,
    wgmma_per_trip: int | None = None,
    trips: int = TRIPS,
) -> TripTiming:
    """One steady-state trip of consumer warpgroups running `loops` (one per warpgroup) together.
    `load_ways`: the bank conflicts of the loop's word-sized shared loads (the family knows its layout;
    SASS does not say). `wgmma_per_trip`: the CTA's wgmma per trip over all consumers, when ptxas may
    have unrolled the loops (a body holding twice its consumer's share is two trips; ptxas may unroll one
    consumer's loop and not another's, so each warp runs as many trips as it takes to run the same
    iterations as the others)."""
    if not loops:
        raise InputError("the kernel's SASS has no main loop with an HGMMA; nothing to time")
    rate = chip.tensor_flops.get(dtype)
    if rate is None:
        raise InputError(f"chip {chip.name!r} has no tensor rate for {dtype!r}")
    warps = [_Warp(lp.body) for lp in loops]
    share = wgmma_per_trip / len(loops) if wgmma_per_trip else None  # one consumer's wgmma per iteration
    unroll = [max(1, round(len(lp.mmas) / share)) if share else 1 for lp in loops]
    runs = [trips * lcm(*unroll) // u for u in unroll]  # body runs per warp: the same iterations for all
    free: dict[str, float] = {}  # pipe -> when it takes the next instruction
    busy: dict[str, float] = {}
    barriers: dict[int, list[tuple[int, bool, float]]] = {}
    parked: set[int] = set()
    for n, lp in enumerate(loops):  # the order token's first pass, before the loops
        for i in lp.before:
            bar = i.named_barrier()
            if bar and 0 < bar[1] // 128 <= len(warps):
                barriers.setdefault(bar[0], []).append((n, False, 0.0))
    heap = [(0.0, n) for n in range(len(warps))]
    while heap:
        t, n = heapq.heappop(heap)
        w = warps[n]
        if w.pc == 0:
            w.trips.append(t)
            if len(w.trips) > runs[n]:
                continue
        i = w.body[w.pc]
        w.pc = (w.pc + 1) % len(w.body)
        t = max(t, *(w.ready.get(r, 0.0) for r in _sources(i)), free.get("dispatch", 0.0))
        free["dispatch"] = t + 1
        busy["dispatch"] = busy.get("dispatch", 0.0) + 1
        if i.base == "HGMMA":
            m, n_, k = i.mma_shape()
            occupancy = 2 * m * n_ * k / rate
            start = max(t, free.get("tensor", 0.0))
            free["tensor"] = start + occupancy
            busy["tensor"] = busy.get("tensor", 0.0) + occupancy
            w.open_group = max(w.open_group, start + occupancy * (1 + chip.mma_drain) + chip.mma_fill)
            if i.commits:
                w.groups.append(w.open_group)
                w.open_group = 0.0
            t += 1
        elif (allowed := i.depbar_allowed()) is not None:
            done = w.groups[: len(w.groups) - allowed] if allowed < len(w.groups) else []
            t = max([t + 1, *done])
            w.groups = w.groups[len(done) :]
        elif (bar := i.named_barrier()) is not None and 0 < bar[1] // 128 <= len(warps):
            arrivals = barriers.setdefault(bar[0], [])
            arrivals.append((n, ".SYNC" in i.opcode, t))
            if len(arrivals) == bar[1] // 128:
                done = max(a[2] for a in arrivals) + chip.sync["named_barrier"]
                for other, waits, _ in arrivals:
                    if waits and other != n:
                        parked.discard(other)
                        heapq.heappush(heap, (done, other))
                barriers[bar[0]] = []
                t = done if ".SYNC" in i.opcode else t + 1
            elif ".SYNC" in i.opcode:
                parked.add(n)
                continue
            else:
                t += 1
        else:
            t = _issue(i, t, w, chip, free, busy, load_ways)
        heapq.heappush(heap, (t, n))
    if parked:
        raise InputError(
            f"the consumer loops deadlock on a named barrier in the simulation ({len(parked)} warpgroups "
            "wait); the SASS's barrier protocol was not understood"
        )
    cycles = max(
        (w.trips[r] - w.trips[r // 2]) / (r - r // 2) / u for w, r, u in zip(warps, runs, unroll)
    )  # per iteration, over the second half
    span = max(w.trips[r] - w.trips[0] for w, r in zip(warps, runs))
    shares = {k: v / span for k, v in busy.items()}
    top = max(shares, key=shares.get)
    bound = top if shares[top] > 0.85 else "latency"
    return TripTiming(cycles, shares, bound)


def _sources(i: Instruction) -> list[str]:
    regs = _REGISTER.findall(i.operands)
    if i.base not in _NO_DEST and regs:
        regs = regs[1:]
    pred = _REGISTER.findall(i.predicate)
    return [r for r in regs + pred if r not in ("PT", "UPT")]


def _issue(i: Instruction, t: float, w: _Warp, chip: Chip, free: dict, busy: dict, load_ways: int) -> float:
    """An ordinary instruction: its pipe, its result's latency, or a synchronisation's cost."""
    if i.base == "SYNCS":
        return t + chip.sync["mbarrier_wait" if "TRYWAIT" in i.opcode or "PHASECHK" in i.opcode else "arrive"]
    if i.base == "MEMBAR":
        return t + chip.sync["membar"]
    if i.base == "FENCE":
        return t + chip.sync["fence"]
    if i.base == "BAR":
        return t + chip.sync["named_barrier"]
    pipe = pipe_of(i)
    hold = chip.issue.get(pipe, 1.0)
    if pipe in ("shared", "global"):
        hold *= shared_wavefronts(i)
        if i.base == "LDS" and not re.search(r"\.(U8|S8|U16|S16)\b", i.opcode):
            hold *= load_ways
    start = max(t, free.get(pipe, 0.0)) if pipe != "control" else t
    if pipe != "control":
        free[pipe] = start + hold
        busy[pipe] = busy.get(pipe, 0.0) + hold
    if i.base not in _NO_DEST:
        regs = _REGISTER.findall(i.operands)
        if regs:
            w.ready[regs[0]] = start + chip.latency.get(pipe, 4)
    return start + 1


@dataclass(frozen=True)
class Launch:
    """A call's grid as the family launches it (kernels/families/<family>/geometry.py)."""

    grid: tuple[int, int, int]
    trips: tuple[int, ...]  # main-loop trips of each CTA, in launch order (x fastest)
    flops: int
    bytes: int  # the call's unique bytes to and from device memory
    store_bytes_per_cta: int  # what one CTA's epilogue writes
    extra_kernels: tuple[int, ...] = ()  # bytes moved by each further kernel of the call (split-K sums)

    @property
    def ctas(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]


@dataclass(frozen=True)
class Prediction:
    predicted_us: float
    predicted_tflops: float
    predicted_tbps: float
    bound: str  # tensor / a pipe / latency / memory / launch
    cycles_per_trip: float
    waves: float
    parts_us: dict[str, float]  # where the time goes

    def as_dict(self) -> dict:
        return {
            "predicted_us": round(self.predicted_us, 2),
            "predicted_tflops": round(self.predicted_tflops, 1),
            "predicted_tbps": round(self.predicted_tbps, 3),
            "bound": self.bound,
            "cycles_per_trip": round(self.cycles_per_trip),
            "waves": round(self.waves, 2),
            "parts_us": {k: round(v, 2) for k, v in self.parts_us.items()},
        }


def predict(
    trip: TripTiming, launch: Launch, chip: Chip, stages: int = 1, ctas_per_sm: int = 1
) -> Prediction:
    """The time of one call: the grid's makespan over the SMs, the launch, the memory floor. A CTA's
    pipeline ramps up and drains over the `stages - 1` extra trips of a schedule, each about half full."""
    fill_trips = (stages - 1) / 2
    if launch.ctas < 1 or len(launch.trips) != launch.ctas:
        raise InputError(f"the launch has {launch.ctas} CTAs and {len(launch.trips)} trip counts")
    store = launch.store_bytes_per_cta / chip.store_bytes_per_cycle

    def cta(trips: int) -> float:
        return chip.cta_prologue + (trips + fill_trips) * trip.cycles + store

    if len(set(launch.trips)) == 1:  # equal CTAs: whole waves
        makespan = -(-launch.ctas // (chip.sms * ctas_per_sm)) * cta(launch.trips[0])
    else:  # in launch order, each to the SM that frees first
        slots = [0.0] * (chip.sms * ctas_per_sm)
        for trips in launch.trips:
            heapq.heappush(slots, heapq.heappop(slots) + cta(trips))
        makespan = max(slots)
    compute_us = chip.cycles_to_us(makespan)
    memory_us = launch.bytes / (chip.copy_tbps * 1e6)
    extra_us = sum(chip.launch_us + b / (chip.copy_tbps * 1e6) for b in launch.extra_kernels)
    body_us = max(compute_us, memory_us)
    total = chip.launch_us + body_us + extra_us
    if memory_us >= compute_us:
        bound = "memory"
    elif chip.launch_us + extra_us > body_us:
        bound = "launch"
    else:
        bound = trip.bound
    return Prediction(
        predicted_us=total,
        predicted_tflops=launch.flops / (total * 1e6),
        predicted_tbps=launch.bytes / (total * 1e6),
        bound=bound,
        cycles_per_trip=trip.cycles,
        waves=launch.ctas / (chip.sms * ctas_per_sm),
        parts_us={
            "launch": chip.launch_us + extra_us,
            "main_loop": chip.cycles_to_us(max(launch.trips) * trip.cycles),
            "grid": compute_us,
            "memory_floor": memory_us,
        },
    )
