#!/usr/bin/env python3
"""Generate parity fixtures from the reference library `soft-entropy` 0.1.5 (PyPI).

Run by hand only (never by CI). Output goes to `fixtures/softh/` under the repository root
(found from this script's own location); existing `fixtures/softh/cases/` is replaced.

Setup (once), exactly as the reference harness header says (run from the repository root):

    python3 -m venv .venv-softh
    .venv-softh/bin/pip install --no-deps soft-entropy==0.1.5
    .venv-softh/bin/pip install numpy scipy      # the numpy backend needs only these

(The fixtures in the repository were produced with numpy 2.4.6, scipy 1.17.1, Python 3.11.)

Run (from the repository root):

    .venv-softh/bin/python scripts/make_softh_fixtures.py

The reference harness is looked up at `<repo>/../shared/reference/softh_ref.py`; set
INFOPLANE_SHARED=/path/to/shared to point at another shared directory.

What it writes:
  fixtures/softh/epsilon.json   find_eps(n_bins, d) and sphere_temp_calibration(mode="exact") values
  fixtures/softh/cases/<case>/  z.npy, w.npy, label .npy files, harness JSON outputs, case.json
  fixtures/softh/README.md

Everything is deterministic (numpy default_rng with fixed seeds). The harness's wall-clock field
"seconds" is dropped from the stored outputs so that reruns give byte-identical files.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import types
import warnings
from importlib.metadata import version as _version
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "fixtures" / "softh"
SHARED = Path(os.environ.get("INFOPLANE_SHARED") or (REPO.parent / "shared")).resolve()
HARNESS = SHARED / "reference" / "softh_ref.py"

N = 240
N_TOK = 40
N_NOISE = 20
SIGMA = 1.5
CASE_DS = [16, 64, 576, 768, 2048]
CASE_NBINS = [50, 100]
EPS_NBINS = [2, 10, 50, 100, 256, 1000]
EPS_DS = [3, 4, 8, 16, 32, 64, 128, 256, 576, 768, 1024, 2048, 4096, 8192, 16384]
EXACT_NBINS = [50, 100]
EXACT_DS = [4, 8, 16, 32, 64, 128, 256]
EXACT_BRACKET = (1e-5, 1.0)
F16_MIN_D = 2048  # z stored as float16 for d >= this, float32 below


def _import_temp_calibration():
    """Import soft_entropy.temp_calibration without running the package __init__ (needs torch),
    the same way the harness does."""
    if "soft_entropy" not in sys.modules:
        spec = importlib.util.find_spec("soft_entropy")
        if spec is None:
            sys.exit("soft-entropy is not installed: pip install --no-deps soft-entropy==0.1.5 numpy scipy")
        pkg = types.ModuleType("soft_entropy")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["soft_entropy"] = pkg
    from soft_entropy import temp_calibration
    return temp_calibration


def _call(fn):
    """Run fn(); return (value, None) or (None, reason). Warnings are reported as failures too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            v = float(fn())
        except Exception as e:  # noqa: BLE001 - scipy/brentq failures are recorded, not fatal
            return None, f"{type(e).__name__}: {e}"
    if not math.isfinite(v):
        return None, f"non-finite result {v!r}"
    if caught:
        return v, "warnings: " + "; ".join(sorted({str(w.message) for w in caught}))
    return v, None


def make_epsilon(library: str) -> dict:
    tc = _import_temp_calibration()
    out = {"library": library,
           "numpy": np.__version__,
           "scipy": _version("scipy"),
           "find_eps_call": "soft_entropy.temp_calibration.find_eps(n_bins, d)  # bounds mode, eps_range=(1e-5, 1.0)",
           "exact_call": "soft_entropy.temp_calibration.sphere_temp_calibration(n_bins, d, mode='exact', "
                         "eps_bracket=(1e-5, 1.0))",
           "find_eps": [], "exact": [], "failed": [], "warnings": []}
    for kind, nbins_list, d_list, fn in (
        ("find_eps", EPS_NBINS, EPS_DS, lambda n, d: tc.find_eps(n, d)),
        ("exact", EXACT_NBINS, EXACT_DS,
         lambda n, d: tc.sphere_temp_calibration(n, d, mode="exact", eps_bracket=EXACT_BRACKET)),
    ):
        for n in nbins_list:
            for d in d_list:
                v, why = _call(lambda: fn(n, d))
                if v is None:
                    out["failed"].append({"kind": kind, "n_bins": n, "d": d, "reason": why})
                    continue
                if why is not None:
                    out["warnings"].append({"kind": kind, "n_bins": n, "d": d, "message": why})
                out[kind].append({"n_bins": n, "d": d, "epsilon": v})
    return out


