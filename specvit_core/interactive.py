"""Interactive figures of the book (plotly): the SNR explorer, the spectrum explorer and the stellar-type chart
(chapter 01), the tokenization visualizer (chapter 02), the attention explorer and the results dashboard (chapter 05),
and the dashboard's R^2-against-SNR view with the Fisher ceiling band (chapter 06, where the ceiling is computed).

Every number drawn comes from the package: templates from a :class:`~specvit_core.spectra.templates.TemplateGrid`,
noise from the photon chain of :mod:`specvit_core.noise`, stellar types from the thresholds of
:mod:`specvit_core.metrics`, labels from a dataset split, patches from
:func:`specvit_core.attention.token_windows`, attention from the runs (:mod:`specvit_core.attention`) and results
from the tables of :mod:`specvit_core.tables`, the ceiling from :func:`specvit_core.fisher.ceiling_table`. Only the
laboratory positions of the gravity-sensitive lines (:data:`GRAVITY_LINES`, air wavelengths) are typed in, as facts;
the Paschen positions are those the synthesis uses (:func:`specvit_core.spectra.synthesis.paschen_lines`).

The book shows a figure with :func:`show`: an HTML fragment without plotly.js, which the book loads once from its
own ``_static/plotly.min.js`` (copied from the installed ``plotly`` package by :mod:`specvit_core.book`), so that the
pages work offline from ``file://``. The matplotlib figures of the chapters stay the static versions (PDF).
The look the figures share (title, ink colour) is set in one place, :func:`_title` and :data:`INK`.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from . import noise
from .metrics import DWARF_MIN_LOGG, GIANT_MAX_LOGG, STELLAR_TYPES, metrics_by_quantile, stellar_type
from .spectra.synthesis import DIAGNOSTIC_LINES, PASCHEN_UPPER, paschen_lines

try:
    import plotly.graph_objects as go
    from plotly.colors import qualitative
except ModuleNotFoundError as err:  # plotly belongs to the `book` extra
    raise ModuleNotFoundError("specvit_core.interactive needs plotly: pip install -e '.[book]'") from err

#: i-band magnitudes of the SNR explorer's slider (AB mag).
SNR_MAGS = tuple(19.0 + 0.5 * k for k in range(9))
#: Gravity-sensitive lines of the MR window: laboratory air wavelengths (Angstrom), taken as facts. The Ca II
#: triplet strengthens toward giants (its wings and the ionization balance); the Na I doublet, Mg I 8807 and the
#: K I resonance doublet (inside the telluric O2 A band in observed spectra) toward dwarfs (pressure broadening).
GRAVITY_LINES = {f"{species} {wave:.0f}": wave for species, wave in DIAGNOSTIC_LINES if species != "O I"}
TYPE_COLORS = {"giant": "#d62728", "subgiant": "#2ca02c", "dwarf": "#1f77b4"}
#: Colour of what is not data of a model: clean spectra, metal lines, the 1:1 line, the Fisher ceiling.
INK = "#333333"
#: Colour of the paper's values drawn beside ours.
PAPER_COLOR = "#d62728"
#: Colours of the models: plotly's default ten, then ten more, so that the dozen runs of a benchmark differ.
MODEL_COLORS = tuple(qualitative.Plotly + qualitative.Bold[:10])
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def _title(text: str | None = None, above_buttons: bool = False) -> dict:
    """The figures' title (14 pt); pinned to the top when buttons or a menu sit between it and the plot."""
    title = dict(text=text, font=dict(size=14))
    return {**title, "y": 0.98, "yanchor": "top"} if above_buttons else title


def gravity_lines(wave_min: float, wave_max: float) -> pd.DataFrame:
    """The gravity-sensitive lines between two wavelengths: :data:`GRAVITY_LINES` and the synthesis' Paschen lines.

    Parameters
    ----------
    wave_min, wave_max : float
        Air wavelengths (Angstrom) bounding the window.

    Returns
    -------
    pandas.DataFrame
        Columns ``name`` (e.g. ``"Ca II 8542"``, ``"Pa 15"``), ``species`` (``"Ca II"``, ``"H I"``) and ``wave``
        (Angstrom, air), sorted by wavelength.

    Raises
    ------
    ValueError
        If ``wave_min >= wave_max``.
    """
    if not wave_min < wave_max:
        raise ValueError(f"wave_min ({wave_min}) must be below wave_max ({wave_max})")
    metals = [(name, name.rsplit(" ", 1)[0], wave) for name, wave in GRAVITY_LINES.items()]
    hydrogen = [(f"Pa {n}", "H I", float(w)) for n, w in zip(PASCHEN_UPPER, paschen_lines(PASCHEN_UPPER).wave)]
    table = pd.DataFrame(metals + hydrogen, columns=["name", "species", "wave"])
    inside = (table.wave >= wave_min) & (table.wave <= wave_max)
    return table[inside].sort_values("wave", ignore_index=True)


