"""Reader of the HDF5 splits (in memory and streamed), on-the-fly noise (paper eq. 3), label normalization and the
test-split guardrail."""
import dataclasses
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
from conftest import toy_spectra, write_split
from torch.utils.data import DataLoader, default_collate, get_worker_info

from specvit_core.data import (
    FLUX_KEY,
    PARAMS_KEY,
    LabelScaler,
    NoisySpectra,
    ShardedSpectra,
    check_values,
    fixed_noisy,
    lock_test_split,
    noisy_rows,
    read_labels,
    read_split,
    split_dataset,
)


def test_read_split_concatenates_train_shards_in_order(tiny_dataset):
    split = read_split(tiny_dataset, "train")
    shards = []
    for name in ("train_000.h5", "train_001.h5"):
        with h5py.File(tiny_dataset / name) as f:
            shards.append((f[FLUX_KEY][:], f[PARAMS_KEY]["log_g"]))
    np.testing.assert_array_equal(split.flux, np.concatenate([s[0] for s in shards]))
    np.testing.assert_array_equal(split.labels("log_g"), np.concatenate([s[1] for s in shards]))
    assert split.flux.dtype == split.error.dtype == np.float32 and split.wave.shape == (4096,)
    assert {"T_eff", "log_g", "M_H", "mag", "snr", "seeing", "moon_phase", "norm"} <= set(split.params.columns)


@pytest.mark.parametrize("max_rows", [100, 150])  # inside the first shard, and across both
def test_max_rows_is_a_prefix(tiny_dataset, max_rows):
    full, part = read_split(tiny_dataset, "train"), read_split(tiny_dataset, "train", max_rows=max_rows)
    assert len(part) == len(part.params) == max_rows
    np.testing.assert_array_equal(part.error, full.error[:max_rows])
    assert part.params.equals(full.params.iloc[:max_rows])


def test_real_survey_params_with_only_log_g_and_targetid(tmp_path):
    wave, flux, error, _ = toy_spectra(5, seed=9)
    params = np.zeros(5, dtype=[("targetid", "i8"), ("log_g", "f8")])
    params["targetid"], params["log_g"] = np.arange(100, 105), np.linspace(1, 5, 5)
    write_split(tmp_path / "val.h5", wave, flux, error, params, split="val")
    split = read_split(tmp_path, "val")
    assert list(split.params.columns) == ["targetid", "log_g"]
    np.testing.assert_array_equal(split.params["targetid"], np.arange(100, 105))


