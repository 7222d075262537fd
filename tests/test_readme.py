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
    assert setup_commands()[1] in [line.strip() for line in ci.splitlines()]


def test_python_api_example_runs(tmp_path, monkeypatch):
    block = README.split("## The Python API", 1)[1]
    code = re.findall(r"```python\n(.*?)```", block, flags=re.S)[0]
    monkeypatch.chdir(ROOT)
    code = code.replace('r.write_json("schedule.json")', f"r.write_json({str(tmp_path / 'schedule.json')!r})")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    r = scope["r"]
    assert r.verdict.ok and r.proven and (tmp_path / "schedule.json").exists()
    assert r.schedule.ops["Pa"].warpgroup != r.schedule.ops["Pb"].warpgroup


def test_the_support_matrix_is_the_generated_one():
    from warpsched.support import BEGIN, END, support_matrix

    assert BEGIN in README and END in README
    published = BEGIN + README.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert published == support_matrix(), (
        "README's support matrix drifted: paste `python -m warpsched.support`"
    )


def readme_commands() -> list[list[str]]:
    """Every `warpsched ...` command the README shows, in code blocks or inline code, as its words."""
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", README, flags=re.S)
    lines = [line.split("#", 1)[0] for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`(warpsched [^`]+)`", README)
    commands = []
    for line in lines:
        for part in re.split(r"&&|\|\|", line):
            words = part.split()
            if len(words) >= 2 and words[0] == "warpsched":
                commands.append(words)
    return commands


def test_every_command_and_option_the_readme_shows_exists():
    from warpsched.cli import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command").choices
    commands = readme_commands()
    assert len(commands) > 15
    for words in commands:
        names = [words[1], words[3]] if words[2:3] == ["|"] else [words[1]]  # `warpsched machines | presets`
        for name in names:
            assert name in sub, f"README shows `warpsched {name}`, which is not a command"
            accepted = {s for a in sub[name]._actions for s in a.option_strings}
            for word in words[2:]:
                for option in re.findall(r"--[a-z][a-z-]*", word):
                    assert option in accepted, (
                        f"README shows `warpsched {name} ... {option}`, which it does not accept"
                    )


def test_every_python_name_the_readme_shows_exists():
    import importlib

    names = set(re.findall(r"(?<![\w.])warpsched(?:\.[A-Za-z_]\w*)+", README))  # not torch.ops.warpsched.*
    assert len(names) >= 8
    for dotted in sorted(names):
        parts = dotted.split(".")
        obj, i = None, len(parts)
        while i > 0:  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ModuleNotFoundError:
                i -= 1
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"README names {dotted}, but {'.'.join(parts[:i])} has no {attr!r}"
            obj = getattr(obj, attr)
