"""Model-atmosphere structures for LTE spectrum synthesis, from a neural emulator of the C3K grid.

Source
------
The network is the cool-star emulator of atmosnet 1.0.1 (D. Nidever, MIT licence), trained on the C3K grid of
ATLAS12 model atmospheres (Conroy et al. 2019, ApJ 883, 166; ATLAS12/SYNTHE by R. Kurucz). It was converted once by
``tools/convert_atmosnet.py`` into ``data/atmosnet_c3k_cool.npz`` (plain arrays, read with ``allow_pickle=False``);
the forward pass below is this package's own numpy code. atmosnet 1.0.1 itself decodes the output with ``exp``
instead of ``10**``, which gives a ~45 K solar photosphere; decoded as log10, the models are in hydrostatic
equilibrium to ~2 % and their Rosseland optical depths fall on Kurucz's standard grid 10^(-6.875 + 0.125 k)
(within 0.02-0.1 dex for FGK stars).

Each of five Kurucz-format columns is emulated by its own network (4 labels -> 300 -> 300 -> 80 depth points,
leaky-ReLU hidden layers, output ``log10(value + 1e-16)``):

========================  ========  =====================================================
``column_mass``           RHOX      mass column above the layer, g cm^-2
``temperature``           T         K
``gas_pressure``          P         dyn cm^-2
``electron_density``      XNE       electrons cm^-3
``rosseland_opacity``     ABROSS    Rosseland mean opacity per gram, cm^2 g^-1
========================  ========  =====================================================

The 80 depth points run from the surface inward; :attr:`Atmosphere.tau_rosseland` integrates the opacity over the
column mass.

Limits
------
* A neural emulator, not a converged model: the structure is reproduced to a few per cent (worse at the grid's
  corners), and it is not exactly in hydrostatic equilibrium (P_gas / (g RHOX) within ~2-4 % of 1 for tau_R
  1e-4 to 1 over most of the grid; up to 30 % low in the hot, low-gravity corner, e.g. 8000 K, log g 1,
  where radiation pressure supports the atmosphere). Against MARCS (Teff 6000, log g 1, solar; spherical, a
  different code) T(tau_R) agrees to 1.6 % (median, 3 % max) and P_gas to 0.03 dex over log tau_R -4 to 0.8
  (``tools/check_atmosphere_against_marcs.py``).
* Columns are not guaranteed monotonic everywhere: steps of <~1 % backwards occur in some models, in the nearly
  isothermal top of cool dwarfs, in the gas pressure below tau_R ~ 3 of low-gravity models (partly physical:
  radiation-pressure support in the hydrogen ionization zone), and in RHOX where it is nearly constant below
  tau_R ~ 5 of low-gravity models, which makes ``tau_rosseland`` step backwards there.
* Plane-parallel ATLAS12 physics with C3K's opacities and molecules; no sphericity for giants of very low gravity,
  nothing beyond C3K's molecular equilibrium for the coolest models.
* The label box (T_eff 2500-8000 K, log g -1 to 5.5, [M/H] -4 to 1.5, [alpha/M] -0.2 to 0.6) is checked, but the
  training grid does not fill it: above 4250 K it stops at log g 5.0 and starts at log g 0 to 1.5 (hotter stars
  need higher gravity), so such corners are extrapolations. Of the BOSZ nodes of the templates, T_eff 6000 and
  6250 K at log g 0 and 5250 K at log g 0 and 0.5 lie outside the training grid (its minimum log g there: 0.5, 0.5
  and 1.0).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).parent / "data" / "atmosnet_c3k_cool.npz"
ATMOSPHERE_COLUMNS = ("column_mass", "temperature", "gas_pressure", "electron_density", "rosseland_opacity")
_KURUCZ_COLUMNS = ("RHOX", "T", "P", "XNE", "ABROSS")  # the same columns by their Kurucz names, as stored
_LABEL_NAMES = ("T_eff", "log_g", "M_H", "alpha_M")  # the network's TEFF, LOGG, FE_H, ALPHA_FE


@functools.cache
def _network() -> dict[str, np.ndarray]:
    """The stored weights as read-only float64 arrays (loaded once)."""
    with np.load(DATA_FILE, allow_pickle=False) as f:
        if tuple(f["columns"]) != _KURUCZ_COLUMNS or str(f["output"]) != "log10(value + 1e-16)":
            raise RuntimeError(f"{DATA_FILE}: unexpected columns {tuple(f['columns'])} or output {f['output']}")
        net = {k: f[k].astype(np.float64) for k in ("w0", "b0", "w1", "b1", "w2", "b2", "x_min", "x_max", "ranges")}
    for a in net.values():
        a.setflags(write=False)
    return net


def label_ranges() -> dict[str, tuple[float, float]]:
    """Label ranges accepted by the emulator.

    Returns
    -------
    dict
        ``{"T_eff": (lo, hi), "log_g": ..., "M_H": ..., "alpha_M": ...}``, inclusive bounds.
    """
    return {name: (float(lo), float(hi)) for name, (lo, hi) in zip(_LABEL_NAMES, _network()["ranges"])}


def atmosphere_columns(teff, logg, mh, alpha_m=0.0) -> dict[str, np.ndarray]:
    """Evaluate the emulator for many stars at once (labels broadcast against each other).

    Parameters
    ----------
    teff, logg, mh, alpha_m : float or array_like
        Effective temperature (K), log10 surface gravity (cgs), [M/H] and [alpha/M] (dex).

    Returns
    -------
    dict
        One array of shape ``broadcast_shape + (n_depth,)`` per name of ``ATMOSPHERE_COLUMNS``, float64, depth
        ordered from the surface inward, in the units of :class:`Atmosphere`.

    Raises
    ------
    ValueError
        If any label lies outside the emulator's range (see :func:`label_ranges`) or is not finite.
    """
    net = _network()
    labels = np.stack(np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (teff, logg, mh, alpha_m))),
                      axis=-1)  # (..., 4)
    for i, name in enumerate(_LABEL_NAMES):
        lo, hi = net["ranges"][i]
        bad = ~((labels[..., i] >= lo) & (labels[..., i] <= hi))  # NaN counts as outside
        if bad.any():
            value = labels[..., i][bad].flat[0]
            more = f" ({bad.sum()} values)" if bad.sum() > 1 else ""
            raise ValueError(f"{name} = {value:g}{more} lies outside the atmosphere emulator's range [{lo:g}, {hi:g}]")
    shape = labels.shape[:-1]
    x = labels.reshape(-1, 1, 4)
    x = (x - net["x_min"]) / (net["x_max"] - net["x_min"]) - 0.5  # (n, column, 4)
    h = np.einsum("cij,ncj->nci", net["w0"], x) + net["b0"]
    h = np.where(h > 0, h, 0.01 * h)
    h = np.einsum("cij,ncj->nci", net["w1"], h) + net["b1"]
    h = np.where(h > 0, h, 0.01 * h)
    values = 10.0 ** (np.einsum("cij,ncj->nci", net["w2"], h) + net["b2"]) - 1e-16  # (n, column, depth)
    return {name: values[:, k].reshape(*shape, -1) for k, name in enumerate(ATMOSPHERE_COLUMNS)}


@dataclass(frozen=True, eq=False)
class Atmosphere:
    """A model-atmosphere structure: depth-dependent columns ordered from the surface inward.

    All arrays are stored as read-only float64 copies of shape ``(n_depth,)``.

    Parameters
    ----------
    teff, logg, mh, alpha_m : float
        The labels it was computed for: T_eff (K), log g (cgs), [M/H], [alpha/M].
    column_mass : ndarray
        Mass column above each layer (Kurucz RHOX), g cm^-2.
    temperature : ndarray
        Temperature, K.
    gas_pressure : ndarray
        Gas pressure, dyn cm^-2.
    electron_density : ndarray
        Electron number density, cm^-3.
    rosseland_opacity : ndarray
        Rosseland mean opacity per unit mass, cm^2 g^-1.
    """

    teff: float
    logg: float
    mh: float
    alpha_m: float
    column_mass: np.ndarray
    temperature: np.ndarray
    gas_pressure: np.ndarray
    electron_density: np.ndarray
    rosseland_opacity: np.ndarray

    def __post_init__(self):
        for name in ATMOSPHERE_COLUMNS:
            a = np.array(getattr(self, name), dtype=np.float64)  # a private copy
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @property
    def tau_rosseland(self) -> np.ndarray:
        """Rosseland optical depth at each layer.

        The trapezoid integral of ``rosseland_opacity`` over ``column_mass``, starting at the top layer from
        ``rosseland_opacity[0] * column_mass[0]`` (opacity taken constant above it).

        Returns
        -------
        ndarray, float64, shape (n_depth,)
            tau_R, dimensionless, from the surface inward.
        """
        k, m = self.rosseland_opacity, self.column_mass
        steps = 0.5 * (k[1:] + k[:-1]) * np.diff(m)
        return k[0] * m[0] + np.concatenate([[0.0], np.cumsum(steps)])


def model_atmosphere(teff: float, logg: float, mh: float, alpha_m: float = 0.0) -> Atmosphere:
    """Emulated C3K/ATLAS12 model atmosphere for one star.

    Parameters
    ----------
    teff : float
        Effective temperature, K (2500 to 8000).
    logg : float
        log10 of the surface gravity in cm s^-2 (-1 to 5.5).
    mh : float
        Metallicity [M/H], dex (-4 to 1.5).
    alpha_m : float, optional
        Alpha enhancement [alpha/M], dex (-0.2 to 0.6); default 0.

    Returns
    -------
    Atmosphere
        The structure at 80 depth points from the surface inward.

    Raises
    ------
    ValueError
        If a label lies outside the emulator's range, e.g.
        ``log_g = 6 lies outside the atmosphere emulator's range [-1, 5.5]``.
    """
    columns = atmosphere_columns(float(teff), float(logg), float(mh), float(alpha_m))
    return Atmosphere(float(teff), float(logg), float(mh), float(alpha_m), **columns)
