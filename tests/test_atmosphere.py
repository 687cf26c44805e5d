"""Physics checks of the emulated C3K/ATLAS12 model atmospheres (specvit_core.spectra.atmosphere).

Measured values (atmosnet 1.0.1 cool-star network) are quoted next to each bound.
"""
import numpy as np
import pytest

from specvit_core.spectra.atmosphere import (
    ATMOSPHERE_COLUMNS,
    DATA_FILE,
    Atmosphere,
    atmosphere_columns,
    label_ranges,
    model_atmosphere,
)

SUN = (5777.0, 4.44, 0.0)
GIANT = (4500.0, 2.0, 0.0)


def at_tau(atm, values, tau):
    """A column at Rosseland optical depth ``tau``, interpolated linearly in log tau and log value."""
    return float(np.exp(np.interp(np.log(tau), np.log(atm.tau_rosseland), np.log(values))))


def test_data_file_loads_without_pickle():
    with np.load(DATA_FILE, allow_pickle=False) as f:
        assert f["w0"].shape == (5, 300, 4) and f["w1"].shape == (5, 300, 300) and f["w2"].shape == (5, 80, 300)
        assert f["b0"].shape == (5, 300) and f["b2"].shape == (5, 80) and f["w1"].dtype == np.float32
        assert f["x_min"].shape == f["x_max"].shape == (5, 4) and f["ranges"].shape == (4, 2)
        assert tuple(f["columns"]) == ("RHOX", "T", "P", "XNE", "ABROSS")
        assert "atmosnet 1.0.1" in str(f["source"]) and "Conroy et al. 2019" in str(f["source"])
        assert str(f["output"]) == "log10(value + 1e-16)"


def test_structure_shapes_and_read_only():
    atm = model_atmosphere(*SUN)
    assert isinstance(atm, Atmosphere) and (atm.teff, atm.logg, atm.mh, atm.alpha_m) == (5777.0, 4.44, 0.0, 0.0)
    for name in ATMOSPHERE_COLUMNS:
        a = getattr(atm, name)
        assert a.shape == (80,) and a.dtype == np.float64 and np.all(np.isfinite(a)) and np.all(a > 0)
        with pytest.raises(ValueError):
            a[0] = 1.0
    k, m = atm.rosseland_opacity, atm.column_mass
    assert atm.tau_rosseland[0] == pytest.approx(k[0] * m[0])
    assert atm.tau_rosseland[1] - atm.tau_rosseland[0] == pytest.approx(0.5 * (k[0] + k[1]) * (m[1] - m[0]))


def test_vectorized_matches_single():
    cols = atmosphere_columns([5777.0, 4500.0], [4.44, 2.0], 0.0, [0.0, 0.2])
    for name in ATMOSPHERE_COLUMNS:
        assert cols[name].shape == (2, 80)
    for i, labels in enumerate([(5777.0, 4.44, 0.0, 0.0), (4500.0, 2.0, 0.0, 0.2)]):
        atm = model_atmosphere(*labels)
        for name in ATMOSPHERE_COLUMNS:
            np.testing.assert_allclose(cols[name][i], getattr(atm, name), rtol=1e-12)


def test_solar_depth_scale_is_the_c3k_grid():
    # ATLAS12/C3K models sit on log tau_R = -6.875 + 0.125 k; the decoded network reproduces it (max 0.020 dex).
    # Decoding the output with exp instead of 10** (as atmosnet 1.0.1 does) misses it by orders of magnitude.
    log_tau = np.log10(model_atmosphere(*SUN).tau_rosseland)
    np.testing.assert_allclose(log_tau, -6.875 + 0.125 * np.arange(80), atol=0.03)


def test_solar_temperature_structure():
    atm = model_atmosphere(*SUN)
    # Eddington: T(tau = 2/3) = Teff; measured 5933 K (1.027 Teff), line blanketing heats it slightly.
    assert at_tau(atm, atm.temperature, 2 / 3) / SUN[0] == pytest.approx(1.0, abs=0.05)
    # boundary temperature: grey 0.81 (Hopf) to 0.84 (Eddington) Teff, lowered by line blanketing;
    # measured 3691 K = 0.639 Teff at tau 1.4e-7
    top = np.argmin(atm.tau_rosseland)
    assert top == 0 and 0.6 < atm.temperature[top] / SUN[0] < 0.85


