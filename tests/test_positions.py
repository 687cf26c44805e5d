"""Wavelength-aware positions of the transformers and hybrids: the encoding, the token centres, set_wavelength."""
import math

import numpy as np
import pytest
import torch

from specvit_core import runs
from specvit_core.instrument import MR_N_PIXELS, MR_WAVE_MAX, MR_WAVE_MIN, mr_wavelength
from specvit_core.models import build_model, n_params
from specvit_core.models.transformer import token_centre_pixels, wavelength_encoding

SPECVIT_MODELS = ["specvit", "specvit_sw", "convstem_vit", "overlap_vit", "convstem_lstm", "lstmformer"]
DISPERSION = (MR_WAVE_MAX - MR_WAVE_MIN) / (MR_N_PIXELS - 1)  # A per pixel


def shifted_grid(pixels: float) -> np.ndarray:
    """The MR grid moved redwards by ``pixels`` pixels."""
    return MR_WAVE_MIN + (np.arange(MR_N_PIXELS) + pixels) * DISPERSION


def token_stride(model) -> int:
    """The step between token centres in pixels (16 for every registered tokenizer, the ConvStem's included)."""
    return 16 if model.config["tokenizer"] == "convstem" else model.config["stride"] or model.config["patch_size"]


def test_encoding_known_answers_and_dependence_on_wavelength_differences_only():
    dim = 8
    quarter_turn = 7000.0 + 2000.0 * (math.pi / 2) / 256  # the fastest pair turns 1 rad per 2000 / 256 A
    enc = wavelength_encoding([7000.0, quarter_turn], dim)
    torch.testing.assert_close(enc[0], torch.tensor([0.0, 1.0] * 4, dtype=torch.float64))  # normalized wavelength 0
    assert enc[1, 0] == pytest.approx(1.0) and enc[1, 1] == pytest.approx(0.0, abs=1e-12)
    assert enc[1, 2] == pytest.approx(math.sin(math.pi / 2 / 10000 ** (2 / dim)))  # the next, slower pair
    a, b = wavelength_encoding([7200.0, 8500.0], 64), wavelength_encoding([7230.0, 8530.0], 64)
    assert (a[0] @ b[0]).item() == pytest.approx((a[1] @ b[1]).item(), abs=1e-9)  # sum_k cos(w_k * 30 A) twice
    assert (a[0] @ a[0]).item() == pytest.approx(32.0)


@pytest.mark.parametrize("name", SPECVIT_MODELS)
def test_a_grid_shifted_by_one_token_gives_token_i_the_encoding_of_token_i_plus_one(name):
    unshifted = build_model(name, "smoke", positions="wavelength")
    model = build_model(name, "smoke", positions="wavelength")
    model.set_wavelength(shifted_grid(token_stride(model)))
    torch.testing.assert_close(model.token_wave[:-1], unshifted.token_wave[1:], rtol=0, atol=1e-9)
    with torch.no_grad():
        moved, reference = model.position_encoding(), unshifted.position_encoding()
    torch.testing.assert_close(moved[:, 1:-1], reference[:, 2:])
    assert not torch.allclose(moved[:, 1:-1], reference[:, 1:-1])  # the index alone no longer decides


@pytest.mark.parametrize("name", SPECVIT_MODELS)
def test_token_centres_are_the_middle_of_each_tokens_receptive_field(name):
    torch.manual_seed(0)
    model = build_model(name, "smoke", positions="wavelength").eval()  # eval: BatchNorm does not mix positions
    x = torch.randn(8, MR_N_PIXELS, requires_grad=True)  # several spectra: a ReLU may block a pixel in one
    token = 100  # an interior token, away from the ConvStem's zero padding
    model.to_tokens(x)[:, token].sum().backward()
    support = x.grad.abs().sum(0).nonzero().squeeze(1).double()
    assert model.centre_pixels[token] == (support.min() + support.max()).item() / 2
    assert model.token_wave[token].item() == pytest.approx(MR_WAVE_MIN + model.centre_pixels[token] * DISPERSION)


def test_token_centres_of_the_patch_tokenizers_and_the_convstem():
    np.testing.assert_array_equal(token_centre_pixels("conv", 64, 16)[:2], [7.5, 23.5])
    np.testing.assert_array_equal(token_centre_pixels("sw", 64, 32, 16), [15.5, 31.5, 47.5])
    np.testing.assert_array_equal(token_centre_pixels("convstem", 64, 16), [0.0, 16.0, 32.0, 48.0])


@pytest.mark.parametrize("name", SPECVIT_MODELS)
def test_only_the_cls_position_is_trainable_and_gradients_flow(name):
    learned = build_model(name, "smoke")
    model = build_model(name, "smoke", n_outputs=2, positions="wavelength")
    assert learned.config["positions"] == "learned" and not hasattr(learned, "token_wave")
    assert "cls_position" not in learned.state_dict() and "token_wave" not in learned.state_dict()
    n_tokens, dim = learned.pos_embedding.shape[1:]
    assert n_params(model) == n_params(build_model(name, "smoke", n_outputs=2)) - n_tokens * dim + dim
    assert "token_wave" in dict(model.named_buffers()) and not model.token_wave.requires_grad
    out = model(torch.randn(4, MR_N_PIXELS))
    assert out.shape == (4, 2)
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert model.cls_position.grad.abs().sum() > 0


def test_a_checkpoint_remembers_the_wavelengths(tmp_path):
    torch.manual_seed(0)
    model = build_model("convstem_lstm", "smoke", positions="wavelength").eval()
    model.set_wavelength(shifted_grid(64))
    torch.save(dict(model_config=model.config, model=model.state_dict()), tmp_path / runs.BEST)
    loaded, _ = runs.load_model(tmp_path)
    rebuilt = build_model(**{k: v for k, v in model.config.items() if k != "family"})
    torch.testing.assert_close(rebuilt.token_wave, build_model("convstem_lstm", "smoke", positions="wavelength").token_wave)
    rebuilt.load_state_dict(model.state_dict())
    for copy in (loaded, rebuilt.eval()):
        torch.testing.assert_close(copy.token_wave, model.token_wave, rtol=0, atol=0)
        x = torch.randn(2, MR_N_PIXELS)
        with torch.no_grad():
            torch.testing.assert_close(copy(x), model(x))


@pytest.mark.parametrize("wave, message", [
    (mr_wavelength()[:-1], r"shape \(4096,\)"),
    (mr_wavelength()[::-1], "strictly increasing"),
    (np.where(np.arange(MR_N_PIXELS) == 7, np.nan, mr_wavelength()), "1 NaN or inf"),
    (mr_wavelength() - 200.0, "outside the reference range 7000-9000 A"),
])
def test_set_wavelength_refuses_bad_grids_and_keeps_the_old_one(wave, message):
    model = build_model("specvit", "smoke", positions="wavelength")
    before = model.token_wave.clone()
    with pytest.raises(ValueError, match=message):
        model.set_wavelength(wave)
    torch.testing.assert_close(model.token_wave, before, rtol=0, atol=0)


def test_learned_positions_and_unknown_encodings_are_refused():
    with pytest.raises(ValueError, match="learned positions, tied to the token index"):
        build_model("specvit", "smoke").set_wavelength(mr_wavelength())
    with pytest.raises(ValueError, match="Unknown positions 'rotary'; valid ones are: learned, wavelength"):
        build_model("specvit", "smoke", positions="rotary")
    with pytest.raises(ValueError, match="even dim"):
        build_model("specvit", "smoke", positions="wavelength", dim=33, heads=1)
