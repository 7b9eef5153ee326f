#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets in fuzz/ (docs/fuzzing.md), each seed < 200 KB.

Run by hand only (never by CI), from the repository root, after `cargo build --release`:

    /path/to/venv/bin/python scripts/make_fuzz_seeds.py [--data-dir DIR]

DIR is the shared data root (default: $INFOPLANE_SHARED_DATA, else `<repo>/../shared/data`). Needs
numpy, gguf and safetensors. Writes fuzz/corpus/<target>/ (replaced):

  npy/                 small real .npy files from fixtures/softh (float32 W and Z, int64 labels), and
                       hand-made ones: float16, uint8, format 2.0, 0-d, empty, Fortran order, big-endian
  partial/             partial statistics written by the release binary: `estimate --partial-output`
                       (1-d labels with nulls, tuple labels without, per-label, uniform weighting) and
                       `merge-partials --partial-output`
  gguf/                stories260k_sp.gguf cut to one block (a complete, loadable llama GGUF with Q8_0,
                       F16, Q4_0, Q4_1, Q5_0, Q5_1, BF16 and F32 tensors); SmolLM2's metadata with the
                       vocabulary cut to 600 tokens and three of its tensors; the first 64 KB of the real
                       SmolLM2 file (a header cut short); the runtime's quant_types.gguf
  safetensors/         weights for the fuzz target's tiny Llama config (d = 16, 1 layer, tied) in F32,
                       F16 and BF16; the llama fixture's header with its first tensor only
  llama2c_checkpoint/  tiny checkpoints (vocab 512 so tok512.bin fits) with shared and separate
                       classifiers; the first 64 KB of stories260K.bin
  llama2c_tokenizer/   u16 vocabulary size + tokenizer .bin: tok512.bin whole, and its first 300 tokens
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import save as st_save

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "fuzz" / "corpus"
MAX_SEED = 200_000


def out_dir(name: str) -> Path:
    d = CORPUS / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def put(d: Path, name: str, data: bytes) -> None:
    assert len(data) < MAX_SEED, f"{d.name}/{name}: {len(data)} bytes"
    (d / name).write_bytes(data)


