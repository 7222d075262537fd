"""Modulo holes on capacity-1 units (implied by (2), used by units.py and the lean classic model):
at a fixed II, op b starts (occupancy_a .. II - occupancy_b) mod II after op a, stated as a domain with
holes on their start difference. Presolve probes far better on such exact domains than on intervals."""

from __future__ import annotations

from ortools.sat.python import cp_model

HOLE_PERIODS_UP_TO = 64  # pairwise holes when a difference spans at most this many periods


def var_bounds(var: cp_model.IntVar) -> tuple[int, int]:
    dom = list(var.proto.domain)
    return dom[0], dom[len(dom) - 1]


def modulo_holes(m: cp_model.CpModel, t: dict, ops, ii: int) -> None:
    """On a capacity-1 unit, op b starts (occupancy_a .. II - occupancy_b) mod II after op a."""
    for i, a in enumerate(ops):
        lo_a, hi_a = var_bounds(t[a.name])
        for b in ops[i + 1 :]:
            lo_b, hi_b = var_bounds(t[b.name])
            d_lo, d_hi = lo_b - hi_a, hi_b - lo_a
            if (d_hi - d_lo) // ii > HOLE_PERIODS_UP_TO:
                continue
            # Trimmed to the reachable differences.
            gaps = [
                [max(d_lo, p * ii + a.occupancy), min(d_hi, p * ii + ii - b.occupancy)]
                for p in range(d_lo // ii - 1, d_hi // ii + 1)
            ]
            m.add_linear_expression_in_domain(
                t[b.name] - t[a.name], cp_model.Domain.from_intervals([g for g in gaps if g[0] <= g[1]])
            )
