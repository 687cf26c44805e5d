"""The survey loaders on tiny files built here the way the archives write them (not through the package writers),
and one round trip per package writer."""
import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.io.votable.tree import Field, Param, Resource, TableElement, VOTableFile
from astropy.table import Table

from specvit_core.surveys import (GAIA_RVS_N_PIXELS, load_apogee, load_desi, load_gaia_rvs, load_spectra,
                                  load_table, read_labels, write_desi_coadd, write_gaia_rvs)

CRVAL1, CDELT1 = 4.179, 6e-6  # APOGEE DR17 apStar grid: log10(15100.802 A), 6e-6 dex per pixel


# ------------------------------------------------------------------------------------------------------ APOGEE

def _apogee_header(hdr, objid=None):
    hdr["CRVAL1"] = (CRVAL1, "Start log10(wavelength) in subsequent HDUs")
    hdr["CDELT1"] = (CDELT1, "Dispersion in log10(wave) in subsequent HDUs")
    hdr["CRPIX1"] = 1
    hdr["CTYPE1"] = "LOG-LINEAR"
    if objid:
        hdr["OBJID"] = objid
    return hdr


def _write_apstar(path, n=20, n_rows=3, with_mask=True, objid="2M00000068+5710233", wcs_in_ext=True):
    """An apStar file as the DR17 pipeline writes it: HDU0 header (OBJID, VHELIO, wavelength keywords), FLUX,
    ERROR, MASK images of (n_rows, n) with the combined spectrum in row 0."""
    rng = np.random.default_rng(1)
    flux = rng.uniform(100, 200, (n_rows, n)).astype(np.float32)
    error = np.full((n_rows, n), 2.0, dtype=np.float32)
    mask = np.zeros((n_rows, n), dtype=np.int32)
    mask[0, 3] = 2 ** 0  # BADPIX -> bad
    mask[0, 5] = 2 ** 12  # SIG_SKYLINE -> warning only, kept
    mask[0, 7] = 2 ** 14  # NOT_ENOUGH_PSF -> bad
    mask[1, 4] = 2 ** 0  # a bad pixel of another row: ignored
    error[0, 9] = 0.0  # no error -> no data
    flux[0, 11] = np.nan
    primary = fits.PrimaryHDU()
    _apogee_header(primary.header, objid)
    primary.header["VHELIO"] = (-12.5, "S/N weighted mean barycentric RV")
    ext = (lambda name: _apogee_header(fits.Header({"EXTNAME": name}))) if wcs_in_ext else \
        (lambda name: fits.Header({"EXTNAME": name}))
    hdus = [primary, fits.ImageHDU(flux, header=ext("FLUX")), fits.ImageHDU(error, header=ext("ERROR"))]
    if with_mask:
        hdus.append(fits.ImageHDU(mask, header=ext("MASK")))
    fits.HDUList(hdus).writeto(path)
    return flux, error


def test_apstar_wavelengths_come_from_crval1_cdelt1_and_bad_bits_become_no_data(tmp_path):
    path = tmp_path / "apStar-dr17-2M00000068+5710233.fits"
    flux, error = _write_apstar(path)
    (spec,) = load_apogee(path)
    assert spec.targetid == "2M00000068+5710233"
    np.testing.assert_allclose(spec.wave, 10 ** (CRVAL1 + CDELT1 * np.arange(20)), rtol=1e-12)
    assert spec.wave[0] == pytest.approx(15100.802, abs=1e-3)  # the DR17 start wavelength
    assert (spec.medium, spec.rest_frame, spec.vrad) == ("vacuum", True, -12.5)
    assert spec.error is not None
    for pixel in (3, 7, 9, 11):  # BADPIX, NOT_ENOUGH_PSF, error 0, NaN flux
        assert np.isnan(spec.flux[pixel]) and np.isinf(spec.error[pixel])
    good = [i for i in range(20) if i not in (3, 7, 9, 11)]
    np.testing.assert_allclose(spec.flux[good], flux[0, good])  # row 0, the combined spectrum
    np.testing.assert_allclose(spec.error[good], error[0, good])
    assert spec.flux[5] == pytest.approx(flux[0, 5])  # SIG_SKYLINE only warns
    assert str(path) in spec.source


