"""`warpsched export --hatschet` (warpsched/export.py): every shipped kernel as a HatScheT instance, the
published copy in bench/hatschet_gpu/ current to the byte, every II proven and the relaxation honest."""

from __future__ import annotations

from pathlib import Path

from warpsched.export import export
from warpsched.kernels.package import manifest
from tests.conftest import ROOT, run_cli

PUBLISHED = ROOT / "bench" / "hatschet_gpu"


def test_the_published_instances_are_what_export_writes_today(tmp_path):
    rows = export(tmp_path)
    assert [r.name for r in rows] == [e.name for e in manifest.read()]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in PUBLISHED.iterdir())
    stale = [name for name in written if (tmp_path / name).read_bytes() != (PUBLISHED / name).read_bytes()]
    assert not stale, f"{stale} changed: regenerate with warpsched export --hatschet bench/hatschet_gpu"
    for r in rows:
        assert r.ii_proven and r.model_ii_proven, r.name
        assert r.ii <= r.model_ii and (r.relaxed_units or r.ii == r.model_ii), r.name
        assert r.model_ii <= r.shipped_ii  # joint adds warpgroups, registers and shared memory
    assert any(not r.relaxed_units for r in rows)  # attention d128 causal: an exact instance


def test_the_command_writes_the_instances_and_says_where(tmp_path):
    run = run_cli(["export", "--hatschet", tmp_path / "out"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"{len(manifest.read())} instances and README.md written" in run.stdout
    assert "exporting and solving" in run.stderr
    assert sorted(Path(tmp_path / "out").glob("*_RM.xml"))