def observed_at_magnitudes(grid, labels, mags=SNR_MAGS, seed: int = 0) -> dict[str, np.ndarray]:
    """One star observed at several magnitudes through the package's noise chain, under median conditions.

    ``noise.observe`` (12 x 900 s, ``noise.MEDIAN_CONDITIONS``), ``noise.median_normalize`` and one
    ``noise.noisy_spectrum`` per magnitude, each from a generator seeded with ``seed``: the same standard-normal
    draw scaled by each magnitude's sigma, so that only the noise amplitude changes from one magnitude to the next.

    Parameters
    ----------
    grid : TemplateGrid
        Templates (:func:`specvit_core.spectra.load_grid`).
    labels : sequence of 3 float
        (T_eff, log g, [M/H]) inside the grid.
    mags : sequence of float
        i-band AB magnitudes.
    seed : int
        Seed of the noise draw.

    Returns
    -------
    dict of str -> ndarray
        ``mag`` (M,), ``clean``, ``sigma``, ``noisy`` (M, L) median-normalized, ``snr`` (M,) the median of
        clean / sigma over the pixels.

    Raises
    ------
    ValueError
        If ``mags`` is empty or not 1-D, or as :meth:`TemplateGrid.interpolate` and :func:`noise.observe`.
    """
    mags = np.asarray(mags, dtype=float)
    if mags.ndim != 1 or mags.size == 0:
        raise ValueError("mags must be a non-empty 1-D sequence of magnitudes")
    template = np.repeat(grid.interpolate([list(labels)]), mags.size, axis=0)
    conditions = {k: np.full(mags.size, v) for k, v in noise.MEDIAN_CONDITIONS.items()}
    clean, sigma = noise.observe(grid.wave, template, mags, conditions)
    clean, sigma, _ = noise.median_normalize(clean, sigma)
    noisy = np.stack([noise.noisy_spectrum(c, s, np.random.default_rng(seed)) for c, s in zip(clean, sigma)])
    return {"mag": mags, "clean": clean, "sigma": sigma, "noisy": noisy, "snr": np.median(clean / sigma, axis=1)}


def snr_explorer(grid, labels, mags=SNR_MAGS, seed: int = 0) -> go.Figure:
    """A slider over magnitudes: one star's noisy spectrum (over its clean template) from bright to faint.

    Parameters
    ----------
    grid : TemplateGrid
        Templates (:func:`specvit_core.spectra.load_grid`).
    labels : sequence of 3 float
        (T_eff, log g, [M/H]) inside the grid.
    mags : sequence of float
        The slider's i-band magnitudes (default 19.0 ... 23.0 in steps of 0.5).
    seed : int
        Seed of the noise draw (:func:`observed_at_magnitudes`).

    Returns
    -------
    plotly.graph_objects.Figure
        One noisy trace per magnitude (one visible at a time) and the clean spectrum; each slider step is labelled
        with its magnitude and the median per-pixel SNR there.

    Raises
    ------
    ValueError
        As :func:`observed_at_magnitudes`.
    """
    obs = observed_at_magnitudes(grid, labels, mags, seed)
    wave, n = grid.wave.astype(np.float32), len(obs["mag"])
    star = f"T_eff = {labels[0]:g} K, log g = {labels[1]:g}, [M/H] = {labels[2]:g}"
    titles = [f"{star}: i = {m:.1f} mag, median SNR = {s:.1f} per pixel" for m, s in zip(obs["mag"], obs["snr"])]
    fig = go.Figure([go.Scatter(x=wave, y=obs["noisy"][k], mode="lines", visible=k == 0, name=f"i = {m:g}",
                                line=dict(width=0.6, color="#1f77b4"), hoverinfo="x+y")
                     for k, m in enumerate(obs["mag"])])
    fig.add_trace(go.Scatter(x=wave, y=obs["clean"][0].astype(np.float32), mode="lines", name="clean template",
                             line=dict(width=1.2, color=INK), hoverinfo="skip"))
    steps = [dict(method="update", label=f"{m:.1f} (SNR {s:.1f})",
                  args=[{"visible": [j == k for j in range(n)] + [True]}, {"title.text": titles[k]}])
             for k, (m, s) in enumerate(zip(obs["mag"], obs["snr"]))]
    fig.update_layout(
        title=_title(titles[0]), height=480, margin=dict(l=60, r=20, t=50, b=40),
        xaxis=dict(title="wavelength [A]"), yaxis=dict(title="flux / median", range=[0.0, 2.5]),
        showlegend=False,
        sliders=[dict(active=0, steps=steps, pad=dict(t=50, l=10, r=40), font=dict(size=10),
                      currentvalue=dict(prefix="i-band magnitude: ", font=dict(size=13)))])
    return fig


