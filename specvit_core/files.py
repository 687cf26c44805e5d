"""Atomic file writes and checksums: the one place that knows how a file is replaced safely.

A file is written to ``<name>.<pid>.tmp`` beside its final path and renamed over it with ``os.replace``, so a
reader sees the old file or the new one, never half of one; a kill during the write leaves the old file intact
and the temporary file is removed on any error. The process id in the temporary name keeps two writers of the same
file from deleting each other's temporary file.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
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
    except ProcessLookupError:
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
