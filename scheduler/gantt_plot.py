"""A picture of one steady-state period (PNG or SVG), like the schedule figures of
the Twill and FlashAttention-3 papers: `warpsched show SCHEDULE.json --png OUT.png`.

The lanes are those of the text chart (`scheduler.gantt.reservation_table`,
DESIGN.md 3.1): one lane per functional unit used (sub-lanes where a unit
holds overlapping ops), then one per warpgroup, labelled with its role and
register budget. The x axis is the cycle `0..II-1` of the period.

- In a unit lane an op is a solid bar over its occupancy rows `(t + j) % II`;
  an interval that wraps around the period is drawn as two bars.
- In a warpgroup lane an op is a solid bar over its issue rows and a light,
  hatched bar over the other rows where it is in flight on its unit (stacked
  in thinner tracks where in-flight ops overlap). Issuing hides in flight, as
  in the text chart: no light bar is drawn under a row where the warpgroup issues.

Bars are coloured by stage `k = t // II`: the op works for the iteration begun
`k` periods before the newest one ("iteration i - k"). A bar is labelled with
the op's name, or with its short tag (`scheduler.gantt.op_tags`) when the name
does not fit; a bar too narrow for either is left unlabelled. The tags used
are spelled out under the legend.

matplotlib is imported lazily, and only its object-oriented API is used (a
`Figure` rendered by the Agg or SVG canvas, never pyplot), so this works
headless and leaves the caller's pyplot backend alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from warpsched.scheduler.errors import InputError
from warpsched.scheduler.gantt import Lane, _ascii, _wrap_phrases, op_tags, reservation_table
from warpsched.scheduler.schedule import Schedule

__all__ = ["render_figure", "FORMATS"]

FORMATS = ("png", "svg")
DPI = 150
# Muted, distinguishable colours (one per stage); cycled beyond ten stages.
PALETTE = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
)
LANE_IN = 0.36  # height of one lane, inches
GROUP_GAP = 0.35  # gap between the unit lanes and the warpgroup lanes, in lanes
BAR_FONT, LANE_FONT, TICK_FONT = 7.5, 8.5, 8.0


@dataclass(frozen=True)
class _Bar:
    op: str
    x0: int
    x1: int  # rows x0..x1-1
    y0: float
    y1: float
    light: bool


def render_figure(schedule: Schedule, path, width_in: float = 12.0) -> None:
    """Draw one steady-state period of `schedule` to `path` (.png or .svg), `width_in` inches wide."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"cannot tell the picture format of {str(path)!r}; name the file *.png or *.svg")
    if isinstance(width_in, bool) or not isinstance(width_in, (int, float)) or not 4 <= width_in <= 100:
        raise InputError(f"a chart needs a width of 4 to 100 inches (got {width_in!r})")
    lanes = reservation_table(schedule)  # checks II
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(
            "drawing a PNG or SVG chart needs matplotlib; install it with pip install matplotlib"
        ) from None

    rc = {
        "svg.fonttype": "none",
        "svg.hashsalt": "warpsched",
        "text.parse_math": False,
        "hatch.linewidth": 0.5,
        "font.family": "DejaVu Sans",
        "axes.unicode_minus": False,
    }
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(width_in, 4.0), dpi=DPI)
        FigureCanvasAgg(fig)
        _draw(fig, schedule, lanes, float(width_in))
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        try:
            fig.savefig(path, format=fmt, dpi=DPI, metadata=metadata)
        except OSError as exc:
            raise InputError(f"cannot write the chart to {str(path)!r} ({exc.strerror or exc})") from None


# ---------------------------------------------------------------- geometry


