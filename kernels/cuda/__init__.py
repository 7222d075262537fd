"""CUDA generation (CuTe templates and their renderer) and the nvcc build of generated kernels."""
