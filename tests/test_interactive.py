"""The interactive figures of chapters 02, 05 and 06 built from the package's own structures: tokens of a real
network, its attention, the benchmark tables of run folders written through specvit_core.runs, and a Fisher ceiling
table with test predictions against SNR."""
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from specvit_core import attention, interactive, metrics, runs, tables
from specvit_core.instrument import mr_wavelength
from specvit_core.metrics import regression_metrics
from specvit_core.models import build_model

WAVE = mr_wavelength()


def _network_run(folder, name: str, seed: int = 0):
    """A run folder holding an untrained smoke-size network as its best checkpoint, as training writes it."""
    torch.manual_seed(seed)
    model = build_model(name, "smoke")
    runs.start_run(folder, {"model_config": model.config, "n_params": 1}, fresh=True)
    torch.save(dict(model_config=model.config, model=model.state_dict()), folder / "best.pt")
    return folder


@pytest.fixture(scope="module")
def spectra():
    rng = np.random.default_rng(1)
    return (1.0 + 0.05 * rng.standard_normal((6, WAVE.size))).astype(np.float32)


def test_specvit_cuts_the_mr_arm_into_256_contiguous_patches_of_16_pixels():
    tokens = attention.token_windows(WAVE, build_model("specvit", "smoke").config["patch_size"])
    assert len(tokens) == 256 and (tokens.pixel_end - tokens.pixel_start == 15).all()
    assert (tokens.pixel_start.to_numpy()[1:] == tokens.pixel_end.to_numpy()[:-1] + 1).all()
    assert tokens.wave_start.iloc[0] == WAVE[0] and tokens.wave_end.iloc[-1] == WAVE[-1]
    overlapping = attention.token_windows(WAVE, 32, 16)
    assert len(overlapping) == 255 and overlapping.pixel_start[1] == 16 and overlapping.pixel_end[0] == 31
    with pytest.raises(ValueError, match="do not tile"):
        attention.token_windows(WAVE[:8], 16)


def test_convstem_tokens_see_their_receptive_field_of_31_pixels():
    tokens = attention.token_windows(WAVE, 16, tokenizer="convstem")
    model = build_model("convstem_vit", "smoke").eval()  # eval: BatchNorm does not mix pixels across the batch
    x = torch.randn(8, WAVE.size, requires_grad=True)
    model.to_tokens(x)[:, 100].sum().backward()
    support = x.grad.abs().sum(0).nonzero().squeeze(1)
    assert (tokens.pixel_start[100], tokens.pixel_end[100]) == (support.min().item(), support.max().item())
    assert tokens.wave_center[100] == pytest.approx(WAVE[1600])
    assert len(tokens) == 256 and (tokens.pixel_start[0], tokens.pixel_end[0]) == (0, 15)  # clipped at the start
    assert tokens.pixel_end[99] - tokens.pixel_start[100] == 14  # neighbours share 15 pixels


@pytest.mark.parametrize("name, shape", [("specvit", (2, 2, 256)), ("overlap_vit", (2, 2, 255)),
                                         ("convstem_lstm", (1, 2, 256))])
def test_attention_by_layer_averages_to_the_cls_attention_of_figure_10(tmp_path, spectra, name, shape):
    run = _network_run(tmp_path / name, name)
    tokens, weights = attention.cls_attention_by_layer(run, spectra, WAVE)
    assert weights.shape == shape and len(tokens) == shape[2]
    assert np.all(weights > 0) and np.all(weights.sum(axis=2) < 1)  # the CLS token keeps some for itself
    overall = attention.cls_attention(run, spectra, WAVE)
    mean = weights.mean(axis=(0, 1))
    np.testing.assert_allclose(mean / mean.max(), overall.attention, rtol=1e-5)
    np.testing.assert_array_equal(tokens.wave_start, overall.wave_start)
    np.testing.assert_array_equal(tokens.wave_end, overall.wave_end)


