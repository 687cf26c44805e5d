"""The PFS MR photon-noise chain: eq. G.4 variance, O2 A band and background against the ETC, SNR beside the paper's,
physical trends, noise draws, input checks."""
import numpy as np
import pytest

from specvit_core import noise, paper
from specvit_core.instrument import mr_wavelength

WAVE = mr_wavelength()


def flat_fnu(n=1):
    return np.repeat((noise.C_ANGSTROM / WAVE**2)[None], n, axis=0)


def blackbody(n=1, teff=4500.0):
    um = WAVE / 1e4
    return np.repeat((um**-5 / np.expm1(1.4388e4 / (um * teff)))[None], n, axis=0)


def fixed(n=1, **kw):
    cond = dict(seeing=1.0, zenith_angle=20.0, field_angle=0.3, moon_zenith=60.0, moon_target=90.0, moon_phase=0.0)
    return {k: np.broadcast_to(np.asarray(v, dtype=float), (n,)).copy() for k, v in {**cond, **kw}.items()}


def median_snr(spectra, mag, cond):
    flux, sigma = noise.observe(WAVE, spectra, np.full(len(spectra), mag), cond)
    return np.median(np.median(flux / sigma, axis=1))


# Reference numbers copied from the official PFS ETC outputs in shared/reference/pfs_etc_mr/ (one 900 s exposure,
# AB = 18 flat source, new moon, field centre); row i of those files is MR pixel i. The tests must not read them.
ETC_CONDITIONS = {"etc_mr_see1.0_za22.5_fa0_900s.txt": (1.0, 22.5), "etc_mr_see0.8_za45.0_fa0_900s.txt": (0.8, 45.0)}
O2A_PIXELS = np.arange(1161, 1302, 10)  # 7596.2-7656.5 A, every 10th pixel of the O2 A band
ETC_O2A_OBJECT = {  # column 2, object counts (e- per pixel)
    "etc_mr_see1.0_za22.5_fa0_900s.txt": [580.3, 356.4, 228.4, 242.8, 348.0, 482.6, 775.8, 399.0, 400.0, 457.1, 498.7,
                                          504.3, 482.7, 487.6, 617.7],
    "etc_mr_see0.8_za45.0_fa0_900s.txt": [730.7, 448.8, 287.6, 305.8, 438.3, 607.7, 977.0, 502.4, 503.8, 575.6, 628.0,
                                          635.1, 607.8, 614.0, 778.0],
}
BACKGROUND_PIXELS = np.arange(100, 4096, 250)
ETC_NOISE_VARIANCE = [251.9, 528.9, 275.7, 284.6, 417.6, 215.7, 1431.0, 561.9, 736.6, 1394.2, 293.6, 218.2, 260.8,
                      217.1, 911.6, 276.6]  # column 3 of etc_mr_see1.0_za22.5_fa0_900s.txt (sky + read + dark + ...)


def etc_budget(name):
    seeing, za = ETC_CONDITIONS[name]
    cond = dict(seeing=seeing, zenith_angle=za, field_angle=0.0, moon_zenith=90.0, moon_target=180.0, moon_phase=0.0)
    return noise.photon_budget(WAVE, flat_fnu(), np.array([18.0]), cond, n_exposures=1)


def test_variance_is_the_paper_eq_g4_sum():
    # sigma^2 = N_obj + N_sky + N_det (read + dark) per exposure, nothing scaled and no ETC extra term
    cond = fixed(3, moon_phase=np.array([0.0, 0.25, 0.5]), zenith_angle=np.array([0.0, 30.0, 45.0]))
    b = noise.photon_budget(WAVE, blackbody(3), np.array([18.0, 21.0, 23.0]), cond, n_exposures=5)
    np.testing.assert_array_equal(b["variance"], b["object"] + b["sky"] + b["detector"])
    detector = noise.TRACE_PIXELS * (noise.READ_NOISE**2 + noise.DARK_RATE * noise.EXPOSURE_TIME)
    np.testing.assert_array_equal(b["detector"], detector)
    assert not hasattr(noise, "PAPER_BACKGROUND_SCALE")


@pytest.mark.parametrize("name", list(ETC_CONDITIONS))
def test_o2a_band_object_counts_follow_the_etc(name):
    ratio = etc_budget(name)["object"][0, O2A_PIXELS] / ETC_O2A_OBJECT[name]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03)
    assert np.all(np.abs(ratio - 1.0) < 0.05), ratio


def test_background_variance_is_the_etc_one_without_its_extra_terms():
    name = "etc_mr_see1.0_za22.5_fa0_900s.txt"
    b = etc_budget(name)
    paper_background = (b["variance"] - b["object"])[0]
    etc_like = paper_background + noise.etc_extra_variance(b["sky"][0])
    assert np.median(etc_like[BACKGROUND_PIXELS] / ETC_NOISE_VARIANCE) == pytest.approx(1.0, abs=0.06)
    assert np.median(paper_background[BACKGROUND_PIXELS] / ETC_NOISE_VARIANCE) < 0.75  # eq. G.4 carries less


@pytest.mark.parametrize("shape", [flat_fnu, blackbody], ids=["flat_fnu", "blackbody_4500K"])
def test_snr_agrees_with_paper_over_table2_conditions(shape):
    # nothing in the chain is fitted to the paper: this compares the eq. G.4 chain with its Table 13
    cond = noise.draw_conditions(np.random.default_rng(0), 400)
    for mag, target in paper.SNR_BY_MAG.items():
        assert median_snr(shape(400), mag, cond) == pytest.approx(target, rel=0.10), mag


