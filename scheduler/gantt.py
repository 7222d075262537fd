"""Text Gantt of one steady-state period: the modulo reservation table (DESIGN.md 3.1).

`render_text(schedule)` is what `warpsched show SCHEDULE.json` prints. The
chart has one lane per functional unit that some op occupies and, when ops
are placed on warpgroups, one lane per warpgroup. Columns are the rows
`0..II-1` of the steady state (scaled down when II is large):

- a unit lane marks rows `(t_v + j) % II` for `j < occupancy_v` (constraint 2);
  a unit of capacity > 1, or an op with occupancy > II, gets sub-lanes so
  that overlapping ops never overwrite each other;
- a warpgroup lane marks the issue rows `(t_v + j) % II`, `j < issue_v`
  (constraint 3), and, in lowercase with a `~` fill, the rows where the
  warpgroup's ops are in flight on their unit (async ops issue in 0 cycles).

A cell reads `TAG+k`: the op with tag TAG, stage `k = t_v // II`. When one
column covers several cycles, it shows the op covering most of it (issuing
beats in flight in a warpgroup lane); `#` marks a tie, a row where a lane
holds more than one op, or the best column of an op that would otherwise
vanish. Output is ASCII, deterministic, and no line is longer than `width`.

`reservation_table(schedule)` returns the same lanes as data, row by row.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.ir import Op
from warpsched.scheduler.schedule import Schedule

__all__ = ["Lane", "MIN_WIDTH", "render_text", "reservation_table", "op_tags"]

MIN_WIDTH = 40
MAX_SUBLANES = 8  # beyond this, a lane's extra ops are merged into its last sub-lane (shown as '#')
IDLE, MIXED, SOLID_FILL, LIGHT_FILL = ".", "#", "=", "~"


@dataclass(frozen=True)
class Lane:
    """One printed lane. `solid[x]` / `light[x]` list the ops at row x.

    For a unit lane `solid` holds the ops occupying the unit (one, unless the
    lane overflowed) and `light` is empty; for a warpgroup lane `solid` holds
    the ops issuing and `light` the ops in flight on their unit.
    """

    label: str
    kind: str  # "unit" or "warpgroup"
    key: str  # the unit's name or the warpgroup's index
    sublane: int
    solid: tuple[tuple[str, ...], ...]
    light: tuple[tuple[str, ...], ...]

    def owner(self, row: int) -> tuple[str, bool] | str | None:
        """(op, in_flight) at `row`, MIXED when several ops issue/occupy it, None when idle."""
        solid = self.solid[row]
        if len(solid) > 1:
            return MIXED
        if solid:
            return (solid[0], False)
        light = self.light[row] if self.light else ()
        return (light[0], True) if light else None


# ---------------------------------------------------------------- tags


def op_tags(ops: tuple[Op, ...] | list[Op]) -> dict[str, str]:
    """A short, unique, upper-case ASCII tag per op name, in op order.

    Names of at most three letters/digits are kept (upper-cased); longer ones
    become the initials of their parts (`load_k` -> `LK`, `wgmma_qk1` -> `WQ1`).
    """
    tags: dict[str, str] = {}
    used: set[str] = set()
    for op in ops:
        base = _tag_base(op.name)
        tag, n = base, 2
        while tag in used:
            tag, n = f"{base}{n}", n + 1
        used.add(tag)
        tags[op.name] = tag
    return tags


def _tag_base(name: str) -> str:
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,2}", name):
        return name.upper()
    # split on non-alphanumerics and lower->upper case changes
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+", re.sub(r"[^A-Za-z0-9]+", " ", name))
    initials = "".join(p[0] for p in parts if p[0].isalpha())[:3].upper()
    digits = re.search(r"([0-9]+)$", name)
    tail = digits.group(1)[-2:] if digits else ""
    return (initials or "OP") + tail


def _label(tag: str, stage: int, light: bool) -> str:
    text = f"{tag}{stage:+d}"
    return text.lower() if light else text


# ---------------------------------------------------------------- reservation table


@dataclass(frozen=True)
class _Seg:
    op: str
    order: int
    row: int  # first row
    length: int  # 1..II


def _segments(name: str, order: int, start: int, cycles: int, ii: int) -> list[_Seg]:
    """The cyclic intervals that `cycles` cycles from `start` cover modulo II, one per wrap."""
    copies = min(math.ceil(cycles / ii), MAX_SUBLANES + 1)  # further copies would only overflow
    return [_Seg(name, order, start % ii, min(ii, cycles - c * ii)) for c in range(copies)]


def _rows(seg: _Seg, ii: int) -> range | list[int]:
    end = seg.row + seg.length
    return range(seg.row, end) if end <= ii else list(range(seg.row, ii)) + list(range(0, end - ii))


def _meets(a: _Seg, b: _Seg, ii: int) -> bool:
    """Two arcs of the circle of II rows share a row iff one starts inside the other."""
    return (b.row - a.row) % ii < a.length or (a.row - b.row) % ii < b.length


def _pack(segs: list[_Seg], ii: int) -> list[list[list[str]]]:
    """Sort the cyclic intervals into as few sub-lanes as we can find (sub-lane -> row -> ops).

    First fit after cutting the circle at each interval's first row (intervals
    that run across the cut first, then the rest by left end: optimal for an
    interval graph), the best cut winning; when that still needs more
    sub-lanes than the busiest row, a bounded exact search for small sets.
    At most MAX_SUBLANES sub-lanes: further intervals share the last one.
    """
    if not segs:
        return []
    diff = [0] * (ii + 1)
    for s in segs:
        for lo, hi in ((s.row, min(s.row + s.length, ii)), (0, max(0, s.row + s.length - ii))):
            diff[lo] += 1
            diff[hi] -= 1
    busiest, run = 0, 0
    for x in range(ii):
        run += diff[x]
        busiest = max(busiest, run)

    def first_fit(order: list[_Seg]) -> list[list[_Seg]]:
        lanes: list[list[_Seg]] = []
        for s in order:
            for lane in lanes:
                if not any(_meets(s, t, ii) for t in lane):
                    lane.append(s)
                    break
            else:
                lanes.append([s])
        return lanes

    best: list[list[_Seg]] | None = None
    for cut in sorted({s.row for s in segs}):

        def rot(s: _Seg) -> int:
            return (s.row - cut) % ii

        lanes = first_fit(sorted(segs, key=lambda s: (rot(s) + s.length <= ii, rot(s), -s.length, s.order)))
        if best is None or len(lanes) < len(best):
            best = lanes
        if len(best) == busiest:
            break
    if len(best) > busiest and len(segs) <= 16:
        best = _exact(segs, ii, busiest, len(best) - 1) or best
    if len(best) > MAX_SUBLANES:
        best = best[: MAX_SUBLANES - 1] + [[s for lane in best[MAX_SUBLANES - 1 :] for s in lane]]
    out = []
    for lane in best:
        rows: list[list[str]] = [[] for _ in range(ii)]
        for s in sorted(lane, key=lambda s: (s.order, s.row)):
            for x in _rows(s, ii):
                rows[x].append(s.op)
        out.append(rows)
    return out


def _exact(segs: list[_Seg], ii: int, low: int, high: int, budget: int = 20000) -> list[list[_Seg]] | None:
    """Fewest sub-lanes in low..high by backtracking (None if none is found within `budget` steps)."""
    order = sorted(segs, key=lambda s: (-s.length, s.row, s.order))
    for k in range(low, high + 1):
        lanes: list[list[_Seg]] = []
        steps = 0

        def place(i: int) -> bool:
            nonlocal steps
            steps += 1
            if i == len(order):
                return True
            if steps > budget:
                return False
            s = order[i]
            for lane in lanes:
                if not any(_meets(s, t, ii) for t in lane):
                    lane.append(s)
                    if place(i + 1):
                        return True
                    lane.pop()
            if len(lanes) < k:
                lanes.append([s])
                if place(i + 1):
                    return True
                lanes.pop()
            return False

        if place(0):
            return lanes
    return None


def _placed_ops(schedule: Schedule) -> list[tuple[int, Op]]:
    return [(i, op) for i, op in enumerate(schedule.problem.ops) if op.name in schedule.ops]


def _units(schedule: Schedule) -> list[str]:
    used = {op.unit for _, op in _placed_ops(schedule) if op.occupancy > 0}
    known = [u for u in schedule.machine.units if u in used]
    return known + sorted(used - set(known))


def _warpgroups(schedule: Schedule) -> list[int]:
    placed = {schedule.ops[op.name].warpgroup for _, op in _placed_ops(schedule)}
    placed.discard(None)
    if not placed:
        return []
    return sorted(placed | set(schedule.warpgroups))


def _wg_label(schedule: Schedule, g: int) -> str:
    plan = schedule.warpgroups.get(g)
    return f"wg{g} {_ascii(plan.role)} {plan.registers}r" if plan else f"wg{g}"


def reservation_table(schedule: Schedule) -> list[Lane]:
    """The lanes of the chart, one entry per row `0..II-1`: unit lanes, then warpgroup lanes."""
    ii = schedule.ii
    if not isinstance(ii, int) or ii < 1:
        raise InputError(
            f"the schedule has II {ii!r}; an initiation interval is a whole number of cycles >= 1"
        )
    ops = _placed_ops(schedule)
    lanes: list[Lane] = []
    empty = tuple(() for _ in range(ii))
    for unit in _units(schedule):
        segs = [
            s
            for i, op in ops
            if op.unit == unit and op.occupancy > 0
            for s in _segments(op.name, i, schedule.ops[op.name].start, op.occupancy, ii)
        ]
        packed = _pack(segs, ii)
        for j, rows in enumerate(packed):
            label = _ascii(unit) + (f"[{j}]" if len(packed) > 1 else "")
            lanes.append(Lane(label, "unit", unit, j, tuple(tuple(r) for r in rows), ()))
    for g in _warpgroups(schedule):
        mine = [(i, op) for i, op in ops if schedule.ops[op.name].warpgroup == g]
        segs = [
            s
            for i, op in mine
            if op.issue > 0
            for s in _segments(op.name, i, schedule.ops[op.name].start, op.issue, ii)
        ]
        packed = _pack(segs, ii) or [[[] for _ in range(ii)]]
        light: list[list[str]] = [[] for _ in range(ii)]
        for i, op in mine:
            if op.occupancy > 0:
                for s in _segments(op.name, i, schedule.ops[op.name].start, op.occupancy, ii):
                    for x in _rows(s, ii):
                        if op.name not in light[x]:
                            light[x].append(op.name)
        base = _wg_label(schedule, g)
        for j, rows in enumerate(packed):
            label = base + (f"[{j}]" if len(packed) > 1 else "")
            lanes.append(
                Lane(
                    label,
                    "warpgroup",
                    str(g),
                    j,
                    tuple(tuple(r) for r in rows),
                    tuple(tuple(r) for r in light) if j == 0 else empty,
                )
            )
    return lanes


# ---------------------------------------------------------------- columns


def _columns(lane: Lane, ii: int, k: int, order: dict[str, int]) -> list:
    """Owner of each column of `k` rows: (op, light), MIXED or None."""
    keys = [lane.owner(x) for x in range(ii)]
    cols: list = []
    coverage: dict[
        str, list[tuple[int, int]]
    ] = {}  # op -> (column, rows it covers there), to rescue vanished ops
    for c, c0 in enumerate(range(0, ii, k)):
        counts = Counter(key for key in keys[c0 : c0 + k] if key is not None)
        for key, n in counts.items():
            if key != MIXED:
                coverage.setdefault(key[0], []).append((c, n))
        if not counts:
            cols.append(None)
            continue

        def rank(key) -> tuple[bool, int]:  # issuing/busy beats in flight, then coverage
            return (key == MIXED or not key[1], counts[key])

        best = max(counts, key=rank)
        tied = [key for key in counts if rank(key) == rank(best)]
        cols.append(MIXED if len(tied) > 1 else best)
    shown = {col[0] for col in cols if col not in (None, MIXED)}
    for op in sorted(set(coverage) - shown, key=lambda n: order[n]):
        best_col = max(coverage[op], key=lambda cn: (cn[1], -cn[0]))[0]
        cols[best_col] = MIXED
    return cols


def _render_lane(cols: list, cw: int, cells: bool, labels: dict[str, str]) -> str:
    """Cell mode: every column shows its full label. Run mode: a run of columns
    of one op shows its label once (upper case when the run starts issuing or
    busy, lower case when it starts in flight), then `=` (issuing/busy) or
    `~` (in flight) per column."""
    if cells:
        out = []
        for col in cols:
            text = IDLE if col is None else MIXED if col == MIXED else _lbl(col, labels)
            out.append(text.ljust(cw))
        return "".join(out)
    out, c = [], 0
    while c < len(cols):
        col = cols[c]
        if col is None or col == MIXED:
            out.append((IDLE if col is None else MIXED) * cw)
            c += 1
            continue
        end = c  # a run: consecutive columns of one op, issuing/busy ('=') or in flight ('~')
        while end < len(cols) and cols[end] not in (None, MIXED) and cols[end][0] == col[0]:
            end += 1
        fill = "".join((LIGHT_FILL if cols[i][1] else SOLID_FILL) * cw for i in range(c, end))
        text = _lbl(col, labels)[: len(fill)]
        out.append(text + fill[len(text) :])
        c = end
    return "".join(out)


def _lbl(col: tuple[str, bool], labels: dict[str, str]) -> str:
    label = labels[col[0]]
    return label.lower() if col[1] else label


def _ruler(ncols: int, cw: int, k: int) -> str:
    digits = len(str((ncols - 1) * k))
    step = math.ceil((digits + 1) / cw)
    out = [" "] * (ncols * cw)
    for c in range(0, ncols, step):
        text = str(c * k)
        pos = c * cw
        if pos + len(text) <= len(out):
            out[pos : pos + len(text)] = text
    return "".join(out)


# ---------------------------------------------------------------- text


def render_text(schedule: Schedule, width: int = 100) -> str:
    """The steady-state period of `schedule` as a text Gantt chart no wider than `width`."""
    if not isinstance(width, int) or width < MIN_WIDTH:
        raise InputError(
            f"a Gantt chart needs a width of at least {MIN_WIDTH} characters (got {width!r}); pass a larger "
            "--width"
        )
    ii = schedule.ii
    lanes = reservation_table(schedule)
    problem_ops = _placed_ops(schedule)
    order = {op.name: i for i, op in problem_ops}
    tags = op_tags(schedule.problem.ops)
    labels = {
        op.name: _label(tags[op.name], schedule.ops[op.name].start // ii, False) for _, op in problem_ops
    }
    label_w = max((len(v) for v in labels.values()), default=3)

    lc = min(max([len(lane.label) for lane in lanes] + [5]), max(12, width // 4))
    usable = width - lc - 3
    if ii * (label_w + 1) <= usable:
        k, cw, cells = 1, label_w + 1, True
    elif ii <= usable:
        k, cw, cells = 1, usable // ii, False
    else:
        k, cw, cells = math.ceil(ii / usable), 1, False
    ncols = math.ceil(ii / k)

    lines: list[str] = []
    lines += _header(schedule, width, k, cw, ncols)
    lines.append("")

    def row(label: str, body: str) -> str:
        return f"{_cut(label, lc):<{lc}} |{body}|"

    rule = f"{'':<{lc}} +{'-' * (ncols * cw)}+"
    lines.append(row("row" if k == 1 else "cycle", _ruler(ncols, cw, k)))
    lines.append(rule)
    kind = None
    for lane in lanes:
        if kind is not None and lane.kind != kind:
            lines.append(rule)
        kind = lane.kind
        lines.append(row(lane.label, _render_lane(_columns(lane, ii, k, order), cw, cells, labels)))
    lines.append(rule)
    lines += _notes(schedule, lanes, width)
    lines.append("")
    lines += _legend(schedule, tags, width)
    lines.append("")
    lines += _buffers(schedule, width)
    return "\n".join(_fit(line, width) for line in lines)


def _header(s: Schedule, width: int, k: int, cw: int, ncols: int) -> list[str]:
    optimal = "proven optimal" if s.ii_proven_optimal else "not proven optimal"
    stages = s.stages if s.ops else 0
    if k == 1:
        scale = "1 column = 1 cycle" + (f" ({cw} characters)" if cw > 1 else "")
    else:
        scale = f"1 column = {k} cycles (scaled to {ncols} columns)"
    groups = [
        [f"{_ascii(s.problem.name)}: mode {_ascii(s.mode)}, machine {_ascii(s.machine.name)}"],
        [
            f"II {s.ii} ({optimal})",
            f"MII {s.mii} (res {s.res_mii}, rec {s.rec_mii})",
            f"makespan {s.makespan}",
            f"stages {stages}",
            f"smem {s.smem_bytes} B",
        ],
        [f"steady state, one period: rows 0..{s.ii - 1}", scale],
    ]
    return [line for phrases in groups for line in _wrap_phrases(phrases, width)]


def _notes(s: Schedule, lanes: list[Lane], width: int) -> list[str]:
    ii = s.ii
    out = []
    load = []
    for unit in _units(s):
        busy = sum(op.occupancy for _, op in _placed_ops(s) if op.unit == unit)
        cap = s.machine.units.get(unit)
        if cap:
            load.append(f"{_ascii(unit)} {busy}/{cap * ii} ({100 * busy / (cap * ii):.0f}%, cap {cap})")
        else:
            load.append(f"{_ascii(unit)} {busy}/{ii} (cap {'unlimited' if cap is None else 0})")
    if load:
        out += textwrap.wrap("unit load per period: " + ", ".join(load), width, subsequent_indent="  ")
    for unit in _units(s):
        cap = s.machine.units.get(unit)
        unit_lanes = [lane for lane in lanes if lane.kind == "unit" and lane.key == unit]
        per_row = [sum(len(lane.solid[x]) for lane in unit_lanes) for x in range(ii)]
        worst = max(per_row)
        if cap is not None and worst > cap:
            x = per_row.index(worst)
            out += textwrap.wrap(
                f"! unit {_ascii(unit)} holds {worst} ops at row {x}, over its capacity {cap}",
                width,
                subsequent_indent="  ",
            )
        if len(unit_lanes) == MAX_SUBLANES and any(len(r) > 1 for r in unit_lanes[-1].solid):
            out += textwrap.wrap(
                f"! unit {_ascii(unit)} needs more than {MAX_SUBLANES} sub-lanes; "
                f"its last sub-lane merges the rest ('#')",
                width,
                subsequent_indent="  ",
            )
    for g in dict.fromkeys(lane.key for lane in lanes if lane.kind == "warpgroup"):
        mine = [lane for lane in lanes if lane.kind == "warpgroup" and lane.key == g]
        per_row = [sum(len(lane.solid[x]) for lane in mine) for x in range(ii)]
        if max(per_row) > 1:
            out += textwrap.wrap(
                f"! warpgroup {g} issues {max(per_row)} ops at row {per_row.index(max(per_row))}, "
                f"more than one",
                width,
                subsequent_indent="  ",
            )
    for _, op in _placed_ops(s):
        p = s.ops[op.name]
        if (p.stage, p.row) != (p.start // ii, p.start % ii):
            out += textwrap.wrap(
                f"! op {_ascii(op.name)}: the file says stage {p.stage} row {p.row}, but start "
                f"{p.start} gives stage {p.start // ii} row {p.start % ii} (shown)",
                width,
                subsequent_indent="  ",
            )
    unplaced = [op.name for op in s.problem.ops if op.name not in s.ops]
    if unplaced:
        out += textwrap.wrap(
            "! not placed: " + ", ".join(_ascii(n) for n in unplaced), width, subsequent_indent="  "
        )
    return out


def _legend(s: Schedule, tags: dict[str, str], width: int) -> list[str]:
    ii = s.ii
    key = (
        f"TAG+k = op TAG, stage k (of the iteration begun k periods earlier); '{SOLID_FILL}' busy or "
        "issuing; "
        f"'{LIGHT_FILL}' and lower case: in flight on its unit (warpgroup lanes); '{IDLE}' idle; "
        f"'{MIXED}' several ops in one column"
    )
    out = textwrap.wrap("legend: " + key, width, subsequent_indent="  ")
    rows = []
    placed = sorted(_placed_ops(s), key=lambda io: (s.ops[io[1].name].start % ii, io[0]))
    for _, op in placed:
        p = s.ops[op.name]
        rows.append(
            [
                tags[op.name],
                str(p.start),
                str(p.start // ii),
                str(p.start % ii),
                "-" if p.warpgroup is None else str(p.warpgroup),
                _ascii(op.unit),
                str(op.occupancy),
                str(op.issue),
                _ascii(op.name),
            ]
        )
    headers = ["tag", "start", "stage", "row", "wg", "unit", "occ", "issue", "op"]
    table = _table(headers, rows, "lrrrrlrrl", width)
    if table is None:  # too narrow for a table: one wrapped sentence per op
        table = []
        for r in rows:
            table += _wrap_phrases(
                [f"{r[0]} = {r[8]}"] + [f"{h} {v}" for h, v in zip(headers[1:8], r[1:8])],
                width,
                sep=", ",
                indent="  ",
            )
    return out + table


def _buffers(s: Schedule, width: int) -> list[str]:
    if not s.buffers:
        return ["buffers: none"]
    overhead = s.machine.ring_slot_overhead
    out = textwrap.wrap(
        f"buffers (slot = bytes + {overhead} B of mbarriers; smem {s.smem_bytes} B in all):",
        width,
        subsequent_indent="  ",
    )
    headers = ["kind", "depth", "bytes", "hold", "total", "value"]
    rows = [
        [
            _ascii(b.kind),
            str(b.depth),
            str(b.bytes),
            str(b.hold),
            str(b.depth * (b.bytes + overhead)),
            _ascii(name),
        ]
        for name, b in s.buffers.items()
    ]
    table = _table(headers, rows, "lrrrrl", width)
    if table is None:
        table = []
        for r in rows:
            table += _wrap_phrases(
                [f"{r[5]}"] + [f"{h} {v}" for h, v in zip(headers[:5], r[:5])], width, sep=", ", indent="  "
            )
    return out + table


def _table(headers: list[str], rows: list[list[str]], aligns: str, width: int) -> list[str] | None:
    """Columns two spaces apart, indented by two; None when a row would not fit `width`."""
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    out = []
    for r in [headers] + rows:
        cells = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(r[:-1], widths, aligns)]
        line = "  ".join(["  " + cells[0]] + cells[1:] + [r[-1]]).rstrip()
        if len(line) > width:
            return None
        out.append(line)
    return out


def _wrap_phrases(phrases: list[str], width: int, sep: str = "; ", indent: str = "") -> list[str]:
    """Join phrases with `sep`, breaking lines only between phrases (unless one is too long)."""
    lines: list[str] = []
    current = indent
    for phrase in phrases:
        if current.strip() and len(current) + len(sep) + len(phrase) <= width:
            current += sep + phrase
            continue
        if current.strip():
            mark = sep.rstrip()
            lines.append(current + mark if len(current) + len(mark) <= width else current)
        pad = indent if not lines else indent + "  "
        if len(pad) + len(phrase) <= width:
            current = pad + phrase
        else:
            wrapped = textwrap.wrap(phrase, width, initial_indent=pad, subsequent_indent=indent + "  ")
            lines += wrapped[:-1]
            current = wrapped[-1]
    if current.strip():
        lines.append(current)
    return lines


# ---------------------------------------------------------------- text helpers


def _ascii(text: object) -> str:
    """Printable ASCII: other characters become backslash escapes."""
    out = []
    for ch in str(text):
        if " " <= ch <= "~":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def _cut(label: str, n: int) -> str:
    """`label` in at most n characters, keeping a sub-lane suffix such as `[1]`."""
    if len(label) <= n:
        return label
    suffix = re.search(r"\[\d+\]$", label)
    tail = suffix.group(0) if suffix else ""
    return label[: n - len(tail)] + tail


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 2] + ".."
