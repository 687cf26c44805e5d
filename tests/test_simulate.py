"""The dataset writer: schema, manifest, seeds, resume, overwrite protection and bad input."""
import json
import os

import h5py
import numpy as np
import pytest

from specvit_core.cli import main as cli_main
from specvit_core.files import sha256
from specvit_core.noise import noisy_spectrum
from specvit_core.simulate import PARAM_FIELDS, SimulationConfig, generate_dataset


@pytest.fixture(scope="module")
def grid(small_grid):
    return small_grid


def small_config(**kw):
    base = dict(n_train=60, n_val=20, n_test=30, n_shards=2, teff_range=(4000.0, 5000.0), mh_range=(-1.0, 0.5))
    return SimulationConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def dataset(grid, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "quick"
    manifest = generate_dataset(out, small_config(), grid, progress=False)
    return out, manifest


def test_files_follow_the_paper_schema(dataset):
    out, manifest = dataset
    assert sorted(manifest["files"]) == ["test.h5", "train_000.h5", "train_001.h5", "val.h5"]
    with h5py.File(out / "train_000.h5") as f:
        assert f["spectrumdataset/wave"].shape == (4096,)
        flux, error = f["dataset/arrays/flux/value"], f["dataset/arrays/error/value"]
        assert flux.shape == error.shape == (30, 4096) and flux.dtype == np.float32
        params = f["dataset/params"][()]
        assert set(PARAM_FIELDS) <= set(params.dtype.names)
        assert f.attrs["split"] == "train"
        # median normalization, and the stored SNR is the median of flux / error (scale-free)
        assert np.allclose(np.median(flux[()], axis=1), 1.0, atol=1e-4)
        assert np.allclose(params["snr"], np.median(flux[()] / error[()], axis=1), rtol=1e-4)
        assert np.all((params["mag"] >= 20.5) & (params["mag"] <= 22.5))
        assert np.all((params["T_eff"] >= 4000) & (params["T_eff"] <= 5000))


def test_manifest_records_checksums_counts_and_config(dataset):
    out, manifest = dataset
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["config"]["n_train"] == 60
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(out / name)
    assert sum(e["n"] for e in manifest["files"].values()) == 110
    assert not (out / ".manifest.partial.json").exists()


def test_splits_use_independent_seeds_and_are_reproducible(dataset, grid, tmp_path):
    out, manifest = dataset
    labels = {}
    for name in manifest["files"]:
        with h5py.File(out / name) as f:
            labels[name] = f["dataset/params"]["log_g"]
    assert not np.allclose(labels["val.h5"][:20], labels["test.h5"][:20])
    again = generate_dataset(tmp_path / "again", small_config(), grid, progress=False)
    assert {k: v["sha256"] for k, v in again["files"].items()} == {k: v["sha256"] for k, v in manifest["files"].items()}


def test_noise_drawn_from_the_stored_sigma_has_unit_variance(dataset):
    out, _ = dataset
    with h5py.File(out / "test.h5") as f:
        flux, error = f["dataset/arrays/flux/value"][()], f["dataset/arrays/error/value"][()]
    noisy = noisy_spectrum(flux, error, np.random.default_rng(1))
    far = flux > 6 * error  # pixels where a clip at 0 would take a 6-sigma draw
    pulls = ((noisy - flux) / error)[far]
    assert far.mean() > 0.5
    assert np.std(pulls) == pytest.approx(1.0, abs=0.01)
    assert np.mean(pulls) == pytest.approx(0.0, abs=0.01)


def test_an_interrupted_generation_resumes_shard_by_shard(dataset, grid, tmp_path):
    out, manifest = dataset
    work = tmp_path / "resume"
    work.mkdir()
    # the state a run leaves when killed while writing val.h5: train shards done, a stale temp file of a process
    # that no longer runs (a pid above the kernel's limit of 2**22)
    for name in ("train_000.h5", "train_001.h5"):
        (work / name).write_bytes((out / name).read_bytes())
    partial = {**manifest, "files": {k: v for k, v in manifest["files"].items() if k.startswith("train")}}
    (work / ".manifest.partial.json").write_text(json.dumps(partial))
    stale = work / f"val.h5.{2**22 + 1}.tmp"
    stale.write_bytes(b"half-written")
    stamp = os.stat(work / "train_000.h5").st_mtime_ns
    resumed = generate_dataset(work, small_config(), grid, progress=False)
    assert os.stat(work / "train_000.h5").st_mtime_ns == stamp  # kept, not rewritten
    assert {k: v["sha256"] for k, v in resumed["files"].items()} == {k: v["sha256"] for k, v in manifest["files"].items()}
    assert not stale.exists()


def test_an_existing_dataset_is_not_overwritten_without_the_flag(dataset, grid):
    out, manifest = dataset
    before = sha256(out / "test.h5")
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        generate_dataset(out, small_config(), grid, progress=False)
    assert sha256(out / "test.h5") == before


def test_overwrite_replaces_a_dataset(grid, tmp_path):
    generate_dataset(tmp_path, small_config(), grid, progress=False)
    manifest = generate_dataset(tmp_path, small_config(seed=7), grid, overwrite=True, progress=False)
    assert manifest["config"]["seed"] == 7


def test_a_partial_dataset_with_another_config_is_refused(dataset, grid, tmp_path):
    out, manifest = dataset
    (tmp_path / ".manifest.partial.json").write_text(json.dumps({**manifest, "config": {"seed": 1}}))
    with pytest.raises(FileExistsError, match="another configuration"):
        generate_dataset(tmp_path, small_config(), grid, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mag_range=(22.5, 20.5)), r"mag_range parameter, \(22.5, 20.5\), must be an increasing"),
    (dict(n_train=0), r"n_train parameter, 0, must be a positive integer"),
    (dict(n_test=-5), r"n_test parameter, -5, must be a positive integer"),
    (dict(n_shards=100), r"n_shards \(100\) must not exceed n_train"),
])
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_config(**kwargs)


