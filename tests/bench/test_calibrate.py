"""bench/calibrate.py without a GPU: its probes build for sm_90a and measure what they say (their SASS), a
serialized or missing probe is caught, and the wgmma completion fit recovers known terms."""

from __future__ import annotations

from tests.bench.conftest import bench_script

import re

import pytest


@pytest.fixture(scope="module")
def cal():
    return bench_script("calibrate")


@pytest.fixture(scope="module")
def sass(cal):
    return cal.build_probes()[1]


def test_the_probes_build_and_hold_what_they_time(cal, sass):
    assert cal.check_sass(sass) == []


def test_a_probe_missing_or_serialized_is_caught(cal, sass):
    missing = sass.replace("Function : probe_mufu", "Function : probe_something_else")
    assert cal.check_sass(missing) == ["probe_mufu is not in the cubin"]
    name = "probe_wgmma_ss_n128_stream"
    head, body = sass.split(f"Function : {name}", 1)
    body, rest = body.split("Function : ", 1)
    serialized = re.sub(r"(HGMMA[^;]*?)(, gsb0)? ;", r"\1, gsb0 ;", body)  # every HGMMA waits for the last
    problems = cal.check_sass(head + f"Function : {name}" + serialized + "Function : " + rest)
    assert problems == [f"{name}: ptxas serialized its wgmma batches"]


def test_the_completion_fit_recovers_fill_and_drain(cal):
    points = [(occ, 0.6 * occ + 40.0) for occ in (16.0, 32.0, 64.0)]
    fill, drain = cal.fit_completion(points)
    assert fill == pytest.approx(40.0) and drain == pytest.approx(0.6)
