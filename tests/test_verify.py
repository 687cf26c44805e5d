"""The data contract (appendix K): `specvit verify`, the checks training and the baselines run, run/data identity."""
import json
import os
import re
import shutil

import h5py
import pytest

from specvit_core.baselines import run_baselines
from specvit_core.cli import main
from specvit_core.data import FLUX_KEY, PARAMS_KEY
from specvit_core.files import sha256, write_json
from specvit_core.simulate import generate_dataset
from specvit_core.train import TrainConfig, train
from specvit_core.verify import CACHE, check_contract, verify_dataset, verify_runs

CHECKS = {"manifest", "listed", "present", "rows", "split", "sha256", "disjoint"}
SMALL = dict(arch="deep_cnn", profile="smoke", epochs=1, batch_size=32, max_train=64)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread per module


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, small_simulation, small_grid):
    """A dataset made by the simulator (train_000.h5 40, val.h5 20, test.h5 30 spectra, manifest with SHA-256)."""
    folder = tmp_path_factory.mktemp("simulated") / "data"
    generate_dataset(folder, small_simulation, small_grid, progress=False)
    return folder


@pytest.fixture
def dataset(simulated, tmp_path):
    """A private copy of the simulated dataset, free to break."""
    return shutil.copytree(simulated, tmp_path / "data")


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _errors(report):
    return {(f.check, f.file) for f in report.errors}