def test_bad_dataset_folders(tiny_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_split(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="Unknown split 'validation'; valid splits are: train, val, test"):
        read_split(tiny_dataset, "validation")
    with pytest.raises(FileNotFoundError, match=r"expected train_000\.h5"):
        read_split(tmp_path, "train")
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        read_split(tiny_dataset, "val", max_rows=0)
    with pytest.raises(KeyError, match="Unknown label 'logg'; the params table has: T_eff, log_g"):
        read_split(tiny_dataset, "val").labels("logg")


def _corrupt(tmp_path, **change):
    """A val.h5 written from toy spectra with one array replaced (None: dataset left out)."""
    arrays = dict(zip(("wave", "flux", "error", "params"), toy_spectra(4, seed=5), strict=True), **change)
    with h5py.File(tmp_path / "val.h5", "w") as f:
        keys = dict(wave="spectrumdataset/wave", flux=FLUX_KEY, error="dataset/arrays/error/value", params=PARAMS_KEY)
        for name, value in arrays.items():
            if value is not None:
                f[keys[name]] = value


def test_bad_files(tmp_path):
    _corrupt(tmp_path, error=None)
    with pytest.raises(ValueError, match="missing HDF5 dataset 'dataset/arrays/error/value'"):
        read_split(tmp_path, "val")
    _corrupt(tmp_path, error=np.ones((4, 4000), np.float32))
    with pytest.raises(ValueError, match=r"shapes disagree: wave \(4096,\), flux \(4, 4096\), error \(4, 4000\)"):
        read_split(tmp_path, "val")
    flux = toy_spectra(4, seed=5)[1]
    flux[2, 10] = np.nan
    _corrupt(tmp_path, flux=flux)
    with pytest.raises(ValueError, match=r"val.h5: flux has 1 bad values in 1 of 4 spectra \(first bad row 2, "
                                         r"value nan\); the rule is: flux must be finite"):
        read_split(tmp_path, "val")
    _corrupt(tmp_path, params=np.arange(4.0))
    with pytest.raises(ValueError, match="must be a compound"):
        read_split(tmp_path, "val")



def _bad_values(case):
    """Toy arrays (4 spectra) with one kind of bad value: (flux, error, params) changes for :func:`_corrupt`."""
    _, flux, error, params = toy_spectra(4, seed=5)
    if case == "zero error":
        return dict(error=np.zeros_like(error))
    if case == "negative error":
        error[1, ::2] *= -1
        return dict(error=error)
    if case == "NaN error":
        error[3, 7] = np.nan
        return dict(error=error)
    if case == "negated flux":
        flux[2] *= -1
        return dict(flux=flux)
    params["log_g"][1] = np.nan
    return dict(params=params)


ERROR_RULE = r"; the rule is: error must be > 0 and not NaN \(\+inf marks a survey pixel without data, appendix L.4\)$"


@pytest.mark.parametrize("case, message", [
    ("zero error", r"val.h5: error has 16384 bad values in 4 of 4 spectra \(first bad row 0, value 0\)" + ERROR_RULE),
    ("negative error", r"val.h5: error has 2048 bad values in 1 of 4 spectra \(first bad row 1, value -0.0\d+\)"
                       + ERROR_RULE),
    ("NaN error", r"val.h5: error has 1 bad values in 1 of 4 spectra \(first bad row 3, value nan\)" + ERROR_RULE),
    ("negated flux", r"val.h5: flux median has 1 bad values in 1 of 4 spectra \(first bad row 2, value -1\); the "
                     r"rule is: median-normalized flux must have a positive median$"),
    ("NaN label", r"val.h5: label log_g has 1 bad values in 1 of 4 spectra \(first bad row 1, value nan\); the rule "
                  r"is: labels T_eff, log_g, M_H must be numeric and finite$"),
])
def test_bad_values_are_refused_on_reading_and_on_writing(tmp_path, case, message):
    _corrupt(tmp_path, **_bad_values(case))  # a file from elsewhere (h5py, not the package's writer)
    with pytest.raises(ValueError, match=message):
        read_split(tmp_path, "val")
    arrays = dict(zip(("wave", "flux", "error", "params"), toy_spectra(4, seed=5), strict=True), **_bad_values(case))
    with pytest.raises(ValueError, match=message.replace("val.h5", "train_000.h5")):
        write_split(tmp_path / "train_000.h5", **arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val.h5"]  # no train_000.h5, no temporary file


def test_an_infinite_error_marks_a_pixel_without_data_and_is_stored(tmp_path):
    wave, flux, error, params = toy_spectra(4, seed=5)
    error[:, :100] = np.inf  # appendix L.4: pixels outside a survey's coverage
    write_split(tmp_path / "val.h5", wave, flux, error, params, split="val")
    assert np.isinf(read_split(tmp_path, "val").error[:, :100]).all()


def test_the_median_rule_is_exact_when_half_the_pixels_are_positive():
    _, flux, error, params = toy_spectra(2, seed=5)
    flux[:, ::2] = -0.5  # half the pixels: the median is the mean of -0.5 and the smallest positive value
    flux[0, 1::2] = 1.0  # median 0.25
    flux[1, 1::2] = 0.4  # median -0.05
    with pytest.raises(ValueError, match=r"flux median has 1 bad values in 1 of 2 spectra \(first bad row 6, "
                                         r"value -0.05\)"):
        check_values("x.h5", flux, error, params, first_row=5)
    check_values("x.h5", flux[:1], error[:1], params[:1])


def test_file_of_another_split_is_refused(tiny_dataset, tmp_path):
    shutil.copy(tiny_dataset / "test.h5", tmp_path / "val.h5")
    with pytest.raises(ValueError, match="the file says split='test' but is read as 'val'"):
        read_split(tmp_path, "val")


def test_shards_with_different_wavelength_grids_are_refused(tiny_dataset, tmp_path):
    shutil.copy(tiny_dataset / "train_000.h5", tmp_path / "train_000.h5")
    wave, flux, error, params = toy_spectra(3, seed=8)
    write_split(tmp_path / "train_001.h5", wave + 0.1, flux, error, params)
    with pytest.raises(ValueError, match="wavelength grid differs"):
        read_split(tmp_path, "train")


def test_test_split_is_locked_during_training(tiny_dataset):
    with lock_test_split():
        assert len(read_split(tiny_dataset, "val")) == 64
        with pytest.raises(RuntimeError, match="test split is locked during training"):
            read_split(tiny_dataset, "test")
    assert len(read_split(tiny_dataset, "test")) == 64  # released afterwards


@pytest.fixture
def flat():
    """Spectra far above zero (so that clipping never acts) with heteroscedastic errors."""
    rng = np.random.default_rng(0)
    flux = np.full((8, 4096), 5.0, np.float32)
    error = rng.uniform(0.05, 0.5, (8, 4096)).astype(np.float32)
    return flux, error, np.linspace(-1, 1, 8)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_noise_follows_eq3(flat, alpha):
    flux, error, y = flat
    ds = NoisySpectra(flux, error, y, alpha=alpha)
    eps = np.stack([(ds[i][0].numpy() - flux[i]) / (alpha * error[i]) for i in range(len(ds))])
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 1) < 0.01  # eps ~ N(0, 1), 32768 draws
    assert ds[3][1].shape == (1,) and ds[3][1].item() == pytest.approx(y[3])


def test_fresh_noise_changes_each_epoch_and_is_reproducible(flat):
    a, b = NoisySpectra(*flat, seed=7), NoisySpectra(*flat, seed=7)
    x0 = a[2][0]
    assert np.array_equal(x0, a[2][0]) and np.array_equal(x0, b[2][0])  # seeded by (seed, epoch, index)
    a.set_epoch(1)
    assert not np.array_equal(x0, a[2][0])
    assert not np.array_equal(x0, NoisySpectra(*flat, seed=8)[2][0])


def test_fixed_noise_is_one_realization(flat):
    ds = NoisySpectra(*flat, noise="fixed")
    first = np.stack([ds[i][0].numpy() for i in range(len(ds))])
    ds.set_epoch(5)
    again = np.stack([ds[i][0].numpy() for i in range(len(ds))])
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fixed_noisy(flat[0], flat[1], seed=42))  # what baselines see
    np.testing.assert_array_equal(first[:3], fixed_noisy(flat[0][:3], flat[1][:3]))  # a prefix keeps its noise


