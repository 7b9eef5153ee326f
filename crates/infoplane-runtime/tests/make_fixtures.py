"""Fixtures for infoplane-runtime's own tests, made by hand (never by CI):

    /work/venv/bin/python crates/infoplane-runtime/tests/make_fixtures.py ../shared/data

1. `quant_types.gguf` + `quant_types.json`: one small tensor of every GGUF type the runtime claims
   (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K) and the values gguf-py's `dequantize`
   (what transformers' GGUF loader calls) gives for them. K-quant blocks are random bytes with
   finite scales: any such block is valid, so no quantiser is needed.
2. `stories260k_sp.gguf`: stories260K (llama2.c) rewritten as a llama-architecture GGUF with a
   SentencePiece (`tokenizer.ggml.model = llama`) vocabulary rebuilt from tok512.bin, mixed
   tensor types (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1), plus `stories260k_sp/` (texts.json + case{i}_*.npy): the ids
   transformers' GGUF tokenizer gives on a few texts, and hidden states, final norm and logits of
   transformers' model loaded from that GGUF (dequantised, q/k un-permuted).
3. `stories260k_hf/`: the same for the original float32 llama2.c weights converted to an HF
   Llama (q/k permuted the way HF's converters do), run by transformers, on the texts encoded by
   llama2.c's own tokenizer algorithm (ids recorded).
"""
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import gguf
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

here = Path(__file__).resolve().parent / "fixtures"
shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
rng = np.random.default_rng(20261123)

# ---------------------------------------------------------------- 1. every tensor type
Q = gguf.GGMLQuantizationType
block_sizes = gguf.GGML_QUANT_SIZES
f16_offsets = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}
w = gguf.GGUFWriter(str(here / "quant_types.gguf"), "llama")
expected = {}
shape = (2, 256)
for qt in [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
    name = f"t_{qt.name}"
    values = rng.normal(0, 1.5, size=shape).astype(np.float32)
    if qt == Q.F32:
        data = values
    elif qt == Q.F16:
        data = values.astype(np.float16)
    elif qt in f16_offsets:
        block, nbytes = block_sizes[qt]
        n_blocks = values.size // block
        raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
        for b in range(n_blocks):
            for off in f16_offsets[qt]:
                raw[b, off:off + 2] = np.frombuffer(np.float16(rng.uniform(0.01, 0.1)).tobytes(), dtype=np.uint8)
        data = raw.reshape(shape[0], -1)
    else:
        data = gguf.quants.quantize(values, qt)
    if qt in (Q.F32, Q.F16):
        w.add_tensor(name, data)
    else:
        w.add_tensor(name, data, raw_dtype=qt)
    expected[name] = gguf.quants.dequantize(np.asarray(data).view(np.uint8) if qt not in (Q.F32, Q.F16) else data, qt).astype(np.float32).reshape(shape).ravel().tolist()
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
(here / "quant_types.json").write_text(json.dumps({"gguf_version": gguf.__version__ if hasattr(gguf, "__version__") else "?", "shape": list(shape), "values": expected}))

# ---------------------------------------------------------------- 2. stories260K as GGUF
ckpt = (shared / "llama2c_stories260K" / "stories260K.bin").read_bytes()
dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", ckpt[:28])
assert vocab > 0, "shared classifier expected"
kv_dim = dim * n_kv // n_heads
head = dim // n_heads
flat = np.frombuffer(ckpt[28:], dtype=np.float32)
off = 0
def take(*s):
    global off
    n = int(np.prod(s))
    a = flat[off:off + n].reshape(s)
    off += n
    return a.copy()
emb = take(vocab, dim); rms_att = take(n_layers, dim); wq = take(n_layers, dim, dim); wk = take(n_layers, kv_dim, dim)
wv = take(n_layers, kv_dim, dim); wo = take(n_layers, dim, dim); rms_ffn = take(n_layers, dim)
w1 = take(n_layers, hidden, dim); w2 = take(n_layers, dim, hidden); w3 = take(n_layers, hidden, dim); rms_final = take(dim)

tok_bytes = (shared / "llama2c_stories260K" / "tok512.bin").read_bytes()
max_len = struct.unpack("<i", tok_bytes[:4])[0]
p = 4
pieces, scores = [], []
for _ in range(vocab):
    score, n = struct.unpack("<fi", tok_bytes[p:p + 8]); p += 8
    pieces.append(tok_bytes[p:p + n]); p += n
    scores.append(score)
assert p == len(tok_bytes)
tokens, types = [], []
for i, piece in enumerate(pieces):
    if i == 0:
        tokens.append("<unk>"); types.append(2)
    elif i == 1:
        tokens.append("<s>"); types.append(3)
    elif i == 2:
        tokens.append("</s>"); types.append(3)
    elif piece.startswith(b"<0x") and piece.endswith(b">") and len(piece) == 6:
        tokens.append(piece.decode()); types.append(6)
    else:
        tokens.append(piece.decode("utf-8").replace(" ", "\u2581")); types.append(1)

gg = here / "stories260k_sp.gguf"
w = gguf.GGUFWriter(str(gg), "llama")
w.add_name("stories260K")
w.add_context_length(seq_len); w.add_embedding_length(dim); w.add_block_count(n_layers)
w.add_feed_forward_length(hidden); w.add_head_count(n_heads); w.add_head_count_kv(n_kv)
w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0); w.add_rope_dimension_count(head)
w.add_vocab_size(vocab)
w.add_tokenizer_model("llama"); w.add_token_list(tokens); w.add_token_scores(scores); w.add_token_types(types)
w.add_bos_token_id(1); w.add_eos_token_id(2); w.add_unk_token_id(0)
def put(name, a, qt):
    if qt == Q.F32:
        w.add_tensor(name, a.astype(np.float32))
    elif qt == Q.F16:
        w.add_tensor(name, a.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(a.astype(np.float32), qt), raw_dtype=qt)
