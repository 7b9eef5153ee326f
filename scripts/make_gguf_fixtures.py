#!/usr/bin/env python3
"""Parity fixtures for infoplane's GGUF loader and tokenizer: SmolLM2-135M-Instruct (Q4_1).

Run by hand only (never by CI):

    /path/to/venv/bin/python scripts/make_gguf_fixtures.py [--data-dir DIR]

DIR is the shared data root holding `smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf`;
default: $INFOPLANE_SHARED_DATA, else `<repo>/../shared/data`. Needs torch, transformers (5.x),
accelerate, gguf, tokenizers, numpy. Output: `fixtures/smollm2_gguf/` (replaced).

The reference is transformers' own GGUF support: `from_pretrained(dir, gguf_file=name)` dequantises
every tensor to float32 (and un-permutes llama.cpp's q/k row order, checked below) and converts the
embedded tokenizer. Forward in float32, eager attention, eval mode.

Writes:
  tokens.json     [{"text", "ids", "n", "special_ids_added", "ids_smollm_pretokenizer"?}] for ~24 texts;
                  ids = AutoTokenizer(gguf).encode(text) with its default special tokens (it adds none).
                  Where the llama.cpp / original-HF pre-tokenizer of `pre = smollm` (digits split off
                  first, then the GPT-2 regex) gives other ids, they are given as ids_smollm_pretokenizer.
  texts.json      versions, tokenizer and model facts, checks, and the hidden-state cases
  case{i}_hidden_states.npy  f32 [31, T, 576]  index 0 = embedding output, l = block l before final norm
  case{i}_final_norm.npy     f32 [T, 576]
  case0_logits.npy           f32 [T, 49152]    full logits, case 0 only (it is short)
  case{i}_logits_top_ids.npy int32 [T, 32], case{i}_logits_top_values.npy f32 [T, 32]: the 32 largest
                             logits per position (descending), every case
  README.md
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from importlib.metadata import version as _version
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "fixtures" / "smollm2_gguf"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_model_fixtures as mm  # noqa: E402  (shared hook-based forward)

SUBDIR = "smollm2_135m_instruct_gguf"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOPK = 32

TOKEN_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    " leading and trailing spaces  ",
    "Café, naïve, résumé, Zürich, São Paulo, Ελληνικά, Русский текст.",
    "日本語のテキストと中文字符，한국어도。",
    "Emoji: 🙂🚀👍🏽 🇫🇷 ❤️ done",
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n\tlet v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n\tprintln!(\"{:?}\", v);\n}",
    "a  b   c    d\t\te\n\nf\n\n\n   g \t \n",
    "    indented\n        more\n\t\ttabs\r\nwindows line",
    "3.14159 2718281828 1,000,000 0x1F 42nd 2024-11-23",
    "x  1 and  22 and\n\n333 and \t4",
    "Items:\n    1. first\n    2. second\n\n3 apples, 4  pears",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nBonjour, ça va ? 🙂<|im_end|>\n<|im_start|>assistant\nOui !<|im_end|>\n",
    "<|endoftext|>text after the end-of-text token",
    "<file_sep>src/main.py\n<filename>x<|im_end|>",
    "It's, I'm, they'll, we've, she'd, DON'T, O'Neil",
    "URL: https://example.com/a?b=c&d=e#frag; email: someone@example.org",
    "Mixed: naïve🙂日本123abc!!!???...",
    "∑_{i=1}^{n} i² = n(n+1)/2 ≤ ∞ → ✓",
    "",
    "   ",
    "\n",
    "SmolLM2 is a family of compact language models available in three sizes: 135M, 360M, and 1.7B "
    "parameters.",
]

HIDDEN_CASES = [
    "The quick brown fox jumps over the lazy dog.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    "The capital of France is Paris.<|im_end|>\n",
    "def add(a, b):\n    return a + b  # café 🙂 12345",
]


def data_dir(arg):
    if arg:
        return Path(arg)
    env = os.environ.get("INFOPLANE_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


def versions():
    return {"torch": torch.__version__, "transformers": _version("transformers"),
            "gguf": _version("gguf"), "tokenizers": _version("tokenizers"),
            "accelerate": _version("accelerate"), "numpy": np.__version__,
            "python": sys.version.split()[0]}


def llamacpp_permute(w, n_head):
    """The row permutation llama.cpp's converter applies to q/k weights (HF -> GGUF)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_facts(path: Path, model):
    import gguf
    r = gguf.GGUFReader(str(path))

    def field(k):
        f = r.fields[k]
        v = f.parts[f.data[0]]
        if f.types and f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(v).decode("utf-8")
        return v.tolist()[0] if len(v) == 1 else v.tolist()

    meta = {k: field(k) for k in ["general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.pre",
                                  "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
                                  "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                  "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
                                  "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon"]
            if k in r.fields}
    tensors = {t.name: t for t in r.tensors}
    cfg = model.config
    checks = {}
    for l in (0, cfg.num_hidden_layers - 1):
        att = model.model.layers[l].self_attn
        for short, mod, nh in (("q", att.q_proj, cfg.num_attention_heads),
                               ("k", att.k_proj, cfg.num_key_value_heads),
                               ("v", att.v_proj, None)):
            t = tensors[f"blk.{l}.attn_{short}.weight"]
            raw = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            hf = mod.weight.detach().numpy()
            key = f"blk.{l}.attn_{short}"
            if nh is None:
                checks[key] = "hf == gguf dequantised (no permutation for v)" if np.array_equal(raw, hf) \
                    else f"DIFFERS max {np.abs(raw - hf).max():.3g}"
            else:
                ok = np.array_equal(llamacpp_permute(hf, nh), raw)
                same = np.array_equal(hf, raw)
                checks[key] = ("hf == un-permuted gguf rows (transformers reverses llama.cpp's q/k permutation)"
                               if ok and not same else f"unexpected: permuted-equal={ok} raw-equal={same}")
    emb = tensors["token_embd.weight"]
    raw = gguf.quants.dequantize(emb.data, emb.tensor_type).astype(np.float32)
    checks["token_embd"] = ("hf embed_tokens == gguf Q8_0 dequantised; lm_head tied to it"
                            if np.array_equal(raw, model.model.embed_tokens.weight.detach().numpy())
                            and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
                            else "DIFFERS")
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    return meta, checks, types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=None, help="shared data root (default $INFOPLANE_SHARED_DATA)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    src = data_dir(args.data_dir) / SUBDIR
    if not (src / GGUF).is_file():
        sys.exit(f"not found: {src / GGUF} (pass --data-dir or set INFOPLANE_SHARED_DATA)")

    from tokenizers import Tokenizer, pre_tokenizers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(src), gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=GGUF, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    assert model.config._attn_implementation == "eager" and model.dtype == torch.float32

    # The pre-tokenizer llama.cpp uses for `pre = smollm` (and the original HF tokenizer.json of
    # SmolLM2): split every digit off first, then the GPT-2 byte-level regex.
    smollm = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    smollm.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)

    special_ids = sorted(tok.all_special_ids)
    added = {int(k): v.content for k, v in tok.added_tokens_decoder.items()}
    tokens = []
    n_differ = 0
    for text in TOKEN_TEXTS:
        ids = tok.encode(text)
        plain = tok.encode(text, add_special_tokens=False)
        assert ids == plain, "the GGUF tokenizer was expected to add no special tokens"
        e = {"text": text, "ids": ids, "n": len(ids), "special_ids_added": [],
             "decodes_to_text": tok.decode(ids) == text}
        alt = smollm.encode(text).ids
        if alt != ids:
            e["ids_smollm_pretokenizer"] = alt
            n_differ += 1
        tokens.append(e)
    (OUT / "tokens.json").write_text(json.dumps(tokens, indent=1, ensure_ascii=False) + "\n")

    meta, weight_checks, tensor_types = gguf_facts(src / GGUF, model)

    cases = []
    hf_desc = None
    for i, text in enumerate(HIDDEN_CASES):
        ids = tok.encode(text)
        assert len(ids) <= 40
        r = mm.run_case(model, "llama", ids)
        np.save(OUT / f"case{i}_hidden_states.npy", r["hidden"])
        np.save(OUT / f"case{i}_final_norm.npy", r["final_norm"].astype(np.float32))
        lg = r["logits"]
        if i == 0:
            np.save(OUT / f"case{i}_logits.npy", lg)
        top = np.argsort(-lg, axis=-1, kind="stable")[:, :TOPK]
        np.save(OUT / f"case{i}_logits_top_ids.npy", top.astype(np.int32))
        np.save(OUT / f"case{i}_logits_top_values.npy", np.take_along_axis(lg, top, -1).astype(np.float32))
        d = mm.describe_hf_hidden(r["hf_hidden"], r["hidden"], r["final_norm"])
        assert hf_desc in (None, d)
        hf_desc = d
        h = r["hidden"]
        rel = [float(np.linalg.norm(h[l] - h[l - 1]) / np.linalg.norm(h[l - 1])) for l in range(1, h.shape[0])]
        assert min(rel) > 1e-3, rel
        attn = mm.attention_stats(r["attentions"]) if len(ids) > 4 else None
        cases.append({"text": text, "token_ids": ids, "n_tokens": len(ids),
                      "hidden_states_shape": list(h.shape), "final_norm_shape": list(r["final_norm"].shape),
                      "full_logits_stored": i == 0, "logits_shape": list(lg.shape),
                      "greedy_next_tokens": [tok.decode([int(t)]) for t in lg.argmax(-1)],
                      "relative_change_per_block": [round(x, 4) for x in rel],
                      "attention_mean_entropy_over_uniform": None if attn is None else
                      [a["mean_entropy_over_uniform"] for a in attn]})

    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    cids = tok(chat, return_tensors="pt").input_ids
    with torch.no_grad():
        gen = model.generate(cids, max_new_tokens=16, do_sample=False)
    answer = tok.decode(gen[0][cids.shape[1]:])

    info = {
        "source": f"{SUBDIR}/{GGUF}",
        "versions": versions(),
        "transformers_version": _version("transformers"),
        "torch_version": torch.__version__,
        "gguf_metadata": meta,
        "gguf_tensor_types": tensor_types,
        "weight_checks": weight_checks,
        "tokenizer": {
            "class": type(tok).__name__,
            "adds_bos": False, "adds_eos": False,
            "note": "encode(text) with the default add_special_tokens=True adds no token (GGUF "
                    "add_bos_token = false; transformers' post-processor is an empty template). "
                    "bos_token as transformers reports it is <|im_start|> (id 1).",
            "bos_token": tok.bos_token, "eos_token": tok.eos_token, "unk_token": tok.unk_token,
            "pad_token": tok.pad_token, "special_ids": special_ids, "added_tokens": added,
            "pre_tokenizer": json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"],
            "smollm_pretokenizer_note": (
                "transformers' GGUF converter ignores `pre = smollm` and uses the plain GPT-2 ByteLevel "
                "regex. llama.cpp (and the original HF tokenizer.json) first split off every digit, "
                "which lets whitespace before a digit merge (e.g. 'x  1': transformers [104, 216, 216, "
                "33], smollm [104, 256, 33]). tokens.json gives ids_smollm_pretokenizer where they differ "
                f"({n_differ} of {len(tokens)} texts)."),
        },
        "model_config": json.loads(model.config.to_json_string()),
        "hf_output_hidden_states": hf_desc,
        "layout": {
            "hidden_states": "[31, T, 576] f32; index 0 = embedding output; index l = output of block l "
                             "before the final norm (l = 1..30)",
            "final_norm": "[T, 576] f32 = model.norm(block 30 output)",
            "logits": f"case0_logits.npy: full [T, 49152] f32 for case 0 only; every case: the top {TOPK} "
                      f"logits per position, ids int32 and values f32, descending (ties by lower id)",
        },
        "chat_sanity": {"prompt": chat, "greedy_answer": answer},
        "cases": cases,
    }
    (OUT / "texts.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    (OUT / "README.md").write_text(README.format(
        v=info["versions"], n_differ=n_differ, n_tok=len(tokens), answer=answer.strip(),
        last=hf_desc["last_entry"]))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1e6:.2f} MB); tokens differing under smollm pre: {n_differ}; "
          f"greedy: {answer!r}; cases {[c['n_tokens'] for c in cases]}")


