"""warpsched: provably optimal software pipelining and warp specialization for Tensor Core GPU kernels.

One import namespace. The solver experimentation API is here directly:

    import warpsched
    problem, machine = warpsched.load_problem("pingpong_toy")      # a shipped problem file, or a path
    result = warpsched.solve(problem, machine, mode="joint")
    print(result.ii, result.proven)
    attention = warpsched.build_model("attention_fwd", "h100", head_dim=128)

and the layers below it are subpackages (DESIGN.md section 1):

    warpsched.models          kernel loop-body models (gemm, quant_gemm, attention_fwd)
    warpsched.solver_configs  machine models, solver presets, problem files and sweeps (package data)
    warpsched.scheduler       IR, bounds, the CP-SAT model, II search, verifier, schedule files
    warpsched.kernels         lowering, CPU simulator, CUDA generation, build, runtime on torch tensors
                              (warpsched.kernels.quant_gemm, .gemm, .attention_fwd, .precompiled)

Everything is imported lazily: `import warpsched` pulls in neither OR-Tools, torch nor CUDA.
"""

from importlib import import_module

from warpsched.scheduler import _EXPORTS as _SOLVER_EXPORTS

_EXPORTS = {**_SOLVER_EXPORTS, "build_model": "warpsched.models", "MODELS": "warpsched.models"}
_SUBPACKAGES = ("cli", "kernels", "models", "scheduler", "solver_configs")

__all__ = sorted(_EXPORTS) + list(_SUBPACKAGES)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if name in _SUBPACKAGES:
        return import_module(f"warpsched.{name}")
    raise AttributeError(f"module 'warpsched' has no attribute {name!r}")