def _line_markers(fig: go.Figure, lines: pd.DataFrame, label_y: tuple[float, float], label_row: int | None = None
                  ) -> None:
    """Dotted vertical lines at ``lines.wave`` (across every subplot), named above the continuum (metals) or below
    the spectra (Paschen) at ``label_y`` (Paschen, metals) in the data coordinates of subplot ``label_row``."""
    where = dict(row=label_row, col=1) if label_row else {}
    for row in lines.itertuples():
        hydrogen = row.species == "H I"
        color = "#9467bd" if hydrogen else INK
        fig.add_vline(x=row.wave, line=dict(width=0.8, dash="dot", color=color))
        fig.add_annotation(x=row.wave, y=label_y[0] if hydrogen else label_y[1], text=row.name, textangle=-90,
                           showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=9, color=color),
                           **where)


def _zoom_menu(lines: pd.DataFrame, xaxes=("xaxis",)) -> dict:
    """Buttons above a figure: the whole window, and a zoom on each species' lines (+-25 A) on the ``xaxes``."""
    zooms = [dict(label="whole window", method="relayout", args=[{f"{a}.autorange": True for a in xaxes}])]
    for species, group in lines.groupby("species", sort=False):
        lo, hi = group.wave.min() - 25.0, group.wave.max() + 25.0
        zooms.append(dict(label=species, method="relayout", args=[{f"{a}.range": [lo, hi] for a in xaxes}]))
    return dict(type="buttons", direction="right", buttons=zooms, x=0, y=1.02, xanchor="left", yanchor="bottom",
                showactive=True, font=dict(size=11))


def spectrum_explorer(grid, teff: float, mh: float, loggs=(1.5, 3.5, 4.5)) -> go.Figure:
    """A giant, a subgiant and a dwarf at the same T_eff and [M/H] (zoom and pan), gravity-sensitive lines named.

    Parameters
    ----------
    grid : TemplateGrid
        Templates (:func:`specvit_core.spectra.load_grid`); spectra are shown as flux / continuum.
    teff : float
        Effective temperature, K.
    mh : float
        Metallicity [M/H], dex.
    loggs : sequence of float
        Surface gravities, one spectrum each (default a giant, a subgiant and a dwarf).

    Returns
    -------
    plotly.graph_objects.Figure
        One trace per log g coloured by stellar type, the lines of :func:`gravity_lines` marked, and buttons that
        zoom on each species' lines.

    Raises
    ------
    ValueError
        If ``loggs`` is empty, or the labels lie outside the grid (:meth:`TemplateGrid.interpolate`).
    """
    loggs = np.atleast_1d(np.asarray(loggs, dtype=float))
    if loggs.size == 0:
        raise ValueError("loggs must hold at least one surface gravity")
    labels = np.column_stack([np.full(loggs.size, teff), loggs, np.full(loggs.size, mh)])
    normalized = grid.interpolate(labels) / grid.interpolate(labels, continuum=True)
    wave = grid.wave.astype(np.float32)
    fig = go.Figure([go.Scatter(x=wave, y=f, mode="lines", name=f"{t}, log g = {g:g}",
                                line=dict(width=1.0, color=TYPE_COLORS[t]))
                     for f, g, t in zip(normalized, loggs, stellar_type(loggs))])
    lines = gravity_lines(float(wave[0]), float(wave[-1]))
    low, top = float(normalized.min()), 1.0
    label_room = 0.25 * (top - low)  # a strip above the continuum and one below the deepest line for the names
    _line_markers(fig, lines, label_y=(low - label_room, top + 0.02))
    fig.update_layout(
        title=_title(f"T_eff = {teff:g} K, [M/H] = {mh:g}: {len(loggs)} surface gravities", above_buttons=True),
        height=560, margin=dict(l=60, r=20, t=100, b=50), hovermode="x unified",
        xaxis=dict(title="wavelength [A] (air)"),
        yaxis=dict(title="flux / continuum", range=[low - label_room - 0.02, top + label_room]),
        legend=dict(orientation="h", x=0, y=-0.15, yanchor="top"),
        updatemenus=[_zoom_menu(lines)])
    return fig


