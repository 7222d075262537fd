"""The independent schedule verifier (DESIGN.md section 4).

`verify(schedule)` recomputes, from the schedule file alone, every constraint
family of DESIGN.md section 3.1, the makespan and the optimality claim, and
returns a `Verdict` whose first violation is named precisely.

This module shares no code with the solver: it imports only the standard
library and `scheduler.errors` (and, lazily, `scheduler.schedule.to_json` to
turn a `Schedule` object into the dict it would be written as). Everything,
including ResMII and RecMII, is recomputed here from scratch.

Violations are reported in a fixed order: structure, then families (1) to (5),
then objectives, then the claims (MII and proof of optimality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from warpsched.scheduler.errors import InputError

FORMAT = "warpsched.schedule/1"
MODES = ("joint", "swp", "ws", "heuristic", "classic")
SPACES = ("none", "regs", "smem")
_MISSING = object()


@dataclass(frozen=True)
class Verdict:
    """The verifier's answer; truthy iff the schedule satisfies every check."""

    ok: bool
    violations: tuple[str, ...]  # sentences, first violation first (structure, (1)..(5), objectives, claims)
    makespan: int  # recomputed max(start + latency) - min(start)
    smem_bytes: (
        int  # recomputed sum over the written buffers of depth * (bytes + ring_slot_overhead); 0 in classic
    )
    register_need: dict[int, int] = field(
        default_factory=dict
    )  # used warpgroup -> reserved + max live; {} in classic

    def __bool__(self) -> bool:
        return self.ok


# --------------------------------------------------------------------------
# Reading the file into plain records (nothing shared with scheduler.ir).
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    name: str
    unit: str
    latency: int
    occupancy: int
    issue: int
    bytes: int
    space: str
    regs_per_thread: int
    variable_latency: bool


@dataclass(frozen=True)
class _Edge:
    src: str
    dst: str
    distance: int
    delay: int

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} (distance {self.distance}, delay {self.delay})"


@dataclass(frozen=True)
class _Machine:
    name: str
    units: dict[str, int | None]  # None: unlimited
    sync_latency: int = 0
    smem_bytes: int = 0
    smem_bytes_per_cycle: int = 1
    ring_slot_overhead: int = 0
    register_file: int = 0
    reg_min: int = 0
    reg_max: int = 0
    reg_step: int = 1
    reg_reserved: int = 0
    max_warpgroups: int = 0
    warpgroup_threads: int = 0


@dataclass(frozen=True)
class _Placement:
    start: int
    stage: int
    row: int
    warpgroup: Any  # int, None, or missing (None)


@dataclass(frozen=True)
class _Warpgroup:
    role: str
    registers: int
    ops: tuple[str, ...] | None


@dataclass(frozen=True)
class _Buffer:
    kind: str
    depth: int
    bytes: int


@dataclass(frozen=True)
class _Attempt:
    ii: int
    ii_max: int
    status: str
    bound: float | None
    found_ii: int | None


@dataclass
class _File:
    mode: str
    classic: bool
    ii: int
    machine: _Machine
    ops: list[_Op]
    op: dict[str, _Op]
    edges: list[_Edge]
    placements: dict[str, _Placement]
    warpgroups: dict[int, _Warpgroup]
    buffers: dict[str, _Buffer]
    smem_bytes: int
    reserved_smem: int
    makespan: int
    stages: int | None
    mii: int
    res_mii: int
    rec_mii: int
    proven: bool
    attempts: list[_Attempt]
    # Derived from placements: the start and warpgroup of every placed graph op.
    t: dict[str, int] = field(default_factory=dict)
    g: dict[str, int | None] = field(default_factory=dict)


def _fail(what: str) -> InputError:
    return InputError(f"{what}; regenerate the schedule with warpsched solve")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _take(
    d: dict, key: str, where: str, kind: str, default: Any = _MISSING, minimum: int | None = None
) -> Any:
    """d[key] checked to be of `kind` (int, str, bool, dict, list) and >= `minimum`; InputError otherwise."""
    if key not in d:
        if default is _MISSING:
            raise _fail(f"{where} has no {key!r}")
        return default
    v = d[key]
    ok = {
        "int": _is_int(v),
        "str": isinstance(v, str),
        "bool": isinstance(v, bool),
        "dict": isinstance(v, dict),
        "list": isinstance(v, list),
    }[kind]
    if not ok:
        raise _fail(f"{where} has {key} {v!r}, which is not a {'whole number' if kind == 'int' else kind}")
    if minimum is not None and v < minimum:
        raise _fail(f"{where} has {key} {v}, which is below {minimum}")
    return v


def _as_dict(schedule: Any) -> dict:
    if isinstance(schedule, dict):
        return schedule
    from warpsched.scheduler.schedule import Schedule, to_json  # only to write a Schedule object as its dict

    if isinstance(schedule, Schedule):
        return to_json(schedule)
    raise InputError(f"verify() takes a schedule dict or a Schedule, not {type(schedule).__name__}")