def test_snr_falls_with_magnitude_and_seeing():
    by_mag = [median_snr(blackbody(), m, fixed()) for m in (18, 19, 20, 21, 22, 23)]
    by_seeing = [median_snr(blackbody(), 21.0, fixed(seeing=s)) for s in (0.5, 0.8, 1.1, 1.5)]
    assert np.all(np.diff(by_mag) < 0) and np.all(np.diff(by_seeing) < 0)


def test_sky_rises_with_airmass_and_moon():
    za = np.array([0.0, 20.0, 40.0, 60.0])
    sky = noise.photon_budget(WAVE, flat_fnu(4), np.full(4, 20.0), fixed(4, zenith_angle=za))["sky"]
    assert np.all(np.diff(sky, axis=0) > 0)
    phase = np.array([0.0, 0.25, 0.5])  # new, quarter, full
    sky = noise.photon_budget(WAVE, flat_fnu(3), np.full(3, 20.0), fixed(3, moon_phase=phase))["sky"]
    assert np.all(np.diff(sky, axis=0) > 0)
    assert np.median(sky[2] / sky[0]) > 2.0  # full moon brightens the red sky well above dark time


def test_budget_is_consistent():
    b = noise.photon_budget(WAVE, blackbody(2), np.array([19.0, 21.0]), fixed(2), n_exposures=3)
    assert noise.i_band_ab_mag(WAVE, b["flux"]) == pytest.approx([19.0, 21.0], abs=1e-9)
    assert np.all(b["variance"] > b["object"])
    np.testing.assert_allclose(b["sigma"], b["flux"] * np.sqrt(b["variance"] / 3) / b["object"], rtol=1e-12)
    _, sigma12 = noise.observe(WAVE, blackbody(2), np.array([19.0, 21.0]), fixed(2))
    np.testing.assert_allclose(sigma12, b["sigma"] / 2.0, rtol=1e-12)  # 12 vs 3 exposures


def test_i_band_mag_of_flat_source_is_its_ab_mag():
    fnu = 10.0 ** (-0.4 * (20.3 + 48.6))
    assert noise.i_band_ab_mag(WAVE, fnu * flat_fnu()[0]) == pytest.approx(20.3, abs=1e-9)


def test_draw_conditions_stay_in_table2():
    cond = noise.draw_conditions(np.random.default_rng(1), 500)
    assert set(cond) == set(noise.TABLE2)
    for key, (lo, hi) in noise.TABLE2.items():
        assert cond[key].shape == (500,) and cond[key].min() >= lo and cond[key].max() <= hi


def test_noisy_spectrum_has_unit_variance_where_not_clipped():
    flux, sigma, _ = noise.median_normalize(*noise.observe(WAVE, blackbody(50), np.full(50, 21.0), fixed(50)))
    pulls = (noise.noisy_spectrum(flux, sigma, np.random.default_rng(2)) - flux) / sigma
    far = flux > 6 * sigma  # pixels where a clip at 0 would take a 6-sigma draw
    assert far.mean() > 0.5
    assert abs(pulls[far].mean()) < 0.005 and pulls[far].std() == pytest.approx(1.0, abs=0.005)


def test_noisy_spectrum_clips_at_zero_and_scales_with_alpha():
    flux, sigma = np.full((4, 1000), 0.1, np.float32), np.ones((4, 1000), np.float32)
    noisy = noise.noisy_spectrum(flux, sigma, np.random.default_rng(3))
    eps = np.random.default_rng(3).standard_normal(flux.shape, dtype=np.float32)
    np.testing.assert_array_equal(noisy, np.maximum(flux + eps, 0))
    assert noisy.dtype == np.float32 and noisy.min() == 0 and 0.4 < np.mean(noisy == 0) < 0.52
    np.testing.assert_array_equal(noise.noisy_spectrum(flux, sigma, np.random.default_rng(3), alpha=0.0), flux)


@pytest.mark.parametrize("change, match", [
    (dict(flux=-flat_fnu()), "flux_lambda must be finite and > 0"),
    (dict(flux=np.where(WAVE == WAVE[7], np.nan, flat_fnu())), "flux_lambda must be finite and > 0"),
    (dict(flux=flat_fnu()[0]), r"flux_lambda shape \(4096,\) must be \(B, 4096\)"),
    (dict(mag=np.array([20.0, 21.0])), "mag_i must be 1 finite magnitudes"),
    (dict(wave=WAVE[::-1]), "wave .* must be the 4096-pixel MR grid"),
    (dict(cond=fixed(seeing=-0.5)), r"conditions\['seeing'\] = -0.5 outside the physical range"),
    (dict(cond=fixed(zenith_angle=85.0)), r"conditions\['zenith_angle'\] = 85.0 outside"),
    (dict(cond={k: v for k, v in fixed().items() if k != "moon_phase"}), "conditions lack 'moon_phase'"),
    (dict(cond=fixed(2)), r"conditions\['seeing'\] shape \(2,\) does not match 1 spectra"),
])
def test_observe_rejects_bad_input(change, match):
    args = dict(wave=WAVE, flux=flat_fnu(), mag=np.array([20.0]), cond=fixed())
    args.update(change)
    with pytest.raises(ValueError, match=match):
        noise.observe(args["wave"], args["flux"], args["mag"], args["cond"])


def test_other_bad_input():
    with pytest.raises(ValueError, match=r"n_exposures \(0\) must be >= 1"):
        noise.observe(WAVE, flat_fnu(), np.array([20.0]), fixed(), n_exposures=0)
    with pytest.raises(ValueError, match=r"flux shape \(2,\) and error shape \(3,\) must agree"):
        noise.noisy_spectrum(np.ones(2), np.ones(3), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n, 0, must be a positive integer"):
        noise.draw_conditions(np.random.default_rng(0), 0)
    with pytest.raises(ValueError, match="must increase and cover the i band"):
        noise.i_band_ab_mag(WAVE[:1000], flat_fnu()[0, :1000])