def npy_bytes(arr: np.ndarray, version=(1, 0), fortran=False) -> bytes:
    import io

    buf = io.BytesIO()
    if fortran:
        arr = np.asfortranarray(arr)
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def npy_seeds() -> None:
    d = out_dir("npy")
    case = REPO / "fixtures/softh/cases/d16_n50"
    for name in ["w.npy", "z.npy", "tok.npy", "bigram.npy"]:
        put(d, name, (case / name).read_bytes())
    rng = np.random.default_rng(0)
    put(d, "f16.npy", npy_bytes(rng.standard_normal((5, 4)).astype(np.float16)))
    put(d, "u8.npy", npy_bytes(np.arange(10, dtype=np.uint8)))
    put(d, "v2_i32.npy", npy_bytes(np.arange(6, dtype=np.int32).reshape(2, 3), version=(2, 0)))
    put(d, "scalar.npy", npy_bytes(np.array(3.5, dtype=np.float64)))
    put(d, "empty.npy", npy_bytes(np.zeros((0, 4), dtype=np.float32)))
    put(d, "fortran.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3), fortran=True))
    put(d, "big_endian.npy", npy_bytes(np.arange(4, dtype=">f4")))


def partial_seeds(binary: Path) -> None:
    d = out_dir("partial")
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as t:
        t = Path(t)
        z = rng.standard_normal((200, 8)).astype(np.float32)
        (t / "z.npy").write_bytes(npy_bytes(z))
        (t / "z2.npy").write_bytes(npy_bytes(z[:120]))
        labels = rng.integers(0, 6, size=(200, 2)).astype(np.int64)
        (t / "l.npy").write_bytes(npy_bytes(labels[:, 0].copy()))
        (t / "l2.npy").write_bytes(npy_bytes(labels[:120, 0].copy()))
        (t / "t.npy").write_bytes(npy_bytes(labels))
        runs = {
            "one_set_with_null": ["--embeddings", "z.npy", "--labels", "tok=l.npy", "--n-bins", "10"],
            "tuple_no_null": ["--embeddings", "z.npy", "--labels", "bi=t.npy", "--tuple-labels", "--no-null", "--n-bins", "6"],
            "two_sets_per_label": ["--embeddings", "z.npy", "--labels", "cols=t.npy", "--per-label", "--n-bins", "4"],
            "uniform": ["--embeddings", "z.npy", "--labels", "tok=l.npy", "--weighting", "uniform", "--min-count", "2", "--n-bins", "5"],
            "shard": ["--embeddings", "z2.npy", "--labels", "tok=l2.npy", "--n-bins", "10"],
        }
        for name, args in runs.items():
            subprocess.run([str(binary), "estimate", *args, "--partial-output", f"{name}.safetensors", "--output", f"{name}.json"], cwd=t, check=True, capture_output=True)
            put(d, f"{name}.safetensors", (t / f"{name}.safetensors").read_bytes())
        subprocess.run(
            [str(binary), "merge-partials", "one_set_with_null.safetensors", "shard.safetensors", "--partial-output", "merged.safetensors", "--output", "merged.json"],
            cwd=t, check=True, capture_output=True,
        )
        put(d, "merged.safetensors", (t / "merged.safetensors").read_bytes())


def copy_gguf(src: Path, keep_tensor, edit_field=None) -> bytes:
    """A copy of `src` with the tensors `keep_tensor(name)` accepts; `edit_field(name, value)`
    may rewrite metadata values (returning None drops the key)."""
    r = gguf.GGUFReader(src)
    with tempfile.TemporaryDirectory() as t:
        path = Path(t) / "out.gguf"
        w = gguf.GGUFWriter(path, arch=r.fields["general.architecture"].contents(), use_temp_file=False)
        for f in r.fields.values():
            if f.name.startswith("GGUF.") or f.name == "general.architecture":
                continue
            value = f.contents()
            if edit_field is not None:
                value = edit_field(f.name, value)
                if value is None:
                    continue
            sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
            w.add_key_value(f.name, value, f.types[0], sub_type=sub)
        for tensor in r.tensors:
            if keep_tensor(tensor.name):
                w.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


def gguf_seeds(data_dir: Path) -> None:
    d = out_dir("gguf")
    stories = REPO / "crates/infoplane-runtime/tests/fixtures/stories260k_sp.gguf"

    def one_block(name, value):
        return 1 if name == "llama.block_count" else value

    put(d, "stories260k_1_block.gguf", copy_gguf(stories, lambda n: not n.startswith("blk.") or n.startswith("blk.0."), one_block))
    put(d, "quant_types.gguf", (REPO / "crates/infoplane-runtime/tests/fixtures/quant_types.gguf").read_bytes())
    smol = data_dir / "smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf"
    if smol.is_file():
        keep_tokens = 600

        def small_vocab(name, value):
            if name in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"):
                return value[:keep_tokens]
            if name == "tokenizer.ggml.merges":
                vocab = set(r_tokens[:keep_tokens])
                return [m for m in value if all(p in vocab for p in m.split(" ")) and m.replace(" ", "") in vocab]
            if name == "tokenizer.chat_template":
                return None
            return value

        r_tokens = gguf.GGUFReader(smol).fields["tokenizer.ggml.tokens"].contents()
        put(d, "smollm2_small_vocab_3_tensors.gguf", copy_gguf(smol, lambda n: n in ("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "blk.0.attn_k.weight"), small_vocab))
        with open(smol, "rb") as f:
            put(d, "smollm2_first_64k.gguf", f.read(65536))
    else:
        print(f"SKIPPED SmolLM2 seeds: {smol} not found")


TINY = dict(vocab=384, d=16, inter=32, heads=2)


def tiny_llama_tensors(dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    v, d, h = TINY["vocab"], TINY["d"], TINY["inter"]
    g = lambda *s: (0.1 * rng.standard_normal(s)).astype(np.float32)
    t = {
        "model.embed_tokens.weight": g(v, d),
        "model.norm.weight": np.ones(d, np.float32),
        "model.layers.0.input_layernorm.weight": np.ones(d, np.float32),
        "model.layers.0.post_attention_layernorm.weight": np.ones(d, np.float32),
        "model.layers.0.self_attn.q_proj.weight": g(d, d),
        "model.layers.0.self_attn.k_proj.weight": g(d, d),
        "model.layers.0.self_attn.v_proj.weight": g(d, d),
        "model.layers.0.self_attn.o_proj.weight": g(d, d),
        "model.layers.0.mlp.gate_proj.weight": g(h, d),
        "model.layers.0.mlp.up_proj.weight": g(h, d),
        "model.layers.0.mlp.down_proj.weight": g(d, h),
    }
    return {k: x.astype(dtype) for k, x in t.items()}


def safetensors_seeds() -> None:
    d = out_dir("safetensors")
    put(d, "tiny_llama_f32.safetensors", st_save(tiny_llama_tensors(np.float32), metadata={"format": "pt"}))
    put(d, "tiny_llama_f16.safetensors", st_save(tiny_llama_tensors(np.float16)))
    # BF16: the top half of each float32 (safetensors.numpy has no bfloat16 dtype).
    f32 = tiny_llama_tensors(np.float32)
    header, body, at = {}, b"", 0
    for k in sorted(f32):
        raw = (f32[k].view(np.uint32) >> 16).astype("<u2").tobytes()
        header[k] = {"dtype": "BF16", "shape": list(f32[k].shape), "data_offsets": [at, at + len(raw)]}
        body += raw
        at += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    put(d, "tiny_llama_bf16.safetensors", struct.pack("<Q", len(h)) + h + body)
    # The llama fixture's real header, cut to the first tensor (offsets now point past the end).
    real = (REPO / "fixtures/models/llama/model.safetensors").read_bytes()
    n = struct.unpack("<Q", real[:8])[0]
    put(d, "llama_fixture_header_cut.safetensors", real[: 8 + n + 4096])


def llama2c_checkpoint(shared: bool, dim=8, hidden=16, layers=1, heads=2, kv=2, vocab=512, seq=16) -> bytes:
    rng = np.random.default_rng(3)
    hd = dim // heads
    kvd = dim * kv // heads
    sizes = [vocab * dim, layers * dim, layers * dim * dim, layers * kvd * dim, layers * kvd * dim, layers * dim * dim,
             layers * dim, layers * hidden * dim, layers * dim * hidden, layers * hidden * dim, dim, seq * hd // 2, seq * hd // 2]
    if not shared:
        sizes.append(vocab * dim)
    floats = (0.1 * rng.standard_normal(sum(sizes))).astype("<f4")
    header = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq)
    return header + floats.tobytes()


def llama2c_seeds(data_dir: Path) -> None:
    d = out_dir("llama2c_checkpoint")
    put(d, "tiny_shared.bin", llama2c_checkpoint(True))
    put(d, "tiny_separate_gqa.bin", llama2c_checkpoint(False, heads=2, kv=1))
    stories = REPO / "data/stories260K/stories260K.bin"
    put(d, "stories260K_first_64k.bin", stories.read_bytes()[:65536])

    d = out_dir("llama2c_tokenizer")
    tok = (REPO / "data/stories260K/tok512.bin").read_bytes()
    put(d, "tok512.bin", struct.pack("<H", 512) + tok)
    at, n = 4, 0
    while n < 300:
        (length,) = struct.unpack("<i", tok[at + 4 : at + 8])
        at += 8 + length
        n += 1
    put(d, "tok512_first_300.bin", struct.pack("<H", 300) + tok[:at])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("INFOPLANE_SHARED_DATA", REPO.parent / "shared/data")))
    ap.add_argument("--binary", type=Path, default=REPO / "target/release/infoplane")
    a = ap.parse_args()
    npy_seeds()
    partial_seeds(a.binary)
    gguf_seeds(a.data_dir)
    safetensors_seeds()
    llama2c_seeds(a.data_dir)
    for d in sorted(CORPUS.iterdir()):
        files = sorted(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, largest {max(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
