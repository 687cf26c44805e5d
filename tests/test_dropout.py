"""Dropout on the CPU with numpy masks (models.blocks): the same function and distribution as PyTorch's dropout."""
import pytest
import torch
from torch.nn import functional as F

from specvit_core.models import build_model
from specvit_core.models.blocks import (MASK_LEVELS, AttentionWithDropout, Dropout, drop_mask, torch_dropout,
                                        use_fast_dropout)


def reference_attention(q, k, v, p, seed):
    """Attention with dropout written with autograd's own ops and the mask drop_mask draws after manual_seed(seed)."""
    torch.manual_seed(seed)
    probs = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(dim=-1)
    mask, scale = drop_mask(tuple(probs.shape), p)
    return probs.masked_fill(mask, 0.0) * scale @ v


def test_attention_with_dropout_equals_the_autograd_reference_and_passes_gradcheck():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))

    def ours(q, k, v):
        torch.manual_seed(7)
        return AttentionWithDropout.apply(q, k, v, 0.3)

    assert torch.autograd.gradcheck(ours, (q, k, v))
    out, ref = ours(q, k, v), reference_attention(q, k, v, 0.3, seed=7)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad((out * ref.detach()).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref * ref.detach()).sum(), (q, k, v))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)


def test_drop_mask_has_the_drop_rate_and_the_scale_that_keeps_the_mean():
    torch.manual_seed(1)
    p = 0.1
    mask, scale = drop_mask((400, 1000), p)
    p_eff = round(p * MASK_LEVELS) / MASK_LEVELS
    assert abs(p_eff - p) <= 0.5 / MASK_LEVELS
    assert scale == pytest.approx(1 / (1 - p_eff), rel=1e-15)
    n = mask.numel()
    assert abs(mask.float().mean().item() - p_eff) < 4 * (p_eff * (1 - p_eff) / n) ** 0.5
    # rows and columns are not correlated: every row drops at the binomial rate
    per_row = mask.float().mean(dim=1)
    assert per_row.std().item() == pytest.approx((p_eff * (1 - p_eff) / 1000) ** 0.5, rel=0.2)


def test_drop_masks_repeat_under_manual_seed_and_differ_between_calls():
    torch.manual_seed(3)
    first, second = drop_mask((64, 64), 0.2)[0], drop_mask((64, 64), 0.2)[0]
    torch.manual_seed(3)
    assert torch.equal(drop_mask((64, 64), 0.2)[0], first)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_drop_mask_refuses_a_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=r"drop probability p must be in \[0, 1\)"):
        drop_mask((4,), p)


def test_fast_dropout_applies_only_to_cpu_training_in_full_precision():
    x = torch.zeros(3)
    assert use_fast_dropout(x, 0.1, training=True)
    assert not use_fast_dropout(x, 0.1, training=False)
    assert not use_fast_dropout(x, 0.0, training=True)
    assert not use_fast_dropout(x.bfloat16(), 0.1, training=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not use_fast_dropout(x, 0.1, training=True)
    with torch_dropout():
        assert not use_fast_dropout(x, 0.1, training=True)
    assert use_fast_dropout(x, 0.1, training=True)


def test_dropout_module_is_unbiased_and_identity_in_eval():
    torch.manual_seed(4)
    x = torch.rand(50_000) + 0.5
    layer = Dropout(0.25)
    out = layer(x)
    kept = out != 0
    torch.testing.assert_close(out[kept], x[kept] / (1 - 0.25), rtol=1e-4, atol=0)
    mean = torch.stack([layer(x) for _ in range(40)]).mean(dim=0)
    z = (mean - x) / (x * (0.25 / 0.75) ** 0.5 / 40**0.5)  # over the standard error of a mean of 40 draws
    assert abs(z.mean().item()) < 4 / x.numel() ** 0.5
    assert z.std().item() == pytest.approx(1.0, rel=0.03)
    layer.eval()
    assert torch.equal(layer(x), x)


def test_attention_with_dropout_averages_to_attention_without_dropout():
    torch.manual_seed(5)
    q, k, v = (torch.randn(1, 2, 16, 8) for _ in range(3))
    exact = F.scaled_dot_product_attention(q, k, v)
    draws = torch.stack([AttentionWithDropout.apply(q, k, v, 0.2) for _ in range(2000)])
    z = (draws.mean(dim=0) - exact) / (draws.std(dim=0) / 2000**0.5)
    assert z.abs().max().item() < 5
    assert z.std().item() == pytest.approx(1.0, abs=0.15)


def test_specvit_training_outputs_match_pytorch_dropout_in_distribution():
    """The smoke SpecViT in training mode: mean and spread of its outputs over dropout draws, ours against PyTorch's."""
    torch.manual_seed(6)
    model = build_model("specvit", "smoke", dropout=0.1).train()  # the paper size has 0.1; smoke has none
    x = torch.randn(4, model.n_pixels)
    with torch.no_grad():
        ours = torch.stack([model(x) for _ in range(300)]).squeeze(-1)
        with torch_dropout():
            theirs = torch.stack([model(x) for _ in range(300)]).squeeze(-1)
    se = (ours.var(dim=0) / 300 + theirs.var(dim=0) / 300) ** 0.5
    assert ((ours.mean(dim=0) - theirs.mean(dim=0)).abs() / se).max().item() < 4
    torch.testing.assert_close(ours.std(dim=0), theirs.std(dim=0), rtol=0.25, atol=0)
    assert ours.std(dim=0).min().item() > 0  # dropout is active in both
