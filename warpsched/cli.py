"""The `warpsched` command: a thin layer over the Python API.

    warpsched solve MODEL|PROBLEM.yaml [--machine h100] [--mode joint] [--param key=value ...] [--json OUT]
    warpsched solve --hatschet GRAPH.graphml [--rm RM.xml] [--time-limit S] [--json OUT]
    warpsched validate SCHEDULE.json
    warpsched show SCHEDULE.json [--png OUT.png] [--svg OUT.svg]
    warpsched check MODEL|PROBLEM.yaml|SCHEDULE.json [--machine h100] [--param key=value ...]
    warpsched compile MODEL|PROBLEM.yaml|SCHEDULE.json [--machine h100] [--param key=value ...] --out DIR
    warpsched sweep CONFIG.yaml [--processes N | --dask ADDRESS] [--compile] [--package [DIR]]
                    [--out RESULTS.json]
    warpsched precompiled [--build] [--package DIR]
    warpsched export --hatschet DIR [--package DIR]
    warpsched models | machines | presets

Every command that solves (solve, check, compile, sweep) takes the solver options --preset, --seed,
--workers (CP-SAT threads), --warpgroups, --max-ii, --time-limit and --quiet. User mistakes print one
sentence on stderr and exit with code 2, never a traceback; Ctrl-C stops a solve within a second and
exits 130 with the best schedule found so far.

This is the top layer: it reaches every package below it (warpsched.scheduler, .models, .kernels), and
nothing imports it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_INVALID, EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130
SOLVER_OPTIONS = ("preset", "seed", "workers", "warpgroups", "max_ii", "time_limit")


class _Parser(argparse.ArgumentParser):
    def error(
        self, message: str
    ) -> None:  # argparse's usage errors are user errors too: exit 2, one sentence
        sys.stderr.write(f"warpsched: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USER)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="warpsched",
        description="Provably optimal software pipelining + warp specialization for GPU kernels.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("solve", help="solve a loop body to a proven-optimal modulo schedule")
    s.add_argument(
        "problem",
        nargs="?",
        help="a kernel model name (see `warpsched models`), a problem YAML file or the "
        "name of a shipped one (twill_toy, pingpong_toy, ...)",
    )
    s.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a model parameter (repeatable), e.g. --param head_dim=64",
    )
    s.add_argument(
        "--hatschet", metavar="GRAPH.graphml", help="a HatScheT GraphML instance (classic modulo scheduling)"
    )
    s.add_argument("--rm", metavar="RM.xml", help="its resource model (default: GRAPH_RM.xml beside it)")
    s.add_argument("--machine", help="machine name or YAML path (default: the problem's own, else h100)")
    s.add_argument(
        "--mode",
        choices=("joint", "swp", "ws", "heuristic", "classic"),
        help="joint (default), swp, ws, heuristic, or classic (default for --hatschet)",
    )
    _solver_options(s)
    s.add_argument("--json", metavar="OUT", help="write the schedule file here")

    v = sub.add_parser("validate", help="check a schedule file with the independent verifier")
    v.add_argument("schedule")

    sh = sub.add_parser(
        "show", help="print a schedule's steady state as a text Gantt chart (and draw it as PNG/SVG)"
    )
    sh.add_argument("schedule")
    sh.add_argument("--width", type=int, default=100)
    sh.add_argument(
        "--png",
        metavar="OUT.png",
        help="also draw the steady-state period to this PNG file (needs matplotlib)",
    )
    sh.add_argument(
        "--svg",
        metavar="OUT.svg",
        help="also draw the steady-state period to this SVG file (needs matplotlib)",
    )

    c = _target_parser(
        sub, "check", "lower a schedule to its pipeline program and run the CPU simulator on it"
    )
    c.add_argument("--interleavings", type=int, default=100, help="interleavings to run (default 100)")
    c.add_argument("--iterations", type=int, default=4, help="loop iterations per run (default 4)")
    c.add_argument(
        "--sim-seed", type=int, default=0, help="seed of the random interleavings and data (default 0)"
    )

    k = _target_parser(
        sub,
        "compile",
        "solve, lower and build an sm_90a kernel: schedule, CUDA source, cubin, report, picture",
    )
    k.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder for schedule.json, kernel.cu, kernel.cubin, report.json, schedule.png",
    )
    _shape_option(k)

    pr = _target_parser(
        sub,
        "predict",
        "predict a kernel's time on call shapes from its SASS (built first, or taken from the cache)",
    )
    _shape_option(pr, required=True)

    w = sub.add_parser(
        "sweep",
        help="solve (and compile) a grid of tiles x parameters x machines; "
        "pick the best schedule per problem",
    )
    w.add_argument(
        "config",
        metavar="CONFIG.yaml",
        help="a sweep config, or a shipped one by name (quant_gemm_tiles, precompiled)",
    )
    w.add_argument(
        "--processes", type=int, help="local worker processes (default: cores / the preset's CP-SAT workers)"
    )
    w.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the points on the Dask distributed cluster at this scheduler address",
    )
    w.add_argument(
        "--compile",
        action="store_true",
        help="also build every point with CUDA templates; only clean builds may be chosen",
    )
    w.add_argument(
        "--package",
        nargs="?",
        const="",
        metavar="DIR",
        help="write the chosen schedules and manifest into this package folder (default: the shipped "
        "kernels/package)",
    )
    w.add_argument("--out", metavar="RESULTS.json", help="write every point's result here")
    _solver_options(w, preset_help="solver preset name or YAML path (default: the config's own)")

    pc = sub.add_parser("precompiled", help="list the precompiled kernel package (and build its cubins)")
    pc.add_argument(
        "--build", action="store_true", help="build the cubins not built yet (one progress line each)"
    )
    pc.add_argument(
        "--package", metavar="DIR", help="a package folder (default: the shipped kernels/package)"
    )

    ex = sub.add_parser(
        "export", help="write every shipped kernel's loop graph as a HatScheT instance, with their IIs"
    )
    ex.add_argument(
        "--hatschet",
        metavar="DIR",
        required=True,
        help="the folder for the .graphml and _RM.xml files and README.md (the table of IIs)",
    )
    ex.add_argument(
        "--package", metavar="DIR", help="a package folder (default: the shipped kernels/package)"
    )

    co = sub.add_parser(
        "costs",
        help="count each CUDA op template's instructions in the SASS of a reference kernel and write them "
        "where the models read them (solver_configs/template_costs.yaml)",
    )
    co.add_argument(
        "--check",
        action="store_true",
        help="only say whether a template changed since its costs were counted (no compiler; exit 1 if so)",
    )
    co.add_argument("--processes", type=int, default=1, help="references built at once (default 1)")

    sub.add_parser("models", help="list the kernel models with their parameters and defaults")
    sub.add_parser("machines", help="list the shipped machine models")
    sub.add_parser("presets", help="list the solver presets")
    return p


def _solver_options(
    p: argparse.ArgumentParser,
    preset_help: str = "solver preset name or YAML path (default, deterministic, fast)",
) -> None:
    """The options of every command that solves; None where not given (the preset's value holds)."""
    p.add_argument("--preset", help=preset_help)
    p.add_argument("--seed", type=int, help="CP-SAT random seed")
    p.add_argument("--workers", type=int, help="CP-SAT worker threads")
    p.add_argument("--warpgroups", type=int, help="size of the warpgroup pool (default: the machine's)")
    p.add_argument("--max-ii", type=int, help="largest II to search when no heuristic schedule bounds it")
    p.add_argument("--time-limit", type=float, metavar="S", help="wall-clock seconds for the whole search")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _shape_option(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument(
        "--shape",
        action="append",
        required=required,
        metavar="DIMS",
        help="a call shape to predict the time of (repeatable): gemm and quant_gemm M,N,K; attention_fwd "
        "B,H,N,D",
    )


def _target_parser(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand taking a model name, a problem file or a schedule file (check, compile)."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument(
        "target", help="a kernel model name, a problem YAML file (solved first) or a schedule JSON file"
    )
    p.add_argument("--machine", help="machine name or YAML path (default: the problem's own, else h100)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a model parameter (repeatable)")
    p.add_argument("--mode", choices=("joint", "swp", "ws", "heuristic"), default="joint")
    _solver_options(p)
    return p


def _overrides(args) -> dict:
    """The solver options given on the command line, as SolverConfig fields (checked before any work)."""
    for name in ("workers", "warpgroups", "max_ii"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _usage(f"--{name.replace('_', '-')} must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise _usage("--seed must be 0 or more")
    out = {
        "random_seed": args.seed,
        "num_workers": args.workers,
        "max_ii": args.max_ii,
        "max_warpgroups": args.warpgroups,
    }
    if args.time_limit is not None:
        if not args.time_limit > 0:
            raise _usage("--time-limit must be a positive number of seconds")
        out.update(total_time_limit=args.time_limit, time_limit=args.time_limit)
    return {k: v for k, v in out.items() if v is not None}


def _given_solver_options(args) -> list[str]:
    return [f"--{n.replace('_', '-')}" for n in SOLVER_OPTIONS if getattr(args, n, None) is not None]


class _ProgressPrinter:
    """Progress on stderr, once a solve has run for more than a second."""

    def __init__(self, quiet: bool, after: float = 1.0):
        self.quiet, self.after, self.t0, self.pending = quiet, after, time.perf_counter(), None

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if time.perf_counter() - self.t0 < self.after:
            self.pending = message
            return
        if self.pending is not None:
            print(self.pending, file=sys.stderr, flush=True)
            self.pending = None
        print(message, file=sys.stderr, flush=True)


def _solve(args, problem, machine, mode: str):
    """`warpsched.scheduler.solve` with the command's solver options, in a worker thread so that Ctrl-C here
    stops it (CP-SAT holds the main thread otherwise until its attempt ends). Returns the result; an
    interrupted one is marked (`schedule.interrupted`). A second Ctrl-C abandons the search at once."""
    import threading

    from warpsched.scheduler import solve
    from warpsched.scheduler.search import StopSignal

    overrides = _overrides(args)
    stop, outcome, done = StopSignal(), {}, threading.Event()
    preset = args.preset or "default"

    def work() -> None:
        try:
            outcome["result"] = solve(
                problem,
                machine,
                mode=mode,
                config=preset,
                progress=_ProgressPrinter(args.quiet),
                stop=stop,
                **overrides,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="warpsched-solve", daemon=True).start()
    try:
        while not done.wait(
            0.1
        ):  # an Event, not Thread.join: an interrupted join can leave the thread "stopped"
            pass
    except KeyboardInterrupt:
        stop.stop()
        print("warpsched: interrupted; stopping the solver ...", file=sys.stderr, flush=True)
        while not done.wait(0.1):
            pass
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _interrupted(schedule) -> str:
    return (
        f"warpsched: interrupted after {schedule.solve_seconds:.1f}s; the best schedule so far has II "
        f"{schedule.ii} "
        f"(not proven optimal)"
    )


def _cmd_solve(args) -> int:
    from warpsched.scheduler import load_hatschet, load_machine
    from warpsched.scheduler.paths import check_writable_file

    if bool(args.problem) == bool(args.hatschet):
        raise _usage("give either a problem file or --hatschet GRAPH.graphml")
    if args.hatschet and args.param:
        raise _usage("--param goes with a kernel model name")
    if args.json:
        check_writable_file(args.json, "--json")
    _overrides(args)
    if args.hatschet:
        problem, machine = load_hatschet(args.hatschet, args.rm)
        mode = args.mode or "classic"
    else:
        if args.rm:
            raise _usage("--rm goes with --hatschet")
        problem, machine = _load_problem_or_model(args.problem, args)
        mode = args.mode or "joint"
    if args.machine:
        machine = load_machine(args.machine)
    result = _solve(args, problem, machine or load_machine("h100"), mode)
    s = result.schedule
    print(_summary(s, result.heuristic_ii))
    if args.json:
        result.write_json(args.json)
        print(
            f"schedule written to {args.json}"
            + (" (interrupted: not proven optimal)" if s.interrupted else "")
        )
    if s.interrupted:
        print(_interrupted(s), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _load_problem_or_model(target: str, args, shipped_tiles: bool = False):
    """(problem, machine) from a model name (built for --machine) or a problem YAML file. `shipped_tiles`:
    tile
    parameters not given take the shipped package's choice for the problem (the sweep's best clean build)."""
    from warpsched.models import MODELS, build_model, model_reference
    from warpsched.models.params import parse_assignments
    from warpsched.scheduler import load_machine
    from warpsched.scheduler.problem_io import problem_from_dict, shipped_problem
    from warpsched.scheduler.yaml_files import read_yaml

    if target in MODELS:
        machine = load_machine(args.machine or "h100")
        params = parse_assignments(args.param)
        return build_model(
            target, machine, **_with_shipped_tiles(target, params, machine, shipped_tiles)
        ), machine
    path = shipped_problem(target)
    if not path.exists() and path.suffix not in (".yaml", ".yml"):
        raise _usage(f"{target!r} is neither a kernel model ({', '.join(MODELS)}) nor a problem file")
    data = read_yaml(path, "problem")
    ref = model_reference(data, target)
    if ref is not None:  # a shipped configuration: a model with its parameters (--param overrides them)
        machine = load_machine(args.machine or ref["machine"] or "h100")
        params = {**ref["params"], **parse_assignments(args.param)}
        return build_model(
            ref["model"], machine, **_with_shipped_tiles(ref["model"], params, machine, shipped_tiles)
        ), machine
    if args.param:
        raise _usage(f"--param goes with a kernel model name; {target!r} is not one of {', '.join(MODELS)}")
    return problem_from_dict(data, origin=str(path), default_name=path.stem)


def _with_shipped_tiles(model: str, params: dict, machine, wanted: bool) -> dict:
    """`params` plus, when `wanted` and no tile parameter is given, the tile the shipped package chose for
    this problem (a tile that builds clean; the model's own defaults may not: attention d64 causal)."""
    if not wanted:
        return params
    from warpsched.kernels.package import shipped_tile

    tile = shipped_tile(model, params, machine)
    if tile:
        print(
            "tile from the shipped package (its best clean build): "
            + " ".join(f"{k}={v}" for k, v in tile.items())
        )
    return {**tile, **params}


def _schedule_of(args, machine_check=None, accept=None):
    """The schedule a `check` or `compile` target names: read from JSON (and refused unless the independent
    verifier accepts it), or solved from a model or problem. `machine_check(machine)` and `accept(problem)`
    may refuse the target before any solve."""
    from warpsched.scheduler import load_machine

    if args.target.endswith(".json"):
        if args.param:
            raise _usage("--param goes with a kernel model name, not a schedule file")
        given = _given_solver_options(args)
        if given:
            raise _usage(f"{given[0]} goes with a model or problem to solve, not a schedule file")
        schedule = _verified(args.target)
        if machine_check is not None:
            machine_check(schedule.machine)
        return schedule
    _overrides(args)
    problem, machine = _load_problem_or_model(args.target, args, shipped_tiles=True)
    if args.machine:
        machine = load_machine(args.machine)
    machine = machine or load_machine("h100")
    if machine_check is not None:
        machine_check(machine)
    if accept is not None:
        accept(problem)
    result = _solve(args, problem, machine, args.mode)
    print(_summary(result.schedule, None).splitlines()[0])
    if result.schedule.interrupted:
        raise _Interrupted(_interrupted(result.schedule))
    return result.schedule


def _verified(path: str):
    """The schedule in `path`, refused in one sentence unless the independent verifier accepts it."""
    from warpsched.scheduler import schedule as schedule_io
    from warpsched.scheduler.verify import verify

    verdict = verify(schedule_io.read_json(path))
    if not verdict.ok:
        raise _usage(
            f"{path} is not a valid schedule ({verdict.violations[0]}); warpsched validate lists every "
            "violation"
        )
    return schedule_io.read(path)


def _cmd_check(args) -> int:
    from warpsched.kernels.program import lower
    from warpsched.kernels.simulate import simulate

    if args.interleavings < 1 or args.iterations < 1:
        raise _usage("--interleavings and --iterations must be at least 1")
    semantics_for = _semantics()
    schedule = _schedule_of(args)
    program = lower(schedule)
    print(program.describe())
    semantics = semantics_for(schedule.problem, args.iterations, args.sim_seed)
    latency = {op.name: op.latency for op in schedule.problem.ops}
    verdict = simulate(
        program,
        latency,
        schedule.machine.sync_latency,
        iterations=args.iterations,
        interleavings=args.interleavings,
        seed=args.sim_seed,
        semantics=semantics,
    )
    print(verdict.summary())
    return 0 if verdict.ok else EXIT_INVALID


def _semantics():
    """kernels.semantics.semantics_for; its numerics compare with a torch reference, so torch is needed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise _usage(
            "warpsched check compares the simulated outputs with a torch reference and torch is not "
            "installed; pip install 'warpsched[gpu]' (or the CPU build: pip install torch)"
        ) from None
    from warpsched.kernels.semantics import semantics_for

    return semantics_for


def _cmd_compile(args) -> int:
    import json

    from warpsched.kernels.cuda.render import supported, supported_machine
    from warpsched.kernels.driver import build_schedule
    from warpsched.kernels.program import lower
    from warpsched.scheduler import schedule as schedule_io
    from warpsched.scheduler.gantt_plot import render_figure
    from warpsched.scheduler.paths import check_writable_folder

    out = check_writable_folder(args.out, "--out")
    _shapes_before_solving(args)
    schedule = _schedule_of(args, machine_check=supported_machine, accept=supported)
    _check_shapes(args, schedule)
    program = lower(schedule)
    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    built = build_schedule(schedule, program, progress=say)  # nvcc: the branch-free variant unless it spills
    shipped = _shipped_instead(schedule, built.report, solved=not args.target.endswith(".json"))
    if (
        shipped is not None
    ):  # an optimal schedule that spills: the shipped one of the same problem and II builds clean
        schedule, program = shipped, lower(shipped)
        built = build_schedule(schedule, program, progress=say)
    kernel, report = built.kernel, built.report
    out.mkdir(parents=True, exist_ok=True)
    schedule_io.write(schedule, out / "schedule.json")
    (out / "kernel.cu").write_text(kernel.source)
    (out / "kernel.cubin").write_bytes(Path(report.cubin).read_bytes())
    render_figure(schedule, out / "schedule.png")
    summary = {
        "kernel": kernel.entry,
        "schedule_digest": kernel.digest,
        "threads": kernel.threads,
        "smem_bytes": kernel.smem_bytes,
        "tile": kernel.tile,
        "predicted_cycles_per_iteration": schedule.ii,
        "ii_proven_optimal": schedule.ii_proven_optimal,
        "roles": [
            {"warpgroup": w.index, "role": w.role, "setmaxnreg": w.registers, "ops": [s.op for s in w.steps]}
            for w in program.warpgroups
        ],
        "rings": [{"value": r.value, "depth": r.depth, "bytes": r.bytes} for r in program.rings],
        "steady_state_branch_free": kernel.branch_free,
        "wgmma_waits_deferred": kernel.deferred_waits,
        "registers_at_launch": report.registers,
        "spill_stores": report.spill_stores,
        "spill_loads": report.spill_loads,
        "sass": report.sass_counts,
        "sass_ok": report.sass_ok,
        "sass_problems": list(report.sass_problems),
        "toolchain": report.toolchain,
        "cached": report.cached,
    }
    predictions = _predictions(args, schedule, kernel, report)
    if predictions:
        summary["predictions"] = predictions
        if len(predictions) == 1:
            summary.update({k: v for k, v in predictions[0].items() if k != "shape"})
    (out / "report.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"{kernel.entry}: {kernel.threads} threads, {kernel.smem_bytes} B shared memory, {report.registers} "
        "registers at launch, "
        f"{report.spill_stores + report.spill_loads} B spilled; SASS "
        + ", ".join(f"{k} {v}" for k, v in report.sass_counts.items())
        + (" (cached build)" if report.cached else "")
    )
    if kernel.deferred_waits:
        print(
            "steady state: branch-free, each wgmma waited for where the schedule needs it (DESIGN.md 6.1.1)"
        )
    elif kernel.branch_free:
        print(
            "steady state: branch-free, each wgmma waited for at its issue"
            + (" (ptxas serialized the deferred waits)" if built.fell_back else "")
        )
    elif built.fell_back:
        print("steady state: one guarded loop (ptxas spilled or serialized the branch-free one)")
    print(f"wrote {out}/schedule.json, kernel.cu, kernel.cubin, report.json, schedule.png")
    if not report.sass_ok:
        print(
            f"warpsched: error: the kernel failed its SASS checks: {'; '.join(report.sass_problems)} (see "
            f"{out}/report.json)",
            file=sys.stderr,
        )
        return EXIT_INVALID
    return 0


def _predictions(args, schedule, kernel, report) -> list[dict]:
    """The whole-kernel prediction of every `--shape` (kernels/predict.py), printed and returned."""
    from warpsched.kernels import predict

    family = str(schedule.problem.source.get("model"))
    shapes = [predict.parse_shape(family, text) for text in args.shape or ()]
    out = []
    for shape in shapes:
        p = predict.predict(
            family,
            kernel.tile,
            shape,
            predict.sass_of(report.cubin),
            kernel.entry,
            schedule.machine.name,
            schedule.stages,
        )
        row = {"shape": shape, **p.as_dict()}
        out.append(row)
        dims = "x".join(str(v) for v in shape.values())
        print(
            f"{dims}: {p.predicted_us:.1f} us predicted, {p.predicted_tflops:.0f} TFLOP/s, "
            f"{p.predicted_tbps:.2f} TB/s, bound by {p.bound} ({p.cycles_per_trip:.0f} cycles per trip, "
            f"{p.waves:.2f} waves)"
        )
    return out


def _check_shapes(args, schedule) -> None:
    """Every `--shape` read before anything is built: one sentence for a shape the family cannot take."""
    from warpsched.kernels import perf, predict

    family = str(schedule.problem.source.get("model"))
    for text in args.shape or ():
        shape = predict.parse_shape(family, text)
        predict.launch_for(family, shape, _kernel_tile(schedule), perf.load_chip(schedule.machine.name))


def _kernel_tile(schedule) -> dict:
    from warpsched.kernels.cuda.render import render

    return render(schedule).tile


def _shapes_before_solving(args) -> None:
    """A model name's `--shape`s read before its solve (a schedule or problem file's after loading)."""
    from warpsched.kernels import predict
    from warpsched.models import MODELS

    if args.target in MODELS:
        for text in args.shape or ():
            predict.parse_shape(args.target, text)


def _cmd_predict(args) -> int:
    from warpsched.kernels.cuda.render import supported, supported_machine
    from warpsched.kernels.driver import build_schedule

    _shapes_before_solving(args)
    schedule = _schedule_of(args, machine_check=supported_machine, accept=supported)
    _check_shapes(args, schedule)
    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    built = build_schedule(schedule, progress=say)
    _predictions(args, schedule, built.kernel, built.report)
    return 0


def _shipped_instead(schedule, report, solved: bool):
    """The shipped schedule of `schedule`'s problem (same tile, II no larger) when the solved one spilled:
    optimal schedules of one problem differ in what ptxas makes of them, and the sweep kept the shipped one
    because it builds clean. None when there is none, or nothing to replace."""
    from warpsched.kernels.cuda.render import schedule_digest
    from warpsched.kernels.package import find

    if not solved or report.sass_ok or not (report.spill_stores or report.spill_loads):
        return None
    from warpsched.models import MODELS

    model = schedule.problem.source.get("model")
    params = {k: v for k, v in schedule.problem.source.items() if k != "model"}
    shipped = find(model, params, schedule.machine.name) if model in MODELS else None
    if shipped is None or shipped.ii > schedule.ii or schedule_digest(shipped) == schedule_digest(schedule):
        return None
    print(
        f"the solved schedule spilled {report.spill_stores + report.spill_loads} B; building the shipped "
        "schedule of the "
        f"same problem instead (II {shipped.ii}, "
        f"{'proven optimal' if shipped.ii_proven_optimal else 'not proven'})"
    )
    return shipped


def _cmd_sweep(args) -> int:
    import json
    from dataclasses import replace

    from warpsched import sweep as sweep_run
    from warpsched import package_writer
    from warpsched.kernels.package import manifest
    from warpsched.sweep_config import load_sweep
    from warpsched.models import split_source
    from warpsched.scheduler.config import load_config
    from warpsched.scheduler.paths import check_writable_file

    if args.processes is not None and args.processes < 1:
        raise _usage("--processes must be at least 1")
    if args.dask and args.processes is not None:
        raise _usage("--processes counts local processes; with --dask the cluster's workers run the points")
    if args.out:
        check_writable_file(args.out, "--out")
    overrides = _overrides(args)
    config = load_sweep(args.config)
    if args.preset or overrides:
        solver = (load_config(args.preset) if args.preset else config.solver).with_overrides(**overrides)
        config = replace(
            config, solver=solver, points=tuple(replace(p, config=solver) for p in config.points)
        )
    say = None if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    result = sweep_run.run_sweep(
        config, workers=args.processes, dask=args.dask, compile=args.compile, progress=say
    )
    print(
        f"sweep {config.name}: {len(result.results)} points, {len(result.choices)} problems chosen in "
        f"{result.seconds:.1f}s"
    )
    for c in result.choices:
        tile = " ".join(f"{k}={v}" for k, v in split_source(c.schedule.problem.source)[1].items())
        print(
            f"  {c.key.describe()}: {tile}: II {c.schedule.ii} "
            f"({'proven' if c.schedule.ii_proven_optimal else 'NOT proven'}), "
            f"{float(c.predicted * 1000):.4g} cycles/kMAC, iteration latency {c.schedule.makespan}; best of "
            f"{c.eligible}/{c.candidates}"
        )
    for key, why in result.unresolved:
        print(f"  {key.describe()}: nothing to choose ({why})")
    if args.out:
        Path(args.out).write_text(json.dumps(sweep_run.results_json(result), indent=1) + "\n")
        print(f"results written to {args.out}")
    if args.package is not None and result.choices:
        path = package_writer.write(args.package or manifest.PACKAGE_DIR, sweep_run.package_entries(result))
        print(f"package written: {path} ({len(result.choices)} entries added or replaced)")
    return EXIT_INVALID if result.unresolved else 0


def _cmd_precompiled(args) -> int:
    from warpsched.kernels.package import precompiled

    kernels = precompiled(build=args.build, package=args.package)
    for k in kernels:
        cubin = k.cubin_digest[:16] if k.cubin_digest else "-"
        where = " (prebuilt)" if k.prebuilt else " (built here)" if k.built else ""
        print(
            f"{k.name}: II {k.ii}{'' if k.ii_proven_optimal else ' (not proven)'}, schedule "
            f"{k.schedule_digest}, "
            f"cubin {cubin}{where}" + (f"; {k.note}" if k.note else "")
        )
    prebuilt = sum(k.prebuilt for k in kernels)
    built = sum(k.built for k in kernels) - prebuilt
    print(
        f"{len(kernels)} kernels, {sum(k.buildable for k in kernels)} with CUDA templates, "
        f"{prebuilt} prebuilt (shipped in the wheel), {built} built here"
    )
    return 0 if all(k.current for k in kernels) else EXIT_INVALID


def _cmd_export(args) -> int:
    from warpsched.export import export

    rows = export(
        args.hatschet, args.package, lambda m: print(f"warpsched: {m}", file=sys.stderr, flush=True)
    )
    for r in rows:
        split = f"; relaxed: {', '.join(r.relaxed_units)} split per occupancy" if r.relaxed_units else ""
        print(f"{r.graphml}: {r.ops} ops, II {r.ii} (kernel model {r.model_ii}){split}")
    print(f"{len(rows)} instances and README.md written to {args.hatschet}")
    return 0


def _cmd_costs(args) -> int:
    from warpsched.kernels import template_costs

    if args.processes < 1:
        raise _usage("--processes must be at least 1")
    if args.check:
        stale = template_costs.stale()
        for line in stale:
            print(f"{line}; run `warpsched costs`")
        if not stale:
            print(f"every template's costs match its text ({len(template_costs.references())} references)")
        return EXIT_INVALID if stale else 0
    n = len(template_costs.references())
    print(
        f"counting the templates of {n} reference kernels (two nvcc runs each, 15-25 s; "
        f"{args.processes} at once)",
        file=sys.stderr,
        flush=True,
    )
    data = template_costs.regenerate(lambda m: print(m, file=sys.stderr, flush=True), args.processes)
    path = template_costs.write(data)
    print(f"{len(data['templates'])} template costs written: {path}")
    return 0


def _cmd_models(args) -> int:
    from warpsched.models import MODELS

    print("\n\n".join(spec.describe() for spec in MODELS.values()))
    print("\nsolve one with: warpsched solve MODEL --machine h100 [--param key=value ...]")
    return 0


def _summary(s, heuristic_ii) -> str:
    proof = "proven optimal" if s.ii_proven_optimal else "NOT proven optimal"
    lines = [
        f"{s.problem.name}: II = {s.ii} ({proof}; MII = {s.mii}, ResMII {s.res_mii}, RecMII {s.rec_mii}"
        + (f", heuristic {heuristic_ii}" if heuristic_ii is not None else "")
        + f"), mode {s.mode}, machine {s.machine.name}",
        f"  iteration latency {s.makespan} cycles, {s.stages} stage(s), solved in {s.solve_seconds:.2f}s",
    ]
    for a in s.attempts:
        span = f"{a.ii}" if a.ii == a.ii_max else f"{a.ii}..{a.ii_max}"
        extra = f" (best II {a.found_ii}, bound {a.bound:g})" if a.found_ii is not None else ""
        lines.append(f"  attempt II {span}: {a.status}{extra} in {a.seconds:.2f}s")
    for g, w in sorted(s.warpgroups.items()):
        lines.append(
            f"  warpgroup {g}: {w.role}, {w.registers} registers (needs {w.need}), ops {', '.join(w.ops)}"
        )
    if s.buffers:
        lines.append(
            f"  shared memory {s.smem_bytes} bytes: "
            + ", ".join(f"{n} {b.kind} x{b.depth}" for n, b in s.buffers.items())
        )
    return "\n".join(lines)


def _cmd_validate(args) -> int:
    from warpsched.scheduler import schedule as schedule_io
    from warpsched.scheduler.verify import verify

    verdict = verify(schedule_io.read_json(args.schedule))
    if verdict.ok:
        print(
            f"{args.schedule}: valid (every constraint family holds and the optimality claim is backed by "
            "its proof record)"
        )
        return 0
    print(f"{args.schedule}: INVALID: {verdict.violations[0]}")
    for extra in verdict.violations[1:]:
        print(f"  also: {extra}")
    return EXIT_INVALID


def _cmd_show(args) -> int:
    from warpsched.scheduler import schedule as schedule_io
    from warpsched.scheduler.gantt import render_text
    from warpsched.scheduler.verify import verify

    pictures = [out for out in (args.png, args.svg) if out is not None]
    for out, suffix in ((args.png, ".png"), (args.svg, ".svg")):
        if out is not None and Path(out).suffix.lower() != suffix:
            raise _usage(f"--{suffix[1:]} needs a file name ending in {suffix} (got {out!r})")
    data = schedule_io.read_json(args.schedule)
    verdict = verify(data)
    schedule = schedule_io.from_json(data)
    if not verdict.ok:
        print(f"INVALID schedule: {verdict.violations[0]} (warpsched validate lists every violation)")
    print(render_text(schedule, width=args.width))
    if pictures:
        from warpsched.scheduler.gantt_plot import render_figure

        for out in pictures:
            render_figure(schedule, out)
            print(f"wrote {out}")
    return 0 if verdict.ok else EXIT_INVALID


def _cmd_machines(args) -> int:
    from warpsched.scheduler.machine import available_machines, load_machine

    for name in available_machines():
        m = load_machine(name)
        print(f"{name}: {m.description}")
    return 0


def _cmd_presets(args) -> int:
    from warpsched.scheduler.config import available_presets, load_config

    for name in available_presets():
        c = load_config(name)
        print(
            f"{name}: {c.num_workers} workers, seed {c.random_seed}, interleave {c.interleave_search}, "
            f"objectives {', '.join(c.objectives)}"
        )
    return 0


class _UsageError(Exception):
    pass


class _Interrupted(Exception):
    """Ctrl-C stopped a solve that check or compile needed: nothing is lowered or built."""


def _usage(message: str) -> _UsageError:
    return _UsageError(message)


COMMANDS = {
    "solve": _cmd_solve,
    "validate": _cmd_validate,
    "show": _cmd_show,
    "check": _cmd_check,
    "compile": _cmd_compile,
    "predict": _cmd_predict,
    "sweep": _cmd_sweep,
    "precompiled": _cmd_precompiled,
    "export": _cmd_export,
    "costs": _cmd_costs,
    "models": _cmd_models,
    "machines": _cmd_machines,
    "presets": _cmd_presets,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from warpsched.scheduler.api import VerificationError
    from warpsched.scheduler.errors import Interrupted, WarpschedError

    try:
        return COMMANDS[args.command](args)
    except _Interrupted as exc:
        print(f"{exc}; nothing was built", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        print(f"warpsched: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _UsageError as exc:
        print(f"warpsched: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except VerificationError as exc:
        print(f"warpsched: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except WarpschedError as exc:
        print(f"warpsched: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("warpsched: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