def test_labels_outside_the_grid_are_refused_before_anything_is_written(grid, tmp_path):
    with pytest.raises(ValueError, match=r"teff_range parameter, \(3750, 5000\), lies outside the T_eff range"):
        generate_dataset(tmp_path / "x", small_config(teff_range=(3750.0, 5000.0)), grid, progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_reports_bad_input_without_writing(tmp_path, capsys):
    code = cli_main(["simulate", "--profile", "smoke", "--out", str(tmp_path / "d"), "--mag", "23", "20"])
    assert code == 2
    assert "mag_range parameter, (23.0, 20.0), must be an increasing" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_cli_refuses_to_overwrite(dataset, capsys):
    out, _ = dataset
    assert cli_main(["simulate", "--profile", "smoke", "--out", str(out)]) == 2
    assert "already holds a dataset" in capsys.readouterr().err


def test_snr_against_magnitude_reproduces_the_paper_within_ten_percent():
    # the full embedded grid (cached in data/cache after its first build), labels and Table 2 conditions as in the
    # datasets; the paper's median per-pixel SNR at 12 x 900 s (its Table 13)
    from specvit_core.paper import SNR_BY_MAG
    from specvit_core.simulate import snr_by_magnitude
    from specvit_core.spectra import load_grid

    table = snr_by_magnitude(load_grid("embedded", progress=False), n=1000, seed=3)
    assert list(table.mag_i) == list(SNR_BY_MAG)
    assert np.all(np.abs(table.ratio_to_paper - 1.0) < 0.10), table


def test_compressed_datasets_hold_the_same_spectra(dataset, grid, tmp_path):
    out, _ = dataset
    generate_dataset(tmp_path, small_config(compression="gzip"), grid, progress=False)
    with h5py.File(out / "val.h5") as plain, h5py.File(tmp_path / "val.h5") as packed:
        assert packed["dataset/arrays/flux/value"].compression == "gzip"
        assert np.array_equal(plain["dataset/arrays/flux/value"][()], packed["dataset/arrays/flux/value"][()])
    with pytest.raises(ValueError, match="compression parameter, 'zip', must be one of"):
        small_config(compression="zip")