def stellar_type_chart(params: pd.DataFrame, title: str = "Stellar types of the dataset") -> go.Figure:
    """The labels of a dataset on the T_eff - log g plane, coloured by stellar type (giant, subgiant, dwarf).

    Parameters
    ----------
    params : pandas.DataFrame
        A split's table (:attr:`SpectraSplit.params`) with columns ``T_eff`` and ``log_g``; ``M_H``, ``mag`` and
        ``snr`` are shown on hover when present.
    title : str
        The figure's title.

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace per type (legend: count and share), the type boundaries log g = 2.5 and 4.0 as dashed
        lines, both axes reversed as in a Kiel diagram.

    Raises
    ------
    KeyError
        If ``T_eff`` or ``log_g`` is missing.
    ValueError
        If the table is empty or a label is not finite.
    """
    missing = [c for c in ("T_eff", "log_g") if c not in params]
    if missing:
        raise KeyError(f"the labels lack {missing}; columns: {', '.join(map(str, params.columns))}")
    if len(params) == 0:
        raise ValueError("no labels to chart")
    types = stellar_type(params["log_g"])
    extra = [c for c in ("M_H", "mag", "snr") if c in params]
    hover = "T_eff %{x:.0f} K<br>log g %{y:.2f}" + "".join(
        f"<br>{c} %{{customdata[{k}]:.2f}}" for k, c in enumerate(extra)) + "<extra>%{fullData.name}</extra>"
    fig = go.Figure()
    for t in STELLAR_TYPES:
        sel = types == t
        fig.add_trace(go.Scatter(
            x=params["T_eff"].to_numpy()[sel], y=params["log_g"].to_numpy()[sel], mode="markers",
            name=f"{t}s: {sel.sum()} ({100 * sel.mean():.0f}%)", hovertemplate=hover,
            customdata=params[extra].to_numpy()[sel] if extra else None,
            marker=dict(size=5, opacity=0.7, color=TYPE_COLORS[t])))
    for boundary in (GIANT_MAX_LOGG, DWARF_MIN_LOGG):
        fig.add_hline(y=boundary, line=dict(dash="dash", width=1, color="#777777"),
                      annotation_text=f"log g = {boundary:g}", annotation_position="top left")
    fig.update_layout(title=_title(f"{title} ({len(params)} spectra)"), height=500,
                      margin=dict(l=60, r=20, t=50, b=50), legend=dict(title="stellar type"),
                      xaxis=dict(title="T_eff [K]", autorange="reversed"),
                      yaxis=dict(title="log g [dex]", autorange="reversed"))
    return fig


def _hover_rows(template: str, table: pd.DataFrame) -> list[str]:
    """One hover text per row of ``table``: ``template.format(**row)``."""
    return [template.format(**row) for row in table.to_dict("records")]


def tokenization_visualizer(wave, flux, tokens: pd.DataFrame, attention=None, title: str = "") -> go.Figure:
    """The patches a tokenizer cuts a spectrum into, drawn as bands over it; hover gives a patch's range.

    Parameters
    ----------
    wave, flux : ndarray, shape (L,)
        The spectrum: wavelengths (Angstrom) and flux.
    tokens : pandas.DataFrame
        :func:`specvit_core.attention.token_windows` of the tokenizer (``token``, ``pixel_start``, ``pixel_end``,
        ``wave_start``, ``wave_end``, ``wave_center``).
    attention : array_like, shape (N_tokens,), optional
        A weight per patch (e.g. the ``attention`` of :func:`specvit_core.attention.cls_attention`): it colours the
        bands and joins the hover text. Default: the bands alternate in two colours.
    title : str
        Prefix of the title (e.g. the spectrum's labels).

    Returns
    -------
    plotly.graph_objects.Figure
        A bar trace with one band per patch (hover: patch number, wavelength range, pixels and the attention when
        given), the spectrum, the lines of :func:`gravity_lines` and zoom buttons.

    Raises
    ------
    ValueError
        If ``wave`` and ``flux`` differ in length, or ``attention`` does not hold one value per patch.
    """
    wave, flux = np.asarray(wave, dtype=np.float32), np.asarray(flux, dtype=np.float32)
    if wave.shape != flux.shape:
        raise ValueError(f"wave {wave.shape} and flux {flux.shape} must have the same shape")
    hover = "patch {number} of {n}<br>{wave_start:.1f}-{wave_end:.1f} A (pixels {pixel_start}-{pixel_end})"
    bands = tokens.assign(number=tokens.token + 1, n=len(tokens))
    if attention is None:
        marker = dict(color=bands.token % 2, colorscale=[[0, "#9ecae1"], [1, "#fdae6b"]], showscale=False)
    else:
        attention = np.asarray(attention, dtype=float)
        if attention.shape != (len(tokens),):
            raise ValueError(f"attention holds {attention.size} values for {len(tokens)} patches")
        bands = bands.assign(attention=attention)
        hover += "<br>CLS attention {attention:.3f}"
        marker = dict(color=attention, colorscale="Viridis", cmin=0.0, cmax=float(attention.max()), showscale=True,
                      colorbar=dict(title="CLS attention", thickness=12))
    top = float(np.percentile(flux, 99.5))
    width = tokens.wave_end - tokens.wave_start + float(np.median(np.diff(wave)))
    fig = go.Figure(go.Bar(x=tokens.wave_center.astype(np.float32), y=np.full(len(tokens), 1.3 * top, np.float32),
                           width=width.astype(np.float32), marker=dict(line_width=0, **marker), opacity=0.45,
                           hovertext=_hover_rows(hover, bands), hovertemplate="%{hovertext}<extra></extra>",
                           name="patches"))
    fig.add_trace(go.Scatter(x=wave, y=flux, mode="lines", line=dict(width=0.8, color="#222222"),
                             hoverinfo="skip", name="spectrum"))
    lines = gravity_lines(float(wave[0]), float(wave[-1]))
    _line_markers(fig, lines, label_y=(0.02 * top, 1.02 * top))
    size = int(tokens.pixel_end[0] - tokens.pixel_start[0] + 1)
    fig.update_layout(
        title=_title(f"{title}{len(tokens)} patches of {size} pixels", above_buttons=True),
        height=480, margin=dict(l=60, r=20, t=100, b=50), showlegend=False, bargap=0,
        xaxis=dict(title="wavelength [A] (air)"), yaxis=dict(title="flux / median", range=[0, 1.3 * top]),
        updatemenus=[_zoom_menu(lines)])
    return fig


