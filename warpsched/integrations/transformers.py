"""Hugging Face transformers with warpsched's kernels: the attention as an `attn_implementation`, and the
linear layers of GPTQ and AWQ checkpoints as warpsched's quantized GEMM.

    from warpsched.integrations import transformers as ws
    ws.register()                                          # once per process
    model = ws.load_quantized(path, attn_implementation="warpsched", dtype=torch.float16).cuda()

(`load_quantized` builds the model from its config without transformers' own GPTQ/AWQ backends, swaps in
the quantized layers and loads the rest; `swap_quantized_linears(model, path)` does the swap alone on a
model you built.)

`register` adds "warpsched" to transformers' attention registry (`AttentionInterface`) with the mask
function of the FlashAttention backends (no mask unless a batch is padded): the attention is
kernels.attention_fwd, causal aligned to the bottom right as the KV cache needs it. A padded batch, another
mask pattern (packed sequences, sliding windows), soft-capping, attention sinks or any attention argument
it does not know, and attention dropout are refused in one sentence (the kernels have none of them).
`swap_quantized_linears` reads the checkpoint's `qweight`/`qzeros`/`scales` (and GPTQ's `g_idx`)
of every `nn.Linear` the model has, through kernels.importers, and puts a `QuantLinear` in its place:
packed weights in the kernels' layout (kernels/quant.py), scales in the layer's dtype, the checkpoint's
bias. Both run on an sm_90 GPU; anywhere else a forward pass raises the kernels' one-sentence
`KernelError` saying so. transformers itself is imported only when these are called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from warpsched.kernels.families.quant_gemm import geometry
from warpsched.kernels.importers import QuantizedWeight, from_awq, from_gptq
from warpsched.kernels.quant import dequantize, unpack
from warpsched.kernels.runtime import KernelError
from warpsched.scheduler.errors import InputError

NAME = "warpsched"  # the attn_implementation
# arguments transformers' models pass to an attention function that change nothing the kernel computes
HARMLESS = {"position_ids", "use_cache", "cache_position", "past_key_values", "past_key_value", "layer_idx"}


def register() -> str:
    """Make `attn_implementation="warpsched"` select warpsched's attention (idempotent); returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(NAME, attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, causal_mask_only)
    return NAME


def causal_mask_only(*args, mask_function=None, **kwargs):
    """transformers' mask hook: the FlashAttention backends' (None unless a batch is padded) for a plain
    causal mask; any other mask pattern (packed sequences, sliding windows, chunked attention,
    bidirectional) is refused, since the kernel masks causally or not at all and would ignore it."""
    from transformers.masking_utils import causal_mask_function, flash_attention_mask

    if mask_function is not None and mask_function is not causal_mask_function:
        raise KernelError(
            "warpsched attention masks causally or not at all; this call asks for another mask pattern "
            "(packed sequences, a sliding window or chunked attention): use another attn_implementation"
        )
    return flash_attention_mask(*args, **kwargs)


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
            "warpsched attention takes no attention mask (a padded batch, or a static KV cache longer than "
            "what it holds); give it sequences of one length with a dynamic cache, or use another "
            "attn_implementation"
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
    unknown = sorted(k for k, v in kwargs.items() if k not in HARMLESS and v is not None and v is not False)
    if unknown:
        raise KernelError(
            f"this model passes the attention {', '.join(map(repr, unknown))}, which warpsched attention "
            "does not know and may change what attention computes (sinks, packed sequences, ...); use "
            "another attn_implementation"
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
        y = self.quantized().matmul(x.reshape(-1, self.in_features).contiguous())
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
        try:
            tensors.update(load_file(str(f)))
        except Exception as e:  # noqa: BLE001 - safetensors' own errors do not say which file
            raise InputError(f"{f} is not a readable safetensors file ({type(e).__name__}: {e})") from None
    return tensors


def _layer(name: str, linear: torch.nn.Linear, tensors: Mapping[str, torch.Tensor]) -> QuantLinear:
    """The QuantLinear of `name` from its GPTQ or AWQ tensors (told apart by qweight's shape)."""
    missing = [t for t in ("qweight", "qzeros", "scales") if f"{name}.{t}" not in tensors]
    if missing:
        raise InputError(
            f"layer {name}: the checkpoint has its qweight but not its {' and '.join(missing)} (GPTQ and AWQ "
            "checkpoints with zero points are read; AWQ without zero points is not)"
        )
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
    why = geometry.unsupported_zero_points(layer.fmt, layer.group_size)
    if why:
        raise InputError(f"layer {name}: {why}; requantize with groups")
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


def load_quantized(path: str | Path, **model_kwargs) -> torch.nn.Module:
    """A causal LM from a GPTQ or AWQ checkpoint folder (config.json and safetensors), built without
    transformers' own quantization backends: the model from its config (quantization_config dropped), its
    quantized linear layers swapped for QuantLinear, every other weight (embeddings, norms, the head)
    loaded from the checkpoint. `model_kwargs` go to `from_config` (dtype, attn_implementation, ...)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(path))
    quantization = getattr(config, "quantization_config", None) or {}
    if not isinstance(quantization, dict):
        quantization = quantization.to_dict()
    if quantization.get("checkpoint_format", "gptq") not in ("gptq", "gemm"):
        raise InputError(
            f"{path}: checkpoint_format {quantization['checkpoint_format']!r} is not read (GPTQ v1 and AWQ "
            "GEMM are: their zero points are stored as the importers expect)"
        )
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, **model_kwargs)
    tensors = read_checkpoint(path)
    swapped = set(swap_quantized_linears(model, tensors))
    state = model.state_dict()
    plain = {k: v for k, v in tensors.items() if k in state}
    model.load_state_dict(plain, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = sorted(
        k for k in state if k not in plain and k not in tied and k.rsplit(".", 1)[0] not in swapped
    )
    if missing:
        raise InputError(
            f"{path}: the checkpoint has no {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''} "
            "for this model"
        )
    return model
