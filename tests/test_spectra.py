"""Contracts of the stellar templates: LSF, grid interpolation, BOSZ reader (the synthesis: test_synthesis.py)."""
import bz2

import numpy as np
import pytest
from astropy.io import fits

from specvit_core.instrument import convolve_to_mr, lsf_matrix, lsf_sigma, mr_wavelength
from specvit_core.spectra.bosz import parse_bosz_name, read_bosz_folder
from specvit_core.spectra.synthesis import Synthesizer
from specvit_core.spectra.templates import AXES, TemplateGrid

NODES = [(t, g, m) for t in (4500.0, 4750.0) for g in (2.0, 2.5) for m in (-0.25, 0.0)]


@pytest.fixture(scope="module")
def synthesizer():
    return Synthesizer()


@pytest.fixture(scope="module")
def bosz_spectra(synthesizer):
    """High-resolution spectra of the BOSZ test nodes, synthesized once (every fourth sample)."""
    return synthesizer.wave[::4], {node: tuple(a[::4] for a in synthesizer.spectrum(*node)) for node in NODES}


def test_mr_wavelength_grid_matches_the_contract():
    wave = mr_wavelength()
    assert wave.shape == (4096,)
    assert wave[0] == pytest.approx(7100.2136) and wave[-1] == pytest.approx(8849.7864)
    assert np.allclose(np.diff(wave), np.diff(wave)[0])


def test_lsf_conserves_flux_and_equivalent_width():
    wave_in = np.geomspace(7000, 9000, 60_000)
    line = 1.0 - 0.8 * np.exp(-0.5 * ((wave_in - 8000.0) / 0.05) ** 2)
    ew_in = np.trapezoid(1 - line, wave_in)
    out = convolve_to_mr(wave_in, line)
    wave = mr_wavelength()
    ew_out = np.trapezoid(1 - out, wave)
    assert ew_out == pytest.approx(ew_in, rel=0.01)
    assert np.allclose(convolve_to_mr(wave_in, np.full_like(wave_in, 3.0)), 3.0)
    # the line comes out with the LSF width (sigma of a Gaussian of FWHM lambda / R)
    depth = 1 - out
    width = np.sqrt(np.sum(depth * (wave - 8000.0) ** 2) / np.sum(depth))
    assert width == pytest.approx(np.hypot(lsf_sigma(8000.0), 0.05), rel=0.05)


def test_lsf_rejects_an_input_grid_that_does_not_cover_the_arm():
    with pytest.raises(ValueError, match="must cover the output grid"):
        lsf_matrix(np.linspace(7200, 9000, 1000))
    with pytest.raises(ValueError, match="strictly increasing"):
        lsf_matrix(np.linspace(9000, 7000, 1000))


def test_interpolation_reproduces_nodes_and_is_smooth_between_them(small_grid):
    nodes = np.array([[4250.0, 3.0, -0.5], [4750.0, 2.0, 0.0]])
    idx = [tuple(int(np.argmin(np.abs(small_grid.axes[a] - v))) for a, v in zip(AXES, n)) for n in nodes]
    out = small_grid.interpolate(nodes)
    for row, i in zip(out, idx):
        assert np.allclose(row, small_grid.flux[i], rtol=1e-5)
    mid = small_grid.interpolate([[4375.0, 3.0, -0.5]])[0]
    lo, hi = small_grid.flux[idx[0]], small_grid.flux[(2,) + idx[0][1:]]
    assert np.all(mid >= np.minimum(lo, hi) * 0.97) and np.all(mid <= np.maximum(lo, hi) * 1.03)


def test_exact_jacobian_matches_finite_differences(small_grid):
    labels = np.array([[4420.0, 2.7, -0.3]])
    steps = np.array([1.0, 0.002, 0.002])
    jac = small_grid.jacobian(labels)[0]
    for k in range(3):
        up, down = labels.copy(), labels.copy()
        up[0, k] += steps[k]
        down[0, k] -= steps[k]
        fd = (small_grid.interpolate(up, np.float64)[0] - small_grid.interpolate(down, np.float64)[0]) / (2 * steps[k])
        scale = np.max(np.abs(jac[:, k]))
        assert np.max(np.abs(fd - jac[:, k])) < 1e-4 * scale  # O(h^2) truncation of a cubic