def attention_explorer(tokens: pd.DataFrame, weights, wave, flux, model: str = "") -> go.Figure:
    """A slider over encoder layers: each head's CLS attention along the wavelength as a heat map, under a spectrum.

    Parameters
    ----------
    tokens : pandas.DataFrame
        The tokens (``wave_center``), as returned with ``weights`` by
        :func:`specvit_core.attention.cls_attention_by_layer`.
    weights : array_like, shape (layers, heads, N_tokens)
        CLS-to-patch attention probabilities per layer and head.
    wave, flux : ndarray, shape (L,)
        An example spectrum drawn above the heat map.
    model : str
        The run's name, for the title.

    Returns
    -------
    plotly.graph_objects.Figure
        Two rows sharing the wavelength axis: the spectrum, then one heat map per layer (one visible at a time, in
        units of a uniform attention 1 / (N_tokens + 1)); a slider step per layer, the lines of :func:`gravity_lines`
        through both rows and zoom buttons.

    Raises
    ------
    ValueError
        If ``weights`` is not (layers, heads, N_tokens) with one column per token.
    """
    from plotly.subplots import make_subplots

    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 3 or weights.shape[2] != len(tokens):
        raise ValueError(f"weights must be (layers, heads, {len(tokens)} tokens); got shape {weights.shape}")
    n_layers, n_heads, n = weights.shape
    relative = (weights * (n + 1)).astype(np.float32)
    wave, flux = np.asarray(wave, dtype=np.float32), np.asarray(flux, dtype=np.float32)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.4, 0.6], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=wave, y=flux, mode="lines", line=dict(width=0.7, color="#222222"),
                             hoverinfo="skip", name="spectrum"), row=1, col=1)
    heads = [f"head {h + 1}" for h in range(n_heads)]
    for layer in range(n_layers):
        fig.add_trace(go.Heatmap(x=tokens.wave_center.astype(np.float32), y=heads, z=relative[layer],
                                 coloraxis="coloraxis", visible=layer == 0, name=f"layer {layer + 1}",
                                 hovertemplate=f"layer {layer + 1}, %{{y}}<br>token at %{{x:.1f}} A<br>"
                                               "%{z:.2f} x uniform<extra></extra>"), row=2, col=1)
    top = float(np.percentile(flux, 99.5))
    lines = gravity_lines(float(wave[0]), float(wave[-1]))
    _line_markers(fig, lines, label_y=(0.02 * top, 1.02 * top), label_row=1)
    titles = [f"{model} CLS attention, layer {k + 1} of {n_layers}" for k in range(n_layers)]
    steps = [dict(method="update", label=str(k + 1),
                  args=[{"visible": [True] + [j == k for j in range(n_layers)]}, {"title.text": titles[k]}])
             for k in range(n_layers)]
    fig.update_layout(
        title=_title(titles[0], above_buttons=True), height=600,
        margin=dict(l=60, r=20, t=100, b=40), showlegend=False,
        coloraxis=dict(colorscale="Viridis", cmin=0.0, cmax=float(relative.max()),
                       colorbar=dict(title="x uniform", thickness=12, len=0.55, y=0.3)),
        yaxis=dict(title="flux / median", range=[0, 1.3 * top]), xaxis2=dict(title="wavelength [A] (air)"),
        updatemenus=[_zoom_menu(lines, xaxes=("xaxis", "xaxis2"))],
        sliders=[dict(active=0, steps=steps, pad=dict(t=40, l=10, r=40), currentvalue=dict(prefix="layer: "))])
    return fig


