#!/usr/bin/env python3
"""End-to-end throughput benchmark: `infoplane estimate` against soft-entropy 0.1.5.

Run by hand only (never by CI): it builds the release binary, writes ~0.7 GB of inputs for the
default size, and the reference run takes minutes.

Setup (once) for the reference, as the harness header says (run from the repository root):

    python3 -m venv .venv-softh
    .venv-softh/bin/pip install --no-deps soft-entropy==0.1.5
    .venv-softh/bin/pip install numpy scipy

Run (from the repository root; this script itself needs only numpy):

    INFOPLANE_SOFTH_PYTHON=.venv-softh/bin/python .venv-softh/bin/python scripts/bench_estimator.py
    ... scripts/bench_estimator.py --quick            # N = 20,000, to check the plumbing
    ... scripts/bench_estimator.py --skip-reference   # ours and the kernel bench only

Options: --n 200000 --d 768 --n-bins 100 --vocab 50000 --zipf 1.1 --batch 4096
         --python PATH   Python that has soft-entropy (default: $INFOPLANE_SOFTH_PYTHON or python3)
         --shared DIR    holds reference/softh_ref.py (default: $INFOPLANE_SHARED or <repo>/../shared)
         --quick  --skip-reference  --workdir DIR (default: a temporary directory, removed after)

Workload (numpy, fixed seeds): a stream of N + 8 tokens drawn Zipf(1.1) and folded into
[0, vocab) with (x - 1) % vocab; Z = standard normal float32 [N, d]; 8 label sets saved as int64
[N, k] files, one n-gram per row: in1..in4 (the k tokens ending at stream position i + 4) and
out1..out4 (the k tokens after it), so every position has every n-gram.

Steps:
  1. `cargo build --release`, then `infoplane estimate --seed 0 --n-bins N --tuple-labels`
     with all 8 label sets and `--save-reference-points W.npy`, twice: with `--no-null` (the same
     work as the reference, which computes no nulls: the goal is measured on this run) and with
     a shuffled null for each set (double the label work).
  2. The reference harness on the same W (`--w W.npy`), the same label files
     (`--tuple-labels`), `--batch`, numpy backend.
  3. `cargo bench -p infoplane-estimator --bench kernel` (FMA peak, matmul rate, H(Z)-alone share).
Each child runs as its own process; wall time and peak RSS (os.wait4 ru_maxrss) are recorded.
The "estimator-only" rates exclude file loading and label interning, and time the same span on
both sides: the reference's is the harness's "seconds" (from building its accumulator, with W
and the temperature, through the update loop to results(); the harness maps tuple labels to ids
with np.unique while loading, before its timer starts); ours is `infoplane estimate`'s stderr
timing line (from drawing W and the temperature, through adding the label sets and the update
loop, to the estimate; after its inputs are read and hashed, before any output is written).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = ["in1", "in2", "in3", "in4", "out1", "out2", "out3", "out4"]


def die(msg: str) -> None:
    print(f"bench_estimator: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run_child(name: str, argv: list[str], workdir: str, cwd: str | None = None, env=None) -> dict:
    """Run argv as a child; return wall seconds, peak RSS (KiB), stdout, stderr. Dies on failure."""
    out_path = os.path.join(workdir, f"{name}.stdout")
    err_path = os.path.join(workdir, f"{name}.stderr")
    print(f"[{name}] $ {' '.join(argv)}", flush=True)
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdout=fo, stderr=fe, cwd=cwd, env=env)
        except OSError as e:
            die(f"{name}: cannot start {argv[0]!r}: {e}")
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    with open(out_path, "r", errors="replace") as f:
        stdout = f.read()
    with open(err_path, "r", errors="replace") as f:
        stderr = f.read()
    if proc.returncode != 0:
        tail = "\n".join(stderr.rstrip().splitlines()[-30:])
        out_tail = "\n".join(stdout.rstrip().splitlines()[-10:])
        print(f"--- {name} stderr (tail) ---\n{tail}\n--- {name} stdout (tail) ---\n{out_tail}",
              file=sys.stderr)
        die(f"{name} exited with status {proc.returncode} after {wall:.1f} s")
    print(f"[{name}] done in {wall:.1f} s, peak RSS {rusage.ru_maxrss / 1024:.0f} MiB", flush=True)
    return {"wall": wall, "rss_kib": rusage.ru_maxrss, "stdout": stdout, "stderr": stderr}


def make_workload(args, workdir: str) -> tuple[str, dict[str, str]]:
    n, d = args.n, args.d
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    stream = (rng.zipf(args.zipf, size=n + 8) - 1) % args.vocab
    stream = stream.astype(np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(stream, 4)  # windows[j] = stream[j:j+4]
    label_paths = {}
    p = np.arange(n) + 4  # stream position of row i: 3 tokens before it and 4 after exist
    for k in range(1, 5):
        # in_k: stream[p-k+1 .. p], out_k: stream[p+1 .. p+k]
        ink = np.ascontiguousarray(windows[p - k + 1][:, :k])
        outk = np.ascontiguousarray(windows[p + 1][:, :k])
        assert ink.shape == (n, k) and outk.shape == (n, k)
        assert (ink[:, -1] == stream[p]).all() and (outk[:, 0] == stream[p + 1]).all()
        for name, arr in ((f"in{k}", ink), (f"out{k}", outk)):
            path = os.path.join(workdir, f"{name}.npy")
            np.save(path, arr.astype(np.int64))
            label_paths[name] = path
    z_path = os.path.join(workdir, "z.npy")
    zrng = np.random.default_rng(1)
    z = zrng.standard_normal((n, d), dtype=np.float32)
    np.save(z_path, z)
    del z
    uniq = {name: len(np.unique(np.load(path), axis=0)) for name, path in label_paths.items()}
    print(f"workload: N={n} d={d} vocab={args.vocab} zipf={args.zipf}, written in "
          f"{time.perf_counter() - t0:.1f} s; distinct labels: "
          + ", ".join(f"{k}={v}" for k, v in uniq.items()), flush=True)
    return z_path, label_paths


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--n-bins", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=50_000)
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--batch", type=int, default=4096, help="reference rows per update() call")
    ap.add_argument("--python", default=os.environ.get("INFOPLANE_SOFTH_PYTHON", "python3"))
    ap.add_argument("--shared", default=os.environ.get("INFOPLANE_SHARED", os.path.join(REPO, "..", "shared")))
    ap.add_argument("--quick", action="store_true", help="N = 20,000")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--workdir", default=None, help="keep inputs and outputs here (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each side; the fastest counts for both (a shared machine's speed drifts)")
    args = ap.parse_args()
    if args.quick:
        args.n = 20_000

    harness = os.path.abspath(os.path.join(args.shared, "reference", "softh_ref.py"))
    python = None
    if not args.skip_reference:
        if not os.path.isfile(harness):
            die(f"reference harness not found at {harness} (set --shared or INFOPLANE_SHARED)")
        python = shutil.which(args.python)
        if python is None:
            die(f"python {args.python!r} not found (set --python or INFOPLANE_SOFTH_PYTHON)")
        probe = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                                "sys.exit(0 if u.find_spec('soft_entropy') and u.find_spec('scipy') else 3)"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            die(f"{python} lacks soft_entropy/scipy (exit {probe.returncode}): {probe.stderr.strip()[-500:]}")
    if shutil.which("cargo") is None:
        die("cargo not found on PATH")

    tmp = None
    if args.workdir:
        workdir = os.path.abspath(args.workdir)
        os.makedirs(workdir, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="infoplane-bench-")
        workdir = tmp
    try:
        bench(args, workdir, harness, python)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def bench(args, workdir: str, harness: str, python: str | None) -> None:
    nproc = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else nproc
    print(f"machine: nproc={affinity} (os.cpu_count={nproc}), CPU: {cpu_model()}, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', '(unset)')}", flush=True)
    print(f"workdir: {workdir}", flush=True)

    build = run_child("cargo-build", ["cargo", "build", "--release"], workdir, cwd=REPO)
    binary = os.path.join(REPO, "target", "release", "infoplane")
    if not os.path.isfile(binary):
        die(f"{binary} missing after cargo build --release: {build['stderr'][-500:]}")

    z_path, label_paths = make_workload(args, workdir)
    os.sync()  # flush the freshly written inputs so their writeback does not overlap the timed runs
    w_path = os.path.join(workdir, "W.npy")

    def run_ours(tag, extra):
        out_json = os.path.join(workdir, f"{tag}.json")
        argv = [binary, "estimate", "--embeddings", z_path, "--tuple-labels",
                "--seed", "0", "--n-bins", str(args.n_bins), "--save-reference-points", w_path,
                "--output", out_json] + extra
        for name in LABELS:
            argv += ["--labels", f"{name}={label_paths[name]}"]
        child = run_child(tag, argv, workdir)
        m = re.search(r"estimated (\d+) positions .*? in ([0-9.eE+-]+) s: ([0-9.eE+-]+) positions/s", child["stderr"])
        if not m:
            die(f"no timing line in infoplane stderr:\n{child['stderr'][-2000:]}")
        if int(m.group(1)) != args.n:
            die(f"infoplane estimated {m.group(1)} positions, expected {args.n}")
        with open(out_json) as f:
            out = json.load(f)
        return child, float(m.group(2)), m.group(0), out

    # Like for like first: soft_h computes no shuffled nulls, so neither does this run.
    def fastest(runs):
        return min(runs, key=lambda r: r[1])

    ours, ours_secs, ours_line, ours_out = fastest([run_ours("infoplane", ["--no-null"]) for _ in range(args.repeat)])
    ours_null, ours_null_secs, ours_null_line, _ = fastest([run_ours("infoplane-nulls", []) for _ in range(args.repeat)])
    ours_h = float(ours_out["entropy"])
    ours_i = {name: float(ours_out["labels"][name]["mutual_information"]) for name in LABELS}

    ref = None
    if not args.skip_reference:
        argv = [python, harness, z_path, "--w", w_path, "--tuple-labels", "--batch", str(args.batch),
                "--backend", "numpy"]
        for name in LABELS:
            argv += ["--labels", label_paths[name]]
        def run_reference():
            child = run_child("reference", argv, workdir)
            try:
                out = json.loads(child["stdout"])
            except json.JSONDecodeError as e:
                die(f"reference stdout is not JSON ({e}):\n{child['stdout'][-2000:]}")
            return child, float(out["seconds"]), out

        ref, ref_secs, ref_out = fastest([run_reference() for _ in range(args.repeat)])
        ref_h = float(ref_out["H(Z)"])
        ref_i = {name: float(ref_out["I(X;Z)"][name]) for name in LABELS}
        if int(ref_out["n_bins"]) != args.n_bins or int(ref_out["N"]) != args.n:
            die(f"reference ran on N={ref_out['N']} n_bins={ref_out['n_bins']}")

    kernel = run_child("kernel-bench", ["cargo", "bench", "-p", "infoplane-estimator", "--bench", "kernel"],
                       workdir, cwd=REPO)

    # ---- report -------------------------------------------------------------------------------
    n = args.n
    print()
    print(f"=== infoplane estimate vs soft-entropy 0.1.5 (fastest of {args.repeat} runs each): N={n:,} d={args.d} n_bins={args.n_bins}, "
          f"8 tuple label sets (in1..in4, out1..out4), reference batch={args.batch} ===")
    print(f"machine: nproc={len(os.sched_getaffinity(0))}, CPU: {cpu_model()}, "
          f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', '(unset)')}")
    hdr = f"{'':<22}{'estimator s':>12}{'positions/s':>14}{'wall s':>10}{'peak RSS MiB':>14}"
    print(hdr)
    print("-" * len(hdr))
    print(f"{'infoplane (ours)':<22}{ours_secs:>12.3f}{n / ours_secs:>14,.0f}{ours['wall']:>10.2f}"
          f"{ours['rss_kib'] / 1024:>14,.0f}")
    print(f"{'  + 8 shuffled nulls':<22}{ours_null_secs:>12.3f}{n / ours_null_secs:>14,.0f}{ours_null['wall']:>10.2f}"
          f"{ours_null['rss_kib'] / 1024:>14,.0f}")
    if ref:
        print(f"{'soft-entropy (numpy)':<22}{ref_secs:>12.3f}{n / ref_secs:>14,.0f}{ref['wall']:>10.2f}"
              f"{ref['rss_kib'] / 1024:>14,.0f}")
        print("-" * len(hdr))
        ratio = ref_secs / ours_secs
        print(f"speed-up ours/reference, same work (W to estimate, positions/s): {ratio:,.1f}x "
              f"({'meets' if ratio >= 100 else 'BELOW'} goal >= 100x)")
        print(f"speed-up with our 8 nulls as well (twice the label work): {ref_secs / ours_null_secs:,.1f}x")
        print(f"wall-clock ratio (incl. loading, process start): {ref['wall'] / ours['wall']:,.1f}x; "
              f"peak RSS ours/reference: {ours['rss_kib'] / ref['rss_kib']:.2f}")
    print("note: 'infoplane (ours)' runs with --no-null (the reference computes no nulls); the row below "
          "adds a shuffled-label null per set; 'estimator s' times W through the estimate on both sides, "
          "excluding file loading and label interning (ours: its stderr timing line; reference: the harness's 'seconds').")
    print(f"ours, stderr: {ours_line}")
    print(f"ours with nulls, stderr: {ours_null_line}")
    if ref:
        print()
        print(f"{'quantity':<10}{'ours':>16}{'reference':>16}{'|diff|':>12}")
        diffs = [("H(Z)", ours_h, ref_h)] + [(f"I {k}", ours_i[k], ref_i[k]) for k in LABELS]
        for q, a, b in diffs:
            print(f"{q:<10}{a:>16.9f}{b:>16.9f}{abs(a - b):>12.2e}")
        worst = max(abs(a - b) for _, a, b in diffs)
        worst_i = max(abs(a - b) for _, a, b in diffs[1:])
        print(f"largest |diff|: H {abs(ours_h - ref_h):.2e}, I {worst_i:.2e}, overall {worst:.2e} "
              f"({'ok' if worst <= 1e-5 else 'LARGER THAN EXPECTED'}: expected ~1e-6, W is shared)")
    print()
    print("kernel bench (cargo bench -p infoplane-estimator --bench kernel):")
    for line in kernel["stdout"].splitlines():
        if "GFLOP/s" in line or "%" in line or line.startswith("workload"):
            print("  " + line)
    # The ceiling any exact-f32 estimator meets on this machine: the product z̄Wᵀ alone at the
    # cores' FMA peak, against the reference's positions/s.
    peak = re.search(r"f32 FMA peak[^\n]*?([0-9.]+) GFLOP/s", kernel["stdout"])
    if ref and peak:
        product_s = 2.0 * n * args.d * args.n_bins / (float(peak.group(1)) * 1e9)
        print(f"ceiling: the product z̄Wᵀ alone at the FMA peak ({float(peak.group(1)):.1f} GFLOP/s) takes "
              f"{product_s:.3f} s = {ref_secs / product_s:,.0f}x the reference; ours reaches "
              f"{ratio / (ref_secs / product_s):.0%} of that")


if __name__ == "__main__":
    main()