def test_labels_outside_the_grid_are_refused(small_grid):
    with pytest.raises(ValueError, match=r"T_eff = 6000 lies outside the template grid \[4000, 5000\]"):
        small_grid.interpolate([[6000.0, 3.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        small_grid.interpolate([[np.nan, 3.0, 0.0]])


def test_grid_round_trips_through_hdf5(small_grid, tmp_path):
    path = tmp_path / "grid.h5"
    small_grid.save(path)
    back = TemplateGrid.load(path)
    assert np.array_equal(back.flux, small_grid.flux)
    assert all(np.array_equal(back.axes[a], small_grid.axes[a]) for a in AXES)


def bosz_name(teff, logg, mh):
    sign = "p" if mh >= 0 else "m"
    return f"am{sign}{int(abs(mh) * 10 + 0.5):02d}cp00op00t{int(teff)}g{round(logg * 10):02d}v20modrt0b50000rs"


def write_bosz_files(folder, spectra, nodes, fmt):
    """Write BOSZ-format files (3 columns or a FITS table) for the given nodes from the embedded synthesis."""
    wave, by_node = spectra
    for teff, logg, mh in nodes:
        flux, cont = by_node[(teff, logg, mh)]
        name = bosz_name(teff, logg, mh)
        if fmt == "fits":
            cols = [fits.Column(name=n, format="D", array=a)
                    for n, a in (("Wavelength", wave), ("SpecificIntensity", flux), ("Continuum", cont))]
            fits.BinTableHDU.from_columns(cols).writeto(folder / f"{name}.fits")
        else:
            text = "\n".join(f"{w:.4f} {f:.6e} {c:.6e}" for w, f, c in zip(wave, flux, cont))
            if fmt == "asc.bz2":
                (folder / f"{name}.asc.bz2").write_bytes(bz2.compress(text.encode()))
            else:
                (folder / f"{name}.asc").write_text(text)


def test_bosz_names_parse():
    # BOSZ rounds quarter-dex metallicities to two digits (-0.25 -> "m03"); the reader snaps back to 0.25 steps
    assert parse_bosz_name(bosz_name(4750, 2.5, -0.25) + ".asc.bz2") == {
        "T_eff": 4750.0, "log_g": 2.5, "M_H": -0.25, "C_M": 0.0, "alpha_M": 0.0}
    labels = parse_bosz_name("amm25cp00op00t3500g05v20modrt0b50000rs.asc.bz2")
    assert labels == {"T_eff": 3500.0, "log_g": 0.5, "M_H": -2.5, "C_M": 0.0, "alpha_M": 0.0}
    assert parse_bosz_name("README.txt") is None


@pytest.mark.parametrize("fmt", ["asc", "asc.bz2", "fits"])
def test_bosz_folder_reads_into_the_same_grid_layout(tmp_path, bosz_spectra, fmt):
    write_bosz_files(tmp_path, bosz_spectra, NODES, fmt)
    grid = read_bosz_folder(tmp_path, progress=False)
    assert grid.flux.shape == (2, 2, 2, 4096)
    assert np.allclose(grid.axes["M_H"], [-0.25, 0.0])
    wave, by_node = bosz_spectra
    direct = convolve_to_mr(wave, by_node[(4750.0, 2.5, 0.0)][0])
    assert np.allclose(grid.flux[1, 1, 1], direct, rtol=2e-3)


def test_bosz_folder_with_a_missing_node_names_it(tmp_path, bosz_spectra):
    write_bosz_files(tmp_path, bosz_spectra, NODES[:-1], "asc")
    with pytest.raises(ValueError, match=r"missing 1 grid node.*T_eff=4750, log_g=2.5"):
        read_bosz_folder(tmp_path, progress=False)


def test_bosz_folder_with_a_malformed_file_names_it(tmp_path, bosz_spectra):
    write_bosz_files(tmp_path, bosz_spectra, NODES, "asc")
    bad = tmp_path / f"{bosz_name(4500, 2.0, 0.0)}.asc"
    bad.write_text("7000.0 1.0\n7001.0 1.0\n")
    with pytest.raises(ValueError, match=f"{bad.name} is malformed"):
        read_bosz_folder(tmp_path, progress=False)


def test_empty_or_missing_bosz_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no solar-scaled BOSZ files"):
        read_bosz_folder(tmp_path, progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        read_bosz_folder(tmp_path / "nope", progress=False)


def test_grid_cache_key_follows_the_code_not_its_documentation(tmp_path):
    from specvit_core.files import code_without_docs

    base = 'def f(x):\n    """Doc."""\n    return x + 1  # comment\n'
    (tmp_path / "a.py").write_text(base)
    (tmp_path / "b.py").write_text(base.replace("Doc.", "Other words.").replace("# comment", "# changed"))
    (tmp_path / "c.py").write_text(base.replace("x + 1", "x + 2"))
    a, b, c = (code_without_docs(tmp_path / f"{n}.py") for n in "abc")
    assert a == b and a != c


def test_one_synthesis_makes_the_grid_of_every_instrument(tmp_path, monkeypatch, synthesizer):
    from specvit_core.instrument import GAIA_RVS_N_PIXELS, GAIA_RVS_R, gaia_rvs_wavelength, vacuum_to_air
    from specvit_core.spectra import embedded

    builds = []
    build = embedded.build_embedded_grids
    monkeypatch.setattr(embedded, "build_embedded_grids",
                        lambda *a, **k: builds.append(k["instruments"]) or build(*a, **k))
    axes = {a: np.unique([node[i] for node in NODES]) for i, a in enumerate(AXES)}
    mr = embedded.embedded_grid(axes=axes, cache_dir=tmp_path, progress=False)
    assert builds == [("mr", "gaia_rvs")]
    assert {p.name for p in tmp_path.iterdir()} == {embedded.cache_file(axes=axes, instrument=name).name
                                                     for name in ("mr", "gaia_rvs")}
    rvs = embedded.embedded_grid(axes=axes, cache_dir=tmp_path, progress=False, instrument="gaia_rvs")
    assert len(builds) == 1 and rvs.wave.size == GAIA_RVS_N_PIXELS  # read from the cache, not synthesized again
    node = NODES[-1]
    flux, continuum = synthesizer.spectrum(*node)
    index = tuple(int(np.flatnonzero(axes[a] == v)[0]) for a, v in zip(AXES, node))
    to_rvs = lsf_matrix(synthesizer.wave, vacuum_to_air(gaia_rvs_wavelength()), resolution=GAIA_RVS_R)
    np.testing.assert_allclose(rvs.flux[index], to_rvs @ flux, rtol=1e-6)
    np.testing.assert_allclose(rvs.continuum[index], to_rvs @ continuum, rtol=1e-6)
    np.testing.assert_allclose(mr.flux[index], lsf_matrix(synthesizer.wave) @ flux, rtol=1e-6)


def test_a_synthesis_window_that_misses_an_instrument_is_refused_for_it(tmp_path):
    from specvit_core.spectra import embedded
    from specvit_core.spectra.synthesis import SynthesisSettings

    rvs_only = SynthesisSettings(wave_min=8150.0, wave_max=8730.0)
    assert embedded.covered_instruments(SynthesisSettings()) == ("mr", "gaia_rvs")
    assert embedded.covered_instruments(rvs_only) == ("gaia_rvs",)
    with pytest.raises(ValueError, match="8150-8730 A does not cover the pixels of mr"):
        embedded.embedded_grid(rvs_only, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="Unknown instrument 'apogee'"):
        embedded.embedded_grid(cache_dir=tmp_path, progress=False, instrument="apogee")
    assert not list(tmp_path.iterdir())
