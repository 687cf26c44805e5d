"""The data contract of a dataset folder (paper appendix K): what ``specvit verify`` checks before data is trusted.

A dataset folder made by :func:`specvit_core.simulate.generate_dataset` holds ``manifest.json`` and the HDF5 files
it lists. The contract:

- ``manifest``: the folder holds a readable ``manifest.json`` with a ``files`` table;
- ``listed``: every ``*.h5`` file of the folder is listed in the manifest (a shard left from an earlier
  generation would otherwise be read as part of the train split);
- ``present``: every listed file exists;
- ``rows``: the file has the paper's schema and flux, error and params hold the manifest's ``n`` rows;
- ``split``: the manifest's split and the file's ``split`` attribute are the split its name is read as;
- ``sha256``: the file's SHA-256 is the manifest's (cached in ``.verify_cache.json`` by size and mtime);
- ``disjoint``: no spectrum (labels T_eff, log g, [M/H] and clean flux) appears twice, within a split or across
  train/val/test;
- ``targetid``: in survey datasets (params with a ``targetid`` column), no target id appears twice, within a split
  or across splits (appendix K.1.1, eqs. K.1-K.3).

:func:`check_contract` is the cheap form (no hashes, no contents) that training and the baselines run before they
read a dataset; :func:`verify_runs` checks that runs still point at the data they were evaluated on.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np

from . import files, runs
from .data import ERROR_KEY, FLUX_KEY, MANIFEST, PARAMS_KEY, SPLITS, open_split_file, split_of_file
from .spectra.templates import AXES

CACHE = ".verify_cache.json"  # name -> size, mtime_ns, sha256 of the files hashed before
CHUNK = 1024  # spectra read at once by the disjointness check


@dataclass(frozen=True)
class Finding:
    """One result of a check.

    Parameters
    ----------
    severity : {"error", "ok"}
        "error": the contract is violated; "ok": the check passed (or says why it was not applicable).
    check : str
        The check's name (``manifest``, ``listed``, ``present``, ``rows``, ``split``, ``sha256``, ``disjoint``,
        ``targetid``, ``run``).
    file : str
        The file (or run folder) concerned, relative to the checked folder where possible.
    message : str
        What was found and the rule it follows from.
    """

    severity: str
    check: str
    file: str
    message: str

    def __str__(self) -> str:
        return f"{'ERROR' if self.severity == 'error' else 'ok':5s} [{self.check}] {self.file}: {self.message}"


@dataclass
class Report:
    """The findings of a verification of one folder.

    Parameters
    ----------
    target : str
        The verified folder (a dataset or a runs folder).
    findings : list of Finding
        In the order the checks ran.
    """

    target: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """bool: True when no finding is an error."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        """list of Finding: the findings of severity "error"."""
        return [f for f in self.findings if f.severity == "error"]

    def error(self, check: str, file: str, message: str) -> None:
        """Record a violation of the contract.

        Parameters
        ----------
        check, file, message : str
            See :class:`Finding`.
        """
        self.findings.append(Finding("error", check, file, message))

    def passed(self, check: str, file: str, message: str) -> None:
        """Record ``check`` as passed, unless it already recorded an error.

        Parameters
        ----------
        check, file, message : str
            See :class:`Finding`; ``message`` says what holds.
        """
        if not any(f.check == check for f in self.errors):
            self.findings.append(Finding("ok", check, file, message))

    def to_dict(self) -> dict:
        """The report as JSON-serializable data.

        Returns
        -------
        dict
            ``target``, ``ok``, ``n_errors`` and ``findings`` (each with severity, check, file, message).
        """
        return dict(target=self.target, ok=self.ok, n_errors=len(self.errors),
                    findings=[asdict(f) for f in self.findings])

    def format(self) -> str:
        """The report as text: a header, one line per finding, a verdict.

        Returns
        -------
        str
        """
        verdict = "OK: the contract holds" if self.ok else f"FAILED: {len(self.errors)} error(s)"
        return "\n".join([f"verify {self.target}", *(f"  {f}" for f in self.findings), verdict])

    def __str__(self) -> str:
        return self.format()


def manifest_sha256(dataset_dir) -> str | None:
    """SHA-256 of a dataset's ``manifest.json``: the identity of the data a run is trained and evaluated on.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.

    Returns
    -------
    str or None
        64 hex digits; None when the folder holds no manifest (a dataset made elsewhere).
    """
    path = Path(dataset_dir) / MANIFEST
    return files.sha256(path) if path.is_file() else None


def _manifest_files(folder: Path, report: Report) -> dict | None:
    """The manifest's ``files`` table, or None (with an error) when there is no usable manifest."""
    if not folder.is_dir():
        report.error("manifest", str(folder), "the dataset folder does not exist (simulate it first)")
        return None
    try:
        table = json.loads((folder / MANIFEST).read_text()).get("files")
    except FileNotFoundError:
        report.error("manifest", MANIFEST, "missing; the rule: a dataset folder describes its files in "
                     "manifest.json (written by specvit simulate), so a folder without one cannot be verified")
        return None
    except (json.JSONDecodeError, AttributeError) as err:
        report.error("manifest", MANIFEST, f"not a JSON object ({err}); regenerate the dataset")
        return None
    if not isinstance(table, dict) or not table or not all(isinstance(e, dict) for e in table.values()):
        report.error("manifest", MANIFEST, "has no 'files' table (name -> {split, n, sha256}); regenerate the dataset")
        return None
    report.passed("manifest", MANIFEST, f"lists {len(table)} files")
    return table


