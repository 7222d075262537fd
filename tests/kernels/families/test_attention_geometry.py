"""The attention family's grid for a call shape: causal CTAs visit only the key blocks up to their rows."""

from __future__ import annotations

from warpsched.kernels.families.attention.geometry import key_blocks, launch

TILE = {"head_dim": 128, "block_m": 64, "block_n": 128, "q_tiles": 2, "dtype": "bf16"}


def test_non_causal_ctas_visit_every_key_block():
    g = launch({"batch": 2, "heads": 16, "seqlen": 4096, "head_dim": 128}, TILE, 132)
    assert g.grid == (32, 16, 2) and set(g.trips) == {32}
    assert g.flops == 4 * 2 * 16 * 4096 * 4096 * 128


def test_causal_ctas_stop_at_their_diagonal_and_do_about_half_the_work():
    shape = {"batch": 1, "heads": 1, "seqlen": 4096, "head_dim": 128}
    g = launch(shape, {**TILE, "causal": True}, 132)
    assert g.trips[0] == 1 and g.trips[-1] == 32 and list(g.trips) == sorted(g.trips)
    full = launch(shape, TILE, 132)
    assert abs(g.flops / full.flops - 0.5) < 0.01
    # bottom-right aligned: with more keys than queries every row sees the extra keys
    assert key_blocks(0, 128, 1024, 2048, 128, True) == 9
