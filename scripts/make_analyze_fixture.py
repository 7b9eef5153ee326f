#!/usr/bin/env python3
"""Parity fixture for `infoplane analyze` (issue 4, item 6): SmolLM2-135M-Instruct GGUF on 20 C4 documents.

Run by hand only (never by CI):

    /path/to/venv/bin/python scripts/make_analyze_fixture.py [--data-dir DIR] [--shared-dir DIR]

--data-dir: the shared data root with `c4_en_sample_1k/` and `smollm2_135m_instruct_gguf/`
(default $INFOPLANE_SHARED_DATA, else `<repo>/../shared/data`); --shared-dir: the directory holding
`reference/softh_ref.py` (default $INFOPLANE_SHARED, else `<repo>/../shared`). Needs torch,
transformers (5.x), accelerate, gguf, numpy, scipy and soft-entropy 0.1.5 in the running interpreter
(the harness is run with the same interpreter). Output: `fixtures/analyze_smollm2/` (replaced).

Definition (what the Rust analysis must reproduce):
  corpus      the first DOCS documents of the C4 sample whose text is not empty after strip(), in file
              order, copied to corpus.jsonl as {"text": ...} lines
  tokens      each document tokenised alone by transformers' GGUF tokenizer with its default special
              tokens (it adds none), truncated to the first MAX_TOKENS ids -> token_ids.json
  states      transformers' dequantised f32 model, eager attention, one document per forward; hidden
              state 0 = embedding output, l = output of block l before the final norm (l = 1..30),
              plus `final_norm` (block 30's output after the final RMSNorm)
  positions   per document i in [K-1, len-K) with K = ORDERS = 4 (0-based), all documents concatenated
              in order
  labels      in_k at i = (t[i-k+1], ..., t[i]); out_k = (t[i+1], ..., t[i+k]), k = 1..4, each a tuple
              label (the harness maps rows to ids with np.unique(axis=0))
  W           W.npy, [100, 576] f32: numpy default_rng(W_SEED).standard_normal((100, 576)) in float64,
              rows divided by their norm, cast to f32 (the harness row-normalises it again in f32)
  estimator   soft-entropy 0.1.5's numpy SoftEntropyAccumulator through shared/reference/softh_ref.py:
              W replaced, find_eps calibration, frequency weighting (the library's only kind), n = 100,
              one update() over all positions of a layer (they fit in one --batch)
  output      expected.json: per layer entropy = H(Z), complexity_k = I(in_k; Z), expressivity_k =
              I(out_k; Z), all efficiency-normalised (divided by ln 100) as the library reports them
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version as _version
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "fixtures" / "analyze_smollm2"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_model_fixtures as mm  # noqa: E402  (shared hook-based forward)

C4 = "c4_en_sample_1k/c4_en_train00000_first1000.jsonl"
GGUF_DIR = "smollm2_135m_instruct_gguf"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DOCS = 20
MAX_TOKENS = 128
ORDERS = 4
N_BINS = 100
W_SEED = 20260414


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--shared-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data_dir or os.environ.get("INFOPLANE_SHARED_DATA") or (REPO.parent / "shared" / "data"))
    shared = Path(args.shared_dir or os.environ.get("INFOPLANE_SHARED") or (REPO.parent / "shared"))
    harness = shared / "reference" / "softh_ref.py"
    for p in (data / C4, data / GGUF_DIR / GGUF, harness):
        if not p.is_file():
            sys.exit(f"not found: {p}")

    # Corpus: first DOCS non-empty documents.
    docs, skipped_empty, lines_read = [], 0, 0
    with open(data / C4, encoding="utf-8") as f:
        for line in f:
            lines_read += 1
            text = json.loads(line)["text"]
            if not text.strip():
                skipped_empty += 1
                continue
            docs.append(text)
            if len(docs) == DOCS:
                break

    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(data / GGUF_DIR), gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(str(data / GGUF_DIR), gguf_file=GGUF, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    smollm = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    smollm.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    corpus_lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs)
    (OUT / "corpus.jsonl").write_text(corpus_lines, encoding="utf-8")

    token_ids, full_lengths, smollm_same = [], [], True
    for t in docs:
        ids = tok.encode(t)
        assert ids == tok.encode(t, add_special_tokens=False)
        full_lengths.append(len(ids))
        smollm_same &= smollm.encode(t).ids[:MAX_TOKENS] == ids[:MAX_TOKENS]
        token_ids.append(ids[:MAX_TOKENS])
    (OUT / "token_ids.json").write_text(json.dumps({
        "note": f"per document: transformers GGUF tokenizer ids (no special tokens added), first {MAX_TOKENS}",
        "untruncated_lengths": full_lengths,
        "documents": token_ids}, indent=None) + "\n")

    # Positions and tuple labels.
    K = ORDERS
    pos_doc, pos_idx = [], []
    labels = {f"in_{k}": [] for k in range(1, K + 1)} | {f"out_{k}": [] for k in range(1, K + 1)}
    for d, t in enumerate(token_ids):
        for i in range(K - 1, len(t) - K):
            pos_doc.append(d)
            pos_idx.append(i)
            for k in range(1, K + 1):
                labels[f"in_{k}"].append(t[i - k + 1:i + 1])
                labels[f"out_{k}"].append(t[i + 1:i + k + 1])
    n_pos = len(pos_idx)
    per_doc_positions = [int(sum(1 for x in pos_doc if x == d)) for d in range(len(token_ids))]

    # Hidden states, one document at a time, gathered at the valid positions.
    L = model.config.num_hidden_layers
    d_model = model.config.hidden_size
    Z = np.zeros((L + 2, n_pos, d_model), dtype=np.float32)  # 0..L, then final_norm
    row = 0
    t0 = time.time()
    for d, t in enumerate(token_ids):
        r = mm.run_case(model, "llama", t)
        idx = [i for dd, i in zip(pos_doc, pos_idx) if dd == d]
        Z[:L + 1, row:row + len(idx)] = r["hidden"][:, idx]
        Z[L + 1, row:row + len(idx)] = r["final_norm"][idx]
        row += len(idx)
    assert row == n_pos
    forward_s = time.time() - t0

    rng = np.random.default_rng(W_SEED)
    g = rng.standard_normal((N_BINS, d_model))
    W = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)
    np.save(OUT / "W.npy", W)

    layers = []
    tmp = Path(tempfile.mkdtemp(prefix="analyze_fixture_"))
    try:
        label_files = []
        for name, rows in labels.items():
            p = tmp / f"{name}.npy"
            np.save(p, np.asarray(rows, dtype=np.int64))
            label_files += ["--labels", str(p)]
        names = list(labels)
        eps = None
        for li in range(L + 2):
            name = str(li) if li <= L else "final_norm"
            zp = tmp / "z.npy"
            np.save(zp, Z[li])
            cmd = [sys.executable, str(harness), str(zp), "--w", str(OUT / "W.npy"), *label_files,
                   "--tuple-labels", "--n-bins", str(N_BINS), "--calibration", "find_eps",
                   "--batch", str(max(4096, n_pos))]
            res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            assert res["N"] == n_pos and res["n_bins"] == N_BINS and res["d"] == d_model
            assert eps is None or eps == res["temperature"]
            eps = res["temperature"]
            entry = {"layer": name, "entropy": res["H(Z)"]}
            for k in range(1, K + 1):
                entry[f"complexity_{k}"] = res["I(X;Z)"][f"in_{k}"]
            for k in range(1, K + 1):
                entry[f"expressivity_{k}"] = res["I(X;Z)"][f"out_{k}"]
            entry["n_unique_labels"] = {n: res["n_unique_labels"][n] for n in names}
            layers.append(entry)
            print(f"layer {name}: H={entry['entropy']:.4f} C1={entry['complexity_1']:.4f} "
                  f"E1={entry['expressivity_1']:.4f} C4={entry['complexity_4']:.4f}", flush=True)
        harness_cmd = " ".join(["python", "shared/reference/softh_ref.py", "Z_<layer>.npy", "--w", "W.npy",
                                *[f"--labels {n}.npy" for n in names], "--tuple-labels", "--n-bins",
                                str(N_BINS), "--calibration", "find_eps", "--batch", str(max(4096, n_pos))])
    finally:
        shutil.rmtree(tmp)

    versions = {"soft-entropy": _version("soft-entropy"), "torch": torch.__version__,
                "transformers": _version("transformers"), "gguf": _version("gguf"),
                "tokenizers": _version("tokenizers"), "accelerate": _version("accelerate"),
                "numpy": np.__version__, "scipy": _version("scipy"), "python": sys.version.split()[0]}
    expected = {
        "versions": versions,
        "settings": {
            "model": f"{GGUF_DIR}/{GGUF}",
            "model_loader": "transformers AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., "
                            "dtype=float32, attn_implementation='eager') (dequantised to f32)",
            "tokenizer": "transformers AutoTokenizer.from_pretrained(dir, gguf_file=...), default special "
                         "tokens (none added)",
            "smollm_pretokenizer_gives_same_ids": smollm_same,
            "corpus": C4,
            "corpus_sha256_of_copy": sha256_bytes(corpus_lines.encode("utf-8")),
            "documents": len(docs),
            "document_selection": "first 20 with text.strip() != '' in file order",
            "lines_read": lines_read, "empty_documents_skipped": skipped_empty,
            "max_tokens": MAX_TOKENS,
            "orders": K,
            "valid_positions": f"per document i in [{K - 1}, len - {K}) (0-based)",
            "positions": n_pos,
            "positions_per_document": per_doc_positions,
            "n_bins": N_BINS,
            "calibration": "find_eps",
            "epsilon": eps,
            "weighting": "frequency",
            "backoff": "none",
            "dtype": "f32",
            "reference_points": "W.npy",
            "W_seed": W_SEED,
            "W_recipe": "numpy.random.default_rng(W_seed).standard_normal((100, 576)) float64, rows / norm, "
                        "cast to float32",
            "W_sha256_f32_le": sha256_bytes(W.astype("<f4").tobytes()),
            "label_sets": {f"in_{k}": f"complexity_{k}: (t[i-{k - 1}..i])" for k in range(1, K + 1)} |
                          {f"out_{k}": f"expressivity_{k}: (t[i+1..i+{k}])" for k in range(1, K + 1)},
            "harness": "shared/reference/softh_ref.py (numpy SoftEntropyAccumulator, acc.w replaced by the "
                       "row-normalised W, one update() per layer)",
            "harness_command": harness_cmd,
            "hidden_states": "index 0 = embedding output; l = block l output before the final norm; "
                             "final_norm = model.norm(block 30 output)",
            "values": "efficiency-normalised (nats / ln n_bins), as the library reports",
            "forward_seconds": round(forward_s, 1),
        },
        "layers": layers,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    (OUT / "README.md").write_text(README.format(v=versions, cmd=harness_cmd, n_pos=n_pos, eps=eps,
                                                 seed=W_SEED, same=smollm_same))
    print(f"wrote {OUT}: {n_pos} positions, epsilon {eps}")


README = """# `infoplane analyze` parity fixture: SmolLM2-135M-Instruct (GGUF Q4_1) on 20 C4 documents

