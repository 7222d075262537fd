"""Op builders the kernel models share."""

from __future__ import annotations

from warpsched.models import costs
from warpsched.models.kinds import OpKind
from warpsched.scheduler.ir import Op
from warpsched.scheduler.machine import Machine


def tma_load(machine: Machine, name: str, nbytes: int, reused: bool = True) -> Op:
    """A TMA load of `nbytes` into a shared-memory ring slot, issued by one thread; its latency varies with
    the memory system (`reused`: the bytes come from L2, other CTAs read them too)."""
    return Op(
        name,
        "tma",
        costs.tma_latency(machine, nbytes, reused),
        costs.tma_cycles(machine, nbytes, reused),
        costs.latency(machine, "tma_issue"),
        kind=OpKind.TMA_LOAD,
        issuer="thread",
        bytes=nbytes,
        space="smem",
        variable_latency=True,
    )
