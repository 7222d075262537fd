"""README.md keeps exactly two set-up commands, CI runs the test one, and its API example runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def setup_commands() -> list[str]:
    section = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S)]


def test_exactly_two_setup_commands_one_of_them_the_tests():
    commands = setup_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert "warpsched compile" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup_commands()[1] in ci.splitlines()


def test_python_api_example_runs(tmp_path, monkeypatch):
    block = README.split("## The Python API", 1)[1]
    code = re.findall(r"```python\n(.*?)```", block, flags=re.S)[0]
    monkeypatch.chdir(ROOT)
    code = code.replace('r.write_json("schedule.json")', f'r.write_json({str(tmp_path / "schedule.json")!r})')
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    r = scope["r"]
    assert r.verdict.ok and r.proven and (tmp_path / "schedule.json").exists()
    assert r.schedule.ops["Pa"].warpgroup != r.schedule.ops["Pb"].warpgroup


def test_the_support_matrix_is_the_generated_one():
    from kernels.support import BEGIN, END, support_matrix

    assert BEGIN in README and END in README
    published = BEGIN + README.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert published == support_matrix(), "README's support matrix drifted: paste `python -m kernels.support`"