def test_apogee_reads_1d_aspcapstar_and_takes_keywords_from_the_primary_header(tmp_path):
    norm = np.linspace(0.9, 1.1, 15).astype(np.float32)
    primary = _apogee_header(fits.PrimaryHDU().header)
    path = tmp_path / "aspcapStar-dr17-2M05372530-0633125.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(norm), fits.ImageHDU(np.full(15, 0.01))]) \
        .writeto(path)
    (spec,) = load_apogee([path])
    assert spec.targetid == "2M05372530-0633125"  # parsed from the file name: no OBJID
    np.testing.assert_allclose(spec.wave, 10 ** (CRVAL1 + CDELT1 * np.arange(15)), rtol=1e-12)
    np.testing.assert_allclose(spec.flux, norm)
    assert np.isnan(spec.vrad)


def test_apstar_without_the_bitmask_hdu_names_file_and_hdu(tmp_path):
    path = tmp_path / "apStar-dr17-2M00000001+0000001.fits"
    _write_apstar(path, with_mask=False)
    with pytest.raises(ValueError, match=r"apStar-dr17-2M00000001\+0000001\.fits: no HDU 3"):
        load_apogee(path)


def test_apstar_without_wavelength_keywords_is_refused(tmp_path):
    path = tmp_path / "apStar-dr17-2M1.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones(5)), fits.ImageHDU(np.ones(5)),
                  fits.ImageHDU(np.zeros(5, dtype=np.int32))]).writeto(path)
    with pytest.raises(ValueError, match="CRVAL1"):
        load_apogee(path)


# -------------------------------------------------------------------------------------------------------- DESI

B_WAVE = 4000.0 + 0.8 * np.arange(6)  # 4000.0 ... 4004.0
R_WAVE = 4003.2 + 0.8 * np.arange(6)  # overlaps B in 4003.2 and 4004.0


def _write_coadd(path, arms, targetid=(39627652591521181, 39627652591521182), redshifts=None, skip=()):
    """A DESI coadd as desispec writes it: empty PRIMARY, FIBERMAP, per arm WAVELENGTH/FLUX/IVAR/MASK images with
    BUNIT, the mask int32 with BZERO 2**31 (unsigned), optionally REDSHIFTS."""
    hdus = [fits.PrimaryHDU(), fits.BinTableHDU(Table({"TARGETID": np.array(targetid, dtype=np.int64),
                                                       "TARGET_RA": np.zeros(len(targetid))}), name="FIBERMAP")]
    units = {"WAVELENGTH": "Angstrom", "FLUX": "10**-17 erg/(s cm2 Angstrom)",
             "IVAR": "10**+34 (s2 cm4 Angstrom2) / erg2"}
    for arm, (wave, flux, ivar, mask) in arms.items():
        for part, data in (("WAVELENGTH", np.asarray(wave, np.float64)), ("FLUX", np.asarray(flux, np.float32)),
                           ("IVAR", np.asarray(ivar, np.float32)), ("MASK", np.asarray(mask, np.uint32))):
            if f"{arm}_{part}" in skip:
                continue
            hdu = fits.ImageHDU(data, name=f"{arm}_{part}")
            if part in units:
                hdu.header["BUNIT"] = units[part]
            hdus.append(hdu)
    if redshifts is not None:
        ids, z = zip(*redshifts.items())
        hdus.append(fits.BinTableHDU(Table({"TARGETID": np.array(ids, np.int64), "Z": np.array(z),
                                           "ZWARN": np.zeros(len(ids), np.int64)}), name="REDSHIFTS"))
    fits.HDUList(hdus).writeto(path)


def _arms():
    b_flux = np.array([[1.0, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]])
    r_flux = np.array([[7.0, 8, 9, 10, 11, 12], [70, 80, 90, 100, 110, 120]])
    b_ivar = np.full((2, 6), 4.0)
    r_ivar = np.full((2, 6), 1.0)
    b_ivar[0, 1] = 0.0  # no data in B only
    b_mask, r_mask = np.zeros((2, 6)), np.zeros((2, 6))
    b_mask[1, 5] = 1  # masked B pixel in the overlap at 4004.0: R alone
    return {"B": (B_WAVE, b_flux, b_ivar, b_mask), "R": (R_WAVE, r_flux, r_ivar, r_mask)}


