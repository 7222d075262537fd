"""Model parameters: declared once per model, parsed from `key=value`, checked with one-sentence errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from warpsched.scheduler.errors import InputError


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    kind: type = int
    choices: tuple | None = None
    low: int | None = None
    high: int | None = None
    tile: bool = (
        False  # an implementation choice (tile shape, warpgroup count): changes the schedule, not the result
    )

    def convert(self, raw: Any, model: str) -> Any:
        value = raw
        if isinstance(raw, str) and self.kind is not str:
            text = raw.strip().lower()
            try:
                if self.kind is bool:
                    if text not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError
                    value = text in ("true", "1", "yes")
                else:
                    value = self.kind(text)
            except ValueError:
                raise InputError(f"{model}: {self.name} must be {self._expects()}, not {raw!r}") from None
        if self.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise InputError(f"{model}: {self.name} must be {self._expects()}, not {raw!r}")
        if self.choices is not None and value not in self.choices:
            raise InputError(
                f"{model}: {self.name} = {value!r} is not supported; use one of "
                f"{', '.join(map(str, self.choices))}"
            )
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise InputError(f"{model}: {self.name} = {value!r} is out of range; use {self._expects()}")
        return value

    def _expects(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind is bool:
            return "true or false"
        if self.kind is int:
            lo = "" if self.low is None else f" >= {self.low}"
            hi = "" if self.high is None else f" <= {self.high}"
            return "a whole number" + (lo + (" and" if lo and hi else "") + hi if lo or hi else "")
        return "a string"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str
    params: tuple[Param, ...]
    build: Callable[..., Any]  # build(machine, **params) -> Problem
    work: Callable[[dict], Any] | None = (
        None  # useful multiply-accumulates per iteration, from a problem's source
    )

    @property
    def tile_params(self) -> tuple[str, ...]:
        """The parameters that choose an implementation (tiles, warpgroups) rather than the problem solved."""
        return tuple(p.name for p in self.params if p.tile)

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = [k for k in given if k not in known]
        if unknown:
            raise InputError(
                f"{self.name} has no parameter {unknown[0]!r}; its parameters are {', '.join(known)}"
            )
        return {
            name: (p.convert(given[name], self.name) if name in given else p.default)
            for name, p in known.items()
        }

    def describe(self) -> str:
        """One line per parameter: name, default, choices or range, help."""
        lines = [f"{self.name}: {self.summary}"]
        for p in self.params:
            default = "auto" if p.default is None else p.default
            lines.append(f"  {p.name:<12} default {str(default):<6} {p._expects():<34} {p.help}")
        return "\n".join(lines)


def parse_assignments(pairs: list[str] | None) -> dict[str, str]:
    """`["bits=4", "group_size=128"]` -> {"bits": "4", "group_size": "128"}."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {pair!r} is not key=value (e.g. --param bits=4)")
        out[key.strip()] = value.strip()
    return out
