"""Op builders the kernel models share."""

from __future__ import annotations

import dataclasses

from warpsched.models import costs
from warpsched.models.kinds import OpKind
from warpsched.scheduler.ir import Edge, Op
from warpsched.scheduler.machine import Machine

# the unit whose shared-memory reads are the async proxy's, as TMA writes them: no fence before a release
ASYNC_READER = "tensor"


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


def charge_ring_sync(machine: Machine, ops: list[Op], edges: list[Edge]) -> list[Op]:
    """`ops` with what reading a TMA ring costs the reading warp (the lowering emits it for every read of
    a load, kernels/cuda/render.py): a wait on the slot's full mbarrier before the op, an arrive on its empty
    one after it, and before that arrive a `fence.proxy.async` unless the op reads in the async proxy
    (wgmma). Issue cycles from the machine's `chip.sync`; the wait also delays the op's result. A machine
    without those numbers charges nothing."""
    sync = machine.sync_costs
    if not sync:
        return ops
    loads = {op.name for op in ops if op.kind == OpKind.TMA_LOAD}
    reads = {}
    for e in edges:
        if e.src in loads and e.distance == 0:
            reads.setdefault(e.dst, set()).add(e.src)
    out = []
    for op in ops:
        n = len(reads.get(op.name, ()))
        if n:
            wait = n * sync.get("mbarrier_wait", 0)
            release = n * (sync.get("arrive", 0) + (0 if op.unit == ASYNC_READER else sync.get("fence", 0)))
            op = dataclasses.replace(op, issue=op.issue + wait + release, latency=op.latency + wait)
        out.append(op)
    return out