def test_attention_by_layer_refuses_a_network_without_attention(tmp_path, spectra):
    with pytest.raises(ValueError, match="'bilstm' has no attention"):
        attention.cls_attention_by_layer(_network_run(tmp_path / "bilstm", "bilstm"), spectra[:2], WAVE)


def test_the_tokenization_visualizer_draws_one_band_per_patch_with_its_range_on_hover(spectra):
    tokens = attention.token_windows(WAVE, 16)
    fig = interactive.tokenization_visualizer(WAVE, spectra[0], tokens)
    [bands] = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bands.x) == len(bands.hovertext) == 256
    for k in (0, 100, 255):
        row = tokens.iloc[k]
        assert f"patch {k + 1} of 256" in bands.hovertext[k]
        assert f"{row.wave_start:.1f}-{row.wave_end:.1f} A" in bands.hovertext[k]
        assert f"pixels {16 * k}-{16 * k + 15}" in bands.hovertext[k]
    assert "attention" not in bands.hovertext[0] and list(bands.marker.color[:4]) == [0, 1, 0, 1]
    np.testing.assert_allclose(bands.width, (tokens.wave_end - tokens.wave_start) + np.diff(WAVE).mean(), rtol=1e-4)
    named = {a.text for a in fig.layout.annotations}
    assert {"Ca II 8542", "Na I 8183", "Mg I 8807"} <= named
    assert "256 patches of 16 pixels" in fig.layout.title.text


def test_the_tokenization_visualizer_colours_the_patches_by_attention_when_given(tmp_path, spectra):
    run = _network_run(tmp_path / "specvit", "specvit")
    weights = attention.cls_attention(run, spectra, WAVE)
    fig = interactive.tokenization_visualizer(WAVE, spectra[0], attention.token_windows(WAVE, 16),
                                              attention=weights.attention)
    bands = fig.data[0]
    np.testing.assert_allclose(bands.marker.color, weights.attention)
    best = int(weights.attention.idxmax())
    assert "CLS attention 1.000" in bands.hovertext[best] and bands.marker.showscale
    assert (bands.marker.cmin, bands.marker.cmax) == (0.0, 1.0)  # the scale starts at no attention
    with pytest.raises(ValueError, match="255 values for 256 patches"):
        interactive.tokenization_visualizer(WAVE, spectra[0], attention.token_windows(WAVE, 16),
                                            attention=weights.attention[1:])


def test_the_attention_explorer_has_a_slider_step_and_a_heat_map_per_layer(tmp_path, spectra):
    run = _network_run(tmp_path / "specvit", "specvit")
    tokens, weights = attention.cls_attention_by_layer(run, spectra, WAVE)
    fig = interactive.attention_explorer(tokens, weights, WAVE, spectra[0], model="specvit")
    maps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    steps = fig.layout.sliders[0].steps
    assert len(maps) == len(steps) == weights.shape[0] == 2
    assert [m.visible for m in maps] == [True, False] and list(maps[0].y) == ["head 1", "head 2"]
    np.testing.assert_allclose(maps[1].z, weights[1] * 257, rtol=1e-5)  # in units of a uniform attention
    for k, step in enumerate(steps):
        assert step.args[0]["visible"] == [True] + [j == k for j in range(2)]
        assert f"layer {k + 1} of 2" in step.args[1]["title.text"]
    lines = interactive.gravity_lines(WAVE[0], WAVE[-1])
    assert len([s for s in fig.layout.shapes if s.type == "line"]) == 2 * len(lines)  # through both rows
    assert {b.label for b in fig.layout.updatemenus[0].buttons} >= {"whole window", "Ca II"}
    with pytest.raises(ValueError, match="layers, heads, 256 tokens"):
        interactive.attention_explorer(tokens, weights[0], WAVE, spectra[0])