#: What each tab of :func:`results_dashboard` sets in the layout unless it says otherwise.
_TAB_LAYOUT = {"xaxis.type": "linear", "yaxis.type": "linear", "xaxis.autorange": True, "yaxis.autorange": True,
               "barmode": "group"}


def _r2_tab(table: pd.DataFrame) -> tuple[list, dict]:
    """Horizontal R^2 bars with their bootstrap intervals, one trace (colour) per family, best first in each."""
    traces = []
    for family, rows in table.groupby("family", sort=False, observed=True):
        traces.append(go.Bar(
            x=rows.r2, y=rows.index, orientation="h", name=str(family), offsetgroup="r2",
            error_x=dict(type="data", array=rows.r2_high - rows.r2, arrayminus=rows.r2 - rows.r2_low),
            customdata=rows[["r2_low", "r2_high"]].to_numpy(),
            hovertemplate="%{y}: R2 %{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra>"
                          f"{family}</extra>"))
    layout = {"yaxis.type": "category", "yaxis.autorange": "reversed", "xaxis.title.text": "test R2 (log g)",
              "yaxis.title.text": "", "title.text": "R2 with bootstrap 95% intervals, grouped by family"}
    return traces, layout


def _scaling_tab(scaling: pd.DataFrame) -> tuple[list, dict]:
    """Test R^2 against the training-set size, one line per model (dashed for the baselines)."""
    traces = [go.Scatter(x=rows.n_train, y=rows.r2, mode="lines+markers", name=str(model),
                         line=dict(dash="dash" if model in ("lightgbm", "ridge") else "solid"),
                         hovertemplate=f"{model}<br>N = %{{x}}: R2 %{{y:.3f}}<extra></extra>")
              for model, rows in scaling.sort_values("n_train").groupby("model", sort=False)]
    layout = {"xaxis.type": "log", "xaxis.title.text": "training spectra N", "yaxis.title.text": "test R2",
              "title.text": "R2 against the training-set size"}
    return traces, layout


def _type_mae_tab(type_mae: pd.DataFrame) -> tuple[list, dict]:
    """MAE per stellar type (rows of ``type_mae``), grouped bars, one trace per model (column)."""
    traces = [go.Bar(x=type_mae.index, y=type_mae[model], name=str(model),
                     hovertemplate=f"{model}<br>%{{x}}: MAE %{{y:.3f}} dex<extra></extra>")
              for model in type_mae.columns]
    layout = {"xaxis.type": "category", "xaxis.title.text": "stellar type", "yaxis.title.text": "MAE [dex]",
              "title.text": "MAE by stellar type"}
    return traces, layout


def _predictions_tab(predictions: dict) -> tuple[list, dict]:
    """Predicted against true log g, one marker trace per model, and the 1:1 line."""
    traces = [go.Scatter(x=p.true, y=p.pred, mode="markers", name=str(name), marker=dict(size=4, opacity=0.5),
                         hovertemplate=f"{name}<br>true %{{x:.2f}}, predicted %{{y:.2f}}<extra></extra>")
              for name, p in predictions.items()]
    values = np.concatenate([np.r_[p.true, p.pred] for p in predictions.values()])
    lo, hi = float(values.min()), float(values.max())
    traces.append(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="1:1", hoverinfo="skip",
                             line=dict(dash="dash", color=INK, width=1)))
    layout = {"xaxis.title.text": "true log g", "yaxis.title.text": "predicted log g",
              "title.text": "Predicted against true log g"}
    return traces, layout


