"""One import namespace, warpsched, whose layers never double back (DESIGN.md section 1).

`.ci/run` also installs the wheel into a fresh venv and checks that `import kernels` fails there; these
tests catch the same mistakes in the source tree, before any install.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder -> the warpsched subpackages its modules may import (a layer imports only layers below it)
LAYERS = {
    "solver_configs": set(),
    "scheduler": {"scheduler", "solver_configs"},
    "models": {"scheduler", "models", "solver_configs"},
    "kernels": {"scheduler", "models", "kernels", "solver_configs"},
    "warpsched": None,  # the face (CLI, sweeps, package writing, support matrix): it may import anything
}
OLD_TOP_LEVEL = {"scheduler", "models", "kernels"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, lazy ones inside functions included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            if node.module == "warpsched":
                out += [(node.lineno, f"warpsched.{alias.name}") for alias in node.names]
    return out


def python_files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


@pytest.mark.parametrize(
    "path", python_files(*LAYERS, "tests", "bench"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_nothing_imports_the_old_top_level_packages(path):
    bad = [f"line {line}: {name}" for line, name in imports(path) if name.split(".")[0] in OLD_TOP_LEVEL]
    assert not bad, f"{path.relative_to(ROOT)} imports outside the warpsched namespace: {bad}"


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    allowed = LAYERS[layer]
    bad = []
    for path in python_files(layer):
        for line, name in imports(path):
            parts = name.split(".")
            if allowed is not None and parts[0] == "warpsched" and len(parts) > 1 and parts[1] not in allowed:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
            if layer == "scheduler" and parts[0] in ("torch", "cuda"):
                bad.append(
                    f"{path.relative_to(ROOT)}:{line} imports {name} (the solver layer stays free of torch "
                    "and CUDA)"
                )
    assert not bad, "\n".join(bad)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts if parts[0] == "warpsched" else ("warpsched", *parts))


def test_no_import_circles():
    """Module-level and lazy imports alike: a circle means two modules that cannot be understood apart."""
    import networkx as nx

    modules = {module_name(p): p for p in python_files(*LAYERS)}
    graph = nx.DiGraph()
    for name, path in modules.items():
        for _, imported in imports(path):
            # `from warpsched.x import y` imports the module warpsched.x.y when there is one, else warpsched.x
            target = next(
                (m for m in (imported, imported.rsplit(".", 1)[0]) if m in modules and m != name), None
            )
            package = name.rsplit(".", 1)[0]
            if target is not None and not (modules[name].name == "__init__.py" or target == package):
                graph.add_edge(name, target)  # a package's __init__ re-exporting its modules is no circle
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_the_distribution_installs_warpsched_only():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p == "warpsched" or p.startswith("warpsched.") for p in config["packages"])
    assert set(config["package-dir"]) == {
        "warpsched",
        *(f"warpsched.{f}" for f in LAYERS if f != "warpsched"),
    }
    packages = {p for p in config["packages"]}
    on_disk = {  # warpsched/integrations is warpsched.integrations, kernels/cuda warpsched.kernels.cuda
        ".".join(parts if parts[0] == "warpsched" else ("warpsched", *parts))
        for p in python_files(*LAYERS)
        if p.name == "__init__.py" and (parts := p.parent.relative_to(ROOT).parts) != ("warpsched",)
    }
    assert on_disk <= packages, f"subpackages missing from pyproject.toml: {sorted(on_disk - packages)}"
    data = config["package-data"]
    assert "warpsched.solver_configs" in data and "warpsched.kernels.package" in data


def test_import_warpsched_gives_the_solver_api_and_the_kernels_without_loading_them():
    import warpsched

    assert callable(warpsched.solve) and callable(warpsched.load_problem) and callable(warpsched.build_model)
    assert callable(warpsched.kernels.quant_gemm) and callable(warpsched.kernels.precompiled)
    problem, machine = warpsched.load_problem("pingpong_toy")  # a shipped problem file, by name
    assert problem.name == "pingpong_toy"


def test_import_warpsched_loads_neither_ortools_nor_torch():
    import subprocess

    code = (
        "import sys, warpsched; loaded = [m for m in ('ortools', 'torch', 'cuda') if m in sys.modules]; "
        "print(loaded); sys.exit(bool(loaded))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_pass_identifies_ops_by_parsing_their_names():
    """Ops carry their kind (models.kinds.OpKind) and replica index (Op.index); the lowering reads those."""
    found = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in python_files("kernels")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "startswith(" in line or "_index(" in line or 're.search(r"(\\d+)$"' in line
    ]
    assert not found, "\n".join(found)
