"""flash_attn_func's calling convention over the attention kernels (warpsched/integrations/flash_attn.py):
what the kernels lack is refused in one sentence, without a GPU a call says so, and on an sm_90 GPU the
(batch, seqlen, heads, head_dim) layout gives what sdpa gives, causal aligned to the bottom right."""

from __future__ import annotations

import math

import pytest
import torch

from tests.kernels.conftest import relative_error
from warpsched.integrations.flash_attn import flash_attn_func, flash_attn_varlen_func
from warpsched.kernels.runtime import KernelError

Q = torch.zeros(1, 8, 2, 64, dtype=torch.bfloat16)


@pytest.mark.parametrize(
    "option, words",
    [
        ({"dropout_p": 0.1}, "no dropout"),
        ({"window_size": (128, 0)}, "no sliding window"),
        ({"softcap": 30.0}, "no soft-capping"),
        ({"alibi_slopes": torch.ones(2)}, "no ALiBi"),
        ({"return_attn_probs": True}, "no returned attention probabilities"),
    ],
)
def test_what_the_kernels_lack_is_refused_in_one_sentence(option, words):
    with pytest.raises(KernelError) as exc:
        flash_attn_func(Q, Q, Q, **option)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_variable_length_batches_are_refused_in_one_sentence():
    cu = torch.tensor([0, 3, 8], dtype=torch.int32)
    with pytest.raises(KernelError) as exc:
        flash_attn_varlen_func(Q[0], Q[0], Q[0], cu, cu, 5, 5, causal=True)
    assert "no variable-length batches" in str(exc.value) and "\n" not in str(exc.value)


def test_a_tensor_of_the_wrong_rank_is_refused():
    with pytest.raises(KernelError, match="q must be a 4-D tensor"):
        flash_attn_func(Q[0], Q, Q)


def test_without_a_gpu_a_call_says_so():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(KernelError, match="CUDA GPU"):
        flash_attn_func(Q, Q, Q, causal=True)


@pytest.mark.gpu
@pytest.mark.parametrize("causal", [False, True])
def test_the_flash_attn_layout_matches_sdpa_on_the_gpu(causal):
    from warpsched.kernels.runtime import require_sm90

    try:
        require_sm90()
    except KernelError as e:
        pytest.skip(str(e))
    g = torch.Generator(device="cuda").manual_seed(int(causal))
    b, n, n_kv, h, h_kv, d = 2, 300, 500, 4, 2, 128
    q = torch.randn(b, n, h, d, device="cuda", dtype=torch.bfloat16, generator=g)
    k = torch.randn(b, n_kv, h_kv, d, device="cuda", dtype=torch.bfloat16, generator=g)
    v = torch.randn(b, n_kv, h_kv, d, device="cuda", dtype=torch.bfloat16, generator=g)
    out = flash_attn_func(q, k, v, causal=causal, softmax_scale=1 / math.sqrt(d))
    qt, kt, vt = (t.transpose(1, 2).float() for t in (q, k, v))
    kt, vt = kt.repeat_interleave(h // h_kv, 1), vt.repeat_interleave(h // h_kv, 1)
    mask = None
    if causal:  # bottom right: query i sees keys up to i + n_kv - n
        mask = torch.ones(n, n_kv, dtype=torch.bool, device="cuda").tril(n_kv - n)
    ref = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask).transpose(1, 2)
    assert out.shape == q.shape and relative_error(out, ref) < 1e-2