def test_negative_flux_is_clipped_at_zero():
    flux, error = np.full((1, 4096), 0.01, np.float32), np.ones((1, 4096), np.float32)
    x = NoisySpectra(flux, error, [3.0])[0][0].numpy()
    assert x.min() == 0.0
    assert np.mean(x == 0) == pytest.approx(0.496, abs=0.03)  # P(0.01 + eps < 0) for eps ~ N(0, 1)


def test_alpha_zero_returns_clean_flux(flat):
    ds = NoisySpectra(*flat, alpha=0.0)
    np.testing.assert_array_equal(ds[4][0].numpy(), flat[0][4])


def test_bad_dataset_arguments(flat):
    flux, error, y = flat
    with pytest.raises(ValueError, match="noise must be 'fresh' or 'fixed'; got 'gaussian'"):
        NoisySpectra(flux, error, y, noise="gaussian")
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0; got -1"):
        NoisySpectra(flux, error, y, alpha=-1)
    with pytest.raises(ValueError, match=r"labels N long; got flux \(8, 4096\), error \(8, 4096\), labels \(7,\)"):
        NoisySpectra(flux, error, y[:7])


def test_label_scaler_round_trip():
    y = np.random.default_rng(1).uniform(1, 5, 500)
    scaler = LabelScaler().fit(y)
    z = scaler.transform(y)
    assert abs(z.mean()) < 1e-12 and z.std() == pytest.approx(1)
    np.testing.assert_allclose(scaler.inverse(z), y, rtol=1e-14)
    restored = LabelScaler.from_state_dict(scaler.state_dict())
    np.testing.assert_array_equal(restored.transform(y), z)


def test_label_scaler_bad_input():
    with pytest.raises(ValueError, match="constant"):
        LabelScaler().fit([3.0, 3.0])
    with pytest.raises(ValueError, match="1 non-finite"):
        LabelScaler().fit([3.0, np.nan])
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelScaler().transform([1.0])