def _check_listed(folder: Path, table: dict, report: Report) -> list[str]:
    """Error for every ``*.h5`` file the manifest does not list; returns those names."""
    unlisted = sorted(p.name for p in folder.glob("*.h5") if p.name not in table)
    for name in unlisted:
        split = split_of_file(name)
        effect = (f"data.read_split would read it as part of the {split} split" if split else
                  "no split reads it, but it is not part of this dataset")
        report.error("listed", name, f"is in the folder but not listed in {MANIFEST}: {effect}. The rule: every HDF5 "
                     "file of a dataset folder is listed in its manifest (a file left from an earlier generation "
                     "leaks into the splits); remove it, or regenerate the dataset into an empty folder")
    report.passed("listed", "*.h5", f"every HDF5 file of the folder is listed in {MANIFEST}")
    return unlisted


def _schema_problem(f: h5py.File) -> str | None:
    """Why an open HDF5 file does not have the paper's schema (appendix L.9), or None."""
    missing = [k for k in (FLUX_KEY, ERROR_KEY, PARAMS_KEY) if not isinstance(f.get(k), h5py.Dataset)]
    return f"missing HDF5 dataset(s) {', '.join(missing)} (paper schema, appendix L.9)" if missing else None


def _check_file(path: Path, entry: dict, report: Report) -> bool:
    """The ``rows`` and ``split`` checks of one listed file; False when it cannot be read as a split file."""
    name, n, listed = path.name, entry.get("n"), entry.get("split")
    try:
        with open_split_file(path) as f:
            problem = _schema_problem(f)
            rows = {k: f[k].shape[0] for k in (FLUX_KEY, ERROR_KEY, PARAMS_KEY)} if problem is None else {}
            attr = f.attrs.get("split")
    except OSError as err:
        report.error("rows", name, f"cannot be read as HDF5 ({err}); the file is truncated or corrupted: "
                     "regenerate the dataset")
        return False
    if problem:
        report.error("rows", name, problem)
        return False
    for key, count in rows.items():
        if count != n:
            report.error("rows", name, f"{key} holds {count} rows but {MANIFEST} lists n={n}; the rule: the file "
                         "holds exactly the manifest's n spectra (it was replaced, truncated or the manifest edited)")
    attr = attr.decode() if isinstance(attr, bytes) else attr
    expected = split_of_file(name) or listed
    for source, value in ((f"{MANIFEST} lists split", listed), ("the file's split attribute is", attr)):
        if value != expected:
            report.error("split", name, f"{source} {value!r} but the file is read as the {expected!r} split; the "
                         "rule: name, manifest and attribute name the same split (swapped files leak)")
    return True