def test_clean_dataset_verifies_and_the_command_exits_0(dataset, tmp_path, monkeypatch, capsys):
    report = verify_dataset(dataset)
    assert report.ok and {f.check for f in report.findings} == CHECKS
    assert main(["verify", "--data", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "[disjoint] *.h5: 90 spectra, each appearing once" in out and out.rstrip().endswith("the contract holds")
    assert main(["verify", "--data", str(dataset), "--json", "--no-hashes"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is True and printed["n_errors"] == 0
    assert {f["check"] for f in printed["findings"]} == CHECKS - {"sha256"}
    monkeypatch.setenv("SPECVIT_HOME", str(tmp_path / "home"))  # --profile: the profile's folder, data/<profile>
    shutil.copytree(dataset, tmp_path / "home" / "data" / "smoke")
    assert main(["verify", "--profile", "smoke"]) == 0
    assert f"verify {tmp_path / 'home' / 'data' / 'smoke'}" in capsys.readouterr().out


def test_stale_unlisted_shard_is_an_error_and_training_refuses_it(dataset, tmp_path, capsys):
    shutil.copy(dataset / "val.h5", dataset / "train_002.h5")  # the leak: read as training data, it holds val
    report = verify_dataset(dataset)
    assert _errors(report) == {("listed", "train_002.h5"), ("disjoint", "train_002.h5")}
    assert main(["verify", "--data", str(dataset)]) == 1
    out = capsys.readouterr().out
    assert ("ERROR [listed] train_002.h5: is in the folder but not listed in manifest.json: data.read_split would "
            "read it as part of the train split") in out
    assert ("train_002.h5: rows 0, 1, 2, 3, 4 (+15 more) repeat val.h5 rows 0, 1, 2, 3, 4 (+15 more) (same T_eff, "
            "log_g, M_H and clean flux), across the val and train splits") in out
    run_dir = tmp_path / "runs" / "deep_cnn"
    with pytest.raises(ValueError, match=r"violates its data contract .*\n.*\[listed\] train_002\.h5: is in the "
                                         r"folder but not listed in manifest\.json"):
        train(TrainConfig(**SMALL), dataset, run_dir)
    assert not run_dir.exists()  # refused before any step: no run files at all
    with pytest.raises(ValueError, match=r"\[listed\] train_002\.h5"):
        run_baselines("smoke", ("ridge",), dataset_dir=dataset, runs_root=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs" / "ridge").exists()
    assert main(["train", "--arch", "deep_cnn", "--profile", "smoke", "--data", str(dataset),
                 "--runs", str(tmp_path / "runs")]) == 2
    assert "specvit train: error: The dataset" in capsys.readouterr().err


def test_overwritten_bytes_are_reported_by_the_hash(dataset):
    path = dataset / "test.h5"
    with h5py.File(path, "r") as f:
        row = f[FLUX_KEY][10].tobytes()
    raw = bytearray(path.read_bytes())
    at = raw.find(row)  # flux row 10 as stored: flip its first 16 bytes, keep the size
    raw[at : at + 16] = bytes(b ^ 0xFF for b in raw[at : at + 16])
    path.write_bytes(bytes(raw))
    report = verify_dataset(dataset)
    assert _errors(report) == {("sha256", "test.h5")}
    assert f"but manifest.json lists {_manifest(dataset)['files']['test.h5']['sha256'][:16]}..." in str(report)
    assert check_contract(dataset) == sha256(dataset / "manifest.json")  # the cheap check cannot see it
    assert verify_dataset(dataset, hashes=False).ok


def test_truncated_file_cannot_be_read_and_fails_its_hash(dataset):
    path = dataset / "val.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = verify_dataset(dataset)
    assert _errors(report) == {("rows", "val.h5"), ("sha256", "val.h5")}
    assert "[rows] val.h5: cannot be read as HDF5" in str(report)


def test_listed_file_that_is_missing(dataset, tmp_path):
    (dataset / "val.h5").unlink()
    report = verify_dataset(dataset)
    assert _errors(report) == {("present", "val.h5")}
    assert ("[present] val.h5: is listed in manifest.json (split 'val', n=20) but does not exist; the rule: every "
            "listed file is present") in str(report)
    with pytest.raises(ValueError, match=r"\[present\] val\.h5: is listed"):
        train(TrainConfig(**SMALL), dataset, tmp_path / "run")


def test_row_count_that_disagrees_with_the_manifest(dataset):
    manifest = _manifest(dataset)
    manifest["files"]["train_000.h5"]["n"] = 41
    write_json(dataset / "manifest.json", manifest)
    report = verify_dataset(dataset)
    assert _errors(report) == {("rows", "train_000.h5")}
    assert "[rows] train_000.h5: dataset/arrays/flux/value holds 40 rows but manifest.json lists n=41" in str(report)
    with pytest.raises(ValueError, match="holds 40 rows but manifest.json lists n=41"):
        check_contract(dataset)


def test_split_swapped_in_the_file_or_in_the_manifest(dataset):
    with h5py.File(dataset / "test.h5", "r+") as f:
        f.attrs["split"] = "val"
    report = verify_dataset(dataset)
    assert _errors(report) == {("split", "test.h5"), ("sha256", "test.h5")}
    assert ("[split] test.h5: the file's split attribute is 'val' but the file is read as the 'test' split"
            in str(report))
    manifest = _manifest(dataset)
    manifest["files"]["val.h5"]["split"] = "test"
    write_json(dataset / "manifest.json", manifest)
    with pytest.raises(ValueError, match=r"\[split\] val\.h5: manifest\.json lists split 'test' but the file is "
                                         r"read as the 'val' split"):
        check_contract(dataset, splits=("train", "val"))


def _copy_row(dataset, source, row, target, target_row, **changes):
    """Overwrite ``target``'s row with ``source``'s spectrum (params changed by ``changes``), manifest updated."""
    with h5py.File(dataset / source, "r") as f:
        flux, params = f[FLUX_KEY][row], f[PARAMS_KEY][row]
    for key, value in changes.items():
        params[key] = value
    with h5py.File(dataset / target, "r+") as f:
        f[FLUX_KEY][target_row] = flux
        f[PARAMS_KEY][target_row] = params
    manifest = _manifest(dataset)
    manifest["files"][target]["sha256"] = sha256(dataset / target)  # a consistent manifest: only the contents leak
    write_json(dataset / "manifest.json", manifest)


def test_spectrum_repeated_across_or_within_splits(dataset):
    _copy_row(dataset, "test.h5", 5, "train_000.h5", 3, mag=30.0, snr=1.0)  # the same spectrum under another id
    report = verify_dataset(dataset)
    assert _errors(report) == {("disjoint", "test.h5")}
    assert ("[disjoint] test.h5: row 5 repeats train_000.h5 row 3 (same T_eff, log_g, M_H and clean flux), across "
            "the train and test splits") in str(report)
    assert verify_dataset(dataset, contents=False).ok
    _copy_row(dataset, "val.h5", 0, "val.h5", 7)
    assert "[disjoint] val.h5: row 7 repeats val.h5 row 0 (same T_eff, log_g, M_H and clean flux), within the val " \
           "split" in str(verify_dataset(dataset))


def test_hash_cache_is_used_and_invalidated_by_a_change(dataset):
    assert verify_dataset(dataset).ok
    cache = json.loads((dataset / CACHE).read_text())
    stat = (dataset / "val.h5").stat()
    assert set(cache) == {"train_000.h5", "val.h5", "test.h5"}
    assert cache["val.h5"] == dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns, sha256=sha256(dataset / "val.h5"))
    cache["val.h5"]["sha256"] = "0" * 64  # a second verification trusts the cache while size and mtime hold
    write_json(dataset / CACHE, cache)
    assert _errors(verify_dataset(dataset)) == {("sha256", "val.h5")}
    os.utime(dataset / "val.h5", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a change: hashed again
    assert verify_dataset(dataset).ok
    assert json.loads((dataset / CACHE).read_text())["val.h5"]["sha256"] == sha256(dataset / "val.h5")


def test_folder_without_manifest_is_not_checked_before_training_but_fails_verify(tiny_dataset, tmp_path, capsys):
    folder = shutil.copytree(tiny_dataset, tmp_path / "data")
    (folder / "manifest.json").unlink()
    assert check_contract(folder) is None  # a dataset made elsewhere: training reads it as before
    assert main(["verify", "--data", str(folder)]) == 1
    assert "ERROR [manifest] manifest.json: missing" in capsys.readouterr().out


def test_run_trained_on_one_dataset_refuses_another(tiny_dataset, tmp_path, capsys):
    a = shutil.copytree(tiny_dataset, tmp_path / "a")
    b = shutil.copytree(tiny_dataset, tmp_path / "b")
    write_json(b / "manifest.json", {**_manifest(b), "note": "generated again"})  # same files, another manifest
    runs_root = tmp_path / "runs"
    config = TrainConfig(**SMALL)
    train(config, a, runs_root / "finished")
    recorded = json.loads((runs_root / "finished" / "config.json").read_text())["manifest_sha256"]
    assert recorded == sha256(a / "manifest.json") and verify_runs(runs_root).ok
    ha, hb = sha256(a / "manifest.json")[:16], sha256(b / "manifest.json")[:16]
    ea, eb = re.escape(str(a)), re.escape(str(b))
    with pytest.raises(ValueError, match=rf"was trained on '{ea}' \(manifest SHA-256 {ha}\.\.\.\), not on '{eb}' "
                                         rf"\(manifest SHA-256 {hb}\.\.\.\); its weights belong to other data"):
        train(config, b, runs_root / "finished")
    assert train(TrainConfig(**SMALL, max_steps=1), a, runs_root / "paused")["status"] == "paused"
    with pytest.raises(ValueError, match=rf"trained on '{ea}' .*not on '{eb}'"):  # a resumable run too
        train(config, b, runs_root / "paused")
    shutil.copy(b / "manifest.json", a / "manifest.json")  # dataset a made again in place
    report = verify_runs(runs_root)
    assert _errors(report) == {("run", "finished")}
    assert f"[run] finished: was evaluated on '{a}' with manifest SHA-256 {ha}..., but that folder's manifest is " \
           f"now {hb}..." in str(report)
    assert main(["verify", "--data", str(a), "--runs", str(runs_root), "--no-hashes"]) == 1
    assert "ERROR [run] finished: was evaluated on" in capsys.readouterr().out


def test_the_test_lock_also_guards_code_that_opens_files_directly(tiny_dataset, tmp_path):
    """Appendix K.1.2: inside training, no reader (read_split, the contract checks) opens the test split."""
    from specvit_core.data import lock_test_split, open_split_file

    renamed = tmp_path / "held_out.h5"  # a test file under another name is recognized by its split attribute
    shutil.copy(tiny_dataset / "test.h5", renamed)
    with lock_test_split():
        for path in (tiny_dataset / "test.h5", renamed):
            with pytest.raises(RuntimeError, match="test split is locked during training"):
                open_split_file(path)
        with pytest.raises(RuntimeError, match="test.h5: The test split is locked"):
            verify_dataset(tiny_dataset, splits=("test",))
        with open_split_file(tiny_dataset / "val.h5") as f:  # train and val stay readable
            assert f.attrs["split"] == "val"
    assert verify_dataset(tiny_dataset, hashes=False).ok  # released afterwards
