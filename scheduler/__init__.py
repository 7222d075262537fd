"""warpsched's scheduler: IR, bounds, the joint SWP + WS CP-SAT model, II search with proofs,
heuristic baseline, independent verifier and schedule files.

    from scheduler import solve, load_problem
    problem, machine = load_problem("solver_configs/problems/pingpong_toy.yaml")
    result = solve(problem, machine, mode="joint")
    print(result.ii, result.proven)

Names are imported lazily, so `import scheduler` stays fast and pulls in OR-Tools only when
a solve needs it. This package never imports torch or CUDA. (The verifier is
`scheduler.verify.verify`; the bounds are `scheduler.bounds.bounds`.)
"""

from importlib import import_module

_EXPORTS = {
    "solve": "scheduler.api", "SolveResult": "scheduler.api", "VerificationError": "scheduler.api",
    "SolverConfig": "scheduler.config", "load_config": "scheduler.config",
    "WarpschedError": "scheduler.errors", "InputError": "scheduler.errors", "InfeasibleError": "scheduler.errors",
    "load_hatschet": "scheduler.hatschet",
    "Op": "scheduler.ir", "Edge": "scheduler.ir", "Problem": "scheduler.ir",
    "Machine": "scheduler.machine", "load_machine": "scheduler.machine",
    "ModelVars": "scheduler.model",
    "load_problem": "scheduler.problem_io",
    "Schedule": "scheduler.schedule",
    "Verdict": "scheduler.verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