def results_dashboard(table: pd.DataFrame, scaling: pd.DataFrame | None = None, type_mae: pd.DataFrame | None = None,
                      predictions: dict | None = None) -> go.Figure:
    """The benchmark's results in one figure with a button per view; views without data are left out.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`specvit_core.tables.comparison_table` (index the models; ``family``, ``r2``, ``r2_low``,
        ``r2_high``).
    scaling : pandas.DataFrame, optional
        :func:`specvit_core.benchmark.scaling_runs` (``model``, ``n_train``, ``r2``).
    type_mae : pandas.DataFrame, optional
        :func:`specvit_core.tables.stellar_type_mae` (rows the stellar types, one column per model).
    predictions : dict of str -> pandas.DataFrame, optional
        Model name -> :func:`specvit_core.runs.read_predictions` (``true``, ``pred``).

    Returns
    -------
    plotly.graph_objects.Figure
        The traces of every view, those of the first visible; buttons (``updatemenus``) labelled "R2 by
        architecture", "R2 against N", "MAE by stellar type" and "predicted vs true" for the views whose data are
        given and not empty, each showing its traces and setting its axes and title.

    Raises
    ------
    ValueError
        If ``table`` is empty.
    """
    if table.empty:
        raise ValueError("the comparison table is empty: no run to show")
    views = [("R2 by architecture", _r2_tab, table), ("R2 against N", _scaling_tab, scaling),
             ("MAE by stellar type", _type_mae_tab, type_mae), ("predicted vs true", _predictions_tab, predictions)]
    tabs = [(label, *build(data)) for label, build, data in views if data is not None and len(data)]
    owner = np.concatenate([np.full(len(traces), k) for k, (_, traces, _) in enumerate(tabs)])
    fig = go.Figure([trace for _, traces, _ in tabs for trace in traces])
    for trace, k in zip(fig.data, owner):
        trace.visible = bool(k == 0)
    buttons = [dict(label=label, method="update",
                    args=[{"visible": (owner == k).tolist()}, {**_TAB_LAYOUT, **layout}])
               for k, (label, _, layout) in enumerate(tabs)]
    fig.update_layout(height=520, margin=dict(l=110, r=20, t=100, b=50), legend=dict(title="model / family"),
                      title=_title(above_buttons=True),
                      updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=0, y=1.02,
                                        xanchor="left", yanchor="bottom", showactive=True, active=0,
                                        font=dict(size=11))])
    fig.plotly_relayout(buttons[0]["args"][1])  # the first view's axes and title
    return fig


def snr_quantiles(prediction: pd.DataFrame, n_bins: int = 5) -> pd.DataFrame:
    """A model's test metrics in equal-count SNR bins (quintiles by default), as Figure 1 (right) draws them.

    Both chapter 06's static figure and :func:`r2_against_snr` take their points from here.

    Parameters
    ----------
    prediction : pandas.DataFrame
        :func:`specvit_core.runs.read_predictions` of a run (``true``, ``pred``, ``snr``).
    n_bins : int
        Number of equal-count SNR bins.

    Returns
    -------
    pandas.DataFrame
        :func:`specvit_core.metrics.metrics_by_quantile` of the predictions over ``snr``, one row per bin (without
        its ``all`` row), with ``snr`` the bin's geometric centre sqrt(lo * hi) added.

    Raises
    ------
    KeyError
        If a column is missing.
    ValueError
        As :func:`specvit_core.metrics.metrics_by_quantile`.
    """
    by_snr = metrics_by_quantile(prediction["true"], prediction["pred"], prediction["snr"], n_bins=n_bins)
    by_snr = by_snr.drop(index="all")
    return by_snr.assign(snr=np.sqrt(by_snr.lo * by_snr.hi))


#: Columns of :func:`specvit_core.fisher.ceiling_table` that :func:`r2_against_snr` draws.
CEILING_COLUMNS = ("mag", "snr", "r2_max_median", "r2_max_p10", "r2_max_p90")