def _runs(rows: tuple[tuple[str, ...], ...], skip: set[int] = frozenset()) -> list[tuple[str, int, int]]:
    """(op, first row, end row) for every maximal run of rows (not in `skip`) holding op, one per copy
    where a row holds op more than once (an occupancy longer than II); a run never crosses row II-1 -> 0."""
    ii = len(rows)
    out: list[tuple[str, int, int]] = []
    open_: dict[tuple[str, int], int] = {}  # (op, copy) -> first row
    for x in range(ii + 1):
        here = Counter(rows[x]) if x < ii and x not in skip else Counter()
        for op, copy in [key for key in open_ if key[1] >= here[key[0]]]:
            out.append((op, open_.pop((op, copy)), x))
        for op, count in here.items():
            for copy in range(count):
                open_.setdefault((op, copy), x)
    return sorted(out, key=lambda r: (r[1], r[2], r[0]))


def _tracks(runs: list[tuple[str, int, int]]) -> list[int]:
    """A track per run (first fit by left end): runs on one track never overlap."""
    ends: list[int] = []
    out = []
    for _, x0, x1 in runs:
        for t, end in enumerate(ends):
            if end <= x0:
                ends[t] = x1
                out.append(t)
                break
        else:
            ends.append(x1)
            out.append(len(ends) - 1)
    return out


def _layout(lanes: list[Lane]) -> tuple[list[float], list[_Bar], float]:
    """Top y of every lane (lane height 1, a gap before the warpgroups), the bars, and the total height."""
    tops, bars = [], []
    issuing: dict[str, set[int]] = {}  # warpgroup -> rows where it issues (its solid bars hide those rows)
    for lane in lanes:
        if lane.kind == "warpgroup":
            issuing.setdefault(lane.key, set()).update(x for x, ops in enumerate(lane.solid) if ops)
    y, kind = 0.0, None
    for lane in lanes:
        if kind is not None and lane.kind != kind:
            y += GROUP_GAP
        kind = lane.kind
        tops.append(y)
        lo, hi = y + 0.12, y + 0.88
        if lane.light:
            light = _runs(lane.light, issuing.get(lane.key, set()))
            tracks = _tracks(light)
            n = max(tracks, default=0) + 1
            h = (hi - lo) / n
            bars += [
                _Bar(op, x0, x1, lo + t * h, lo + (t + 1) * h, True) for (op, x0, x1), t in zip(light, tracks)
            ]
        bars += [_Bar(op, x0, x1, lo, hi, False) for op, x0, x1 in _runs(lane.solid)]
        y += 1.0
    return tops, bars, y


# ---------------------------------------------------------------- drawing


def _stage_colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def _lighten(colour: str, amount: float = 0.62) -> tuple[float, float, float]:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _ink(colour) -> str:
    if isinstance(colour, str):
        colour = tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    r, g, b = colour
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.55 else "black"


def _iteration(k: int) -> str:
    return f"stage {k}: " + ("iteration i" if k == 0 else f"iteration i - {k}")