def test_the_noise_of_a_row_is_the_same_alone_or_in_any_batch(flat):
    flux, error, _ = flat
    rows = np.arange(8)
    whole = noisy_rows(flux, error, rows, seed=7, epoch=3)
    order = np.array([5, 2, 7, 2, 0])  # shuffled, with a repeat
    np.testing.assert_array_equal(noisy_rows(flux[order], error[order], order, seed=7, epoch=3), whole[order])
    for i in (0, 6):
        np.testing.assert_array_equal(noisy_rows(flux[[i]], error[[i]], [i], seed=7, epoch=3)[0], whole[i])
    ds = NoisySpectra(*flat, seed=7)
    ds.set_epoch(3)
    np.testing.assert_array_equal(torch.stack([x for x, _ in ds.__getitems__(order)]).numpy(), whole[order])
    others = [noisy_rows(flux, error, rows, seed=7, epoch=4), noisy_rows(flux, error, rows, seed=8, epoch=3),
              noisy_rows(flux, error, rows, seed=7, epoch=None)]  # another epoch, seed, or the fixed noise
    assert not any(np.isclose(other, whole).mean() > 0.01 for other in others)


def test_batched_noise_is_standard_normal_and_independent_between_rows():
    rows = np.arange(1000, 1256)
    flux, error = np.full((256, 4096), 50.0, np.float32), np.full((256, 4096), 2.0, np.float32)
    eps = (noisy_rows(flux, error, rows, seed=1, epoch=0, alpha=1.5) - flux) / (1.5 * error)  # 2**20 draws
    assert abs(eps.mean()) < 0.005 and abs(eps.std() - 1) < 0.005
    assert np.mean(np.abs(eps) > 2) == pytest.approx(0.0455, abs=0.002)  # the Gaussian tails
    assert abs(np.mean(eps[:-1] * eps[1:])) < 0.005  # neighbouring rows: uncorrelated
    assert abs(np.mean(eps[:, :-1] * eps[:, 1:])) < 0.005  # neighbouring pixels too


def test_bad_noise_arguments_are_refused(flat):
    flux, error, _ = flat
    with pytest.raises(ValueError, match=r"rows B integers >= 0; got flux \(8, 4096\), error \(8, 4096\), rows \(7,\)"):
        noisy_rows(flux, error, np.arange(7), seed=0)
    with pytest.raises(ValueError, match="rows B integers >= 0"):
        noisy_rows(flux, error, np.arange(-1, 7), seed=0)
    with pytest.raises(ValueError, match="the noise seed and epoch must be integers >= 0; got seed 1, epoch -1"):
        noisy_rows(flux, error, np.arange(8), seed=1, epoch=-1)
    with pytest.raises(IndexError, match=r"sample indices must lie in \[0, 8\); got 3 .. 8"):
        NoisySpectra(*flat).__getitems__([3, 8])


def _samples(ds, indices):
    """(x, y) of a batch of indices as two arrays."""
    x, y = zip(*ds.__getitems__(indices))
    return torch.stack(x).numpy(), torch.stack(y).numpy()


@pytest.mark.parametrize("max_rows", [None, 150])  # both shards; the first and part of the second
def test_streamed_samples_equal_those_held_in_memory(tiny_dataset, max_rows):
    labels = read_labels(tiny_dataset, "train", "log_g", max_rows)
    split = read_split(tiny_dataset, "train", max_rows)
    np.testing.assert_array_equal(labels, split.labels("log_g"))
    memory = NoisySpectra(split.flux, split.error, labels, seed=7)
    stream = ShardedSpectra(tiny_dataset, "train", labels, max_rows=max_rows, seed=7)
    assert len(stream) == len(memory) == len(split)
    batch = [140, 3, 127, 128, 3, len(split) - 1]  # across the two shards, with a repeat
    for epoch in (0, 2):
        memory.set_epoch(epoch)
        stream.set_epoch(epoch)
        for a, b in zip(_samples(stream, batch), _samples(memory, batch), strict=True):
            np.testing.assert_array_equal(a, b)
    val = read_split(tiny_dataset, "val")
    fixed = ShardedSpectra(tiny_dataset, "val", val.labels(), noise="fixed")
    np.testing.assert_array_equal(_samples(fixed, np.arange(64))[0], fixed_noisy(val.flux, val.error))


def _with_reader(samples):
    """Collate, in the loader worker, with (pid of the process whose h5py files read the batch, the worker's pid)."""
    return default_collate(samples), (get_worker_info().dataset._owner, os.getpid())