def test_desi_coadd_arms_merge_by_inverse_variance(tmp_path):
    path = tmp_path / "coadd-main-bright-10032.fits"
    ids = (39627652591521181, 39627652591521182)
    _write_coadd(path, _arms(), ids, redshifts={ids[1]: -1.5e-4, ids[0]: 2.0e-4})
    with fits.open(path) as hdul:
        assert hdul["B_MASK"].header["BZERO"] == 2 ** 31  # unsigned mask as in the archive
    first, second = load_desi(path)
    assert (first.targetid, second.targetid) == ids
    np.testing.assert_allclose(first.wave, np.r_[B_WAVE, R_WAVE[2:]])  # 10 pixels, strictly increasing
    assert (first.medium, first.rest_frame) == ("vacuum", False)
    assert (first.redshift, second.redshift) == (pytest.approx(2.0e-4), pytest.approx(-1.5e-4))
    # 4003.2 A: B pixel 4 (flux 5, ivar 4) and R pixel 0 (flux 7, ivar 1)
    assert first.flux[4] == pytest.approx((4 * 5 + 1 * 7) / 5)
    assert first.error[4] == pytest.approx(1 / np.sqrt(5))
    assert first.flux[5] == pytest.approx((4 * 6 + 1 * 8) / 5)
    assert np.isnan(first.flux[1]) and np.isinf(first.error[1])  # ivar 0
    assert second.flux[5] == pytest.approx(80.0) and second.error[5] == pytest.approx(1.0)  # masked B pixel
    assert first.flux[0] == 1.0 and first.error[0] == pytest.approx(0.5)
    assert first.flux[-1] == 12.0


def test_desi_coadd_without_an_ivar_hdu_names_file_and_hdu(tmp_path):
    path = tmp_path / "coadd-broken.fits"
    _write_coadd(path, _arms(), skip=("R_IVAR",))
    with pytest.raises(ValueError, match=r"coadd-broken\.fits: no HDU R_IVAR"):
        load_desi(path)


def test_desi_coadd_without_fibermap_is_refused(tmp_path):
    path = tmp_path / "coadd-nofibermap.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(B_WAVE, name="B_WAVELENGTH")]).writeto(path)
    with pytest.raises(ValueError, match="coadd-nofibermap.fits: no HDU FIBERMAP"):
        load_desi(path)


def _write_l1(path, wave_where="root", n=3, n_wave=8):
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as h5:
        group = h5.create_group("test")
        group["spectra"] = rng.uniform(0.5, 1.5, (n, n_wave)).astype(np.float32)
        group["targetid"] = np.arange(100, 100 + n, dtype=np.int64)
        group["teff"] = rng.uniform(4000, 6000, n)
        group["logg"] = rng.uniform(1, 5, n)
        group["feh"] = rng.uniform(-2, 0.5, n)
        wave = 7100.0 + 0.5 * np.arange(n_wave)
        if wave_where == "root":
            h5["wavelength"] = wave
        elif wave_where == "group":
            group["wavelength"] = wave
        return wave, group["spectra"][()]


def test_desi_l1_hdf5_reads_rest_frame_spectra_without_errors(tmp_path):
    path = tmp_path / "desi_l1.h5"
    wave, flux = _write_l1(path, "group")
    spectra = load_desi(path)
    assert [s.targetid for s in spectra] == [100, 101, 102]
    assert all(s.error is None and s.rest_frame and s.medium == "vacuum" for s in spectra)
    np.testing.assert_allclose(spectra[1].wave, wave)
    np.testing.assert_allclose(spectra[2].flux, flux[2])


