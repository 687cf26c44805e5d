"""Atomic file writes and checksums: the one place that knows how a file is replaced safely.

A file is written to ``<name>.<pid>.tmp`` beside its final path and renamed over it with ``os.replace``, so a
reader sees the old file or the new one, never half of one; a kill during the write leaves the old file intact
and the temporary file is removed on any error. The process id in the temporary name keeps two writers of the same
file from deleting each other's temporary file.

A folder is replaced as a whole the same way (:func:`staged_folder`): written beside it as ``<name>.<pid>.new`` and
swapped in at the end. :func:`hold_lock` keeps two processes from writing the same folder at once.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Parameters
    ----------
    path : str or Path
        The final file; its folder must exist.

    Yields
    ------
    Path
        ``<path>.<pid>.tmp`` in the same folder (same file system, so the rename is atomic).
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale(folder) -> None:
    """Remove the temporary files that killed writers left in ``folder``; those of running processes stay.

    Parameters
    ----------
    folder : str or Path
        Folder holding files written through :func:`atomic_path` (``<name>.<pid>.tmp`` while being written).
    """
    for tmp in Path(folder).glob("*.tmp"):
        pid = tmp.suffixes[-2][1:] if len(tmp.suffixes) > 1 else ""
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether the process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; no such pid
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or Path
        The final file; its folder must exist.
    text : str
        Content, written in the platform's default encoding.

    Raises
    ------
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, payload) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        The final file; its folder must exist.
    payload : object
        JSON-serializable data.

    Raises
    ------
    TypeError
        If ``payload`` is not JSON-serializable (``path`` is left untouched).
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    write_text(path, json.dumps(payload, indent=2))


def as_json(payload):
    """``payload`` as :func:`write_json` stores it and ``json`` reads it back (tuples become lists), so that a
    configuration compares equal to the one a file holds.

    Parameters
    ----------
    payload : object
        JSON-serializable data.

    Returns
    -------
    object
    """
    return json.loads(json.dumps(payload))


def code_without_docs(path) -> str:
    """The syntax tree of a Python module without its docstrings (comments are not part of it), as text.

    Two versions of a module give the same text exactly when their code does the same, whatever their docstrings
    and comments say: the fingerprints of cached grids and datasets are taken over it.

    Parameters
    ----------
    path : str or Path
        A ``.py`` file.

    Returns
    -------
    str
        ``ast.dump`` of the module with every docstring removed.
    """
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_digest(modules, data=()) -> str:
    """SHA-256 over the code of Python modules (:func:`code_without_docs`, in order) and then the bytes of data files.

    The fingerprint of cached grids and of datasets: it changes when what the code does or its data change, not
    when its documentation does.

    Parameters
    ----------
    modules : iterable of str or Path
        ``.py`` files.
    data : iterable of str or Path
        Data files read by that code.

    Returns
    -------
    str
        64 hex digits.
    """
    digest = hashlib.sha256()
    for path in modules:
        digest.update(code_without_docs(path).encode())
    for path in data:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def sha256(path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def hold_lock(path):
    """Hold the lock file ``path`` while the body runs; another process holding it makes this fail at once.

    The lock file is created exclusively (``O_CREAT | O_EXCL``) and holds JSON ``{"pid", "host", "started"}``. A
    lock left by a process that no longer runs on this host is stale: it is taken over, with a warning. The lock
    is removed on exit, also on an error (a killed process leaves it, stale).

    Parameters
    ----------
    path : str or Path
        The lock file; its folder is created if missing.

    Yields
    ------
    dict
        The lock's content: ``pid``, ``host``, ``started`` (ISO 8601, UTC).

    Raises
    ------
    FileExistsError
        If a running process (or one on another host, whose state cannot be checked) holds the lock; the message
        names the lock file and the owner's PID, host and start time.

    Warns
    -----
    UserWarning
        When it takes over a stale lock (naming it and the process that left it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = _acquire(path)
    try:
        yield mine
    finally:
        if _read_lock(path) == mine:
            path.unlink(missing_ok=True)


def _acquire(path: Path) -> dict:
    """Create the lock file ``path`` with this process's identity, taking over a stale one."""
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(3):  # retries when the lock is released or taken over by another process meanwhile
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read_lock(path, wait=1.0)
            if owner is None and not path.exists():  # released meanwhile
                continue
            if owner is None or owner.get("host") != mine["host"] or _running(owner["pid"]):
                raise FileExistsError(_held_message(path, owner)) from None
            warnings.warn(f"Taking over the stale lock {path}: process {owner['pid']} on {owner['host']} "
                          f"(started {owner.get('started', '?')}) no longer runs", stacklevel=2)
            _remove_stale_lock(path, owner)
            continue
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(mine))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return mine
    raise FileExistsError(f"Could not take the lock {path}: other processes keep taking it over")


