"""Convert the atmosnet cool-star network into the plain ``.npz`` that ``specvit_core.spectra.atmosphere`` reads.

atmosnet 1.0.1 (D. Nidever, MIT licence) ships neural-network emulators of the C3K grid of ATLAS12/SYNTHE model
atmospheres (Conroy et al. 2019; Kurucz) as dill pickles. This developer tool unpickles the cool-star network
*once, here*, keeps the five columns a spectrum synthesis needs (RHOX, T, P, XNE, ABROSS) and writes the weights
with ``np.savez_compressed``, so the product only ever calls ``np.load(..., allow_pickle=False)``.

How to regenerate ``specvit_core/spectra/data/atmosnet_c3k_cool.npz``::

    pip download --no-deps atmosnet==1.0.1 -d DIR          # the wheel: DIR/atmosnet-1.0.1-py2.py3-none-any.whl
    python -m venv /tmp/toolvenv && /tmp/toolvenv/bin/pip install numpy dill   # a throwaway venv, not the product's
    /tmp/toolvenv/bin/python tools/convert_atmosnet.py DIR/atmosnet-1.0.1-py2.py3-none-any.whl

The source may also be an unpacked wheel or any folder holding ``atmosnet_c3k_300neurons_cool.pkl``. The pickle's
weights are already float32, so the conversion is lossless; the script also reports how far a float32 evaluation
of the network is from a float64 one (the product evaluates in float64).

Note: the networks output log10(value + 1e-16), although atmosnet 1.0.1 itself decodes them with ``np.exp`` (which
gives a 45 K solar photosphere); the ``output`` entry of the ``.npz`` records the decoding.
"""
import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

PICKLE_NAME = "atmosnet_c3k_300neurons_cool.pkl"
ALL_COLUMNS = ("RHOX", "T", "P", "XNE", "ABROSS", "ACCRAD", "VTURB", "FLXCNV")  # Kurucz model column order
KEEP = ("RHOX", "T", "P", "XNE", "ABROSS")
LABELS = ["TEFF", "LOGG", "FE_H", "ALPHA_FE"]
SOURCE = ("atmosnet 1.0.1 (Nidever, MIT licence), neural emulator of C3K model atmospheres (Conroy et al. 2019; "
          "ATLAS12/SYNTHE, Kurucz), cool-star network; converted by tools/convert_atmosnet.py")
# The networks were trained on log10(value + 1e-16). atmosnet 1.0.1 decodes them with np.exp, which gives a solar
# T(tau=2/3) of ~45 K and P/(g*RHOX) ~ 0.003; with 10** the structure is in hydrostatic equilibrium to ~2 % and
# tau_Ross runs on Kurucz's standard grid 10**(-6.875 + 0.125 k). Stored in the file so the decoding travels with it.
OUTPUT = "log10(value + 1e-16)"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "specvit_core" / "spectra" / "data" / "atmosnet_c3k_cool.npz"
CHECK_LABELS = [(5777, 4.44, 0.0, 0.0), (4500, 2.0, 0.0, 0.0), (3500, 0.5, -1.0, 0.2), (6500, 4.0, -2.0, 0.4),
                (5000, 1.0, 0.5, 0.0), (7500, 4.5, 0.0, 0.0)]