def r2_against_snr(ceiling: pd.DataFrame, predictions: dict | None = None, paper_points: dict | None = None,
                   n_bins: int = 5) -> go.Figure:
    """Figure 1 (right): the Fisher R^2 ceiling as a band against SNR, the paper's points and the models' test R^2.

    The results dashboard's R^2-against-SNR view (chapter 06, where the ceiling is computed; the other views are in
    :func:`results_dashboard`, chapter 05).

    Parameters
    ----------
    ceiling : pandas.DataFrame
        :func:`specvit_core.fisher.ceiling_table`: per magnitude ``mag``, the median SNR ``snr`` and the median and
        10/90 percentiles of R^2_max over the grid (``r2_max_median``, ``r2_max_p10``, ``r2_max_p90``).
    predictions : dict of str -> pandas.DataFrame, optional
        Model name -> :func:`specvit_core.runs.read_predictions` (``true``, ``pred``, ``snr``); none drawn if
        absent.
    paper_points : dict of float -> (float, float), optional
        The paper's ceiling: magnitude -> (SNR, R^2), e.g. from ``paper.SNR_BY_MAG`` and ``paper.CEILING_3D``;
        left out if absent.
    n_bins : int
        Number of equal-count SNR bins per model (:func:`snr_quantiles`).

    Returns
    -------
    plotly.graph_objects.Figure
        In order: the band (one filled trace, 10-90% of the grid; hover: magnitude, SNR, median and range), the
        median line, the paper's points (when given) and one line+markers trace per model at its bins' geometric
        centres, each in its own colour of :data:`MODEL_COLORS` (hover: the bin's SNR range, R^2 and n). Log SNR
        axis; a legend click hides or shows a trace.

    Raises
    ------
    KeyError
        If ``ceiling`` lacks a column of :data:`CEILING_COLUMNS`, or a prediction frame one of its columns.
    ValueError
        If ``ceiling`` is empty, or as :func:`snr_quantiles`.
    """
    missing = [c for c in CEILING_COLUMNS if c not in ceiling]
    if missing:
        raise KeyError(f"the ceiling table lacks {missing}; columns: {', '.join(map(str, ceiling.columns))}")
    if ceiling.empty:
        raise ValueError("the ceiling table is empty: no magnitude to draw")
    rows = ceiling.sort_values("snr", ignore_index=True)
    hover = _hover_rows("i = {mag:g}: median SNR {snr:.1f}<br>ceiling median R2 {r2_max_median:.3f}<br>"
                        "10-90% of grid: {r2_max_p10:.3f}-{r2_max_p90:.3f}", rows)
    fig = go.Figure(go.Scatter(
        x=np.r_[rows.snr, rows.snr[::-1]], y=np.r_[rows.r2_max_p90, rows.r2_max_p10[::-1]], mode="lines",
        fill="toself", fillcolor="rgba(51, 51, 51, 0.2)", line=dict(width=0.5, color=INK), hoveron="points",
        hovertext=hover + hover[::-1], hovertemplate="%{hovertext}<extra></extra>", name="ceiling, 10-90% of grid"))
    fig.add_trace(go.Scatter(x=rows.snr, y=rows.r2_max_median, mode="lines", line=dict(dash="dash", color=INK),
                             hovertext=hover, hovertemplate="%{hovertext}<extra></extra>",
                             name="ceiling, median (this simulator)"))
    if paper_points:
        points = pd.DataFrame([(m, s, r2) for m, (s, r2) in paper_points.items()], columns=["mag", "snr", "r2"])
        fig.add_trace(go.Scatter(
            x=points.snr, y=points.r2, mode="markers", marker=dict(symbol="star", size=12, color=PAPER_COLOR),
            hovertext=_hover_rows("paper, i = {mag:g}: SNR {snr:.1f}, R2 {r2:.3f}", points),
            hovertemplate="%{hovertext}<extra></extra>", name="paper, 3D median"))
    for k, (name, prediction) in enumerate((predictions or {}).items()):
        bins = snr_quantiles(prediction, n_bins)
        fig.add_trace(go.Scatter(
            x=bins.snr, y=bins.r2, mode="lines+markers", name=str(name),
            line=dict(color=MODEL_COLORS[k % len(MODEL_COLORS)]),
            hovertext=_hover_rows("SNR {lo:.1f}-{hi:.1f}: R2 {r2:.3f} (n = {n})", bins),
            hovertemplate=f"{name}<br>%{{hovertext}}<extra></extra>"))
    fig.update_layout(
        title=_title(f"R2 against SNR: the Fisher ceiling and the models' test R2 in {n_bins} SNR bins"),
        height=520, margin=dict(l=60, r=20, t=50, b=50),
        xaxis=dict(type="log", title="median per-pixel SNR"), yaxis=dict(title="R2 (log g)", range=[-0.05, 1.02]),
        legend=dict(title="click to hide / show", itemclick="toggle", itemdoubleclick="toggleothers"))
    return fig


def show(fig: go.Figure, div_id: str | None = None) -> None:
    """Display a figure as HTML without plotly.js (the book's pages load it once) and as plotly JSON for Jupyter.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure.
    div_id : str, optional
        The ``id`` of the figure's ``<div>`` on the page (unique per page); default a random one.

    Returns
    -------
    None
        The output bundle has ``text/html`` (what the book renders), ``application/vnd.plotly.v1+json`` (what
        JupyterLab renders) and ``text/plain``.

    Raises
    ------
    ValueError
        If ``div_id`` is empty or holds a character other than letters, digits, ``-`` and ``_``.
    """
    from IPython.display import display

    if div_id is not None and (not div_id or not all(c.isalnum() or c in "-_" for c in div_id)):
        raise ValueError(f"div_id {div_id!r}: use letters, digits, '-' and '_'")
    html = fig.to_html(include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOTLY_CONFIG)
    title = fig.layout.title.text or "figure"
    display({"text/html": html, "application/vnd.plotly.v1+json": json.loads(fig.to_json()),
             "text/plain": f"<interactive plotly figure: {title}>"}, raw=True)
