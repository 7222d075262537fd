"""warpsched's scheduler: IR, bounds, the joint SWP + WS CP-SAT model, II search with proofs,
heuristic baseline, independent verifier and schedule files.

    from warpsched.scheduler import solve, load_problem
    problem, machine = load_problem("pingpong_toy")
    result = solve(problem, machine, mode="joint")
    print(result.ii, result.proven)

Names are imported lazily, so `import warpsched.scheduler` stays fast and pulls in OR-Tools only when
a solve needs it. This package never imports torch or CUDA. (The verifier is
`warpsched.scheduler.verify.verify`; the bounds are `warpsched.scheduler.bounds.bounds`.)
"""

from importlib import import_module

_EXPORTS = {
    "solve": "warpsched.scheduler.api",
    "SolveResult": "warpsched.scheduler.api",
    "VerificationError": "warpsched.scheduler.api",
    "SolverConfig": "warpsched.scheduler.config",
    "load_config": "warpsched.scheduler.config",
    "WarpschedError": "warpsched.scheduler.errors",
    "InputError": "warpsched.scheduler.errors",
    "InfeasibleError": "warpsched.scheduler.errors",
    "Interrupted": "warpsched.scheduler.errors",
    "StopSignal": "warpsched.scheduler.search",
    "load_hatschet": "warpsched.scheduler.hatschet",
    "Op": "warpsched.scheduler.ir",
    "Edge": "warpsched.scheduler.ir",
    "Problem": "warpsched.scheduler.ir",
    "Machine": "warpsched.scheduler.machine",
    "load_machine": "warpsched.scheduler.machine",
    "ModelVars": "warpsched.scheduler.model",
    "load_problem": "warpsched.scheduler.problem_io",
    "Schedule": "warpsched.scheduler.schedule",
    "Verdict": "warpsched.scheduler.verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
