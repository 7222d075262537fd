"""The kernels as torch custom ops, `torch.ops.warpsched.{gemm, quant_gemm, attention_fwd}`, so that they
trace under `torch.compile` (each has a fake implementation that gives the output's shape and type).
Each family registers its own (kernels/families/*/torch_op.py); importing this module registers them all.

    import warpsched.kernels.torch_ops        # registers the ops once per process
    y = torch.ops.warpsched.quant_gemm(x, packed, scales, None, bits=4, group_size=128, fmt="int")
"""

from __future__ import annotations

import importlib

from warpsched.kernels.families import FAMILIES

for _family in FAMILIES.values():
    importlib.import_module(_family.launch.rsplit(".", 1)[0] + ".torch_op")