def _read_cache(folder: Path) -> dict:
    """The hash cache of a dataset folder (empty when absent or unreadable)."""
    try:
        cache = json.loads((folder / CACHE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _file_sha256(path: Path, cache: dict) -> str:
    """SHA-256 of ``path``, taken from ``cache`` while its size and mtime are unchanged (``cache`` is updated)."""
    stat = path.stat()
    key = dict(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    known = cache.get(path.name)
    if isinstance(known, dict) and {k: known.get(k) for k in key} == key and "sha256" in known:
        return known["sha256"]
    cache[path.name] = dict(key, sha256=files.sha256(path))
    return cache[path.name]["sha256"]


def _check_hashes(folder: Path, names: list[str], table: dict, report: Report) -> None:
    """The ``sha256`` check of the listed files present, through the hash cache."""
    cache = _read_cache(folder)
    before = json.dumps(cache, sort_keys=True)
    unrecorded = [name for name in names if "sha256" not in table[name]]
    for name in (n for n in names if n not in unrecorded):
        actual, listed = _file_sha256(folder / name, cache), table[name]["sha256"]
        if actual != listed:
            report.error("sha256", name, f"SHA-256 is {actual[:16]}... but {MANIFEST} lists {listed[:16]}...; the "
                         "rule: a file is the one the manifest describes (it was truncated, corrupted or replaced "
                         "after the dataset was made): regenerate the dataset")
    if json.dumps(cache, sort_keys=True) != before:
        try:
            files.write_json(folder / CACHE, cache)
        except OSError:  # a read-only dataset folder is verified without a cache
            pass
    if unrecorded:
        report.findings.append(Finding("ok", "sha256", ", ".join(unrecorded),
                                       f"{MANIFEST} records no SHA-256 for these files; their content is not checked"))
    report.passed("sha256", "*.h5", f"{len(names) - len(unrecorded)} files match the SHA-256 of {MANIFEST}")


def _row_hashes(path: Path) -> list[bytes]:
    """SHA-1 of every spectrum of a file: its labels (float64) and its clean flux row (float32)."""
    digests = []
    with open_split_file(path) as f:
        flux, params = f[FLUX_KEY], f[PARAMS_KEY]
        labels = [k for k in AXES if k in (params.dtype.names or ())]
        for lo in range(0, flux.shape[0], CHUNK):
            table = params[lo : lo + CHUNK]
            y = np.ascontiguousarray(np.stack([table[k].astype(np.float64) for k in labels], axis=1)
                                     if labels else np.zeros((len(table), 0)))
            x = np.ascontiguousarray(flux[lo : lo + CHUNK], dtype=np.float32)
            digests += [hashlib.sha1(y[i].tobytes() + x[i].tobytes()).digest() for i in range(len(x))]
    return digests


def _rows(rows: list[int], shown: int = 5) -> str:
    """``rows 0, 1, 2, 3, 4 (+59 more)``."""
    more = f" (+{len(rows) - shown} more)" if len(rows) > shown else ""
    return f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:shown]))}{more}"


def _check_disjoint(folder: Path, splits: dict[str, str], report: Report) -> None:
    """The ``disjoint`` check over the files ``splits`` maps to their split, in its order (the first file holding a
    spectrum is named as its original)."""
    seen, repeats = {}, {}
    for name in splits:
        try:
            digests = _row_hashes(folder / name)
        except OSError as err:
            report.error("disjoint", name, f"its spectra cannot be read ({err}); the file is corrupted: regenerate "
                         "the dataset")
            continue
        for row, digest in enumerate(digests):
            if digest in seen:
                first, first_row = seen[digest]
                repeats.setdefault((first, name), []).append((first_row, row))
            else:
                seen[digest] = (name, row)
    for (first, name), pairs in repeats.items():
        where = "within the" if splits[first] == splits[name] else "across the"
        pair = f"{splits[first]} split" if where == "within the" else f"{splits[first]} and {splits[name]} splits"
        verb = "repeat" if len(pairs) > 1 else "repeats"
        report.error("disjoint", name, f"{_rows([b for _, b in pairs])} {verb} {first} {_rows([a for a, _ in pairs])} "
                     f"(same T_eff, log_g, M_H and clean flux), {where} {pair}; the rule: every spectrum appears "
                     "once in train/val/test (a repeated spectrum leaks); regenerate the dataset")
    report.passed("disjoint", "*.h5", f"{len(seen)} spectra, each appearing once")


def verify_dataset(dataset_dir, hashes: bool = True, contents: bool = True, splits=SPLITS) -> Report:
    """Check a dataset folder against its manifest (the data contract of appendix K; see the module docstring).

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder made by :func:`specvit_core.simulate.generate_dataset`.
    hashes : bool
        Compare each file's SHA-256 with the manifest's (cached in ``.verify_cache.json`` of the folder).
    contents : bool
        Hash every spectrum and report spectra that appear twice (reads all the flux once).
    splits : sequence of str
        The splits whose listed files are checked; unlisted files are always reported.

    Returns
    -------
    Report
        ``report.ok`` is True when no check found an error.
    """
    folder = Path(dataset_dir)
    report = Report(str(folder))
    table = _manifest_files(folder, report)
    if table is None:
        return report
    unlisted = _check_listed(folder, table, report)
    split_of = {name: split_of_file(name) or table[name].get("split") for name in table}  # as a file is read
    names = [name for name in sorted(table) if split_of[name] in splits]
    present = [name for name in names if (folder / name).is_file()]
    for name in sorted(set(names) - set(present)):
        report.error("present", name, f"is listed in {MANIFEST} (split {table[name].get('split')!r}, n="
                     f"{table[name].get('n')}) but does not exist; the rule: every listed file is present")
    report.passed("present", "*.h5", f"the {len(present)} listed files exist")
    readable = [name for name in present if _check_file(folder / name, table[name], report)]
    report.passed("rows", "*.h5", f"{len(readable)} files hold the paper's schema and the listed row counts")
    report.passed("split", "*.h5", "names, manifest and split attributes agree")
    if hashes:
        _check_hashes(folder, present, table, report)
    if contents:
        rank = {split: i for i, split in enumerate(SPLITS)}
        order = {name: split_of[name] for name in sorted(readable, key=lambda n: (rank.get(split_of[n], 3), n))}
        order.update({name: split_of_file(name) or "unlisted" for name in unlisted if _readable(folder / name)})
        _check_disjoint(folder, order, report)
        _check_target_ids(folder, order, report)
    return report


