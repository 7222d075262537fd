"""The attention family's grid for a call shape: causal CTAs visit only the key blocks up to their rows."""

from __future__ import annotations

from warpsched.kernels.families.attention.geometry import CAUSAL_GROUP, key_blocks, launch, launch_order

TILE = {"head_dim": 128, "block_m": 64, "block_n": 128, "q_tiles": 2, "dtype": "bf16"}


def test_non_causal_ctas_visit_every_key_block():
    g = launch({"batch": 2, "heads": 16, "seqlen": 4096, "head_dim": 128}, TILE, 132)
    assert g.grid == (32, 16, 2) and set(g.trips) == {32}
    assert g.flops == 4 * 2 * 16 * 4096 * 4096 * 128


def test_causal_ctas_stop_at_their_diagonal_and_do_about_half_the_work():
    shape = {"batch": 1, "heads": 1, "seqlen": 4096, "head_dim": 128}
    g = launch(shape, {**TILE, "causal": True}, 132)
    assert g.trips[0] == 32 and g.trips[-1] == 1  # launched longest first
    full = launch(shape, TILE, 132)
    assert abs(g.flops / full.flops - 0.5) < 0.01
    # bottom-right aligned: with more keys than queries every row sees the extra keys
    assert key_blocks(0, 128, 1024, 2048, 128, True) == 9


def test_causal_ctas_start_longest_first_in_groups_of_heads():
    g = launch({"batch": 1, "heads": 1, "seqlen": 4096, "head_dim": 128}, {**TILE, "causal": True}, 132)
    assert list(g.trips) == sorted(g.trips, reverse=True)  # one head: the longest query tile first
    many = launch({"batch": 2, "heads": 16, "seqlen": 1024, "head_dim": 128}, {**TILE, "causal": True}, 132)
    first = many.trips[: CAUSAL_GROUP * 8]  # the first group's pairs: 8 tiles each, longest first
    assert first == tuple(t for t in range(8, 0, -1) for _ in range(CAUSAL_GROUP))
    legacy = launch(
        {"batch": 1, "heads": 1, "seqlen": 4096, "head_dim": 128}, {**TILE, "causal": True}, 132, True
    )
    assert list(legacy.trips) == sorted(legacy.trips)  # the kernels before 2026-12-08: query tiles ascending


def test_the_kernels_block_mapping_is_launch_order(tmp_path):
    """attention's causal_locals compiled for the host: each linear block index maps to launch_order's
    (query tile, head, batch), every CTA once, including a last group of fewer pairs."""
    import subprocess

    from warpsched.kernels.families.attention.cuda import AttentionCuda

    cases = [(5, 3, 1), (4, 8, 2), (7, 5, 3), (1, 1, 1), (3, 16, 1)]
    program = (
        r"""
#include <cstdio>
#include <algorithm>
using std::min;
struct Dim { int x, y, z; };
constexpr int CAUSAL = 1, Q_TILES = 2, BLOCK_M = 64, BLOCK_N = 64;
void run(int tiles_, int heads_, int batch_) {
  const Dim gridDim{tiles_, heads_, batch_};
  const int heads = heads_, kv_heads = heads_, n_q = tiles_ * 128, n_kv = n_q;
  for (int z = 0; z < batch_; ++z) for (int y = 0; y < heads_; ++y) for (int x = 0; x < tiles_; ++x) {
    const Dim blockIdx{x, y, z};
"""
        + AttentionCuda.causal_locals
        + r"""
    (void)mask_from; (void)kv_head; (void)q_head;
    std::printf("%d %d %d %d\n", linear, q_tile, head, batch);
  }
}
int main() {"""
        + "".join(f" run({t}, {h}, {b});" for t, h, b in cases)
        + " }\n"
    )
    source = tmp_path / "order.cpp"
    source.write_text(program)
    binary = tmp_path / "order"
    subprocess.run(["g++", "-std=c++17", "-o", str(binary), str(source)], check=True, capture_output=True)
    lines = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split("\n")
    at = 0
    for t, h, b in cases:
        got = {}
        for line in lines[at : at + t * h * b]:
            linear, q, head, batch = map(int, line.split())
            got[linear] = (q, head, batch)
        at += t * h * b
        assert [got[i] for i in range(t * h * b)] == launch_order(t, h, b, causal=True)
        assert len(set(got.values())) == t * h * b
