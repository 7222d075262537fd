"""The whole-kernel prediction: one trip from SASS, then the grid over the SMs (kernels/perf.py)."""

from __future__ import annotations

import dataclasses

import pytest

from warpsched.kernels import perf
from warpsched.kernels.cuda import sass
from warpsched.scheduler.errors import InputError
from tests.kernels.conftest import function, two_consumers

CHIP = perf.load_chip("h100")


def trip(text: str, chip: perf.Chip = CHIP, **kw) -> perf.TripTiming:
    return perf.trip_timing(sass.steady_loops(sass.parse(text, "k")), chip, **kw)


def mma_latency(chip: perf.Chip, n: int = 256) -> float:
    occupancy = 2 * 64 * n * 16 / chip.tensor_flops["bf16"]
    return occupancy * (1 + chip.mma_drain) + chip.mma_fill


def test_a_token_passed_after_the_wait_serializes_the_consumers_wgmmas():
    # each consumer waits for its own batch before passing the token: a trip holds two full latencies
    serialized = trip(two_consumers(wait_first=True))
    assert serialized.cycles >= 2 * mma_latency(CHIP)
    passed_first = trip(two_consumers())  # the other consumer's wgmma queues behind this one's
    assert passed_first.cycles < serialized.cycles - 0.5 * mma_latency(CHIP)
    assert trip(two_consumers(token=False)).cycles <= passed_first.cycles


def test_a_batch_in_flight_reaches_the_tensor_cores_rate():
    # four HGMMAs committed together keep the tensor cores busy; only the batch's last latency shows
    batched = trip(two_consumers(mmas=4, token=False))
    occupancy = 2 * 64 * 256 * 16 / CHIP.tensor_flops["bf16"]
    assert batched.cycles == pytest.approx(8 * occupancy, rel=0.05)
    assert batched.bound == "tensor" and batched.busy["tensor"] > 0.95


def test_slower_wgmma_completion_shows_in_a_serialized_trip():
    slow = dataclasses.replace(CHIP, mma_fill=CHIP.mma_fill + 100)
    before = trip(two_consumers(wait_first=True)).cycles
    assert trip(two_consumers(wait_first=True), slow).cycles >= before + 2 * 100 - 1


def test_bank_conflicts_multiply_a_loads_shared_memory_time():
    lines = ["USETMAXREG.TRYALLOC.CTAPOOL P0, 0xf0"] + ["LDS R2, [R3]"] * 32
    lines += ["HGMMA.64x16x16.F32.BF16 R24, R120, gdesc[UR4], R24, gsb0", "WARPGROUP.DEPBAR.LE gsb0, 0x0"]
    lines += ["ISETP.GE.AND P0, PT, R3, R0, PT", "@!P0 BRA 0x10", "EXIT"]
    one, eight = trip(function(lines)), trip(function(lines), load_ways=8)
    assert eight.cycles >= 32 * 8 * CHIP.issue["shared"] - 1 and eight.cycles > 5 * one.cycles
    assert eight.bound == "shared"


def test_a_barrier_nobody_passes_is_reported_not_hung():
    lines = ["USETMAXREG.TRYALLOC.CTAPOOL P0, 0xf0", "BAR.SYNC.DEFER_BLOCKING 0x8, 0x100"]
    lines += ["HGMMA.64x16x16.F32.BF16 R24, gdesc[UR4], R24, gsb0", "ISETP.GE.AND P0, PT, R3, R0, PT"]
    lines += ["@!P0 BRA 0x10", "EXIT", "USETMAXREG.TRYALLOC.CTAPOOL P0, 0xf0"]
    lines += ["BAR.SYNC.DEFER_BLOCKING 0x9, 0x100", "HGMMA.64x16x16.F32.BF16 R24, gdesc[UR4], R24, gsb0"]
    lines += ["ISETP.GE.AND P0, PT, R3, R0, PT", "@!P0 BRA 0x70", "EXIT"]
    with pytest.raises(InputError, match="deadlock"):
        trip(function(lines))


def fixed_trip(cycles: float) -> perf.TripTiming:
    return perf.TripTiming(cycles, {"tensor": 1.0}, "tensor")


def grid(ctas: int, trips: int = 10, nbytes: int = 0) -> perf.Launch:
    return perf.Launch((ctas, 1, 1), (trips,) * ctas, flops=1, bytes=nbytes, store_bytes_per_cta=0)


def test_one_more_cta_than_sms_costs_a_second_wave():
    one = perf.predict(fixed_trip(1000), grid(CHIP.sms), CHIP)
    two = perf.predict(fixed_trip(1000), grid(CHIP.sms + 1), CHIP)
    cta_us = CHIP.cycles_to_us(CHIP.cta_prologue + 10 * 1000)
    assert two.predicted_us - one.predicted_us == pytest.approx(cta_us)
    assert two.waves > 1 > one.waves - 1e-9


def test_the_memory_floor_and_the_launch_bound_the_time_from_below():
    heavy = perf.predict(fixed_trip(1), grid(1, nbytes=10**10), CHIP)
    assert heavy.bound == "memory"
    assert heavy.predicted_us >= 10**10 / (CHIP.copy_tbps * 1e6)
    tiny = perf.predict(fixed_trip(1), grid(1, trips=1), CHIP)
    assert tiny.predicted_us >= CHIP.launch_us
    split = perf.Launch((1, 1, 1), (1,), 1, 0, 0, extra_kernels=(0, 0))
    assert perf.predict(fixed_trip(1), split, CHIP).predicted_us >= 3 * CHIP.launch_us


def test_a_machine_without_a_chip_section_says_so():
    with pytest.raises(InputError, match="no 'chip' section"):
        perf.load_chip("b200")
