"""Kernel dataflow-graph models (GEMM, quantized GEMM, attention): see DESIGN.md section 7."""
