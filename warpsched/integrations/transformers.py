"""Hugging Face transformers with warpsched's kernels: the attention as an `attn_implementation`, and the
linear layers of GPTQ and AWQ checkpoints as warpsched's quantized GEMM.

    from warpsched.integrations import transformers as ws
    ws.register()                                          # once per process
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="warpsched", dtype=torch.float16)
    ws.swap_quantized_linears(model, path)                 # every GPTQ/AWQ layer of the checkpoint
    model.cuda()

`register` adds "warpsched" to transformers' attention registry (`AttentionInterface`) with the mask
function of the FlashAttention backends (no mask unless a batch is padded): the attention is
kernels.attention_fwd, causal aligned to the bottom right as the KV cache needs it. A padded batch, a
sliding window, soft-capping or attention dropout is refused in one sentence (the kernels have none of
them). `swap_quantized_linears` reads the checkpoint's `qweight`/`qzeros`/`scales` (and GPTQ's `g_idx`)
of every `nn.Linear` the model has, through kernels.importers, and puts a `QuantLinear` in its place:
packed weights in the kernels' layout (kernels/quant.py), scales in the layer's dtype, the checkpoint's
bias. Both run on an sm_90 GPU; anywhere else a forward pass raises the kernels' one-sentence
`KernelError` saying so. transformers itself is imported only when these are called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from warpsched.kernels.importers import QuantizedWeight, from_awq, from_gptq
from warpsched.kernels.quant import dequantize, unpack
from warpsched.kernels.runtime import KernelError
from warpsched.scheduler.errors import InputError

NAME = "warpsched"  # the attn_implementation


def register() -> str:
    """Make `attn_implementation="warpsched"` select warpsched's attention (idempotent); returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

    AttentionInterface.register(NAME, attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, flash_attention_mask)  # None unless a batch is padded
    return NAME


def attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: query (B, H, N, d), key and value (B, H_kv, N_kv, d);
    the output (B, N, H, d) and no attention weights."""
    from warpsched.kernels.families.attention.launch import attention_fwd

    if attention_mask is not None:
        raise KernelError(
            "warpsched attention takes batches without padding (no attention mask); give it sequences of "
            "one length, or use another attn_implementation for padded batches"
        )
    if dropout:
        raise KernelError(
            f"warpsched attention has no dropout; got attention dropout {dropout} (train mode?)"
        )
    for unsupported in ("sliding_window", "softcap"):
        if kwargs.get(unsupported) is not None:
            raise KernelError(
                f"warpsched attention has no {unsupported.replace('_', ' ')}; this model uses one"
            )
    causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    out = attention_fwd(
        query.contiguous(), key.contiguous(), value.contiguous(), causal=bool(causal), softmax_scale=scaling
    )
    return out.transpose(1, 2).contiguous(), None


class QuantLinear(torch.nn.Module):
    """A linear layer whose weights are packed 1..8-bit codes (kernels/quant.py) with group scales (and zero
    points): y = x W^T + b through kernels.quant_gemm."""

    def __init__(self, weight: QuantizedWeight, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, packed_bytes = weight.packed.shape
        self.in_features = packed_bytes * 8 // weight.bits
        self.bits, self.group_size, self.fmt = weight.bits, weight.group_size, weight.fmt
        self.register_buffer("packed", weight.packed)
        self.register_buffer("scales", weight.scales)
        self.register_buffer("zeros", weight.zeros)
        self.register_buffer("perm", weight.perm)
        self.register_buffer("bias", bias)

    @classmethod
    def from_gptq(cls, qweight, qzeros, scales, g_idx=None, *, bits: int = 4, bias=None) -> QuantLinear:
        return cls(from_gptq(qweight, qzeros, scales, g_idx, bits=bits), bias)

    @classmethod
    def from_awq(cls, qweight, qzeros, scales, *, bias=None) -> QuantLinear:
        return cls(from_awq(qweight, qzeros, scales), bias)

    def quantized(self) -> QuantizedWeight:
        return QuantizedWeight(
            self.packed, self.scales, self.zeros, self.bits, self.group_size, self.fmt, self.perm
        )

    def dequantized_weight(self) -> torch.Tensor:
        """W (out_features, in_features) in float32, in the checkpoint's order of input channels."""
        w = dequantize(
            unpack(self.packed, self.bits),
            self.scales,
            self.zeros,
            bits=self.bits,
            group_size=self.group_size,
            fmt=self.fmt,
        )
        if self.perm is None:
            return w
        out = torch.empty_like(w)
        out[:, self.perm.to(w.device)] = w  # column j of the kernel's order is input channel perm[j]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise KernelError(f"the input has {x.shape[-1]} features; this layer takes {self.in_features}")
        y = self.quantized().matmul(x.reshape(-1, self.in_features))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        group = "channelwise" if self.group_size == -1 else f"group {self.group_size}"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"{self.fmt}{self.bits}, {group}"
            f"{', act-order' if self.perm is not None else ''}, bias={self.bias is not None}"
        )


