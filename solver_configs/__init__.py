"""warpsched's shipped configuration, installed as package data (`warpsched.solver_configs`):
machine models (machines/*.yaml, every number with its source), solver presets (solvers/*.yaml),
problem files (problems/*.yaml), sweep configs (sweeps/*.yaml, precompiled.yaml)."""
