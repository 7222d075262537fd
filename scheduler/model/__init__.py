"""The joint SWP + WS constraint model on CP-SAT: one module per constraint family (DESIGN.md section 3)."""

from warpsched.scheduler.model.build import FAMILIES, BuiltModel, build
from warpsched.scheduler.model.variables import ModelVars

__all__ = ["FAMILIES", "BuiltModel", "ModelVars", "build"]