def test_desi_l1_hdf5_without_wavelengths_names_the_file_and_takes_them_from_the_argument(tmp_path):
    path = tmp_path / "no_wave.h5"
    wave, flux = _write_l1(path, None)
    with pytest.raises(ValueError, match="no_wave.h5: the spectra of group 'test' have no wavelengths"):
        load_desi(path)
    text = tmp_path / "wave.txt"
    text.write_text("\n".join(f"{w:.3f}" for w in wave) + "\n")
    np.testing.assert_allclose(load_desi(path, wavelength=text)[0].wave, wave)
    np.testing.assert_allclose(load_desi(path, wavelength=wave)[0].wave, wave)
    with pytest.raises(ValueError, match="8 pixels"):
        load_desi(path, wavelength=wave[:-1])


# ---------------------------------------------------------------------------------------------------- Gaia RVS

def _rvs(seed=3):
    rng = np.random.default_rng(seed)
    flux = rng.uniform(0.6, 1.05, GAIA_RVS_N_PIXELS)
    flux[:5] = np.nan  # truncated edge: no data
    return 846.0 + 0.01 * np.arange(GAIA_RVS_N_PIXELS), flux, np.full(GAIA_RVS_N_PIXELS, 0.02)


def test_gaia_individual_csv_converts_nm_to_angstrom_and_takes_the_id_from_the_file_name(tmp_path):
    wave_nm, flux, error = _rvs()
    path = tmp_path / "RVS-Gaia DR3 5937083312263887616.csv"
    pd.DataFrame({"wavelength": wave_nm, "flux": flux, "flux_error": error}).to_csv(path, index=False)
    (spec,) = load_gaia_rvs(path)
    assert spec.targetid == 5937083312263887616
    np.testing.assert_allclose(spec.wave, wave_nm * 10)
    assert spec.wave[0] == pytest.approx(8460.0) and spec.wave[-1] == pytest.approx(8700.0)
    assert (spec.medium, spec.rest_frame) == ("vacuum", True)
    assert np.all(np.isnan(spec.flux[:5])) and np.all(np.isinf(spec.error[:5]))
    np.testing.assert_allclose(spec.flux[5:], flux[5:])


def test_gaia_long_ecsv_with_source_id_and_units(tmp_path):
    wave_nm, flux, error = _rvs()
    table = Table({"source_id": np.repeat(np.array([4295806720, 38655544960], np.int64), GAIA_RVS_N_PIXELS),
                   "wavelength": np.r_[wave_nm, wave_nm], "flux": np.r_[flux, flux * 0.5],
                   "flux_error": np.r_[error, error]})
    table["wavelength"].unit = "nm"
    path = tmp_path / "RVS_COMBINED.ecsv"
    table.write(path, format="ascii.ecsv")
    first, second = load_gaia_rvs(path)
    assert (first.targetid, second.targetid) == (4295806720, 38655544960)
    np.testing.assert_allclose(second.wave, wave_nm * 10)
    np.testing.assert_allclose(second.flux[5:], 0.5 * flux[5:])