# llama2.c stores q/k in the interleaved rotary layout GGUF uses, so they go in unchanged.
put("token_embd.weight", emb, Q.Q8_0)
for l in range(n_layers):
    put(f"blk.{l}.attn_norm.weight", rms_att[l], Q.F32)
    put(f"blk.{l}.attn_q.weight", wq[l], Q.F16)
    put(f"blk.{l}.attn_k.weight", wk[l], Q.Q8_0)
    put(f"blk.{l}.attn_v.weight", wv[l], Q.Q4_0)
    put(f"blk.{l}.attn_output.weight", wo[l], Q.Q4_1)
    put(f"blk.{l}.ffn_norm.weight", rms_ffn[l], Q.F32)
    put(f"blk.{l}.ffn_gate.weight", w1[l], Q.Q5_0)
    put(f"blk.{l}.ffn_up.weight", w3[l], Q.Q5_1)
    put(f"blk.{l}.ffn_down.weight", w2[l], Q.BF16)  # 172 columns: no 32-block type fits
put("output_norm.weight", rms_final, Q.F32)
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

texts = [
    "Once upon a time, there was a little girl named Lily.",
    "  Two leading spaces, a tab\tand\nnew lines\n\n",
    "Unicode: héllo wörld — 日本 🎉",
    "<s>markup</s> and <unk> stay text?",
    "",
]

def states(model, ids):
    """infoplane's layout: [L+1, T, d] with index L the last block's output before the final norm."""
    captured = {}
    def hook(_m, _i, o):
        captured["last"] = (o[0] if isinstance(o, tuple) else o)[0]
    handle = model.model.layers[-1].register_forward_hook(hook)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    handle.remove()
    hs = out.hidden_states
    L = len(hs) - 1  # transformers' last entry is after the final norm
    raw = [h[0] for h in hs[:L]] + [captured["last"]]
    return {
        "hidden_states": torch.stack(raw).float().numpy(),
        "final_norm": hs[L][0].float().numpy(),
        "logits": out.logits[0].float().numpy(),
    }