@pytest.fixture(scope="module")
def benchmark_runs(tmp_path_factory):
    """Run folders of three models (a transformer, LightGBM, Ridge) with their test predictions."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    true = rng.uniform(1.0, 5.0, 300)
    folders = {}
    for name, family, noise in (("specvit", "transformer", 0.4), ("lightgbm", "GBDT", 0.6), ("ridge", "linear", 0.8)):
        config = ({"model_config": {"family": family}, "n_params": 1000} if family == "transformer"
                  else {"family": family})
        runs.start_run(root / name, config, fresh=True)
        pred = true + rng.normal(0, noise, true.size)
        runs.write_results(root / name, pd.DataFrame({"true": true, "pred": pred}), regression_metrics(true, pred))
        folders[name] = root / name
    return folders


def test_the_results_dashboard_has_one_button_per_view_and_each_shows_only_its_traces(benchmark_runs):
    table = tables.comparison_table(benchmark_runs, n_boot=100)
    scaling = pd.DataFrame({"model": ["specvit", "specvit", "ridge", "ridge"], "n_train": [192, 384, 192, 384],
                            "r2": [0.1, 0.3, 0.2, 0.25]})
    type_mae = tables.stellar_type_mae(benchmark_runs)
    predictions = {name: runs.read_predictions(folder) for name, folder in benchmark_runs.items()}
    fig = interactive.results_dashboard(table, scaling, type_mae, predictions)
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["R2 by architecture", "R2 against N", "MAE by stellar type",
                                          "predicted vs true"]
    masks = np.array([b.args[0]["visible"] for b in buttons])
    assert masks.shape == (4, len(fig.data)) and (masks.sum(axis=0) == 1).all()  # every trace in exactly one view
    assert masks.sum(axis=1).tolist() == [3, 2, 3, 4]  # 3 families; 2 models; 3 models; 3 models and 1:1
    assert [t.visible for t in fig.data] == masks[0].tolist()
    bars = {t.name: t for t in fig.data[:3]}
    assert list(bars) == ["transformer", "GBDT", "linear"]
    np.testing.assert_allclose(bars["GBDT"].error_x.array, table.r2_high[["lightgbm"]] - table.r2[["lightgbm"]])
    assert fig.layout.yaxis.type == "category" and "R2" in fig.layout.title.text
    layouts = [b.args[1] for b in buttons]
    assert layouts[1]["xaxis.type"] == "log" and layouts[0]["xaxis.type"] == "linear"
    assert len({tuple(sorted(layout)) for layout in layouts}) == 1  # each view sets the same keys: none leaks
    mae = fig.data[int(np.flatnonzero(masks[2])[0])]
    np.testing.assert_allclose(mae.y, type_mae["specvit"])


@pytest.mark.parametrize("missing", ["scaling", "type_mae", "predictions"])
def test_the_results_dashboard_leaves_out_a_view_without_data(benchmark_runs, missing):
    data = dict(scaling=pd.DataFrame(columns=["model", "n_train", "r2"]),
                type_mae=tables.stellar_type_mae(benchmark_runs),
                predictions={name: runs.read_predictions(folder) for name, folder in benchmark_runs.items()})
    data[missing] = None if missing != "scaling" else data["scaling"]  # an empty table counts as absent
    fig = interactive.results_dashboard(tables.comparison_table(benchmark_runs, n_boot=100), **data)
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert "R2 against N" not in labels and len(labels) == (2 if missing != "scaling" else 3)
    with pytest.raises(ValueError, match="empty"):
        interactive.results_dashboard(pd.DataFrame(columns=["family", "r2", "r2_low", "r2_high"]))


#: A ceiling table as fisher.ceiling_table writes it (magnitudes ascending, so SNR descending).
CEILING = pd.DataFrame({"mag": [20.0, 21.0, 22.0, 23.0], "snr": [24.0, 9.5, 4.6, 1.9],
                        "r2_max_median": [0.99, 0.93, 0.74, 0.05], "r2_max_p10": [0.97, 0.81, 0.42, 0.0],
                        "r2_max_p90": [1.0, 0.99, 0.95, 0.61], "rho_median": [0.5, 0.5, 0.5, 0.5]})


@pytest.fixture(scope="module")
def snr_predictions():
    """Test predictions of two models whose error grows toward low SNR, as runs.read_predictions gives them."""
    rng = np.random.default_rng(3)
    snr = np.exp(rng.uniform(np.log(2.0), np.log(30.0), 200))
    true = rng.uniform(1.0, 5.0, snr.size)
    return {name: pd.DataFrame({"true": true, "pred": true + rng.normal(0, scale / np.sqrt(snr)), "snr": snr})
            for name, scale in (("specvit", 2.0), ("lightgbm", 3.0))}


def test_r2_against_snr_draws_the_band_the_median_the_paper_and_one_trace_per_model(snr_predictions):
    paper_points = {20.0: (24.0, 0.99), 22.0: (4.6, 0.74)}
    fig = interactive.r2_against_snr(CEILING, snr_predictions, paper_points)
    assert [t.name for t in fig.data] == ["ceiling, 10-90% of grid", "ceiling, median (this simulator)",
                                          "paper, 3D median", "specvit", "lightgbm"]
    band, median, paper_trace = fig.data[:3]
    rows = CEILING.sort_values("snr")
    assert band.fill == "toself" and len(band.x) == len(band.y) == 2 * len(CEILING)
    np.testing.assert_array_equal(band.y[:4], rows.r2_max_p90)  # the upper edge, then the lower one back
    np.testing.assert_array_equal(band.y[4:], rows.r2_max_p10[::-1])
    np.testing.assert_array_equal(band.x, np.r_[rows.snr, rows.snr[::-1]])
    assert band.hovertext[0] == "i = 23: median SNR 1.9<br>ceiling median R2 0.050<br>10-90% of grid: 0.000-0.610"
    assert band.hovertext[-1] == band.hovertext[0]  # the polygon's last vertex is the first magnitude's p10
    np.testing.assert_array_equal(median.y, rows.r2_max_median)
    np.testing.assert_array_equal(paper_trace.x, [24.0, 4.6])
    np.testing.assert_array_equal(paper_trace.y, [0.99, 0.74])
    assert "paper, i = 22: SNR 4.6, R2 0.740" in paper_trace.hovertext
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type is None
    assert fig.data[3].line.color != fig.data[4].line.color
    assert fig.layout.legend.itemclick == "toggle"


def test_r2_against_snr_draws_the_quintiles_of_metrics_by_quantile(snr_predictions):
    fig = interactive.r2_against_snr(CEILING, snr_predictions)
    assert len(fig.data) == 2 + 2  # no paper points given: band, median and the two models
    p = snr_predictions["specvit"]
    expected = metrics.metrics_by_quantile(p.true, p.pred, p.snr, n_bins=5)
    [model] = [t for t in fig.data if t.name == "specvit"]
    assert model.mode == "lines+markers" and len(model.y) == 5
    np.testing.assert_allclose(model.y, expected.r2[:-1])  # the last row of metrics_by_quantile is "all"
    np.testing.assert_allclose(model.x, np.sqrt(expected.lo * expected.hi)[:-1])
    first = expected.iloc[0]
    assert model.hovertext[0] == f"SNR {first.lo:.1f}-{first.hi:.1f}: R2 {first.r2:.3f} (n = {first.n:.0f})"
    assert model.y[0] < model.y[-1]  # the models do worse at low SNR
    many = interactive.r2_against_snr(CEILING, {f"run {k}": p for k in range(12)})  # a benchmark's dozen runs
    assert len({t.line.color for t in many.data[2:]}) == 12
    bins = interactive.snr_quantiles(p, n_bins=4)
    assert len(bins) == 4 and "all" not in bins.index and bins.n.sum() == len(p)


def test_r2_against_snr_refuses_an_incomplete_or_empty_ceiling(snr_predictions):
    with pytest.raises(KeyError, match="r2_max_p90"):
        interactive.r2_against_snr(CEILING.drop(columns="r2_max_p90"), snr_predictions)
    with pytest.raises(ValueError, match="empty"):
        interactive.r2_against_snr(CEILING.iloc[:0], snr_predictions)
    with pytest.raises(KeyError, match="snr"):
        interactive.r2_against_snr(CEILING, {"ridge": snr_predictions["specvit"].drop(columns="snr")})