def test_gaia_raw_csv_and_fits_with_array_columns_use_the_fixed_grid(tmp_path):
    _, flux, error = _rvs()
    cells = "[" + ",".join("null" if np.isnan(v) else f"{v:.6f}" for v in flux) + "]"
    errors = "[" + ",".join(f"{v:.6f}" for v in error) + "]"
    csv = tmp_path / "RvsMeanSpectrum_raw.csv"
    pd.DataFrame({"source_id": [5937083312263887616], "solution_id": [1], "flux": [cells],
                  "flux_error": [errors]}).to_csv(csv, index=False)
    fitsfile = tmp_path / "rvs_raw.fits"
    columns = [fits.Column("source_id", "K", array=np.array([42, 43], np.int64)),
               fits.Column("flux", f"{GAIA_RVS_N_PIXELS}E", array=np.vstack([flux, flux]).astype(np.float32)),
               fits.Column("flux_error", f"{GAIA_RVS_N_PIXELS}E", array=np.vstack([error, error]))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(fitsfile)
    from_csv, *from_fits = load_gaia_rvs([csv, fitsfile])
    assert [s.targetid for s in (from_csv, *from_fits)] == [5937083312263887616, 42, 43]
    for spec in (from_csv, *from_fits):
        np.testing.assert_allclose(spec.wave, 8460.0 + 0.1 * np.arange(GAIA_RVS_N_PIXELS))
        np.testing.assert_allclose(spec.flux[5:], flux[5:], rtol=1e-5)
        assert np.isnan(spec.flux[0]) and np.isinf(spec.error[0])


def test_gaia_votable_takes_source_id_from_a_param(tmp_path):
    wave_nm, flux, error = _rvs()
    vot = VOTableFile()
    resource = Resource()
    vot.resources.append(resource)
    table = TableElement(vot)
    resource.tables.append(table)
    table.params.append(Param(vot, name="source_id", datatype="long", value="5937083312263887616"))
    table.fields.extend([Field(vot, name="wavelength", datatype="double", unit="nm"),
                         Field(vot, name="flux", datatype="float"), Field(vot, name="flux_error", datatype="float")])
    table.create_arrays(GAIA_RVS_N_PIXELS)
    for row in range(GAIA_RVS_N_PIXELS):
        table.array[row] = (wave_nm[row], flux[row], error[row])
    path = tmp_path / "RVS-Gaia DR3 123.xml"
    vot.to_xml(str(path))
    (spec,) = load_gaia_rvs(path)
    assert spec.targetid == 5937083312263887616  # the PARAM, not the number in the file name
    np.testing.assert_allclose(spec.wave, wave_nm * 10)


def test_gaia_array_of_the_wrong_length_is_refused(tmp_path):
    path = tmp_path / "short.ecsv"
    Table({"source_id": [1], "flux": np.ones((1, 100)), "flux_error": np.ones((1, 100))}).write(path)
    with pytest.raises(ValueError, match="short.ecsv.*100 values"):
        load_gaia_rvs(path)


# ------------------------------------------------------------------------------------------------ plain tables

def test_load_table_groups_sorts_and_keeps_the_stated_medium_and_frame(tmp_path):
    path = tmp_path / "spectra.csv"
    pd.DataFrame({"TargetID": ["a", "b", "a", "b", "a"], "wavelength": [8002.0, 7000.0, 8000.0, 7001.0, 8001.0],
                  "flux": [3.0, 10.0, 1.0, 11.0, 2.0], "error": [0.3, 1.0, 0.1, 1.1, 0.2],
                  "vrad": [5.0, -3.0, 5.0, -3.0, 5.0]}).to_csv(path, index=False)
    a, b = load_table(path, medium="air", rest_frame=False)
    assert (a.targetid, b.targetid) == ("a", "b")
    np.testing.assert_allclose(a.wave, [8000.0, 8001.0, 8002.0])
    np.testing.assert_allclose(a.flux, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(a.error, [0.1, 0.2, 0.3])
    assert (a.medium, a.rest_frame, a.vrad, b.vrad) == ("air", False, 5.0, -3.0)


def test_load_table_requires_its_columns_and_a_stated_medium(tmp_path):
    path = tmp_path / "no_flux.ecsv"
    Table({"targetid": [1, 1], "wavelength": [1.0, 2.0]}).write(path)
    with pytest.raises(ValueError, match=r"no_flux.ecsv: no column 'flux'; the file has columns targetid, wave"):
        load_table(path, medium="vacuum", rest_frame=True)
    with pytest.raises(ValueError, match="medium"):
        load_table(path, medium="vac", rest_frame=True)
    with pytest.raises(ValueError, match="rest_frame"):
        load_table(path, medium="air", rest_frame="yes")


# ------------------------------------------------------------------------------------------------ dispatching

def test_load_spectra_dispatches_and_refuses_unknown_surveys_missing_files_and_twice_a_target(tmp_path):
    first, second = tmp_path / "one.csv", tmp_path / "two.csv"
    for path in (first, second):
        pd.DataFrame({"targetid": [7, 7], "wavelength": [1.0, 2.0], "flux": [1.0, 1.0]}).to_csv(path, index=False)
    (spec,) = load_spectra("table", first, medium="vacuum", rest_frame=True)
    assert spec.targetid == 7
    with pytest.raises(ValueError, match="Unknown survey 'sdss'"):
        load_spectra("sdss", first)
    with pytest.raises(FileNotFoundError, match="nowhere.fits"):
        load_spectra("apogee", [first, tmp_path / "nowhere.fits"])
    with pytest.raises(ValueError, match=r"targetid 7 appears twice: in .*one\.csv.* and in .*two\.csv"):
        load_spectra("table", [first, second], medium="vacuum", rest_frame=True)


# ------------------------------------------------------------------------------------------------------ labels

def _allstar(path, m_h=True):
    columns = {"APOGEE_ID": ["2M00000002+7417074", "2M00000019-1924498", "2M00000068+5710233"],
               "TEFF": np.array([4800.0, -9999.0, 5500.0], np.float32),
               "LOGG": np.array([2.5, 4.4, 4.1], np.float32),
               "FE_H": np.array([-0.3, 0.0, 0.1], np.float32),
               "VHELIO_AVG": np.array([-10.0, 3.0, -9999.0], np.float32)}
    if m_h:
        columns["M_H"] = np.array([-0.25, 0.05, 0.12], np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table(columns))]).writeto(path)