def _read_lock(path: Path, wait: float = 0.0) -> dict | None:
    """The content of a lock file; None if it is missing or holds no positive ``pid`` after ``wait`` seconds (its
    owner may be between creating and writing it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            owner = json.loads(path.read_text())
            if isinstance(owner, dict) and isinstance(owner.get("pid"), int) and owner["pid"] > 0:
                return owner
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _held_message(path: Path, owner: dict | None) -> str:
    """Why a lock cannot be taken, naming the lock file and its owner."""
    if owner is None:
        return (f"The lock file {path} exists but names no owner (unreadable); if no process is writing there, "
                "remove it and run again")
    return (f"The lock file {path} is held by process {owner['pid']} on host {owner.get('host')} (started "
            f"{owner.get('started', '?')}): another run is writing there; wait for it to finish, or remove {path} "
            "if that process no longer runs")


def _remove_stale_lock(path: Path, owner: dict) -> None:
    """Remove the lock ``path`` if it still holds ``owner`` (not a fresh lock another process took meanwhile)."""
    grabbed = path.with_name(f"{path.name}.{os.getpid()}.stale")
    try:
        os.replace(path, grabbed)
    except FileNotFoundError:
        return
    if _read_lock(grabbed) == owner:
        grabbed.unlink()
    else:  # another process took the stale lock over first: give its lock back
        os.replace(grabbed, path)


@contextlib.contextmanager
def staged_folder(final):
    """Yield a new empty folder beside ``final``; on success it replaces ``final`` as a whole, on error it is removed.

    The folder is ``<final>.<pid>.new``; at the end ``final`` is renamed to ``<final>.<pid>.old``, the new folder
    to ``final``, and the old one removed: a reader sees the files of one generation, never a mix, and no file of
    the old folder survives.

    Parameters
    ----------
    final : str or Path
        The folder to replace (it may not exist yet; a symbolic link is resolved and its target replaced); its
        parent must exist.

    Yields
    ------
    Path
        The new folder to write.
    """
    final = Path(os.path.realpath(final))
    new = final.with_name(f"{final.name}.{os.getpid()}.new")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    try:
        yield new
        _swap(new, final)
    finally:
        shutil.rmtree(new, ignore_errors=True)


def _swap(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``, moving an existing ``final`` aside first and removing it afterwards."""
    old = final.with_name(f"{final.name}.{os.getpid()}.old")
    shutil.rmtree(old, ignore_errors=True)  # left by an earlier swap of this process that could not remove it
    if final.exists():
        os.rename(final, old)
    try:
        os.rename(new, final)
    except OSError:
        if old.exists():
            os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def recover_staged(final) -> None:
    """Clean up after :func:`staged_folder` runs that were killed: their ``.new`` folders are removed, and an
    ``.old`` folder is renamed back to ``final`` when the kill came between the two renames of the swap.

    Parameters
    ----------
    final : str or Path
        The folder a killed run was replacing; folders of running processes are left alone.

    Warns
    -----
    UserWarning
        When ``final`` is restored from an ``.old`` folder.
    """
    final = Path(os.path.realpath(final))
    if not final.parent.is_dir():
        return
    pattern = re.compile(re.escape(final.name) + r"\.(\d+)\.(new|old)")
    for sibling in list(final.parent.iterdir()):
        found = pattern.fullmatch(sibling.name)
        if not found or _running(int(found[1])):
            continue
        if found[2] == "old" and not final.exists():
            warnings.warn(f"Restoring {final} from {sibling}, left by a killed run", stacklevel=2)
            os.rename(sibling, final)
        else:
            shutil.rmtree(sibling, ignore_errors=True)
