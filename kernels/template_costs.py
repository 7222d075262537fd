"""What each CUDA op template costs in the code we emit, for the solver's model (DESIGN.md 6.8).

`warpsched costs` solves and builds one reference kernel per template (kernels/cuda/templates.py and the
families' templates.py), again with `-lineinfo` (the same SASS), and reads the steady-state trip of each
consumer warpgroup (kernels/cuda/sass.py). nvdisasm names the kernel.cu line of every instruction (an
inlined helper's instructions count for the line calling it); an instruction belongs to a step when that
line lies in the step's template text. Per template it writes, per pipe (kernels/perf.PIPES), the
instructions one thread issues per element it holds (a warp's count times 128 over the warpgroup's
elements), to `solver_configs/template_costs.yaml` with the digest of the exact template text counted. The
models (models/costs.template) turn them into issue and occupancy cycles with the machine's per-pipe rates.

`warpsched costs --check` compares the digests only (no compiler): a template changed and its costs not
regenerated is an error naming the command. The same check is a test.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from warpsched.kernels.build import source_lines, toolchain_version
from warpsched.kernels.cuda import sass as sass_reader
from warpsched.kernels.driver import kernel_for
from warpsched.kernels.families import FAMILIES
from warpsched.kernels.perf import PIPES
from warpsched.kernels.program import lower
from warpsched.models import build_model
from warpsched.models.kinds import OpKind
from warpsched.models.quant_gemm import FLOAT_FORMATS, dequant_key
from warpsched.scheduler.api import solve
from warpsched.scheduler.errors import InputError
from warpsched.scheduler.machine import config_root
from warpsched.scheduler.schedule import Schedule
from warpsched.scheduler.yaml_files import read_yaml

COSTS_FILE = "template_costs.yaml"
MACHINE = "h100"  # the reference kernels are solved for it; the counts are sm_90a's, whatever the clock
PIPE_NAMES = (*PIPES, "other")
_PIPE_OF = {op: pipe for pipe, ops in PIPES.items() for op in ops}


@dataclass(frozen=True)
class Reference:
    """A kernel whose steady state holds templates to count: the model, its parameters, and per op kind
    the template key and how many elements the op handles per warpgroup (from the problem's source)."""

    model: str
    params: dict
    kinds: dict  # op kind -> (template key, elements(source) -> int)

    @property
    def name(self) -> str:
        return f"{self.model}(" + ", ".join(f"{k}={v}" for k, v in self.params.items()) + ")"


def _scores(source):
    return source["block_m"] * source["block_n"]


def _outputs(source):
    return source["block_m"] * source["head_dim"]


def _slice(source):
    return source["tile_n"] // source["consumers"] * source["tile_k"]


def references() -> tuple[Reference, ...]:
    attention = Reference(
        "attention_fwd",
        {"head_dim": 128, "dtype": "bf16", "causal": False},
        {
            OpKind.ROW_MAX: ("attention.row_max", _scores),
            OpKind.SCALE: ("attention.scale", _scores),
            OpKind.EXP2: ("attention.exp2", _scores),
            OpKind.ROW_SUM: ("attention.row_sum", _scores),
            OpKind.RESCALE_O: ("attention.rescale_o", _outputs),
        },
    )
    formats = [("int", b) for b in range(1, 9)] + [("int_zp", b) for b in range(1, 9)]
    formats += [(f, FLOAT_FORMATS[f]) for f in FLOAT_FORMATS]
    quant = tuple(
        Reference(
            "quant_gemm",
            {"fmt": fmt, "bits": bits, "group_size": 128, "m": 16, "k": 4096},
            {OpKind.DEQUANT: (dequant_key(fmt, bits), _slice)},
        )
        for fmt, bits in formats
    )
    return (attention, *quant)


def _text_digest(*texts: str) -> str:
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]


def _templates(schedule: Schedule, reference: Reference) -> dict[str, tuple[str, list[str]]]:
    """Template key -> (digest of its text and the family's declarations, the ops it is the template of)."""
    program = lower(schedule)
    family = FAMILIES[reference.model].cuda(schedule, program)
    declarations = family.declarations()
    out: dict[str, tuple[str, list[str]]] = {}
    steps = [s for w in program.warpgroups for s in w.steps if s.kind in reference.kinds]
    for step in sorted(steps, key=lambda s: (s.index or 0, s.op)):
        key = reference.kinds[step.kind][0]
        if key not in out:  # replica 0's text stands for all (they differ in their index only)
            out[key] = (_text_digest(family.issue(step), declarations), [])
        out[key][1].append(step.op)
    return out


def reference_schedule(reference: Reference, progress: Callable[[str], None] | None = None) -> Schedule:
    problem = build_model(reference.model, MACHINE, **reference.params)
    if progress:
        progress(
            f"solving {problem.name} (the reference of {', '.join(k for k, _ in reference.kinds.values())})"
        )
    return solve(
        problem, MACHINE, mode="heuristic"
    ).schedule  # fast and deterministic; templates are the same