def test_apogee_allstar_labels_map_columns_and_treat_minus_9999_as_missing(tmp_path):
    path = tmp_path / "allStar-dr17-synspec_rev1.fits"
    _allstar(path)
    with pytest.raises(ValueError, match=r"allStar-dr17-synspec_rev1\.fits\[HDU 1\]: row 1 .* no T_eff: column TEFF"):
        read_labels(path, "apogee")
    with pytest.warns(UserWarning, match="dropped 1 of 3 rows"):
        labels = read_labels(path, "apogee", missing="drop")
    assert list(labels.columns) == ["targetid", "T_eff", "log_g", "M_H", "vrad"]
    assert labels["targetid"].tolist() == ["2M00000002+7417074", "2M00000068+5710233"]
    np.testing.assert_allclose(labels["M_H"], [-0.25, 0.12], rtol=1e-6)  # M_H, not FE_H
    assert labels["vrad"].iloc[0] == -10.0 and np.isnan(labels["vrad"].iloc[1])  # -9999 -> unknown


def test_apogee_labels_fall_back_to_fe_h(tmp_path):
    path = tmp_path / "allStar-noMH.fits"
    _allstar(path, m_h=False)
    with pytest.warns(UserWarning, match="dropped 1"):
        labels = read_labels(path, "apogee", missing="drop")
    np.testing.assert_allclose(labels["M_H"], [-0.3, 0.1], rtol=1e-6)


def test_gaia_labels_with_nan_name_file_and_row(tmp_path):
    path = tmp_path / "gaia_source.csv"
    pd.DataFrame({"source_id": [11, 12, 13], "teff_gspphot": [5000.0, 5100.0, 5200.0],
                  "logg_gspphot": [4.0, np.nan, 3.5], "mh_gspphot": [0.0, 0.1, -0.2],
                  "radial_velocity": [1.0, 2.0, np.nan]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"gaia_source\.csv: row 1 \(targetid 12\) has no log_g: column "
                                         r"logg_gspphot"):
        read_labels(path, "gaia_rvs")
    with pytest.warns(UserWarning, match=r"gaia_source\.csv: dropped 1 of 3 rows"):
        labels = read_labels(path, "gaia_rvs", missing="drop")
    assert labels["targetid"].tolist() == [11, 13]
    assert labels["T_eff"].tolist() == [5000.0, 5200.0]


def test_labels_with_a_targetid_twice_name_file_and_both_rows(tmp_path):
    path = tmp_path / "labels.ecsv"
    Table({"targetid": [1, 2, 3, 2], "T_eff": [5000.0] * 4, "log_g": [4.0] * 4, "M_H": [0.0] * 4}).write(path)
    with pytest.raises(ValueError, match=r"labels\.ecsv: targetid 2 appears twice, in rows 1 and 3"):
        read_labels(path, "table")


def test_labels_missing_a_column_name_it_and_list_the_columns(tmp_path):
    path = tmp_path / "mws.fits"
    Table({"TARGETID": [1], "TEFF": [5000.0], "LOGG": [4.0], "VRAD": [1.0]}).write(path)
    with pytest.raises(ValueError, match=r"mws\.fits\[HDU 1\]: no column FEH \(for M_H\); the file has columns "
                                         r"TARGETID, TEFF, LOGG, VRAD"):
        read_labels(path, "desi")


def test_desi_labels_from_the_mws_vac_and_the_l1_hdf5(tmp_path):
    vac = tmp_path / "mwsall-pix-iron.fits"
    rvtab = Table({"TARGETID": np.array([5, 6], np.int64), "VRAD": [-20.0, 15.0], "LOGG": [4.5, 2.2],
                   "TEFF": [5800.0, 4700.0], "FEH": [-0.1, -1.2]})
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(rvtab, name="RVTAB")]).writeto(vac)
    labels = read_labels(vac, "desi")
    assert labels["targetid"].tolist() == [5, 6]
    assert labels["vrad"].tolist() == [-20.0, 15.0] and labels["M_H"].tolist() == [-0.1, -1.2]
    h5 = tmp_path / "l1.h5"
    _write_l1(h5)
    labels = read_labels(h5, "desi")
    assert labels["targetid"].tolist() == [100, 101, 102]
    with h5py.File(h5) as f:
        np.testing.assert_allclose(labels["log_g"], f["test/logg"][()])