Made by `scripts/make_analyze_fixture.py` (see its docstring for the exact definition) with
soft-entropy {v[soft-entropy]}, transformers {v[transformers]}, torch {v[torch]}, gguf {v[gguf]},
tokenizers {v[tokenizers]}, numpy {v[numpy]}, scipy {v[scipy]}, Python {v[python]}.

- `corpus.jsonl`: the first 20 non-empty documents of `c4_en_sample_1k/c4_en_train00000_first1000.jsonl`.
- `token_ids.json`: each document's ids from transformers' GGUF tokenizer (no special tokens added),
  truncated to 128; the untruncated lengths too. (The llama.cpp `smollm` pre-tokenizer gives the same
  ids on these documents: {same}.)
- `W.npy`: the [100, 576] f32 reference points (numpy `default_rng({seed})`, rows normalised).
- `expected.json`: per hidden state (`layer` "0" = embedding output, "1".."30" = block outputs before
  the final norm, "final_norm"): `entropy`, `complexity_1..4`, `expressivity_1..4`, plus the label
  cardinalities; and every setting ({n_pos} positions, epsilon {eps}).

Reference computation per layer (hidden states from transformers' dequantised f32 model, gathered at
positions i in [3, len-4) of every document, all documents concatenated in order):

    {cmd}

where `in_k.npy` / `out_k.npy` are int64 [N, k] arrays of the input / output n-gram tuples
(in_k: t[i-k+1..i], out_k: t[i+1..i+k]). The equivalent `infoplane analyze` settings are
`--backoff none --weighting frequency --aggregate mean-of-ratios --reference-points W.npy --dtype f32
--n-bins 100 --calibration find-eps --orders 4 --max-tokens 128 --max-docs 20`.
"""

if __name__ == "__main__":
    main()
