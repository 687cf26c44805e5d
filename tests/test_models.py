"""The model registry: paper parameter counts, shapes, gradients, learnability, attention maps, errors."""
import json

import pytest
import torch

from specvit_core import paper
from specvit_core.models import build_model, describe_models, list_models, n_params
from specvit_core.models.blocks import ConvStem, ConvTokenizer, SlidingWindowTokenizer

# Paper Table 3 (and Sec. 3.5 for the ConvStem+LSTM's 4.61M): family and parameter count per architecture.
FAMILY = {"specvit": "transformer", "specvit_sw": "transformer", "convstem_vit": "transformer",
          "overlap_vit": "transformer", "bilstm": "recurrent", "convstem_lstm": "hybrid", "lstmformer": "hybrid",
          "resnet18_1d": "cnn", "deep_cnn": "cnn"}
ATTENTION_MODELS = [name for name, family in FAMILY.items() if family in ("transformer", "hybrid")]
L = 4096


def spectra(n, seed=0):
    """Continuum-subtracted spectra: a forest of Gaussian lines (one every 128 pixels) whose common depth is
    the target (z-scored), plus white noise."""
    g = torch.Generator().manual_seed(seed)
    depth = torch.rand(n, 1, generator=g) * 0.8 + 0.1
    pixels, centers = torch.arange(L, dtype=torch.float32), torch.arange(64, L, 128, dtype=torch.float32)
    lines = torch.exp(-0.5 * ((pixels[:, None] - centers) / 6.0) ** 2).sum(1)  # (L,)
    x = -depth * lines + 0.01 * torch.randn(n, L, generator=g)  # (n, L)
    return x, (depth - depth.mean()) / depth.std()


def test_registry_holds_the_nine_paper_architectures_with_their_families():
    assert sorted(list_models()) == sorted(FAMILY) == sorted(paper.PARAMS)
    for name, family in FAMILY.items():
        assert build_model(name, "smoke").config["family"] == family


@pytest.mark.parametrize("name", FAMILY)
def test_paper_size_parameter_count_within_5_percent_of_paper(name):
    assert n_params(build_model(name, "paper")) == pytest.approx(paper.PARAMS[name], rel=0.05)


def test_specvit_parameter_count_is_exact():
    D, N, P, mlp, depth = 256, 256, 16, 1024, 6
    tokenizer = P * D + D  # Conv1d(1, D, P)
    layer = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * mlp + mlp) + (mlp * D + D)  # 2 LN, qkv, out, MLP
    total = tokenizer + D + (N + 1) * D + depth * layer + 2 * D + (D + 1)  # + CLS, positions, final LN, head
    assert total == 4_809_729
    assert n_params(build_model("specvit", "paper")) == total


@pytest.mark.parametrize("size", ["smoke", "quick", "cpu"])
def test_smaller_sizes_are_smaller_in_order(size):
    rows = {r["name"]: r["n_params"] for r in describe_models(size)}
    bounds = {"smoke": (1e4, 1e5), "quick": (1e5, 3.5e5), "cpu": (7e5, 1.5e6)}[size]
    assert all(bounds[0] < n < bounds[1] for n in rows.values()), rows


def test_describe_models_is_json_ready_and_matches_the_registry():
    rows = json.loads(json.dumps(describe_models("smoke")))
    assert [r["name"] for r in rows] == list_models()
    for r in rows:
        assert r["n_params"] == n_params(build_model(r["name"], "smoke"))
        assert r["paper_params"] == paper.PARAMS[r["name"]]


@pytest.mark.parametrize("name", FAMILY)
def test_forward_shape_and_config_rebuilds_the_model(name):
    model = build_model(name, "smoke", n_outputs=3)
    out = model(spectra(5)[0])
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    config = dict(model.config)
    assert config.pop("family") == FAMILY[name]
    assert n_params(build_model(**config)) == n_params(model)


@pytest.mark.parametrize("name", FAMILY)
def test_backward_gives_finite_gradients_on_every_parameter(name):
    model = build_model(name, "smoke")
    model(spectra(8)[0]).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", FAMILY)
