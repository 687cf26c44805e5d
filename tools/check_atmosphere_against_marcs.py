"""Compare the emulated C3K/ATLAS12 atmosphere with a MARCS model (a developer check, not a test).

    .venv/bin/python tools/check_atmosphere_against_marcs.py /path/to/s6000_g+1.0_m0.5_t05_st_z+0.00_....mod

A MARCS ``.mod`` file (Gustafsson et al. 2008) tabulates each layer against two optical-depth scales, ``lgTauR``
(log Rosseland optical depth) and ``lgTau5`` (log continuum optical depth at 5000 A); this script uses lgTauR, the
same scale as ``Atmosphere.tau_rosseland``. Teff, log g and [Fe/H], [alpha/Fe] are read from the file's header
(in MARCS names ``m0.5`` is the mass, 0.5 M_sun, for a spherical ``s`` model; ``z+0.00`` is the metallicity); they
can be overridden. It prints T, P_gas and n_e at common Rosseland depths and the largest |dT|/T and |d log P| over
log tau_R in [tau-min, tau-max] (default [-4, 1]).

Differences of a few per cent in T and ~0.1 dex in P are expected between the codes (ATLAS12 plane-parallel vs
MARCS spherical, different opacities and convection, microturbulence), on top of the emulator's own error.
"""
import argparse
import re
from pathlib import Path

import numpy as np

from specvit_core.spectra.atmosphere import model_atmosphere

K_B = 1.380649e-16  # erg/K


def read_marcs(path: Path) -> dict:
    """Header labels and the depth columns of a MARCS .mod file (the two 'k lgTauR ...' tables)."""
    lines = path.read_text().splitlines()
    teff = float(re.search(r"([\d.]+)\s+Teff", lines[1]).group(1))
    gravity = float(re.search(r"(\S+)\s+Surface gravity", lines[3]).group(1))
    feh, alpha = (float(v) for v in lines[6].split()[:2])
    n = int(next(line.split()[0] for line in lines if "Number of depth points" in line))
    cols = {}
    for i, line in enumerate(lines):
        if line.split()[:2] == ["k", "lgTauR"]:
            names = line.split()
            table = np.array([row.split() for row in lines[i + 1:i + 1 + n]], dtype=float)
            cols.update({name: table[:, j] for j, name in enumerate(names)})
    return dict(teff=teff, logg=float(np.log10(gravity)), mh=feh, alpha=alpha, cols=cols)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("marcs", type=Path, help="MARCS .mod file")
    parser.add_argument("--teff", type=float, help="override the header's Teff")
    parser.add_argument("--logg", type=float, help="override the header's log g")
    parser.add_argument("--mh", type=float, help="override the header's [Fe/H]")
    parser.add_argument("--alpha", type=float, help="override the header's [alpha/Fe]")
    parser.add_argument("--tau-min", type=float, default=-4.0, help="lowest log tau_R compared (default -4)")
    parser.add_argument("--tau-max", type=float, default=1.0, help="highest log tau_R compared (default 1)")
    args = parser.parse_args(argv)

    m = read_marcs(args.marcs)
    labels = [m["teff"] if args.teff is None else args.teff, m["logg"] if args.logg is None else args.logg,
              m["mh"] if args.mh is None else args.mh, m["alpha"] if args.alpha is None else args.alpha]
    print(f"MARCS {args.marcs.name}: Teff {m['teff']:.0f}, log g {m['logg']:.2f}, [Fe/H] {m['mh']:+.2f}, "
          f"[alpha/Fe] {m['alpha']:+.2f}; tau scale: lgTauR (Rosseland)")
    print(f"emulator at Teff {labels[0]:.0f}, log g {labels[1]:.2f}, [M/H] {labels[2]:+.2f}, "
          f"[alpha/M] {labels[3]:+.2f}")
    atm = model_atmosphere(*labels)

    c = m["cols"]
    lt = c["lgTauR"]
    sel = (lt >= args.tau_min - 1e-9) & (lt <= args.tau_max + 1e-9)
    log_tau_emu = np.log10(atm.tau_rosseland)
    reversed_at = np.flatnonzero(np.diff(log_tau_emu) <= 0)
    if reversed_at.size:  # np.interp needs increasing abscissae: use the running maximum and say so
        first = log_tau_emu[reversed_at[0]]
        print(f"warning: the emulator's tau_R decreases inward at {reversed_at.size} layer(s), first after "
              f"lgTauR {first:.2f} (its RHOX is nearly constant there and noisy); interpolating on the running max")
        log_tau_emu = np.maximum.accumulate(log_tau_emu) + 1e-9 * np.arange(log_tau_emu.size)

    def emu(values):  # emulator column at MARCS's Rosseland depths (linear in log tau, log of the value)
        return 10 ** np.interp(lt[sel], log_tau_emu, np.log10(values))

    t_emu, p_emu, ne_emu, m_emu = emu(atm.temperature), emu(atm.gas_pressure), emu(atm.electron_density), \
        emu(atm.column_mass)
    t_m, p_m, ne_m, m_m = c["T"][sel], c["Pg"][sel], c["Pe"][sel] / (K_B * c["T"][sel]), c["RHOX"][sel]
    print(f"{'lgTauR':>7s} {'T MARCS':>8s} {'T emu':>8s} {'dT/T':>7s} {'logPg M':>8s} {'dlogPg':>7s} "
          f"{'dlog ne':>8s} {'dlog RHOX':>9s}")
    for row in zip(lt[sel], t_m, t_emu, p_m, p_emu, ne_m, ne_emu, m_m, m_emu):
        x, tm, te, pm, pe, nm, nee, mm, me = row
        print(f"{x:7.2f} {tm:8.1f} {te:8.1f} {te / tm - 1:+7.3f} {np.log10(pm):8.3f} {np.log10(pe / pm):+7.3f} "
              f"{np.log10(nee / nm):+8.3f} {np.log10(me / mm):+9.3f}")
    dt = np.abs(t_emu / t_m - 1)
    dp = np.abs(np.log10(p_emu / p_m))
    ranges = [(args.tau_min, args.tau_max)]
    if reversed_at.size and first < args.tau_max:
        ranges.append((args.tau_min, first))
    for lo, hi in ranges:
        s = (lt[sel] >= lo - 1e-9) & (lt[sel] <= hi + 1e-9)
        x, a, b = lt[sel][s], dt[s], dp[s]
        print(f"log tau_R in [{lo:g}, {hi:.2f}]: max |dT|/T = {a.max():.3f} (at lgTauR {x[a.argmax()]:.2f}, median "
              f"{np.median(a):.3f}); max |dlog Pg| = {b.max():.3f} dex (at lgTauR {x[b.argmax()]:.2f}, median "
              f"{np.median(b):.3f})")


if __name__ == "__main__":
    main()
