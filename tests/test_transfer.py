"""Chapter 7's transfer path: simulated survey files in the archives' formats, appendix-L datasets, fine-tuning
with the test split locked, predictions for survey files, and the population reweighting of Figure 11."""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from specvit_core import data, paper, runs, targets, transfer
from specvit_core.cli import main
from specvit_core.instrument import GAIA_RVS_N_PIXELS, gaia_rvs_wavelength, vacuum_to_air
from specvit_core.metrics import sigma_robust, stellar_type
from specvit_core.spectra import load_grid
from specvit_core.spectra.templates import TemplateGrid
from specvit_core.surveys import load_spectra, write_desi_coadd, write_gaia_rvs
from specvit_core.train import train
from specvit_core.verify import verify_dataset

N_DESI = 60


@pytest.fixture(scope="module")
def desi_files(tmp_path_factory):
    """A DESI-like coadd FITS of 60 simulated stars (observed frame, vacuum, spikes) and its labels CSV."""
    folder = tmp_path_factory.mktemp("desi_like")
    sim = targets.simulate_desi(load_grid("embedded", progress=False), N_DESI)
    write_desi_coadd(folder / "coadd.fits", sim["targetid"], sim["arms"], redshift=sim["redshift"])
    sim["labels"].to_csv(folder / "labels.csv", index=False)
    sim["truth"].to_csv(folder / "truth.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def desi_dataset(desi_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("desi_dataset") / "desi"
    transfer.survey_dataset("desi", [desi_files / "coadd.fits"], folder, labels_path=desi_files / "labels.csv",
                            labels_survey="table", val_fraction=0.2, test_fraction=0.2, progress=False)
    return folder


def test_the_population_follows_the_apogee_test_mix():
    population = targets.draw_population(np.random.default_rng(1), 20_000)
    fractions = population["type"].value_counts(normalize=True)
    for kind, share in paper.APOGEE_TEST_MIX.items():
        assert fractions[kind] == pytest.approx(share / sum(paper.APOGEE_TEST_MIX.values()), abs=0.01)
    assert (stellar_type(population["log_g"]) == population["type"]).all()


def test_stellar_types_follow_table_8_with_inclusive_subgiant_edges():
    assert list(stellar_type([2.49, 2.5, 4.0, 4.01])) == ["giant", "subgiant", "subgiant", "dwarf"]


def test_a_gaia_rvs_like_file_carries_normalized_noisy_spectra_with_spikes(tmp_path):
    wave = vacuum_to_air(gaia_rvs_wavelength())
    axes = {"T_eff": np.array([3750.0, 6000.0]), "log_g": np.array([1.0, 5.0]), "M_H": np.array([-2.5, 0.75])}
    line = 1 - 0.5 * np.exp(-0.5 * ((wave - 8542.09) / 0.5) ** 2)
    continuum = np.broadcast_to(np.linspace(2.0, 3.0, wave.size), (2, 2, 2, wave.size)).astype(np.float32)
    grid = TemplateGrid(axes, wave, (continuum * line).astype(np.float32), continuum.copy())
    sim = targets.simulate_gaia_rvs(grid, 40)
    write_gaia_rvs(tmp_path / "rvs.fits", sim["targetid"], sim["flux"], sim["flux_error"])
    spectra = load_spectra("gaia_rvs", [tmp_path / "rvs.fits"])
    assert [s.targetid for s in spectra] == list(sim["targetid"]) and len(set(sim["targetid"])) == 40
    flux = np.stack([s.flux for s in spectra])
    far = np.abs(gaia_rvs_wavelength() - 8544.44) > 5
    assert np.median(flux[:, far]) == pytest.approx(1.0, abs=0.01)  # continuum-normalized
    assert np.median(flux[:, np.argmin(np.abs(gaia_rvs_wavelength() - 8544.44))]) == pytest.approx(0.5, abs=0.05)
    step = np.diff(flux[:, far], axis=1)  # white noise: differences have sqrt(2) sigma (MAD: robust to spikes)
    noise = 1.4826 * np.median(np.abs(step - np.median(step, axis=1, keepdims=True)), axis=1) / np.sqrt(2)
    assert np.median(noise * sim["truth"]["snr"]) == pytest.approx(1.0, rel=0.1)
    assert (np.sum(flux > 2.0, axis=1) == sim["truth"]["n_spikes"]).all()  # every spike is >= 3x the continuum
    assert flux.shape == (40, GAIA_RVS_N_PIXELS)


def test_preprocessing_recovers_the_rest_frame_the_spikes_and_the_snr(desi_files, desi_dataset):
    manifest = data.read_manifest(desi_dataset)
    assert manifest["observed"] and manifest["counts"]["spectra"] == N_DESI
    assert verify_dataset(desi_dataset).ok
    checks = transfer.preprocessing_checks(desi_dataset, [desi_files / "coadd.fits"],
                                           pd.read_csv(desi_files / "truth.csv"))["summary"]
    assert abs(checks["offset [km/s]"]) < 5.0  # the Ca II line back at the templates' rest wavelength
    assert checks["... of them with a spike flagged [%]"] == 100.0
    assert checks["spectra without spikes but a pixel flagged [%]"] == 0.0


def test_labels_outside_the_ranges_or_missing_are_left_out_and_counted(desi_files):
    spectra = load_spectra("desi", [desi_files / "coadd.fits"])
    labels = pd.read_csv(desi_files / "labels.csv").iloc[5:]  # the first five stars have no labels
    kept, table, counts = transfer.match_labels(spectra, labels)
    inside = labels[(labels.log_g.between(1, 5)) & labels.T_eff.between(3750, 6000) & labels.M_H.between(-2.5, 0.75)]
    assert counts["without_labels"] == 5 and counts["kept"] == len(inside) == len(kept)
    assert list(table["targetid"]) == list(inside["targetid"])
    assert [s.vrad for s in kept] == pytest.approx(list(inside["vrad"]))  # the catalogue's radial velocity
    assert all(np.isnan(s.vrad) for s in spectra)  # the caller's spectra are left as read


def test_finetuning_reads_train_and_val_only_and_refuses_noise_injection(desi_dataset, tmp_path, monkeypatch):
    reads = []
    original = data.open_split_file

    def spy(path):  # every reader of a split file opens it here (in memory or streamed)
        reads.append((data.split_of_file(Path(path).name), data._test_locked.get()))
        return original(path)

    monkeypatch.setattr("specvit_core.data.open_split_file", spy)
    scratch = dataclasses.replace(transfer.finetune_config("bilstm", "smoke", epochs=1), batch_size=8)
    train(scratch, desi_dataset, tmp_path / "scratch")
    tuned = dataclasses.replace(transfer.finetune_config("bilstm", "smoke", tmp_path / "scratch" / runs.BEST, 1),
                                batch_size=8)
    assert tuned.lr == transfer.FINETUNE_LR and tuned.noise_alpha == 0
    reads.clear()
    metrics = train(tuned, desi_dataset, tmp_path / "tuned")
    first_test = reads.index(("test", False))  # test only after training, for evaluation
    assert set(reads[:first_test]) == {("train", True), ("val", True)} and set(reads[first_test:]) == {("test", False)}
    assert metrics["n"] == len(data.read_split(desi_dataset, "test"))
    with data.lock_test_split(), pytest.raises(RuntimeError, match="test split is locked"):
        data.read_split(desi_dataset, "test")
    with pytest.raises(ValueError, match="noise_alpha=0"):
        train(dataclasses.replace(scratch, noise_alpha=1.0), desi_dataset, tmp_path / "noisy")


def test_preprocess_and_predict_commands_write_a_dataset_and_one_row_per_spectrum(desi_files, tmp_path, capsys):
    out = tmp_path / "dataset"
    assert main(["preprocess", "--survey", "desi", "--spectra", str(desi_files / "coadd.fits"), "--labels",
                 str(desi_files / "labels.csv"), "--labels-survey", "table", "--out", str(out)]) == 0
    assert (out / "manifest.json").is_file() and "wrote" in capsys.readouterr().out
    run = tmp_path / "run"
    train(dataclasses.replace(transfer.finetune_config("bilstm", "smoke", epochs=1), batch_size=8), out, run)
    csv = tmp_path / "predictions.csv"
    folder = tmp_path / "downloads"  # a directory of archive files: two coadds of 30 stars each
    folder.mkdir()
    with fits.open(desi_files / "coadd.fits") as hdul:
        for part, rows in (("a", slice(0, 30)), ("b", slice(30, None))):
            split_hdul = fits.HDUList([hdu.copy() for hdu in hdul])
            for hdu in split_hdul[1:]:
                if not hdu.name.endswith("_WAVELENGTH"):
                    hdu.data = hdu.data[rows]
            split_hdul.writeto(folder / f"coadd-{part}.fits")
    assert main(["predict", "--run", str(run), "--survey", "desi", "--spectra", str(folder), "--out", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert len(table) == N_DESI and table["targetid"].is_unique and np.isfinite(table["log_g_pred"]).all()
    assert main(["predict", "--run", str(run), "--data", str(out), "--out", str(csv)]) == 0
    from_dataset = pd.read_csv(csv)
    assert len(from_dataset) == sum(f["n"] for f in data.read_manifest(out)["files"].values())
    same = from_dataset.merge(table, on="targetid", suffixes=("", "_files"))
    assert np.allclose(same["log_g_pred"], same["log_g_pred_files"], atol=1e-4)  # one preprocessing, two paths


def test_bad_survey_input_is_refused_by_the_commands(tmp_path, capsys):
    table = tmp_path / "spectra.csv"
    pd.DataFrame({"targetid": [1, 1], "wavelength": [8000.0, 8001.0], "flux": [1.0, 1.0]}).to_csv(table)
    assert main(["preprocess", "--survey", "table", "--spectra", str(table), "--out", str(tmp_path / "d")]) == 2
    assert "--medium" in capsys.readouterr().err
    assert main(["predict", "--run", str(tmp_path), "--out", str(tmp_path / "p.csv")]) == 2
    assert "either --data" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "p.csv").exists()


def test_unlabelled_spectra_go_to_the_test_file_without_label_columns(desi_files, tmp_path):
    spectra = load_spectra("desi", [desi_files / "coadd.fits"])
    manifest = transfer.build_survey_dataset(spectra, None, tmp_path / "d", "desi", progress=False)
    assert list(manifest["files"]) == ["test.h5"] and manifest["files"]["test.h5"]["n"] == N_DESI
    params = data.read_split(tmp_path / "d", "test").params
    assert "log_g" not in params and list(params["targetid"]) == [s.targetid for s in spectra]
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        transfer.build_survey_dataset(spectra, None, tmp_path / "d", "desi", progress=False)


def test_reweighting_to_a_population_moves_the_scatter_towards_its_dominant_type():
    rng = np.random.default_rng(0)
    log_g = np.concatenate([rng.uniform(1, 2.4, 301), rng.uniform(2.6, 3.9, 301), rng.uniform(4.1, 5, 301)])
    scatter = np.repeat([0.5, 0.3, 0.05], 301)
    pred = log_g + scatter * rng.standard_normal(log_g.size)
    balanced = transfer.reweighted_sigma_robust(log_g, pred, {"giant": 1 / 3, "subgiant": 1 / 3, "dwarf": 1 / 3})
    assert balanced == pytest.approx(sigma_robust(log_g, pred), rel=0.02)  # equal weights: the plain statistic
    dwarfs = transfer.reweighted_sigma_robust(log_g, pred, paper.APOGEE_TEST_MIX)
    giants = transfer.reweighted_sigma_robust(log_g, pred, {"giant": 0.8, "subgiant": 0.1, "dwarf": 0.1})
    assert dwarfs < balanced < giants


def test_apogee_spectra_go_onto_the_h_band_grid_of_appendix_f(tmp_path):
    n = 8575  # apStar pixels: log10(lambda) = 4.179 + 6e-6 i, vacuum, rest frame
    wave = 10 ** (4.179 + 6e-6 * np.arange(n))
    flux = 1.0 - 0.4 * np.exp(-0.5 * ((wave - 15770.15) / 0.4) ** 2)  # a line at 15770.15 A in vacuum
    paths = []
    ids = ["2M00000001+0000001", "2M00000002+0000002", "2M00000003+0000003"]
    for i, objid in enumerate(ids):
        primary = fits.PrimaryHDU()
        primary.header.update(OBJID=objid, CRVAL1=4.179, CDELT1=6e-6, CRPIX1=1, CTYPE1="LOG-LINEAR")
        rows = np.vstack([flux * (1 + i), flux, flux])  # row 0: the combined spectrum
        hdus = [primary] + [fits.ImageHDU(data.astype(np.float32)) for data in (rows, np.full_like(rows, 0.01))]
        hdus.append(fits.ImageHDU(np.zeros(rows.shape, np.int32)))
        paths.append(tmp_path / f"apStar-dr17-{objid}.fits")
        fits.HDUList(hdus).writeto(paths[-1])
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"targetid": ids, "T_eff": [4800.0, 5200.0, 5000.0], "log_g": [2.4, 4.4, 3.0],
                  "M_H": [0.0, -0.3, -1.0]}).to_csv(labels, index=False)
    manifest = transfer.build_survey_dataset(load_spectra("apogee", paths), pd.read_csv(labels), tmp_path / "d",
                                             "apogee", val_fraction=1 / 3, test_fraction=1 / 3, progress=False)
    assert [f["n"] for f in manifest["files"].values()] == [1, 1, 1]
    test = data.read_split(tmp_path / "d", "test")
    assert test.wave[0] > 15000 and np.isfinite(test.error).mean() > 0.99  # the H band, covered
    line = test.wave[np.argmin(test.flux[0])]
    assert line == pytest.approx(float(vacuum_to_air(15770.15)), abs=0.3)  # at its air wavelength
    assert test.params["targetid"].iloc[0].startswith("2M")


def test_a_simulated_target_is_reused_until_its_template_grid_changes(tmp_path, monkeypatch):
    record = targets.ensure_target("gaia_rvs", "smoke", out_dir=tmp_path, progress=False)
    spectra = load_spectra("gaia_rvs", record["spectra"])
    assert len(spectra) == targets.POOL_SIZES["smoke"]["gaia_rvs"]
    assert spectra[0].flux.size == GAIA_RVS_N_PIXELS
    assert record["config"]["grid"] == targets.cache_file(instrument="gaia_rvs").stem

    def simulate(*args, **kwargs):
        raise AssertionError("simulated again")

    monkeypatch.setattr(targets, "simulate_gaia_rvs", simulate)
    assert targets.ensure_target("gaia_rvs", "smoke", out_dir=tmp_path, progress=False) == record  # reused
    # a change to the synthesis code names another cache file
    monkeypatch.setattr(targets, "cache_file", lambda **kwargs: tmp_path / "embedded_0123456789ab.h5")
    with pytest.raises(AssertionError, match="simulated again"):
        targets.ensure_target("gaia_rvs", "smoke", out_dir=tmp_path, progress=False)