def make_z_and_labels(d: int):
    """z [N, d] (float64, before storage cast) and labels; depend on d only (seed 1000 + d)."""
    rng = np.random.default_rng(1000 + d)
    # Zipf-like label distribution over N_TOK values: a few frequent, a tail of rare ones.
    p = 1.0 / np.arange(1, N_TOK + 1) ** 1.1
    p /= p.sum()
    tok = rng.choice(N_TOK, size=N, p=p).astype(np.int64)
    noise = rng.integers(0, N_NOISE, size=N).astype(np.int64)
    mu = rng.standard_normal((N_TOK, d))
    z = mu[tok] + SIGMA * rng.standard_normal((N, d))
    _, cnt = np.unique(tok, return_counts=True)
    if (cnt == 1).sum() < 3 or cnt.max() < 20:
        sys.exit(f"d={d}: tok distribution not Zipf-like enough (counts {sorted(cnt.tolist())})")
    return z, tok, noise


def make_w(d: int, n_bins: int) -> np.ndarray:
    w = np.random.default_rng(1234 + d + n_bins).standard_normal((n_bins, d))
    w = w / np.linalg.norm(w, axis=-1, keepdims=True)
    return w.astype(np.float32)


def run_harness(case_dir: Path, args: list[str]) -> dict:
    cmd = [sys.executable, str(HARNESS)] + args
    r = subprocess.run(cmd, cwd=case_dir, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"harness failed in {case_dir.name}: {' '.join(args)}\n{r.stderr}")
    out = json.loads(r.stdout)
    out.pop("seconds", None)  # wall-clock time: dropped for deterministic fixtures
    return out


def dump_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


ARGS_1D = ["z.npy", "--labels", "tok.npy", "--labels", "noise.npy", "--w", "w.npy",
           "--backend", "numpy"]
ARGS_TUPLE = ["z.npy", "--labels", "bigram.npy", "--labels", "trigram.npy", "--tuple-labels",
              "--w", "w.npy", "--backend", "numpy"]
TAIL = ["--per-label", "--counts"]


def write_case(name: str, d: int, n_bins: int, calibration: str, runs: dict[str, list[str]]) -> None:
    case_dir = OUT / "cases" / name
    case_dir.mkdir(parents=True)
    z64, tok, noise = make_z_and_labels(d)
    z_dtype = np.float16 if d >= F16_MIN_D else np.float32
    z = z64.astype(z_dtype)
    if not (np.isfinite(z).all() and (np.abs(z).sum(axis=1) > 0).all()):
        sys.exit(f"{name}: z has a non-finite or all-zero row")
    np.save(case_dir / "z.npy", z)
    np.save(case_dir / "w.npy", make_w(d, n_bins))
    np.save(case_dir / "tok.npy", tok)
    np.save(case_dir / "noise.npy", noise)
    files = {"z": "z.npy", "w": "w.npy", "tok": "tok.npy", "noise": "noise.npy"}
    # tuple labels (written for every case, the special ones included)
    bigram = np.stack([tok, np.roll(tok, 1)], axis=1).astype(np.int64)
    trigram = np.stack([tok, np.roll(tok, 1), np.roll(tok, 2)], axis=1).astype(np.int64)
    np.save(case_dir / "bigram.npy", bigram)
    np.save(case_dir / "trigram.npy", trigram)
    for stem, arr in (("bigram", bigram), ("trigram", trigram)):
        uniq = np.unique(arr, axis=0)  # same grouping as the harness: dense id = row index
        dump_json(case_dir / f"{stem}_ids.json", [[int(x) for x in row] for row in uniq])
    files.update(bigram="bigram.npy", trigram="trigram.npy",
                 bigram_ids="bigram_ids.json", trigram_ids="trigram_ids.json")
    for out_name, args in runs.items():
        dump_json(case_dir / f"{out_name}.json", run_harness(case_dir, args))
        files[out_name] = f"{out_name}.json"
    dump_json(case_dir / "case.json", {
        "d": d, "n_bins": n_bins, "N": N, "z_dtype": np.dtype(z_dtype).name,
        "calibration": calibration,
        "files": files,
        "harness": "shared/reference/softh_ref.py (run with cwd = this case directory)",
        "harness_args": runs,
        "generation": {
            "z_seed": f"default_rng({1000 + d}): tok = choice({N_TOK}, p ~ 1/k^1.1), "
                      f"noise = integers(0, {N_NOISE}), mu = standard_normal(({N_TOK}, d)), "
                      f"z = mu[tok] + {SIGMA} * standard_normal((N, d)), float64 then cast",
            "w_seed": f"default_rng({1234 + d + n_bins}).standard_normal((n_bins, d)), "
                      "row-normalised in float64, cast to float32",
            "bigram": "[tok, roll(tok, 1)]", "trigram": "[tok, roll(tok, 1), roll(tok, 2)]",
        },
    })