def read_checkpoint(source: str | Path | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """The tensors of a checkpoint: a mapping as it is, a .safetensors file, or a folder of them (shards)."""
    if isinstance(source, Mapping):
        return source
    from safetensors.torch import load_file

    path = Path(source)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise InputError(f"{path} is neither a .safetensors file nor a folder holding some")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(str(f)))
    return tensors


def _layer(name: str, linear: torch.nn.Linear, tensors: Mapping[str, torch.Tensor]) -> QuantLinear:
    """The QuantLinear of `name` from its GPTQ or AWQ tensors (told apart by qweight's shape)."""
    qweight, qzeros, scales = (tensors[f"{name}.{t}"] for t in ("qweight", "qzeros", "scales"))
    k, n = linear.in_features, linear.out_features
    bias = tensors.get(f"{name}.bias", linear.bias)
    bias = None if bias is None else bias.detach().to(linear.weight.dtype)
    scales = scales.to(linear.weight.dtype)
    try:
        if qweight.shape[-1] == n and (qweight.shape[0] * 32) % k == 0:  # GPTQ: (K * bits / 32, N)
            bits = qweight.shape[0] * 32 // k
            layer = QuantLinear.from_gptq(
                qweight, qzeros, scales, tensors.get(f"{name}.g_idx"), bits=bits, bias=bias
            )
        elif tuple(qweight.shape) == (k, n // 8):  # AWQ: (K, N / 8)
            layer = QuantLinear.from_awq(qweight, qzeros, scales, bias=bias)
        else:
            raise InputError(
                f"qweight {tuple(qweight.shape)} is neither GPTQ's (K * bits / 32, {n}) nor AWQ's "
                f"({k}, {n // 8})"
            )
    except InputError as e:
        raise InputError(f"layer {name} ({k} -> {n}): {e}") from None
    if (layer.in_features, layer.out_features) != (k, n):
        raise InputError(
            f"layer {name}: the checkpoint holds {layer.in_features} -> {layer.out_features}, "
            f"the model {k} -> {n}"
        )
    return layer


def swap_quantized_linears(
    model: torch.nn.Module, checkpoint: str | Path | Mapping[str, torch.Tensor]
) -> list[str]:
    """Replace, in place, every `nn.Linear` of `model` whose name has GPTQ or AWQ tensors in `checkpoint`
    (`<name>.qweight`, `.qzeros`, `.scales`, GPTQ's `.g_idx`) by a QuantLinear; returns the names swapped."""
    tensors = read_checkpoint(checkpoint)
    swapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.Linear) and f"{name}.qweight" in tensors:
            layer = _layer(name, module, tensors).to(module.weight.device)
            parent, _, attribute = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attribute, layer)
            swapped.append(name)
    if not swapped:
        quantized = sorted({key.rsplit(".", 1)[0] for key in tensors if key.endswith(".qweight")})
        raise InputError(
            "no linear layer of the model has quantized weights in the checkpoint"
            + (
                f" (it has them for {', '.join(quantized[:3])}{', ...' if len(quantized) > 3 else ''})"
                if quantized
                else ""
            )
        )
    return swapped
