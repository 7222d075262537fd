"""Lowering of schedules to CUDA kernels: see DESIGN.md section 6."""