def write_readme(library: str) -> None:
    (OUT / "README.md").write_text(f"""# soft-entropy parity fixtures

Generated data: outputs of the reference library **{library}** (PyPI; numpy backend,
numpy {np.__version__}, scipy {_version("scipy")}) run through the peer harness
`shared/reference/softh_ref.py` on synthetic inputs. Used by the Rust parity tests; never
regenerated by CI.

Regenerate (from the repository root; venv set up as in the script's docstring):

    .venv-softh/bin/python scripts/make_softh_fixtures.py

(set `INFOPLANE_SHARED=/path/to/shared` if the shared directory is not `../shared`).

## Files

- `epsilon.json`: `find_eps(n_bins, d)` (bounds mode, the accumulator's calibration) for
  n_bins in {EPS_NBINS} and d in {EPS_DS}; `exact`: `sphere_temp_calibration(n_bins, d,
  mode="exact", eps_bracket=(1e-5, 1.0))` for n_bins in {EXACT_NBINS}, d in {EXACT_DS}.
  Combinations where scipy failed are listed under `failed` (and left out of the lists).
- `cases/d<d>_n<n_bins>/` for d in {CASE_DS}, n_bins in {CASE_NBINS}, plus
  `leading_order_d768_n100/` (`--calibration leading_order`) and `temp_override_d64_n100/`
  (`--temp 0.05`). Each holds:
  - `z.npy` [{N}, d]: float32, or float16 for d = 2048 (the harness casts to float32, exact).
    z depends on d only, so cases with the same d share identical z and labels.
  - `w.npy` [n_bins, d] float32, row-normalised; injected into the accumulator with `--w`.
  - `tok.npy`, `noise.npy` [{N}] int64; `bigram.npy` [{N}, 2], `trigram.npy` [{N}, 3] int64
    (tuple labels, one label per row).
  - `bigram_ids.json`, `trigram_ids.json`: dense id (list index) -> tuple, i.e.
    `np.unique(arr, axis=0)`, as the harness maps tuple labels; `per_label` keys are these ids.
  - `one_batch_1d.json`, `many_batch_1d.json`, `one_batch_tuple.json`, `many_batch_tuple.json`:
    harness stdout (`--batch 240` / `--batch 37`), minus the wall-clock `seconds` field.
    The two special cases have `one_batch_1d.json` only.
  - `case.json`: d, n_bins, N, z_dtype, calibration, file list, exact harness arguments
    (run with the case directory as cwd) and the generation recipe.

All entropies are the library's efficiency-normalised values (nats / ln n_bins).

## Licence

These files are generated data (synthetic random inputs and numeric outputs of
soft-entropy {library.split()[-1]}), not code from that library; they carry the repository's licence.
""")


def main() -> None:
    if not HARNESS.is_file():
        sys.exit(f"reference harness not found at {HARNESS} (set INFOPLANE_SHARED)")
    library = f"soft-entropy {_version('soft-entropy')}"
    if library != "soft-entropy 0.1.5":
        sys.exit(f"expected soft-entropy 0.1.5, found {library}")
    OUT.mkdir(parents=True, exist_ok=True)
    if (OUT / "cases").exists():
        shutil.rmtree(OUT / "cases")

    eps = make_epsilon(library)
    dump_json(OUT / "epsilon.json", eps)
    print(f"epsilon.json: {len(eps['find_eps'])} find_eps, {len(eps['exact'])} exact, "
          f"{len(eps['failed'])} failed, {len(eps['warnings'])} with warnings")

    for d in CASE_DS:
        for n_bins in CASE_NBINS:
            name = f"d{d}_n{n_bins}"
            write_case(name, d, n_bins, "find-eps", {
                "one_batch_1d": ARGS_1D + ["--batch", "240"] + TAIL,
                "many_batch_1d": ARGS_1D + ["--batch", "37"] + TAIL,
                "one_batch_tuple": ARGS_TUPLE + ["--batch", "240"] + TAIL,
                "many_batch_tuple": ARGS_TUPLE + ["--batch", "37"] + TAIL,
            })
            print(f"case {name}")
    write_case("leading_order_d768_n100", 768, 100, "leading_order", {
        "one_batch_1d": ARGS_1D + ["--batch", "240", "--calibration", "leading_order"] + TAIL,
    })
    print("case leading_order_d768_n100")
    write_case("temp_override_d64_n100", 64, 100, "fixed:0.05", {
        "one_batch_1d": ARGS_1D + ["--batch", "240", "--temp", "0.05"] + TAIL,
    })
    print("case temp_override_d64_n100")
    write_readme(library)


if __name__ == "__main__":
    main()