def read_pickle_bytes(source: Path) -> bytes:
    """Return the bytes of the cool-star pickle from a wheel (zip) or a folder."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = [n for n in zf.namelist() if n.endswith("/" + PICKLE_NAME)]
            if not names:
                sys.exit(f"{source} holds no {PICKLE_NAME}")
            return zf.read(names[0])
    if source.is_file() and source.name == PICKLE_NAME:
        return source.read_bytes()
    if source.is_dir():
        found = sorted(source.rglob(PICKLE_NAME))
        if found:
            return found[0].read_bytes()
    sys.exit(f"no {PICKLE_NAME} in {source} (give the atmosnet wheel, an unpacked wheel or the pickle)")


def forward(arrays: dict, labels: np.ndarray, dtype) -> np.ndarray:
    """Evaluate all kept columns for one label vector in the given float type; returns (n_col, n_depth)."""
    def act(z):
        return np.where(z > 0, z, dtype(0.01) * z)

    x = ((labels - arrays["x_min"]) / (arrays["x_max"] - arrays["x_min"]) - 0.5).astype(dtype)  # (n_col, 4)
    h = act(np.einsum("cij,cj->ci", arrays["w0"].astype(dtype), x) + arrays["b0"].astype(dtype))
    h = act(np.einsum("cij,cj->ci", arrays["w1"].astype(dtype), h) + arrays["b1"].astype(dtype))
    out = np.einsum("cij,cj->ci", arrays["w2"].astype(dtype), h) + arrays["b2"].astype(dtype)
    return 10.0 ** out.astype(np.float64) - 1e-16  # log10, not exp: see OUTPUT


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="atmosnet wheel (.whl), unpacked wheel folder or the .pkl itself")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT, help=f"output .npz (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    import dill  # only this tool needs dill; the product never unpickles

    nets = dill.load(io.BytesIO(read_pickle_bytes(args.source)))
    if len(nets) != len(ALL_COLUMNS):
        sys.exit(f"expected {len(ALL_COLUMNS)} column networks, found {len(nets)}")
    for i, net in enumerate(nets):
        if list(net["labels"]) != LABELS or int(net.get("column", i)) != i:
            sys.exit(f"network {i}: unexpected labels {net['labels']} or column {net.get('column')}")
        if not np.array_equal(net["ranges"], nets[0]["ranges"]):
            sys.exit(f"network {i}: label ranges differ from column 0")
    keep = [nets[ALL_COLUMNS.index(c)] for c in KEEP]

    arrays = {f"{p}{k}": np.stack([net[f"{p}_array_{k}"] for net in keep]).astype(np.float32)
              for p in ("w", "b") for k in range(3)}
    lossless = all(np.array_equal(arrays[f"{p}{k}"][j], net[f"{p}_array_{k}"])
                   for j, net in enumerate(keep) for p in ("w", "b") for k in range(3))
    arrays["x_min"] = np.stack([np.asarray(net["x_min"], np.float64) for net in keep])
    arrays["x_max"] = np.stack([np.asarray(net["x_max"], np.float64) for net in keep])
    arrays["ranges"] = np.asarray(keep[0]["ranges"], np.float64)
    arrays["columns"] = np.array(KEEP, dtype="<U8")
    arrays["labels"] = np.array(LABELS, dtype="<U8")
    arrays["source"] = np.array(SOURCE)
    arrays["output"] = np.array(OUTPUT)

    print(f"weights stored bit-identical to the pickle: {lossless}")
    print("float32 vs float64 evaluation, max relative difference over depth")
    print("   Teff  logg  [Fe/H] [a/Fe]  " + "  ".join(f"{c:>8s}" for c in KEEP))
    worst = np.zeros(len(KEEP))
    for lab in CHECK_LABELS:
        lab = np.asarray(lab, np.float64)
        lo, hi = forward(arrays, lab, np.float32), forward(arrays, lab, np.float64)
        rel = np.max(np.abs(lo / hi - 1), axis=1)
        worst = np.maximum(worst, rel)
        print(f"  {lab[0]:5.0f} {lab[1]:5.2f} {lab[2]:6.2f} {lab[3]:6.2f}  " + "  ".join(f"{r:8.1e}" for r in rel))
    t, p = worst[KEEP.index("T")], worst[KEEP.index("P")]
    ok = t < 1e-4 and p < 1e-3
    print(f"worst: T {t:.1e} (need < 1e-4), P {p:.1e} (need < 1e-3): {'ok' if ok else 'FAILED'}")
    if not ok:
        sys.exit(1)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    with np.load(args.output, allow_pickle=False) as f:  # what the product does
        assert all(np.array_equal(f[k], v) for k, v in arrays.items())
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