def _check_target_ids(folder: Path, splits: dict[str, str], report: Report) -> None:
    """The ``targetid`` check (appendix K.1.1) over the files that have a ``targetid`` column."""
    seen, count = {}, 0
    for name, split in splits.items():
        with open_split_file(folder / name) as f:
            params = f[PARAMS_KEY]
            if "targetid" not in (params.dtype.names or ()):
                continue
            ids = params["targetid"]
        count += len(ids)
        for row, target in enumerate(ids.tolist()):
            if target in seen:
                first, first_row = seen[target]
                where = f"within the {split} split" if splits[first] == split else \
                    f"across the {splits[first]} and {split} splits"
                report.error("targetid", name, f"row {row} has target id {target!r} of {first} row {first_row}, "
                             f"{where}; the rule (appendix K.1.1): every target appears once in train/val/test")
            else:
                seen[target] = (name, row)
    if count:
        report.passed("targetid", "*.h5", f"{count} target ids, each appearing once")


def _readable(path: Path) -> bool:
    """Whether ``path`` opens as HDF5 with the paper's schema."""
    try:
        with open_split_file(path) as f:
            return _schema_problem(f) is None
    except OSError:
        return False


def check_contract(dataset_dir, splits=SPLITS) -> str | None:
    """The cheap contract check training and the baselines run before they read a dataset.

    Listed, present, row counts and split attributes (no hashes, no contents); a folder without a manifest (a
    dataset made elsewhere) is not checked.

    Parameters
    ----------
    dataset_dir : str or Path
        Dataset folder.
    splits : sequence of str
        The splits about to be read (unlisted files are always refused).

    Returns
    -------
    str or None
        The manifest's SHA-256 (:func:`manifest_sha256`), None without a manifest.

    Raises
    ------
    ValueError
        The dataset violates its contract; the message lists every error (file, check and rule).
    """
    digest = manifest_sha256(dataset_dir)
    if digest is None:
        return None
    report = verify_dataset(dataset_dir, hashes=False, contents=False, splits=splits)
    if not report.ok:
        raise ValueError(f"The dataset {str(dataset_dir)!r} violates its data contract (appendix K); nothing was "
                         "read from it:\n" + "\n".join(f"  {f}" for f in report.errors) +
                         f"\nFix the folder, then check it fully with: specvit verify --data {dataset_dir}")
    return digest


def verify_runs(runs_dir) -> Report:
    """Check that every evaluated run still points at the data it recorded (its dataset's manifest SHA-256).

    Parameters
    ----------
    runs_dir : str or Path
        A runs folder (e.g. ``runs/<profile>``); every folder below it holding ``metrics.json`` is checked.

    Returns
    -------
    Report
        An error per run whose dataset's ``manifest.json`` changed or disappeared since the run recorded it; an ok
        finding per run that records no manifest hash (made before the contract, or without a manifest).
    """
    root = Path(runs_dir)
    report = Report(str(root))
    done, checked = [p.parent for p in sorted(root.rglob("metrics.json"))], 0
    for run_dir in done:
        name = str(run_dir.relative_to(root))
        if not (run_dir / runs.CONFIG).is_file():
            report.error("run", name, f"holds metrics.json but no {runs.CONFIG}; the data it was evaluated on is "
                         "unknown: retrain it")
            continue
        config = runs.read_config(run_dir)
        recorded, dataset = config.get("manifest_sha256"), config.get("dataset_dir")
        if recorded is None:
            report.findings.append(Finding("ok", "run", name, "records no manifest SHA-256 (made before the data "
                                           "contract, or on a dataset without manifest); not checked"))
            continue
        checked += 1
        now = manifest_sha256(dataset)
        if now != recorded:
            report.error("run", name, f"was evaluated on {dataset!r} with manifest SHA-256 {recorded[:16]}..., but "
                         f"that folder's manifest is now {now[:16] + '...' if now else 'missing'}; its metrics "
                         "describe other data: retrain it (resume=False, --no-resume) or restore the dataset")
    report.passed("run", "*", f"{checked} of {len(done)} evaluated runs record a manifest SHA-256; each matches "
                  "its dataset's manifest")
    return report
