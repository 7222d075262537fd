"""Numbers as the tensor core sees them, for the families' simulator semantics (torch: rounding to
bf16/fp16)."""

from __future__ import annotations

import numpy as np
import torch

TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """`x` as the tensor core sees it: rounded to bf16/fp16, back in float32."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(TORCH_DTYPES[dtype]).float().numpy()