def _parse(data: dict) -> _File:
    if data.get("format") != FORMAT:
        raise InputError(
            f"this is not a warpsched schedule (expected format {FORMAT!r}, found {data.get('format')!r})"
        )
    mode = _take(data, "mode", "the schedule", "str")
    # The heuristic on a machine without warpgroups (a HatScheT resource model) is classic IMS.
    classic = mode == "classic" or (
        mode == "heuristic" and not (data.get("machine") or {}).get("max_warpgroups")
    )
    machine = _parse_machine(_take(data, "machine", "the schedule", "dict"), classic)
    ops, edges = _parse_graph(_take(data, "graph", "the schedule", "dict"), classic)
    placements = {}
    for name, p in _take(data, "ops", "the schedule", "dict").items():
        where = f"the placement of op {name!r}"
        if not isinstance(p, dict):
            raise _fail(f"{where} is not a mapping")
        wg = p.get("warpgroup")
        if wg is not None and not _is_int(wg):
            raise _fail(f"{where} has warpgroup {wg!r}, which is not a whole number")
        placements[name] = _Placement(
            _take(p, "start", where, "int"),
            _take(p, "stage", where, "int"),
            _take(p, "row", where, "int"),
            wg,
        )
    warpgroups: dict[int, _Warpgroup] = {}
    buffers: dict[str, _Buffer] = {}
    smem_bytes = 0
    if not classic:
        for key, w in _take(data, "warpgroups", "the schedule", "dict").items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise _fail(
                    f"the schedule's warpgroups has key {key!r}, which is not a warpgroup index"
                ) from None
            where = f"warpgroup {index}"
            if not isinstance(w, dict):
                raise _fail(f"{where} is not a mapping")
            listed = w.get("ops")
            if listed is not None and (
                not isinstance(listed, list) or not all(isinstance(n, str) for n in listed)
            ):
                raise _fail(f"{where} has ops {listed!r}, which is not a list of op names")
            warpgroups[index] = _Warpgroup(
                _take(w, "role", where, "str"),
                _take(w, "registers", where, "int"),
                tuple(listed) if listed is not None else None,
            )
        for name, b in _take(data, "buffers", "the schedule", "dict").items():
            where = f"buffer {name!r}"
            if not isinstance(b, dict):
                raise _fail(f"{where} is not a mapping")
            buffers[name] = _Buffer(
                _take(b, "kind", where, "str"),
                _take(b, "depth", where, "int"),
                _take(b, "bytes", where, "int"),
            )
        smem_bytes = _take(data, "smem_bytes", "the schedule", "int")
    attempts = []
    for i, a in enumerate(_take(data, "attempts", "the schedule", "list")):
        where = f"attempt #{i}"
        if not isinstance(a, dict):
            raise _fail(f"{where} is not a mapping")
        a_ii = _take(a, "ii", where, "int")
        bound = a.get("bound")
        if bound is not None and not (
            (_is_int(bound) or isinstance(bound, float)) and not isinstance(bound, bool)
        ):
            raise _fail(f"{where} has bound {bound!r}, which is not a number")
        found = a.get("found_ii")
        if found is not None and not _is_int(found):
            raise _fail(f"{where} has found_ii {found!r}, which is not a whole number")
        attempts.append(
            _Attempt(
                a_ii,
                _take(a, "ii_max", where, "int", default=a_ii),
                _take(a, "status", where, "str"),
                bound,
                found,
            )
        )
    stages = data.get("stages")
    if stages is not None and not _is_int(stages):
        raise _fail(f"the schedule has stages {stages!r}, which is not a whole number")
    f = _File(
        mode=mode,
        classic=classic,
        ii=_take(data, "ii", "the schedule", "int"),
        machine=machine,
        ops=ops,
        op={o.name: o for o in ops},
        edges=edges,
        placements=placements,
        warpgroups=warpgroups,
        buffers=buffers,
        smem_bytes=smem_bytes,
        reserved_smem=_take(
            data["graph"], "reserved_smem", "the schedule's graph", "int", default=0, minimum=0
        ),
        makespan=_take(data, "makespan", "the schedule", "int"),
        stages=stages,
        mii=_take(data, "mii", "the schedule", "int"),
        res_mii=_take(data, "res_mii", "the schedule", "int"),
        rec_mii=_take(data, "rec_mii", "the schedule", "int"),
        proven=_take(data, "ii_proven_optimal", "the schedule", "bool"),
        attempts=attempts,
    )
    for o in ops:
        if o.name in placements:
            f.t[o.name] = placements[o.name].start
            f.g[o.name] = None if classic else placements[o.name].warpgroup
    return f