README = """# SmolLM2-135M-Instruct (GGUF Q4_1) parity fixtures

Made by `scripts/make_gguf_fixtures.py --data-dir <shared data root>` from
`smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf` (see that folder's README for the file's
sha256 and provenance) with transformers {v[transformers]}, torch {v[torch]}, gguf {v[gguf]},
tokenizers {v[tokenizers]}, accelerate {v[accelerate]}, numpy {v[numpy]}.

The reference is transformers' GGUF loading: `AutoTokenizer` / `AutoModelForCausalLM.from_pretrained(dir,
gguf_file=name, dtype=float32, attn_implementation="eager")`, which dequantises every tensor to f32
(Q4_1: d*q + m per block of 32; Q8_0 token embedding) and un-permutes llama.cpp's q/k row order (checked
in texts.json `weight_checks`: hf q/k == inverse of llama.cpp's permutation of the GGUF rows, v unpermuted,
lm_head tied to the embedding). A runtime that dequantises the same file must match these to f32
rounding.

- `tokens.json`: {n_tok} texts (unicode, CJK, emoji, code, whitespace runs, tabs/CRLF, digits, chat
  markup and other added tokens, the empty string) with the ids of transformers' GGUF tokenizer and its
  default special tokens — it adds none (GGUF `add_bos_token = false`). The 17 added tokens (ids 0–16:
  `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, `<repo_name>` … `<empty_output>`) are matched in raw text.
  Surprise: transformers ignores `tokenizer.ggml.pre = smollm` and pre-tokenises with the plain GPT-2
  regex; llama.cpp and SmolLM2's original tokenizer.json split digits off first, which changes the ids
  where whitespace precedes a digit ({n_differ} of {n_tok} texts here; those entries also carry
  `ids_smollm_pretokenizer`). Digits themselves are single tokens either way (the vocabulary has no
  multi-digit tokens).
- `texts.json`: versions, GGUF metadata, checks, and 3 hidden-state cases (10–29 tokens).
- `case{{i}}_hidden_states.npy` f32 [31, T, 576]: index 0 = embedding output, index l = output of block l
  BEFORE the final norm. transformers' `output_hidden_states[-1]` is: {last}.
- `case{{i}}_final_norm.npy` f32 [T, 576]: the final RMSNorm applied to block 30's output.
- `case0_logits.npy` f32 [T, 49152]: full logits for case 0 only (size). For every case,
  `case{{i}}_logits_top_ids.npy` (int32 [T, 32]) and `case{{i}}_logits_top_values.npy` (f32 [T, 32]): the 32
  largest logits per position, descending; compare a runtime's logits gathered at those ids.

Sanity: greedy answer to the chat prompt "What is the capital of France?": "{answer}".
"""

if __name__ == "__main__":
    main()
