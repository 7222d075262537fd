"""Check that the registers a template shares between values never hand a read the wrong value.

A family's CUDA templates keep several dataflow values in one C++ register array (attention: S and
S * scale - m in `s{t}`, O and its rescaled self in `o{t}`). The schedule, and the register copies the
lowering counts, treat them as separate values; sharing is only sound when, in the order a warpgroup
executes its steps, no other value is written into the array between a value's write and its reads.

`clobbered_reads` replays a warpgroup's steady state (every iteration live, trips in body order, a
step's reads before its writes; a read of another warpgroup's value first copies it in from its staging
ring, into the same array) and reports every read that finds something else there. The replay covers
the trips in which every stage is at work, so ramp-up and drain (a subset of the same steps in the same
order) cannot find anything it does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from warpsched.kernels.program import PipelineProgram
from warpsched.models.kinds import OpKind


@dataclass(frozen=True, order=True)
class Clobber:
    warpgroup: int
    reader: str
    value: str  # what the reader wants
    array: str
    found: str  # what the array holds instead

    def __str__(self) -> str:
        return (
            f"on warpgroup {self.warpgroup}, {self.reader} reads {self.value} from {self.array} after "
            f"{self.found} has overwritten it"
        )


def clobbered_reads(program: PipelineProgram, array_of: Callable[[str], str | None]) -> list[Clobber]:
    """Every read that would see another value: `array_of(value)` names the C++ array holding `value`
    in a warpgroup (None: not in registers, e.g. a TMA ring's shared memory)."""
    problems = []
    for w in program.warpgroups:
        steps = [st for st in w.steps if st.kind != OpKind.TMA_LOAD]
        if not steps:
            continue
        stages = max(st.stage for st in steps) + 1
        held: dict[str, tuple[str, int]] = {}  # array -> (value, iteration) it holds
        for trip in range(3 * stages + 2):
            for st in steps:
                it = trip - st.stage
                for r in st.reads:
                    array, source = array_of(r.value), it - r.distance
                    if array is None or source < 0:
                        continue  # shared memory, or the value's initial contents
                    if r.via == "ring":  # another warpgroup's value, copied in from its staging slot here
                        held[array] = (r.value, source)
                    elif trip >= 2 * stages and held.get(array, (r.value, source)) != (r.value, source):
                        found, when = held[array]
                        later = (
                            "the next iteration's "
                            if when > source
                            else "an earlier iteration's "
                            if when < source
                            else ""
                        )
                        problems.append(Clobber(w.index, st.op, r.value, array, later + found))
                array = array_of(st.op)
                if array is not None:
                    held[array] = (st.op, it)
    return sorted(set(problems))