def _parse_machine(m: dict, classic: bool) -> _Machine:
    where = "the schedule's machine"
    units: dict[str, int | None] = {}
    for unit, cap in _take(m, "units", where, "dict").items():
        if cap is None or cap == -1 or cap == "unlimited":
            units[str(unit)] = None
        elif _is_int(cap) and cap >= 0:
            units[str(unit)] = cap
        else:
            raise _fail(
                f"{where} gives unit {unit!r} capacity {cap!r}; it must be a whole number >= 0 or null "
                "(unlimited)"
            )
    name = str(m.get("name", "?"))
    if classic:  # (1) and (2) only: the units are all that is read
        return _Machine(name, units)
    regs = _take(m, "registers", where, "dict")
    num = {
        k: _take(m, k, where, "int", minimum=0)
        for k in ("sync_latency", "smem_bytes", "ring_slot_overhead", "register_file", "max_warpgroups")
    }
    return _Machine(
        name,
        units,
        **num,
        smem_bytes_per_cycle=_take(m, "smem_bytes_per_cycle", where, "int", minimum=1),
        warpgroup_threads=_take(m, "warpgroup_threads", where, "int", minimum=1),
        reg_min=_take(regs, "min", f"{where}'s registers", "int", minimum=0),
        reg_max=_take(regs, "max", f"{where}'s registers", "int", minimum=0),
        reg_step=_take(regs, "step", f"{where}'s registers", "int", minimum=1),
        reg_reserved=_take(regs, "reserved", f"{where}'s registers", "int", minimum=0),
    )


def _parse_graph(graph: dict, classic: bool) -> tuple[list[_Op], list[_Edge]]:
    ops: list[_Op] = []
    seen: set[str] = set()
    for i, o in enumerate(_take(graph, "ops", "the schedule's graph", "list")):
        if not isinstance(o, dict):
            raise _fail(f"graph op #{i} is not a mapping")
        name = _take(o, "name", f"graph op #{i}", "str")
        where = f"graph op {name!r}"
        if name in seen:
            raise _fail(f"the graph names op {name!r} twice")
        seen.add(name)
        # Outside classic every field is read; classic reads only name, unit, latency, occupancy.
        opt = (
            {}
            if not classic
            else {"issue": 0, "bytes": 0, "space": "none", "regs_per_thread": 0, "variable_latency": False}
        )
        space = _take(o, "space", where, "str", default=opt.get("space", _MISSING))
        if space not in SPACES:
            raise _fail(f"{where} keeps its value in {space!r}, not one of {', '.join(SPACES)}")
        ops.append(
            _Op(
                name=name,
                unit=_take(o, "unit", where, "str"),
                latency=_take(o, "latency", where, "int", minimum=0),
                occupancy=_take(o, "occupancy", where, "int", minimum=0),
                issue=_take(o, "issue", where, "int", default=opt.get("issue", _MISSING), minimum=0),
                bytes=_take(o, "bytes", where, "int", default=opt.get("bytes", _MISSING), minimum=0),
                space=space,
                regs_per_thread=_take(
                    o,
                    "regs_per_thread",
                    where,
                    "int",
                    default=opt.get("regs_per_thread", _MISSING),
                    minimum=0,
                ),
                variable_latency=_take(
                    o, "variable_latency", where, "bool", default=opt.get("variable_latency", _MISSING)
                ),
            )
        )
    edges = []
    for i, e in enumerate(_take(graph, "edges", "the schedule's graph", "list")):
        if not isinstance(e, dict):
            raise _fail(f"graph edge #{i} is not a mapping")
        where = f"graph edge #{i}"
        src, dst = _take(e, "src", where, "str"), _take(e, "dst", where, "str")
        for end in (src, dst):
            if end not in seen:
                raise _fail(f"graph edge {src} -> {dst} names op {end!r}, which is not in the graph")
        edges.append(
            _Edge(
                src,
                dst,
                _take(e, "distance", where, "int", minimum=0),
                _take(e, "delay", where, "int", default=0),
            )
        )
    return ops, edges


# --------------------------------------------------------------------------
# Small arithmetic shared by the families.
# --------------------------------------------------------------------------


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _folded(t: int, length: int, ii: int, x: int) -> int:
    """#{j in [0, length) : (t + j) % ii == x}."""
    if length <= 0:
        return 0
    return length // ii + (1 if (x - t) % ii < length % ii else 0)


