"""FlashAttention forward: the `attention_fwd` model (models/attention.py) lowered.

cuda.py        what each op is in CUDA (render hooks) over templates.py
semantics.py   what each op computes, for the CPU simulator
launch.py      the entry point on torch tensors; torch_op.py the torch custom op
"""

from warpsched.kernels.families.base import Family
from warpsched.kernels.families.attention.cuda import AttentionCuda

FAMILY = Family(
    "attention_fwd",
    AttentionCuda,
    "warpsched.kernels.families.attention.semantics:AttentionSemantics",
    "warpsched.kernels.families.attention.launch",
    ("attention_fwd",),
    "any sequence length (the last K/V block masked), K/V heads dividing Q heads (GQA/MQA), softmax_scale, "
    "optional log-sum-exp output",
)