def test_streamed_rows_are_read_by_each_loader_worker_with_its_own_files(tiny_dataset):
    labels = read_labels(tiny_dataset, "train")
    stream = ShardedSpectra(tiny_dataset, "train", labels, seed=3)
    split = read_split(tiny_dataset, "train")
    memory = NoisySpectra(split.flux, split.error, labels, seed=3)
    first = _samples(stream, [5])  # the files are now open in this process, before the workers fork
    order = np.random.default_rng(0).permutation(len(stream))
    loader = DataLoader(stream, batch_size=16, sampler=order.tolist(), num_workers=2, collate_fn=_with_reader)
    batches, readers = zip(*loader)
    assert len(set(readers)) == 2 and all(owner == pid != os.getpid() for owner, pid in readers)
    x, y = (torch.cat(parts).numpy() for parts in zip(*batches))
    expected = _samples(memory, order)
    np.testing.assert_array_equal(x, expected[0])
    np.testing.assert_array_equal(y, expected[1])
    np.testing.assert_array_equal(_samples(stream, [5])[0], first[0])  # this process's files still read
    copy = pickle.loads(pickle.dumps(stream))  # its open h5py files are left behind (they cannot be pickled)
    np.testing.assert_array_equal(_samples(copy, [5])[0], first[0])


def test_streamed_values_are_checked_as_batches_are_read(tmp_path):
    _corrupt(tmp_path, **_bad_values("NaN error"))  # row 3 of val.h5
    stream = ShardedSpectra(tmp_path, "val", np.zeros(4), noise="fixed")
    assert len(_samples(stream, [0, 2])[0]) == 2
    with pytest.raises(ValueError, match=r"val.h5: error has 1 bad values in 1 of 2 spectra \(first bad row 3, "
                                         r"value nan\); the rule is: error must be > 0"):
        stream.__getitems__([1, 3])


def test_streamed_splits_keep_the_rules_of_the_reader(tiny_dataset, tmp_path):
    with lock_test_split(), pytest.raises(RuntimeError, match="test split is locked during training"):
        ShardedSpectra(tiny_dataset, "test", np.zeros(64))
    with pytest.raises(ValueError, match=r"labels must be one per spectrum: 64 spectra, labels \(63,\)"):
        ShardedSpectra(tiny_dataset, "val", np.zeros(63))
    shutil.copy(tiny_dataset / "test.h5", tmp_path / "val.h5")
    with pytest.raises(ValueError, match="the file says split='test' but is read as 'val'"):
        ShardedSpectra(tmp_path, "val", np.zeros(64))
    with pytest.raises(KeyError, match="Unknown label 'logg'; the params table of .*val.h5 has: T_eff, log_g"):
        read_labels(tiny_dataset, "val", "logg")


def test_split_dataset_streams_a_split_larger_than_the_memory_budget(tiny_dataset, monkeypatch):
    labels = read_labels(tiny_dataset, "train")
    small = split_dataset(tiny_dataset, "train", labels, seed=5)
    monkeypatch.setattr("specvit_core.data.IN_MEMORY_BYTES", 2 * 4 * 256 * 4096 - 1)  # one byte short of the split
    large = split_dataset(tiny_dataset, "train", labels, seed=5)
    assert isinstance(small, NoisySpectra) and isinstance(large, ShardedSpectra)
    for a, b in zip(_samples(small, [0, 200]), _samples(large, [0, 200]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_on_streamed_splits_gives_the_network_trained_in_memory(tiny_dataset, tmp_path, monkeypatch):
    from specvit_core.runs import load_checkpoint
    from specvit_core.train import TrainConfig, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    config = TrainConfig(arch="bilstm", profile="smoke", epochs=2, batch_size=32, max_train=160)
    try:
        in_memory = train(config, tiny_dataset, tmp_path / "memory")
        monkeypatch.setattr("specvit_core.data.IN_MEMORY_BYTES", 0)  # every split streamed from its files
        streamed = train(dataclasses.replace(config, num_workers=2), tiny_dataset, tmp_path / "streamed")
    finally:
        torch.set_num_threads(threads)
    assert streamed == in_memory  # the test metrics
    weights = [load_checkpoint(tmp_path / name / "last.pt")["model"] for name in ("memory", "streamed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