def _row_load(ii: int, items) -> list[int]:
    """Per row x, the sum of weight * _folded(t, length, ii, x) over (t, length, weight) items (difference
    array)."""
    base = 0
    diff = [0] * (ii + 1)
    for t, length, w in items:
        if length <= 0 or w == 0:
            continue
        base += w * (length // ii)
        r, rem = t % ii, length % ii
        if rem:
            diff[r] += w
            if r + rem <= ii:
                diff[r + rem] -= w
            else:
                diff[ii] -= w
                diff[0] += w
                diff[r + rem - ii] -= w
    out, run = [], base
    for x in range(ii):
        run += diff[x]
        out.append(run)
    return out


def _names(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _staging_cycles(f: _File, u: _Op) -> int:
    return _ceil_div(2 * u.bytes, f.machine.smem_bytes_per_cycle)


def _handoff(f: _File, e: _Edge) -> int:
    """h_e: 0 on one warpgroup (always in classic), else sync_latency (+ staging for a regs value)."""
    if f.classic or f.g[e.src] == f.g[e.dst]:
        return 0
    u = f.op[e.src]
    return f.machine.sync_latency + (_staging_cycles(f, u) if u.space == "regs" else 0)


def _placed_edges(f: _File) -> list[_Edge]:
    return [e for e in f.edges if e.src in f.t and e.dst in f.t]


def _used_warpgroups(f: _File) -> dict[int, list[str]]:
    used: dict[int, list[str]] = {}
    for o in f.ops:
        g = f.g.get(o.name)
        if g is not None:
            used.setdefault(g, []).append(o.name)
    return dict(sorted(used.items()))


# --------------------------------------------------------------------------
# Structure: placements, stage/row, mode, warpgroup indices, units.
# --------------------------------------------------------------------------


def _check_structure(f: _File, out: list[str]) -> None:
    if f.mode not in MODES:
        out.append(f"mode {f.mode!r} is not one of {', '.join(MODES)}")
    if f.ii < 1:
        out.append(f"ii is {f.ii}; the initiation interval must be at least 1")
    for o in f.ops:
        if o.name not in f.placements:
            out.append(f"op {o.name} has no placement in ops")
    for name in f.placements:
        if name not in f.op:
            out.append(f"ops places {name!r}, which is not an op of the graph")
    for o in f.ops:
        p = f.placements.get(o.name)
        if p is None:
            continue
        if p.start < 0:
            out.append(f"op {o.name} starts at {p.start}; starts must be >= 0")
        if f.ii >= 1 and (p.stage, p.row) != (p.start // f.ii, p.start % f.ii):
            out.append(
                f"op {o.name} starts at {p.start} with II {f.ii}, so its stage is {p.start // f.ii} and row "
                f"{p.start % f.ii}, but the file says stage {p.stage} and row {p.row}"
            )
        if f.classic:
            if p.warpgroup is not None:
                out.append(f"op {o.name} has warpgroup {p.warpgroup}, but mode classic has no warpgroups")
        elif p.warpgroup is None:
            out.append(f"op {o.name} has no warpgroup (mode {f.mode} places every op on one)")
        elif not 0 <= p.warpgroup < f.machine.max_warpgroups:
            out.append(
                f"op {o.name} is on warpgroup {p.warpgroup}, outside [0, {f.machine.max_warpgroups}) "
                f"of machine {f.machine.name}"
            )
        if o.unit not in f.machine.units:
            out.append(f"op {o.name} uses unit {o.unit!r}, which machine {f.machine.name} does not have")


# --------------------------------------------------------------------------
# (1) dependences: t_v + II*d >= t_u + latency_u + delay + h_e.
# --------------------------------------------------------------------------


def _check_dependences(f: _File, out: list[str]) -> None:
    for e in _placed_edges(f):
        h = _handoff(f, e)
        have = f.t[e.dst] + f.ii * e.distance
        need = f.t[e.src] + f.op[e.src].latency + e.delay + h
        if have < need:
            via = f" + hand-off {h} (warpgroup {f.g[e.src]} to {f.g[e.dst]})" if h else ""
            out.append(
                f"dependence {e} is violated: {e.dst} at {f.t[e.dst]} + II {f.ii} * {e.distance} = {have} "
                f"< {e.src} at {f.t[e.src]} + latency {f.op[e.src].latency} + delay {e.delay}{via} = {need}"
            )


# --------------------------------------------------------------------------
# (2) modulo unit capacity, occupancy folded onto rows.
# --------------------------------------------------------------------------


def _check_unit_capacity(f: _File, out: list[str]) -> None:
    for unit, cap in f.machine.units.items():
        if cap is None:
            continue
        on = [o for o in f.ops if o.unit == unit and o.name in f.t and o.occupancy > 0]
        load = _row_load(f.ii, ((f.t[o.name], o.occupancy, 1) for o in on))
        _report_rows(
            f,
            out,
            load,
            cap,
            on,
            lambda o: o.occupancy,
            f"unit {unit} (capacity {cap})",
            "cycles of occupancy",
        )


def _report_rows(
    f: _File, out: list[str], load: list[int], cap: int, on: list[_Op], length, what: str, cycles: str
) -> None:
    """One sentence for the first row over `cap`, naming the ops there and how many other rows overflow."""
    over = [x for x in range(f.ii) if load[x] > cap]
    if not over:
        return
    x = over[0]
    parts = [f"{o.name} ({n})" for o in on if (n := _folded(f.t[o.name], length(o), f.ii, x))]
    more = f" (and {len(over) - 1} more row{'s' if len(over) > 2 else ''})" if len(over) > 1 else ""
    out.append(
        f"{what} is over capacity at row {x} of II {f.ii}: {load[x]} {cycles} from {_names(parts)}{more}"
    )


# --------------------------------------------------------------------------
# (3) warpgroup issue: capacity 1 per warpgroup, issue cycles folded onto rows.
# --------------------------------------------------------------------------


def _check_issue(f: _File, out: list[str]) -> None:
    for g, names in _used_warpgroups(f).items():
        on = [f.op[n] for n in names if f.op[n].issue > 0]
        load = _row_load(f.ii, ((f.t[o.name], o.issue, 1) for o in on))
        _report_rows(
            f, out, load, 1, on, lambda o: o.issue, f"the issue slot of warpgroup {g}", "issue cycles"
        )


# --------------------------------------------------------------------------
# (4) placement: variable-latency isolation; swp: one warpgroup; ws: one stage.
# --------------------------------------------------------------------------


def _check_placement(f: _File, out: list[str]) -> None:
    for g, names in _used_warpgroups(f).items():
        vl = [n for n in names if f.op[n].variable_latency]
        fixed = [n for n in names if not f.op[n].variable_latency]
        if vl and fixed:
            out.append(
                f"warpgroup {g} holds variable-latency op(s) {_names(vl)} beside fixed-latency op(s) "
                f"{_names(fixed)}; a warpgroup with a variable-latency op holds nothing else"
            )
    placed = [o for o in f.ops if o.name in f.t]
    if f.mode == "swp":
        by_wg: dict[Any, list[str]] = {}
        for o in placed:
            if not o.variable_latency:
                by_wg.setdefault(f.g[o.name], []).append(o.name)
        if len(by_wg) > 1:
            parts = [f"{names[0]} on {g}" for g, names in by_wg.items()]
            out.append(
                f"mode swp puts every fixed-latency op on one warpgroup, but they use warpgroups "
                f"{_names([str(g) for g in by_wg])} ({_names(parts)})"
            )
    if f.mode == "ws":
        has_in = {e.dst for e in f.edges}
        rest = [o.name for o in placed if not (o.variable_latency and o.name not in has_in)]
        if rest:
            first = rest[0]
            for n in rest[1:]:
                if f.t[n] // f.ii != f.t[first] // f.ii:
                    out.append(
                        f"mode ws keeps every non-streaming op in one stage, but {first} is in stage "
                        f"{f.t[first] // f.ii} and {n} in stage {f.t[n] // f.ii}"
                    )
                    break


# --------------------------------------------------------------------------
# (5a) registers: need per warpgroup, setmaxnreg budgets, register file, roles.
# --------------------------------------------------------------------------


def _register_lifetimes(f: _File) -> dict[str, int]:
    """L_u for every placed `regs` value u."""
    out_edges: dict[str, list[_Edge]] = {}
    for e in _placed_edges(f):
        out_edges.setdefault(e.src, []).append(e)
    lifetimes = {}
    for u in f.ops:
        if u.space != "regs" or u.name not in f.t:
            continue
        tu, gu = f.t[u.name], f.g[u.name]
        consumers = out_edges.get(u.name, [])
        end = tu + u.latency
        if any(f.g[e.dst] != gu for e in consumers):
            end += _staging_cycles(f, u)
        for e in consumers:
            if f.g[e.dst] == gu:
                end = max(end, f.t[e.dst] + f.ii * e.distance)
        lifetimes[u.name] = end - tu
    return lifetimes


def _check_registers(f: _File, out: list[str]) -> dict[int, int]:
    m = f.machine
    lifetimes = _register_lifetimes(f)
    used = _used_warpgroups(f)
    need: dict[int, int] = {}
    for g, names in used.items():
        values = [f.op[n] for n in names if n in lifetimes and f.op[n].regs_per_thread > 0]
        load = _row_load(f.ii, ((f.t[o.name], lifetimes[o.name], o.regs_per_thread) for o in values))
        live = max(load, default=0)
        need[g] = m.reg_reserved + live
        w = f.warpgroups.get(g)
        if w is None:
            out.append(f"warpgroup {g} holds {_names(names)} but has no entry in warpgroups")
            continue
        legal = m.reg_min <= w.registers <= m.reg_max and (w.registers - m.reg_min) % m.reg_step == 0
        if not legal:
            out.append(
                f"warpgroup {g} has register budget {w.registers}, which is not a setmaxnreg value "
                f"({m.reg_min}..{m.reg_max} in steps of {m.reg_step})"
            )
        if w.registers < need[g]:
            x = load.index(live) if values else 0
            parts = [
                f"{o.name} {o.regs_per_thread}x{n}"
                for o in values
                if (n := _folded(f.t[o.name], lifetimes[o.name], f.ii, x))
            ]
            at = f" + {live} live at row {x}: {_names(parts)}" if parts else ""
            out.append(
                f"warpgroup {g} has register budget {w.registers} but needs {need[g]} "
                f"({m.reg_reserved} reserved{at})"
            )
        if w.ops is not None and sorted(w.ops) != sorted(names):
            out.append(
                f"warpgroup {g} lists ops {_names(sorted(w.ops)) if w.ops else 'none'} but holds "
                f"{_names(sorted(names))}"
            )
    budgets = {g: f.warpgroups[g].registers for g in used if g in f.warpgroups}
    total = sum(budgets.values()) * m.warpgroup_threads
    if total > m.register_file:
        out.append(
            f"the used warpgroups' budgets {' + '.join(map(str, budgets.values()))} times "
            f"{m.warpgroup_threads} threads need {total} registers, more than the register file's "
            f"{m.register_file}"
        )
    for g, names in used.items():  # roles
        role = "producer" if all(f.op[n].variable_latency for n in names) else "consumer"
        if g in f.warpgroups and f.warpgroups[g].role != role:
            why = "only variable-latency ops" if role == "producer" else "a fixed-latency op"
            out.append(f"warpgroup {g} has role {f.warpgroups[g].role!r} but holds {why}, so it is a {role}")
    return need


# --------------------------------------------------------------------------
# (5b) shared memory: the required rings and staging buffers, depths, total.
# --------------------------------------------------------------------------


def _required_buffers(f: _File) -> dict[str, tuple[str, list[_Edge]]]:
    """value -> (kind, the ring's consumer edges) for every buffer 3.1 requires."""
    out_edges: dict[str, list[_Edge]] = {}
    for e in _placed_edges(f):
        out_edges.setdefault(e.src, []).append(e)
    req: dict[str, tuple[str, list[_Edge]]] = {}
    for u in f.ops:
        if u.name not in f.t:
            continue
        consumers = out_edges.get(u.name, [])
        if u.space == "smem" and u.bytes > 0:
            req[u.name] = ("ring", consumers)
        elif u.space == "regs":
            crossing = [e for e in consumers if f.g[e.dst] != f.g[u.name]]
            if crossing:
                req[u.name] = ("staging", crossing)
    return req


def _hold(f: _File, u: str, consumers: list[_Edge]) -> tuple[int, str | None]:
    """Cycles a slot is held from t_u, and the consumer that holds it longest."""
    best, who = 0, None
    for e in consumers:
        sync = f.machine.sync_latency if f.g[e.dst] != f.g[u] else 0
        end = f.t[e.dst] + f.ii * e.distance + f.op[e.dst].latency + sync
        if end - f.t[u] > best:
            best, who = end - f.t[u], e.dst
    return best, who


def _check_shared_memory(f: _File, out: list[str]) -> int:
    m = f.machine
    req = _required_buffers(f)
    for u, (kind, consumers) in req.items():
        b = f.buffers.get(u)
        op = f.op[u]
        if b is None:
            out.append(
                f"value {u} needs a {kind} buffer ({op.space}, {op.bytes} bytes) but buffers has no entry "
                "for it"
            )
            continue
        if b.kind != kind:
            out.append(f"buffer {u} has kind {b.kind!r} but must be {kind!r}")
        if b.bytes != op.bytes:
            out.append(f"buffer {u} has {b.bytes} bytes per slot but op {u} produces {op.bytes}")
        hold, who = _hold(f, u, consumers)
        depth = max(1, _ceil_div(hold, f.ii))
        if b.depth < depth:
            by = f" (until {who} is done)" if who else ""
            out.append(
                f"buffer {u} has depth {b.depth} but a slot is held {hold} cycles{by}, which at II {f.ii} "
                f"needs depth >= {depth}"
            )
    for u in f.buffers:
        if u not in req:
            out.append(f"buffer {u} is not needed: {_why_no_buffer(f, u)}")
    total = f.reserved_smem + sum(
        b.depth * ((f.op[u].bytes if u in f.op else b.bytes) + m.ring_slot_overhead)
        for u, b in f.buffers.items()
    )
    if f.smem_bytes != total:
        out.append(
            f"smem_bytes is {f.smem_bytes} but the buffers take {total} bytes "
            f"({f.reserved_smem} reserved outside the loop + sum of depth * (bytes + {m.ring_slot_overhead}))"
        )
    if total > m.smem_bytes:
        out.append(
            f"the buffers take {total} bytes of shared memory, more than machine {m.name}'s {m.smem_bytes}"
        )
    return total


def _why_no_buffer(f: _File, u: str) -> str:
    if u not in f.op:
        return "it is not an op of the graph"
    op = f.op[u]
    if op.space == "smem":
        return f"op {u} produces 0 bytes"
    if op.space == "regs":
        return f"regs value {u} has no consumer on another warpgroup"
    return f"op {u} produces no value (space none)"


# --------------------------------------------------------------------------
# Objectives: the makespan (and the stage count, when written).
# --------------------------------------------------------------------------


def _makespan(f: _File) -> int:
    """Iteration latency: from the first start to the last result, max(start + latency) - min(start)."""
    placed = [o for o in f.ops if o.name in f.t]
    if not placed:
        return 0
    return max(f.t[o.name] + o.latency for o in placed) - min(f.t[o.name] for o in placed)


def _check_objectives(f: _File, out: list[str]) -> int:
    makespan = _makespan(f)
    if f.makespan != makespan:
        last = max((o for o in f.ops if o.name in f.t), key=lambda o: f.t[o.name] + o.latency, default=None)
        by = f" ({last.name} at {f.t[last.name]} + latency {last.latency})" if last else ""
        out.append(
            f"makespan is written as {f.makespan} but max(start + latency) - min(start) is {makespan}{by}"
        )
    if f.stages is not None and f.t and f.ii >= 1:
        stages = [s // f.ii for s in f.t.values()]
        if f.stages != max(stages) - min(stages) + 1:
            out.append(
                f"stages is written as {f.stages} but the ops span {max(stages) - min(stages) + 1} stages"
            )
    return makespan


# --------------------------------------------------------------------------
# Claims: ResMII, RecMII, MII and the proof of optimality.
# --------------------------------------------------------------------------


def _res_mii(f: _File) -> int:
    """max(1, max over finite-capacity units of ceil(total occupancy / capacity)).

    Units of capacity 0 are left out: an op on one already breaks (2) at every II.
    """
    load: dict[str, int] = {}
    for o in f.ops:
        load[o.unit] = load.get(o.unit, 0) + o.occupancy
    best = 1
    for unit, total in load.items():
        cap = f.machine.units.get(unit)
        if cap:
            best = max(best, _ceil_div(total, cap))
    return best


def _rec_mii(ops: list[_Op], edges: list[_Edge]) -> tuple[int | None, list[str]]:
    """(RecMII, a critical cycle): the least II >= 1 with no cycle of positive weight
    latency_src + delay - II * distance, i.e. max(1, max over cycles of ceil(sum(latency + delay) /
    sum(distance))).

    None when a cycle of zero distance has positive weight (no II is feasible).
    """
    index = {o.name: i for i, o in enumerate(ops)}
    lat = [o.latency for o in ops]
    arcs = [(index[e.src], index[e.dst], lat[index[e.src]] + e.delay, e.distance) for e in edges]
    comp = _components(len(ops), [(u, v) for u, v, _, _ in arcs])
    arcs = [
        a for a in arcs if comp[a[0]] == comp[a[1]]
    ]  # only edges inside a strongly connected component lie on cycles
    if not arcs:
        return 1, []
    n = len(ops)
    top = max(1, sum(max(0, w) for _, _, w, _ in arcs))  # every cycle with distance >= 1 is satisfied here
    if _has_positive_cycle(n, arcs, top):
        return None, [ops[i].name for i in _positive_cycle(n, arcs, top)]
    if not _has_positive_cycle(n, arcs, 1):
        return 1, []
    lo, hi = 1, top  # lo has a positive cycle, hi has none
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _has_positive_cycle(n, arcs, mid):
            lo = mid
        else:
            hi = mid
    return hi, [ops[i].name for i in _positive_cycle(n, arcs, lo)]


def _components(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Strongly connected component id of every node (iterative Tarjan)."""
    succ: list[list[int]] = [[] for _ in range(n)]
    for u, v in pairs:
        succ[u].append(v)
    order, low, comp = [-1] * n, [0] * n, [-1] * n
    stack: list[int] = []
    on_stack = [False] * n
    counter = ncomp = 0
    for root in range(n):
        if order[root] != -1:
            continue
        work = [(root, 0)]
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, i = work[-1]
            if i < len(succ[v]):
                work[-1] = (v, i + 1)
                w = succ[v][i]
                if order[w] == -1:
                    order[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], order[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == order[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return comp


def _relax(
    n: int, arcs: list[tuple[int, int, int, int]], ii: int, rounds: int, dist: list[int], pred: list[int]
) -> bool:
    """Up to `rounds` Bellman-Ford rounds for longest paths under weights w - ii * d; True if still
    relaxing."""
    weighted = [(u, v, w - ii * d) for u, v, w, d in arcs]
    for _ in range(rounds):
        changed = False
        for u, v, w in weighted:
            if dist[u] + w > dist[v]:
                dist[v] = dist[u] + w
                pred[v] = u
                changed = True
        if not changed:
            return False
    return True


def _has_positive_cycle(n: int, arcs: list[tuple[int, int, int, int]], ii: int) -> bool:
    """Is there a cycle of positive weight latency + delay - ii * distance?

    Longest paths from a virtual source (every dist starts at 0) settle within n rounds iff there is none.
    """
    return _relax(n, arcs, ii, n, [0] * n, [-1] * n)


def _positive_cycle(n: int, arcs: list[tuple[int, int, int, int]], ii: int) -> list[int]:
    """A cycle of positive weight (node indices in order) where one exists; [] if none is found.

    Used only to name the cycle in a message: keeps relaxing until the predecessor graph closes a cycle.
    """
    dist, pred = [0] * n, [-1] * n
    if not _relax(n, arcs, ii, n, dist, pred):
        return []
    for _ in range(n + 1):
        cycle = _pred_cycle(pred)
        if cycle:
            return cycle
        if not _relax(n, arcs, ii, 1, dist, pred):
            break
    return []


def _pred_cycle(pred: list[int]) -> list[int]:
    stamp = [-1] * len(pred)
    for root in range(len(pred)):
        v = root
        while v != -1 and stamp[v] == -1:
            stamp[v] = root
            v = pred[v]
        if v != -1 and stamp[v] == root:  # closed a cycle on this walk
            cycle, u = [v], pred[v]
            while u != v:
                cycle.append(u)
                u = pred[u]
            return cycle[::-1]
    return []


def _check_claims(f: _File, out: list[str]) -> None:
    res = _res_mii(f)
    rec, cycle = _rec_mii(f.ops, f.edges)
    around = f" (cycle {' -> '.join(cycle + cycle[:1])})" if cycle else ""
    if rec is None:
        out.append(f"a dependence cycle of zero distance has positive latency{around}, so no II is feasible")
        return
    mii = max(1, res, rec)
    if f.res_mii != res:
        out.append(f"res_mii is written as {f.res_mii} but the units' occupancy gives ResMII {res}")
    if f.rec_mii != rec:
        out.append(f"rec_mii is written as {f.rec_mii} but the dependence cycles give RecMII {rec}{around}")
    if f.mii != mii:
        out.append(f"mii is written as {f.mii} but max(1, ResMII {res}, RecMII {rec}) is {mii}")
    if f.ii < mii:
        out.append(f"II {f.ii} is below the lower bound MII {mii}, so the schedule cannot be valid")
    for a in f.attempts:
        if a.status == "INFEASIBLE" and a.ii <= f.ii <= a.ii_max:
            out.append(
                f"the attempt over II {a.ii}..{a.ii_max} is INFEASIBLE, yet this schedule has II {f.ii}"
            )
    if f.proven:
        _check_proof(f, mii, out)


def _covered(a: _Attempt) -> range:
    """The IIs an attempt proves infeasible."""
    if a.status == "INFEASIBLE":
        return range(a.ii, a.ii_max + 1)
    if a.found_ii is not None and a.bound is not None and math.isfinite(a.bound):
        return range(a.ii, min(math.ceil(a.bound) - 1, a.ii_max) + 1)
    return range(0)


def _check_proof(f: _File, mii: int, out: list[str]) -> None:
    """ii_proven_optimal: every candidate in [mii, ii) must be proven infeasible."""
    covered = sorted((r.start, r.stop) for a in f.attempts if (r := _covered(a)))
    x, gaps = mii, []
    for lo, hi in covered:  # walk the union of [lo, hi) from mii up to ii
        if x >= f.ii:
            break
        if lo > x:
            gaps.append((x, min(lo, f.ii) - 1))
        x = max(x, hi)
    if x < f.ii:
        gaps.append((x, f.ii - 1))
    for lo, hi in gaps:
        span = f"II {lo}" if lo == hi else f"IIs {lo}..{hi}"
        tried = [f"{a.ii}..{a.ii_max} ended {a.status}" for a in f.attempts if a.ii <= hi and a.ii_max >= lo]
        why = f" (attempt {'; '.join(tried)})" if tried else " (no attempt tried it)"
        out.append(f"ii_proven_optimal is true but no attempt proves {span} infeasible{why}")


# --------------------------------------------------------------------------
# The entry point.
# --------------------------------------------------------------------------


def verify(schedule: Any) -> Verdict:
    """Check a schedule (a parsed JSON dict or a `Schedule`) against DESIGN.md 3.1.

    Raises `InputError` when the file is malformed (a missing field, a wrong type).
    """
    f = _parse(_as_dict(schedule))
    out: list[str] = []
    _check_structure(f, out)
    if f.ii < 1:
        return Verdict(False, tuple(out), _makespan(f), 0, {})
    _check_dependences(f, out)  # (1)
    _check_unit_capacity(f, out)  # (2)
    need: dict[int, int] = {}
    smem = 0
    if not f.classic:
        _check_issue(f, out)  # (3)
        _check_placement(f, out)  # (4)
        need = _check_registers(f, out)  # (5a)
        smem = _check_shared_memory(f, out)  # (5b)
    makespan = _check_objectives(f, out)
    _check_claims(f, out)
    return Verdict(not out, tuple(out), makespan, smem, need)
