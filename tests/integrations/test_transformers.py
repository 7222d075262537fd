"""warpsched inside Hugging Face transformers (warpsched/integrations/transformers.py), on a tiny Llama built
from a config (random weights, nothing downloaded): a GPTQ checkpoint's layers swap in and dequantize to what
the checkpoint says, AWQ's too, attn_implementation="warpsched" selects the attention, and without a GPU a
forward pass says in one sentence why it cannot run. On an sm_90 GPU, greedy generation matches the
reference path (the checkpoint's dequantized weights in plain Linear layers, sdpa) token for token."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from safetensors.torch import save_file  # noqa: E402

from warpsched.integrations import transformers as ws  # noqa: E402
from warpsched.kernels.importers import AWQ_ORDER  # noqa: E402
from warpsched.kernels.runtime import KernelError  # noqa: E402
from warpsched.scheduler.errors import InputError  # noqa: E402

GROUP = 128


def tiny_llama(attn: str = "sdpa", dtype=torch.float32):
    config = transformers.LlamaConfig(
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # GQA, head_dim 64
        vocab_size=128,
        max_position_embeddings=64,
        initializer_range=0.2,  # logits far apart: greedy tokens do not hinge on rounding
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=dtype)


def _words(codes: torch.Tensor, bits: int, dim: int, order=None) -> torch.Tensor:
    """GPTQ/AWQ int32 words: 32 // bits codes along `dim` per word, little-endian (AWQ: nibble i of a word
    holds code order[i] of its eight)."""
    per = 32 // bits
    c = codes.movedim(dim, -1).to(torch.int64)
    c = c.reshape(*c.shape[:-1], -1, per)
    if order is not None:
        c = c[..., list(order)]
    w = (c << (bits * torch.arange(per))).sum(-1)
    return torch.where(w >= 2**31, w - 2**32, w).to(torch.int32).movedim(-1, dim).contiguous()


def gptq_checkpoint(
    model, bits: int = 4, act_order: str = "model.layers.0.self_attn.q_proj", symmetric: bool = False
):
    """GPTQ tensors for every linear layer but the head, and what each layer's weight must dequantize to
    (symmetric: every zero point 2^(bits-1), which the importer makes the `int` format)."""
    tensors, want = {}, {}
    g = torch.Generator().manual_seed(bits)
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.Linear) or name == "lm_head":
            continue
        k, n = m.in_features, m.out_features
        q = torch.randint(0, 1 << bits, (k, n), generator=g)
        z = torch.randint(0, 1 << bits, (k // GROUP, n), generator=g)
        if symmetric:
            z = torch.full_like(z, 1 << (bits - 1))
        s = (torch.rand(k // GROUP, n, generator=g) + 0.5) / (1 << bits)
        g_idx = torch.arange(k) // GROUP
        if name == act_order:
            g_idx = g_idx[torch.randperm(k, generator=g)]
        tensors[f"{name}.qweight"] = _words(q, bits, 0)
        tensors[f"{name}.qzeros"] = _words(
            (z - 1) % (1 << bits), bits, 1
        )  # GPTQ stores zero points minus one
        tensors[f"{name}.scales"] = s.to(torch.float16)
        tensors[f"{name}.g_idx"] = g_idx.to(torch.int32)
        want[name] = (s.to(torch.float16).float()[g_idx] * (q - z[g_idx]).float()).T  # GPTQ's own (N, K)
    return tensors, want


def test_a_gptq_checkpoints_layers_swap_in_and_dequantize_to_what_it_says(tmp_path):
    model = tiny_llama()
    tensors, want = gptq_checkpoint(model)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    swapped = ws.swap_quantized_linears(model, tmp_path)
    assert sorted(swapped) == sorted(want) and len(swapped) == 14
    for name in swapped:
        layer = model.get_submodule(name)
        assert isinstance(layer, ws.QuantLinear) and layer.bits == 4
        assert torch.equal(layer.dequantized_weight(), want[name]), name
    assert model.get_submodule("model.layers.0.self_attn.q_proj").perm is not None  # act-order made static
    assert isinstance(model.lm_head, torch.nn.Linear)


def test_an_awq_layer_swaps_in():
    g = torch.Generator().manual_seed(5)
    k, n = 256, 128
    q = torch.randint(0, 16, (k, n), generator=g)
    z = torch.randint(0, 16, (k // GROUP, n), generator=g)
    s = torch.rand(k // GROUP, n, generator=g) + 0.1
    model = torch.nn.Sequential(torch.nn.Linear(k, n, bias=True))
    bias = torch.randn(n, generator=g)
    checkpoint = {
        "0.qweight": _words(q, 4, 1, AWQ_ORDER),
        "0.qzeros": _words(z, 4, 1, AWQ_ORDER),
        "0.scales": s,
        "0.bias": bias,
    }
    assert ws.swap_quantized_linears(model, checkpoint) == ["0"]
    layer = model[0]
    w = ((q - z.repeat_interleave(GROUP, 0)).float() * s.repeat_interleave(GROUP, 0)).T
    assert (
        layer.fmt == "int_zp" and torch.equal(layer.dequantized_weight(), w) and torch.equal(layer.bias, bias)
    )


def test_attn_implementation_warpsched_selects_the_attention_and_says_why_not_here():
    assert ws.register() == "warpsched"
    model = tiny_llama("warpsched")
    assert model.config._attn_implementation == "warpsched"
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the GPU test runs the forward pass")
    with pytest.raises(KernelError) as exc:
        model(torch.tensor([[1, 2, 3, 4]]))
    assert "CUDA GPU" in str(exc.value) and "\n" not in str(exc.value)


def test_a_swapped_model_says_why_it_cannot_run_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the GPU test runs the forward pass")
    model = tiny_llama()
    ws.swap_quantized_linears(model, gptq_checkpoint(model)[0])
    with pytest.raises(KernelError, match="CUDA GPU"):
        model(torch.tensor([[1, 2, 3]]))


def test_a_checkpoint_folder_loads_with_its_plain_weights_and_quantized_layers(tmp_path):
    model = tiny_llama()
    tensors, want = gptq_checkpoint(model)
    plain = {k: v for k, v in model.state_dict().items() if k.rsplit(".", 1)[0] not in want}
    save_file(
        {**tensors, **{k: v.contiguous() for k, v in plain.items()}}, str(tmp_path / "model.safetensors")
    )
    model.config.quantization_config = {"quant_method": "gptq", "bits": 4, "group_size": GROUP}
    model.config.save_pretrained(tmp_path)
    loaded = ws.load_quantized(tmp_path)
    assert isinstance(loaded.model.layers[1].mlp.down_proj, ws.QuantLinear)
    assert torch.equal(
        loaded.model.layers[1].mlp.down_proj.dequantized_weight(), want["model.layers.1.mlp.down_proj"]
    )
    for name, value in plain.items():
        assert torch.equal(loaded.state_dict()[name], value), name
    save_file(tensors, str(tmp_path / "model.safetensors"))  # the plain weights gone
    with pytest.raises(InputError, match="the checkpoint has no lm_head.weight, model.embed_tokens.weight"):
        ws.load_quantized(tmp_path)


@pytest.mark.parametrize(
    "call, words",
    [
        (
            lambda: ws.swap_quantized_linears(torch.nn.Linear(256, 128), {"x.weight": torch.zeros(1)}),
            ["no linear"],
        ),
        (
            lambda: ws.swap_quantized_linears(
                torch.nn.Sequential(torch.nn.Linear(256, 128)),
                {
                    "0.qweight": torch.zeros(3, 5, dtype=torch.int32),
                    "0.qzeros": torch.zeros(1),
                    "0.scales": torch.zeros(1),
                },
            ),
            ["layer 0", "neither GPTQ", "AWQ"],
        ),
        (lambda: ws.read_checkpoint("/nonexistent/model.safetensors"), ["neither a .safetensors file"]),
        (lambda: ws.read_checkpoint(__file__), ["is not a readable safetensors file"]),
        (
            lambda: ws.swap_quantized_linears(
                torch.nn.Sequential(torch.nn.Linear(256, 128)),
                {"0.qweight": torch.zeros(32, 128, dtype=torch.int32)},
            ),
            ["layer 0", "not its qzeros and scales"],
        ),
        (
            lambda: ws.swap_quantized_linears(
                torch.nn.Sequential(torch.nn.Linear(256, 128)),
                {
                    "0.qweight": torch.zeros(32, 128, dtype=torch.int32),
                    "0.qzeros": torch.zeros(1, 16, dtype=torch.int32),  # zero point 1, not 8: asymmetric
                    "0.scales": torch.ones(1, 128),  # one group over K: channelwise
                },
            ),
            ["channelwise int_zp", "groups of 32, 64 or 128"],
        ),
        (
            lambda: ws.attention_forward(
                torch.nn.Module(), *(torch.zeros(1, 2, 4, 64),) * 3, None, s_aux=torch.ones(2)
            ),
            ["'s_aux'", "another attn_implementation"],
        ),
        (
            lambda: ws.causal_mask_only(1, 4, 4, mask_function=lambda b, h, q, kv: q >= kv),
            ["another mask pattern", "packed sequences"],
        ),
        (
            lambda: ws.attention_forward(
                torch.nn.Module(),
                *(torch.zeros(1, 2, 4, 64),) * 3,
                attention_mask=torch.ones(1, 4, dtype=torch.bool),
            ),
            ["no attention mask", "padded batch"],
        ),
    ],
)
def test_mistakes_are_one_sentence(call, words):
    with pytest.raises((InputError, KernelError)) as exc:
        call()
    assert all(w in str(exc.value) for w in words) and "\n" not in str(exc.value), str(exc.value)


@pytest.mark.gpu
def test_greedy_generation_matches_the_reference_token_for_token():
    """bf16 and symmetric int4 (the shipped kernels): the reference is the same model with the checkpoint's
    dequantized weights in plain Linear layers and sdpa. Greedy tokens must agree wherever the reference's
    top two logits are further apart than the two paths' logits are allowed to differ (rounding elsewhere
    may flip a near tie), and the logits along the reference's tokens within that tolerance."""
    from warpsched.kernels.runtime import require_sm90

    try:
        require_sm90()
    except KernelError as e:
        pytest.skip(str(e))
    ws.register()
    reference = tiny_llama("sdpa", torch.bfloat16)
    tensors, want = gptq_checkpoint(reference, symmetric=True)
    with torch.no_grad():
        for name, w in want.items():  # the scales as the layers will hold them: bf16
            layer = reference.get_submodule(name)
            layer.weight.copy_(
                ws.QuantLinear.from_gptq(
                    tensors[f"{name}.qweight"],
                    tensors[f"{name}.qzeros"],
                    tensors[f"{name}.scales"].to(torch.bfloat16),
                    tensors[f"{name}.g_idx"],
                    bits=4,
                )
                .dequantized_weight()
                .to(torch.bfloat16)
            )
    ours = tiny_llama("warpsched", torch.bfloat16)
    ours.load_state_dict(reference.state_dict())
    ws.swap_quantized_linears(ours, tensors)
    reference, ours = reference.cuda(), ours.cuda()
    prompt = torch.tensor([[3, 14, 15, 92, 65, 35, 89, 79]], device="cuda")
    settings = {"max_new_tokens": 16, "do_sample": False}
    expected = reference.generate(prompt, **settings)
    got = ours.generate(prompt, **settings)
    with torch.no_grad():
        ref_logits = reference(expected).logits[0, prompt.shape[1] - 1 : -1].float()
        our_logits = ours(expected).logits[0, prompt.shape[1] - 1 : -1].float()
    tolerance = 0.05 * float(ref_logits.abs().max())
    assert float((our_logits - ref_logits).abs().max()) < tolerance
    top2 = ref_logits.topk(2).values
    decided = (top2[:, 0] - top2[:, 1] > 2 * tolerance).tolist()
    n = prompt.shape[1]
    for i, clear in enumerate(decided):  # up to the first near tie, the two sequences are the same
        if not clear:
            break
        assert int(got[0, n + i]) == int(expected[0, n + i]), i
    assert decided[0]  # the test says something: at least the first token is decided