def _draw(fig, s: Schedule, lanes: list[Lane], width_in: float) -> None:
    from matplotlib.font_manager import FontProperties
    from matplotlib.legend import Legend
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import MaxNLocator

    ii = s.ii
    renderer = fig.canvas.get_renderer()

    def text_in(text: str, size: float, weight: str = "normal") -> tuple[float, float]:
        w, h, _ = renderer.get_text_width_height_descent(
            text, FontProperties(size=size, weight=weight), ismath=False
        )
        return w / fig.dpi, h / fig.dpi

    tags = op_tags(s.problem.ops)
    stage = {name: p.start // ii for name, p in s.ops.items()}
    names = {name: _ascii(name) for name in s.ops}
    tops, bars, total = _layout(lanes)
    nl = max(total, 1.0)

    # horizontal layout (inches)
    label_w = max([text_in(lane.label, LANE_FONT)[0] for lane in lanes] + [0.4])
    left = min(label_w + 0.25, width_in * 0.35)
    right = max(0.35, text_in(f"II = {ii}", TICK_FONT, "bold")[0] / 2 + 0.12)
    ax_w = width_in - left - right
    margin = ii * 0.012  # a sliver of the next period, beyond the II line
    span = ii + 2 * margin

    def bar_in(b: _Bar) -> float:
        return (b.x1 - b.x0) / span * ax_w

    # labels: the name if it fits, else the tag, else none
    labels: list[tuple[_Bar, str]] = []
    used_tags: dict[str, str] = {}
    line_h = text_in("Ag", BAR_FONT)[1]
    for b in bars:
        height_in = (b.y1 - b.y0) * LANE_IN
        if height_in < line_h * 1.05:
            continue
        room = bar_in(b) - 0.06
        for text in (names[b.op], tags[b.op]):
            if text_in(text, BAR_FONT)[0] <= room:
                labels.append((b, text))
                if text != names[b.op]:
                    used_tags[text] = names[b.op]
                break

    # text under the chart: legend, then the tags used
    stages = sorted(set(stage.values()))
    optimal = "proven optimal" if s.ii_proven_optimal else "not proven optimal"
    title = [f"{_ascii(s.problem.name)}: II = {ii} ({optimal})", f"MII = {s.mii}", f"makespan = {s.makespan}"]
    sub = [
        f"mode {_ascii(s.mode)}",
        f"machine {_ascii(s.machine.name)}",
        f"{len(stages)} stage(s)",
        f"smem {s.smem_bytes} B; one steady-state period: cycles 0..{ii - 1} (row = start mod II)",
    ]
    key = [f"{t} = {n}" for t, n in sorted(used_tags.items(), key=lambda tn: tn[1])]
    chars = max(20, int(width_in / (0.56 * 7.5 / 72)))
    title_lines = [
        line.strip() for line in _wrap_phrases(title, max(20, int(width_in / (0.62 * 11 / 72))), sep=", ")
    ]
    sub_lines = [line.strip() for line in _wrap_phrases(sub, int(chars * 0.82), sep=", ")]
    key_lines = (
        [line.strip() for line in _wrap_phrases(["tags: " + key[0]] + key[1:], chars, sep=", ")]
        if key
        else []
    )

    # legend: one colour per stage, then solid vs hatched; as many columns as fit
    handles = [
        Patch(facecolor=_stage_colour(k), edgecolor=_darken(_stage_colour(k)), label=_iteration(k))
        for k in stages
    ]
    if any(lane.kind == "warpgroup" for lane in lanes):
        handles.append(
            Patch(facecolor="#888888", edgecolor="#555555", label="busy on unit / issuing on warpgroup")
        )
    else:
        handles.append(Patch(facecolor="#888888", edgecolor="#555555", label="busy on its unit"))
    if any(b.light for b in bars):
        handles.append(
            Patch(
                facecolor=_lighten("#888888"),
                edgecolor="#888888",
                hatch="////",
                label="in flight on its unit (warpgroup lanes)",
            )
        )
    for ncol in range(len(handles), 0, -1):
        legend = Legend(
            fig,
            handles,
            [h.get_label() for h in handles],
            loc="upper center",
            ncol=ncol,
            frameon=False,
            fontsize=8,
            handlelength=1.6,
            columnspacing=1.2,
            borderaxespad=0,
            borderpad=0,
        )
        box = legend.get_window_extent(renderer)
        if box.width / fig.dpi <= width_in - 0.2:
            break
    legend_h = box.height / fig.dpi

    top = 0.18 + 0.2 * len(title_lines) + 0.17 * len(sub_lines) + 0.22
    bottom = 0.62 + legend_h + 0.06 + 0.15 * len(key_lines) + 0.16
    height = top + nl * LANE_IN + bottom
    fig.set_size_inches(width_in, height)
    ax = fig.add_axes((left / width_in, bottom / height, ax_w / width_in, nl * LANE_IN / height))
    legend.set_bbox_to_anchor((0.5, (bottom - 0.62) / height), transform=fig.transFigure)

    y = height - 0.14
    for line in title_lines:
        fig.text(0.5, y / height, line, ha="center", va="top", fontsize=11, weight="bold")
        y -= 0.2
    for line in sub_lines:
        fig.text(0.5, y / height, line, ha="center", va="top", fontsize=8.5, color="#444444")
        y -= 0.17

    ax.set_xlim(-margin, ii + margin)
    ax.set_ylim(nl, 0)
    # lane backgrounds and labels
    for i, (lane, y0) in enumerate(zip(lanes, tops)):
        shade = "#F4F4F4" if i % 2 == 0 else "#FFFFFF"
        ax.add_patch(Rectangle((0, y0), ii, 1.0, facecolor=shade, edgecolor="none", zorder=0))
    ax.set_yticks([y0 + 0.5 for y0 in tops])
    ax.set_yticklabels([lane.label for lane in lanes], fontsize=LANE_FONT)
    ax.tick_params(axis="y", length=0)
    for i in range(1, len(lanes)):
        if lanes[i].kind != lanes[i - 1].kind:
            mid = tops[i] - GROUP_GAP / 2
            ax.axhline(mid, color="#999999", lw=0.8, zorder=1)
    # beyond the period: the neighbouring periods, greyed
    for x0, x1 in ((-margin, 0), (ii, ii + margin)):
        ax.axvspan(x0, x1, facecolor="#E6E6E6", edgecolor="none", zorder=0)

    # x axis: cycles, with II itself a tick
    nbins = max(2, int(ax_w * 1.1))
    loc = MaxNLocator(nbins=nbins, integer=True, min_n_ticks=1)
    ticks = [int(t) for t in loc.tick_values(0, ii) if 0 <= t < ii]
    min_gap = ii / nbins * 0.6
    ticks = [t for t in ticks if ii - t >= min_gap or t == 0] + [ii]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks[:-1]] + [f"II = {ii}"], fontsize=TICK_FONT)
    for lbl in ax.get_xticklabels()[-1:]:
        lbl.set_weight("bold")
    ax.set_xlabel("cycle within the steady-state period", fontsize=TICK_FONT + 0.5)
    grid = range(ii + 1) if ii <= 48 else ticks
    for x in grid:
        ax.axvline(x, color="#D0D0D0", lw=0.5, zorder=0.5)
    ax.axvline(0, color="#333333", lw=1.0, zorder=3)
    ax.axvline(ii, color="#333333", lw=1.4, ls=(0, (4, 2)), zorder=3)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)

    # bars
    for b in bars:
        colour = _stage_colour(stage[b.op])
        if b.light:
            ax.add_patch(
                Rectangle(
                    (b.x0, b.y0),
                    b.x1 - b.x0,
                    b.y1 - b.y0,
                    facecolor=_lighten(colour),
                    edgecolor=colour,
                    hatch="////",
                    lw=0.6,
                    zorder=2,
                )
            )
        else:
            ax.add_patch(
                Rectangle(
                    (b.x0, b.y0),
                    b.x1 - b.x0,
                    b.y1 - b.y0,
                    facecolor=colour,
                    edgecolor=_darken(colour),
                    lw=0.6,
                    zorder=2.5,
                )
            )
    for b, text in labels:
        colour = _stage_colour(stage[b.op])
        fill = _lighten(colour) if b.light else colour
        kw = (
            {"bbox": {"boxstyle": "square,pad=0.1", "facecolor": fill, "edgecolor": "none"}}
            if b.light
            else {}
        )
        ax.text(
            (b.x0 + b.x1) / 2,
            (b.y0 + b.y1) / 2,
            text,
            ha="center",
            va="center",
            fontsize=BAR_FONT,
            color=_ink(fill),
            zorder=4 if not b.light else 3,
            clip_on=True,
            **kw,
        )

    fig.add_artist(legend)
    y = bottom - 0.62 - legend_h - 0.06
    for line in key_lines:
        fig.text(0.5, y / height, line, ha="center", va="top", fontsize=7.5, color="#444444")
        y -= 0.15
    if not lanes:
        ax.text(ii / 2, nl / 2, "no op is placed", ha="center", va="center", fontsize=9, color="#666666")


def _darken(colour: str, amount: float = 0.3) -> tuple[float, float, float]:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return (r * (1 - amount), g * (1 - amount), b * (1 - amount))