def measure(schedule: Schedule, reference: Reference, progress=None) -> dict[str, dict]:
    """Template key -> its entry: instructions per element per pipe, the digest, the reference kernel."""
    program = lower(schedule)
    kernel = kernel_for(schedule, program)
    family = FAMILIES[reference.model].cuda(schedule, program)
    if progress:
        progress(f"nvcc -lineinfo: {kernel.entry} of {schedule.problem.name}, 15-25 s ...")
    listing, lines = source_lines(kernel.source, kernel.entry)
    code = sass_reader.parse(listing, kernel.entry)
    trips = sass_reader.steady_loops(code)
    source_text = kernel.source.splitlines()
    owner: dict[int, tuple[str, int]] = {}  # kernel.cu line (1-based) -> (op, which copy of its template)
    for w in program.warpgroups:
        for step in w.steps:
            if step.kind in reference.kinds:
                for copy, lines_of_copy in enumerate(_copies(source_text, family.issue(step))):
                    owner.update((line, (step.op, copy)) for line in lines_of_copy)
    counts: dict[str, Counter] = {}
    copies: dict[str, set] = {}  # a trip may run several iterations' copies (an unrolled steady state)
    for loop in trips:
        for instruction in loop.body:
            op, copy = owner.get(lines.get(instruction.address, -1), (None, 0))
            if op is not None:
                counts.setdefault(op, Counter())[_PIPE_OF.get(instruction.base, "other")] += 1
                copies.setdefault(op, set()).add(copy)
    source = schedule.problem.source
    out = {}
    for key, (digest, ops) in _templates(schedule, reference).items():
        missing = [op for op in ops if op not in counts]
        if missing:
            raise InputError(
                f"{reference.name}: no instruction of {', '.join(missing)} in a steady-state trip of its "
                "SASS; is the op on a warpgroup without a main loop?"
            )
        kind = next(k for k, (name, _) in reference.kinds.items() if name == key)
        elements = reference.kinds[kind][1](source)
        per_op = {p: sum(counts[op][p] / len(copies[op]) for op in ops) / len(ops) for p in PIPE_NAMES}
        out[key] = {
            "per_element": {p: round(n * 128 / elements, 4) for p, n in per_op.items() if n},
            "reference": f"{schedule.problem.name} ({kernel.entry}, {elements} elements per warpgroup)",
            "template_digest": digest,
        }
    return out


def _copies(source: list[str], text: str) -> list[range]:
    """The 1-based lines of each copy of `text` (compared line by line, indentation aside) in `source`."""
    wanted = [x.strip() for x in text.splitlines()]
    stripped = [x.strip() for x in source]
    out = []
    for n in range(len(stripped) - len(wanted) + 1):
        if stripped[n : n + len(wanted)] == wanted:
            out.append(range(n + 1, n + len(wanted) + 1))
    if not out:
        raise InputError("a step's template text is not in the kernel it was rendered into")
    return out


PLACEHOLDER = {"per_element": {"fma": 1.0}, "reference": "none yet", "template_digest": ""}


def regenerate(progress: Callable[[str], None] | None = None, processes: int = 1) -> dict:
    """Every reference solved, built and counted: the new content of the costs file. A template without
    costs yet is charged one FMA per element while its reference is solved (a schedule of some II is all a
    count needs)."""
    current = _read(config_root() / COSTS_FILE)
    keys = [key for r in references() for key, _ in r.kinds.values()]
    missing = [key for key in keys if key not in current.get("templates", {})]
    if missing:
        current.setdefault("templates", {}).update({key: PLACEHOLDER for key in missing})
        write(current)
    templates = {}
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            futures = {pool.submit(_measure_reference, r): r for r in references()}
            for future in as_completed(futures):
                templates.update(future.result())
                if progress:
                    progress(f"counted {futures[future].name}")
    else:
        for reference in references():
            templates.update(_measure_reference(reference, progress))
    return {
        "about": (
            "Instructions per element per thread of each CUDA op template, by pipe, counted in the "
            "steady-state SASS of a reference kernel (sm_90a). Regenerate with `warpsched costs`; "
            "DESIGN.md 6.8."
        ),
        "toolchain": toolchain_version(),
        "date": datetime.date.today().isoformat(),
        "templates": dict(sorted(templates.items())),
    }


def _measure_reference(reference: Reference, progress=None) -> dict:
    return measure(reference_schedule(reference, progress), reference, progress)


def _read(path: Path) -> dict:
    return read_yaml(path, "template costs") if path.exists() else {}


def write(data: dict, path: Path | None = None) -> Path:
    import yaml

    path = path or config_root() / COSTS_FILE
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=110))
    return path


def stale(progress: Callable[[str], None] | None = None) -> list[str]:
    """The templates whose text changed since their costs were counted (one sentence each); no compiler."""
    committed = _read(config_root() / COSTS_FILE).get("templates", {})
    out = []
    for reference in references():
        schedule = reference_schedule(reference, progress)
        for key, (digest, _) in _templates(schedule, reference).items():
            if key not in committed:
                out.append(f"{key} has no costs")
            elif committed[key]["template_digest"] != digest:
                out.append(f"{key}'s template changed since its costs were counted")
    return out