# ----------------------------------------------------------------------------------------------- round trips

def test_write_desi_coadd_round_trips_through_load_desi(tmp_path):
    rng = np.random.default_rng(5)
    ids = [101, 102, 103]
    z_wave = 5000.0 + 0.8 * np.arange(7)
    arms = {arm: (wave, rng.uniform(1, 2, (3, wave.size)).astype(np.float32),
                  rng.uniform(1, 4, (3, wave.size)).astype(np.float32), np.zeros((3, wave.size), int))
            for arm, wave in (("B", B_WAVE), ("Z", z_wave))}
    arms["Z"][3][2, 4] = 8  # a masked pixel
    path = tmp_path / "coadd-sim.fits"
    write_desi_coadd(path, ids, arms, redshift=[0.0, 1e-4, -2e-4])
    assert [p.name for p in tmp_path.iterdir()] == ["coadd-sim.fits"]  # no temporary file left
    with fits.open(path) as hdul:
        assert hdul["B_FLUX"].header["BUNIT"] == "10**-17 erg/(s cm2 Angstrom)"
        assert hdul["Z_MASK"].header["BZERO"] == 2 ** 31
    spectra = load_desi(path)
    assert [s.targetid for s in spectra] == ids
    assert [s.redshift for s in spectra] == [0.0, 1e-4, -2e-4]
    for i, spec in enumerate(spectra):
        np.testing.assert_allclose(spec.wave, np.r_[B_WAVE, z_wave])
        flux = np.r_[arms["B"][1][i], arms["Z"][1][i]]
        error = 1 / np.sqrt(np.r_[arms["B"][2][i], arms["Z"][2][i]])
        if i == 2:
            flux[6 + 4], error[6 + 4] = np.nan, np.inf
        np.testing.assert_allclose(spec.flux, flux, rtol=1e-6)
        np.testing.assert_allclose(spec.error, error, rtol=1e-6)


@pytest.mark.parametrize("name", ["rvs_sim.ecsv", "rvs_sim.fits"])
def test_write_gaia_rvs_round_trips_through_load_gaia_rvs(tmp_path, name):
    _, flux, error = _rvs()
    fluxes = np.vstack([flux, flux[::-1]])
    path = tmp_path / name
    write_gaia_rvs(path, [7, 8], fluxes, np.vstack([error, error]))
    assert [p.name for p in tmp_path.iterdir()] == [name]
    spectra = load_gaia_rvs(path)
    assert [s.targetid for s in spectra] == [7, 8]
    for spec, expected in zip(spectra, fluxes):
        np.testing.assert_allclose(spec.wave, 8460.0 + 0.1 * np.arange(GAIA_RVS_N_PIXELS))
        np.testing.assert_allclose(spec.flux, expected.astype(np.float32), rtol=1e-7)
        np.testing.assert_array_equal(np.isinf(spec.error), np.isnan(expected))
    with pytest.raises(ValueError, match="2401"):
        write_gaia_rvs(path, [1], np.ones((1, 10)), np.ones((1, 10)))