@pytest.mark.parametrize("labels", [SUN, GIANT], ids=["sun", "giant"])
def test_hydrostatic_equilibrium(labels):
    # dP/dm = g - g_rad: P_gas = g m up to radiation pressure, whose acceleration kappa F / c is < 1e-3 g for these
    # stars. What remains is the emulator's error: measured max |P/(g m) - 1| = 0.019 (sun), 0.013 (giant).
    atm = model_atmosphere(*labels)
    tau = atm.tau_rosseland
    layers = (tau >= 1e-4) & (tau <= 1.0)
    assert layers.sum() >= 30
    ratio = atm.gas_pressure[layers] / (10 ** labels[1] * atm.column_mass[layers])
    np.testing.assert_allclose(ratio, 1.0, atol=0.03)


@pytest.mark.parametrize("labels", [SUN, GIANT, (5000.0, 3.0, -1.0), (6500.0, 4.0, 0.0), (4000.0, 1.0, -0.5),
                                    (3500.0, 4.5, 0.0)])
def test_monotonic_inward(labels):
    # Strictly at all 80 depths for these models. (Not guaranteed everywhere: see the module's Limits.)
    atm = model_atmosphere(*labels)
    for values in (atm.column_mass, atm.temperature, atm.gas_pressure, atm.tau_rosseland):
        assert np.all(np.diff(values) > 0)


def test_pressure_gravity_scaling():
    # With H- opacity (~ P_e) P_g ~ g^(2/3) (Gray); other opacity sources soften it. Measured at Teff 5000, tau 0.1:
    # fit 0.56 over log g 1-4, local slopes 0.54-0.58.
    logg = np.arange(1.0, 4.01, 0.5)
    log_p = np.log10([at_tau(a, a.gas_pressure, 0.1) for a in (model_atmosphere(5000.0, g, 0.0) for g in logg)])
    assert 0.4 < np.polyfit(logg, log_p, 1)[0] < 0.8
    local = np.diff(log_p) / np.diff(logg)
    assert np.all((local > 0.4) & (local < 0.8))


@pytest.mark.parametrize("logg", [4.5, 2.0])
def test_electron_density_rises_with_teff(logg):
    # Saha: hotter photospheres ionize more (metals, then hydrogen). Measured n_e(tau=1) x6.6 (dwarf), x10 (giant).
    ne = [at_tau(a, a.electron_density, 1.0) for a in (model_atmosphere(t, logg, 0.0) for t in range(4000, 6001, 500))]
    assert np.all(np.diff(ne) > 0)
    assert ne[-1] / ne[0] > 3


@pytest.mark.parametrize("logg", [4.5, 2.0])
def test_electron_density_rises_with_metallicity_in_cool_stars(logg):
    # At 4000 K the free electrons come from the metals: P_e ~ A^(1/3) with H- opacity (Gray). Measured
    # d log n_e / d[M/H] at tau 1 = 0.41 (log g 4.5), 0.34 (log g 2.0) over [M/H] -2 ... +0.5.
    mh = np.array([-2.0, -1.0, -0.5, 0.0, 0.5])
    log_ne = np.log10([at_tau(a, a.electron_density, 1.0) for a in (model_atmosphere(4000.0, logg, m) for m in mh)])
    assert np.all(np.diff(log_ne) > 0)
    assert 0.25 < np.polyfit(mh, log_ne, 1)[0] < 0.5


@pytest.mark.parametrize("kwargs, message", [
    (dict(teff=9000.0, logg=4.0, mh=0.0), r"T_eff = 9000 lies outside the atmosphere emulator's range \[2500, 8000\]"),
    (dict(teff=5000.0, logg=6.0, mh=0.0), r"log_g = 6 lies outside the atmosphere emulator's range \[-1, 5\.5\]"),
    (dict(teff=5000.0, logg=4.0, mh=-5.0), r"M_H = -5 lies outside the atmosphere emulator's range \[-4, 1\.5\]"),
    (dict(teff=5000.0, logg=4.0, mh=0.0, alpha_m=0.8), r"alpha_M = 0\.8 lies outside .* \[-0\.2, 0\.6\]"),
    (dict(teff=float("nan"), logg=4.0, mh=0.0), r"T_eff = nan lies outside"),
])
def test_out_of_range_labels_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        model_atmosphere(**kwargs)


def test_out_of_range_in_vectorized_call():
    with pytest.raises(ValueError, match=r"log_g = -1\.5 lies outside"):
        atmosphere_columns([5000.0, 5000.0], [4.0, -1.5], 0.0)
    assert label_ranges() == {"T_eff": (2500.0, 8000.0), "log_g": (-1.0, 5.5), "M_H": (-4.0, 1.5),
                              "alpha_M": (-0.2, 0.6)}
