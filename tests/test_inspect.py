"""Model inspection used by chapter 02: component parameters, shapes, receptive fields."""
import pytest
import torch

from specvit_core.models import build_model, list_models, n_params
from specvit_core.models.inspect import component_params, inference_throughput, layer_shapes, receptive_field


@pytest.mark.parametrize("name", list_models())
def test_components_add_up_to_the_model(name):
    model = build_model(name, "smoke")
    assert sum(component_params(model).values()) == n_params(model)


@pytest.mark.parametrize("name, pixels", [("specvit", 16), ("specvit_sw", 16), ("overlap_vit", 32),
                                          ("convstem_vit", 31), ("convstem_lstm", 31), ("bilstm", 16)])
def test_receptive_fields_of_the_tokenizers(name, pixels):
    assert receptive_field(build_model(name, "smoke")) == pixels


def test_cnn_receptive_fields_span_hundreds_of_pixels():
    # ResNet-18: stem k7/s2 + max-pool + 4 stages of k3 convolutions; deep CNN: 8 k9 convolutions with max-pool 4
    assert 300 < receptive_field(build_model("resnet18_1d", "paper")) < 600
    assert receptive_field(build_model("deep_cnn", "paper")) > 1000


def test_layer_shapes_follow_the_tokens_to_the_head():
    shapes = dict(layer_shapes(build_model("specvit", "smoke"), batch=3))
    dim = build_model("specvit", "smoke").config["dim"]
    assert shapes["input"] == (3, 4096)
    assert shapes["to_tokens"] == (3, 256, dim)
    assert shapes["encoder"] == (3, 257, dim)
    assert shapes["output"] == (3, 1)


def test_throughput_is_positive_and_receptive_field_needs_a_front_end():
    assert inference_throughput(build_model("deep_cnn", "smoke"), batch=4, n_batches=1) > 0
    with pytest.raises(ValueError, match="neither a tokenizer"):
        receptive_field(torch.nn.Linear(4096, 1))