def test_learns_a_fixed_batch(name):
    torch.manual_seed(0)
    x, y = spectra(32)
    model = build_model(name, "smoke")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.3 * losses[0], losses[::10]


@pytest.mark.parametrize("name", ATTENTION_MODELS)
def test_attention_maps_are_row_stochastic_with_one_map_per_layer(name):
    model = build_model(name, "smoke").eval()
    cfg = model.config
    with torch.no_grad():
        maps = model.attention_maps(spectra(3)[0])
    n_tok = (L - cfg["patch_size"]) // (cfg["stride"] or cfg["patch_size"]) + 1
    assert len(maps) == cfg["depth"]
    for a in maps:
        assert a.shape == (3, cfg["heads"], n_tok + 1, n_tok + 1)
        assert (a >= 0).all()
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))


def test_explicit_attention_weights_reproduce_the_fused_attention():
    attn = build_model("specvit", "smoke").eval().encoder.blocks[0].attn
    z = torch.randn(2, 17, 32)
    with torch.no_grad():
        _, _, v = attn.qkv(z)
        explicit = (attn.weights(z) @ v).transpose(1, 2).reshape(2, 17, 32)  # (B, h, T, hd) -> (B, T, D)
        torch.testing.assert_close(attn.to_out(explicit), attn(z))


def test_patch_size_override_changes_the_token_count():
    model = build_model("specvit", "smoke", patch_size=64).eval()
    assert model.config["patch_size"] == 64
    with torch.no_grad():
        assert model.attention_maps(spectra(2)[0])[0].shape[-1] == 4096 // 64 + 1


def test_conv_and_sliding_window_tokenizers_compute_the_same_function():
    conv = ConvTokenizer(dim=8, patch_size=16, stride=16)
    sw = SlidingWindowTokenizer(dim=8, patch_size=16, stride=16)
    with torch.no_grad():
        sw.proj.weight.copy_(conv.proj.weight[:, 0, :])
        sw.proj.bias.copy_(conv.proj.bias)
        x = spectra(2)[0]
        torch.testing.assert_close(sw(x), conv(x))


def test_convstem_has_stride_16_and_a_31_pixel_receptive_field():
    torch.manual_seed(0)
    stem = ConvStem(dim=32).eval()
    x = torch.randn(1, L, requires_grad=True)
    tokens = stem(x)
    assert tokens.shape == (1, L // 16, 32)
    tokens[0, 100].sum().backward()
    support = x.grad[0].nonzero().squeeze(1)
    assert support.max() - support.min() + 1 == 31


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="vit_huge"), r"Unknown model name 'vit_huge'; valid names are: .*specvit.*deep_cnn"),
        (dict(name="specvit", size="big"), r"Unknown model size 'big'; valid sizes are: paper, cpu, quick, smoke"),
        (dict(name="specvit", size="smoke", widht=3), r"hyperparameter\(s\) \['widht'\].*valid ones are: .*dim"),
        (dict(name="specvit", size="smoke", tokenizer="fft"), r"Unknown tokenizer 'fft'; valid tokenizers are"),
        (dict(name="convstem_vit", size="smoke", patch_size=32), r"convstem tokenizer has a fixed patch_size"),
        (dict(name="specvit", size="smoke", heads=3), r"dim, 32, must be divisible by heads, 3"),
    ],
)
def test_bad_arguments_raise_and_list_the_valid_choices(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("name", ["specvit", "bilstm", "resnet18_1d"])
def test_bad_input_shapes_raise(name):
    model = build_model(name, "smoke")
    with pytest.raises(ValueError, match=r"shape \(B, L\); got shape \(2, 1, 4096\)"):
        model(torch.zeros(2, 1, L))


def test_wrong_spectrum_length_raises_for_position_embeddings():
    with pytest.raises(ValueError, match="2048 pixels; this model was built for n_pixels=4096"):
        build_model("specvit", "smoke")(torch.zeros(2, 2048))
