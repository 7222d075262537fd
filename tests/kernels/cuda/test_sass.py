"""Reading SASS: the control-flow graph, each consumer's steady-state trip, the token's first pass."""

from __future__ import annotations

from warpsched.kernels.cuda import sass
from tests.kernels.conftest import function, two_consumers


def test_parse_reads_addresses_predicates_and_modifiers():
    code = sass.parse(function(["@!P1 BRA 0x0", "HGMMA.64x176x16.F32.BF16 R24, gdesc[UR4], R24, gsb0"]), "k")
    assert code[0].predicate == "@!P1" and code[0].branch_target() == 0
    assert code[1].mma_shape() == (64, 176, 16) and code[1].commits and not code[1].registers_a


def test_each_consumer_gets_its_own_steady_trip_without_retries_or_branches():
    loops = sass.steady_loops(sass.parse(two_consumers(mmas=3), "k"))
    assert len(loops) == 2
    for lp in loops:
        ops = [i.base for i in lp.body]
        assert ops.count("HGMMA") == 3 and ops.count("SYNCS") == 1  # the retry is not taken
        assert "BRA" not in ops and "FFMA" in ops  # the live side of the guard
        assert [i.operands for i in lp.body if i.base == "BAR"] in (
            ["0x8, 0x100", "0x9, 0x100"],
            ["0x9, 0x100", "0x8, 0x100"],
        )
    assert not loops[0].before and [i.operands for i in loops[1].before] == ["0x8, 0x100"]


def test_a_role_ends_where_the_next_setmaxnreg_begins():
    # the producer's code falls through into the first consumer's: it must not own that loop
    loops = sass.steady_loops(sass.parse(two_consumers(), "k"))
    assert [lp.start for lp in loops] == sorted({lp.start for lp in loops}) and len(loops) == 2


def test_an_rs_wgmma_reads_a_from_registers():
    code = sass.parse(function(["HGMMA.64x16x16.F32.BF16 R24, R120, gdesc[UR4], R24"]), "k")
    assert code[0].registers_a and not code[0].commits