def save_cases(name, cases):
    d = here / name
    d.mkdir(exist_ok=True)
    for old in d.glob("case*.npy"):
        old.unlink()
    meta = []
    for i, case in enumerate(cases):
        arrays = case.pop("arrays", None)
        if arrays is not None:
            for k, v in arrays.items():
                np.save(d / f"case{i}_{k}.npy", np.ascontiguousarray(v, dtype=np.float32))
        meta.append(case)
    (d / "texts.json").write_text(json.dumps({"transformers_version": transformers.__version__, "cases": meta}, ensure_ascii=False, indent=1))

tok = AutoTokenizer.from_pretrained(str(here), gguf_file=gg.name)
model = AutoModelForCausalLM.from_pretrained(str(here), gguf_file=gg.name, torch_dtype=torch.float32).eval()
cases = []
for t in texts:
    ids = tok(t)["input_ids"]
    case = {"text": t, "token_ids": ids, "decoded": tok.decode(ids)}
    if ids:
        case["arrays"] = states(model, ids)
    cases.append(case)
save_cases("stories260k_sp", cases)

# ---------------------------------------------------------------- 3. llama2.c weights as an HF Llama
def permute(a, n):  # interleaved (Meta / llama2.c) rotary layout -> HF's rotate-half layout
    out, inp = a.shape
    return a.reshape(n, out // n // 2, 2, inp).swapaxes(1, 2).reshape(out, inp)

def llama2c_encode(text):  # run.c's encode(t, text, bos=1, eos=0)
    lookup = {}
    for i, pc in enumerate(pieces):
        lookup.setdefault(pc, i)
    ids = [1]
    if text:
        ids.append(lookup[b" "])
    raw = text.encode("utf-8")
    buf = b""
    for i, c in enumerate(raw):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        if i + 1 < len(raw) and raw[i + 1] & 0xC0 == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            ids.append(lookup[buf])
        else:
            ids.extend(b + 3 for b in buf)
        buf = b""
    while True:
        best, best_id, best_i = -1e10, -1, -1
        for i in range(len(ids) - 1):
            m = pieces[ids[i]] + pieces[ids[i + 1]]
            j = lookup.get(m, -1)
            if j != -1 and scores[j] > best:
                best, best_id, best_i = scores[j], j, i
        if best_i == -1:
            break
        ids[best_i:best_i + 2] = [best_id]
    return ids

cfg = LlamaConfig(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=n_layers,
                  num_attention_heads=n_heads, num_key_value_heads=n_kv, max_position_embeddings=seq_len,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
hf = LlamaForCausalLM(cfg).eval()
sd = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final, "lm_head.weight": emb}
for l in range(n_layers):
    pre = f"model.layers.{l}."
    sd[pre + "input_layernorm.weight"] = rms_att[l]
    sd[pre + "post_attention_layernorm.weight"] = rms_ffn[l]
    sd[pre + "self_attn.q_proj.weight"] = permute(wq[l], n_heads)
    sd[pre + "self_attn.k_proj.weight"] = permute(wk[l], n_kv)
    sd[pre + "self_attn.v_proj.weight"] = wv[l]
    sd[pre + "self_attn.o_proj.weight"] = wo[l]
    sd[pre + "mlp.gate_proj.weight"] = w1[l]
    sd[pre + "mlp.up_proj.weight"] = w3[l]
    sd[pre + "mlp.down_proj.weight"] = w2[l]
missing = hf.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=False)
assert not missing.missing_keys, missing
cases = []
for t in texts[:3]:
    ids = llama2c_encode(t)
    case = {"text": t, "token_ids": ids}
    case["arrays"] = states(hf, ids)
    cases.append(case)
save_cases("stories260k_hf", cases)
print("wrote", sorted(p.name for p in here.iterdir()))
