#!/usr/bin/env python3
"""Parity fixtures for infoplane's model runtime: tiny random models of every supported family.

Run by hand only (never by CI), from anywhere:

    /path/to/venv/bin/python scripts/make_model_fixtures.py [--only llama,gpt2] [--out DIR]

Needs: torch, transformers (5.x), tokenizers, safetensors, numpy. Output goes to
`fixtures/models/<variant>/` under the repository root (found from this script's own location);
each variant directory is replaced. Everything is seeded; a rerun gives the same numbers (file bytes
can differ only in the library version fields).

What each `fixtures/models/<variant>/` holds:
  config.json, generation_config.json, model.safetensors      (save_pretrained of a TINY random model;
                                                                some configs rewritten to the pre-5.0
                                                                Hub layout, see CONFIG_STYLE below)
  tokenizer.json, tokenizer_config.json                        (one byte-level BPE for every variant;
                                                                the post-processor differs: BOS or not)
  expected/texts.json                                          versions, cases (text, token_ids), checks
  expected/case{i}_hidden_states.npy  f32 [L+1, T, d]          infoplane layout: index 0 = input of block 1
                                                                (embedding output; GPT-2: wte + wpe),
                                                                index l = output of block l (residual stream
                                                                BEFORE the final norm), l = 1..L
  expected/case{i}_final_norm.npy     f32 [T, d]               final norm applied to block L's output
  expected/case{i}_logits.npy         f32 [T, V]               V = config vocab_size (may exceed the
                                                                tokenizer's size: gpt_neox pads it)

The hidden states are taken with forward hooks (pre-hook on block 1, hooks on every block and on the
final norm), not from `output_hidden_states`, whose last entry is the final-norm output in
transformers 5.x; texts.json records what `output_hidden_states` holds for each family, checked.

Weights are drawn much larger than the libraries' initialisers (std 0.02 would make attention almost
uniform and hide rotary/mask errors) and norm weights/biases are randomised around 1/0; texts.json
records the attention entropy per layer relative to uniform (1 = uniform) and how much the logits move
when a family feature (rope scaling, sliding window, partial rotary, parallel residual) is switched off,
so a runtime that ignores the feature cannot pass.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import sys
from importlib.metadata import version as _version
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "fixtures" / "models"

SEED = 20260412
TOKENIZER_VOCAB = 384
HIDDEN = 64
HEADS = 4
INTER = 128
MAX_POS = 256

# Public-domain English (Carroll 1865, Austen 1813, Lincoln 1863), plus short self-written lines of
# code and other scripts, so that the BPE learns a few merges of each kind.
TRAIN_TEXT = r"""
Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to
do: once or twice she had peeped into the book her sister was reading, but it had no pictures or
conversations in it, "and what is the use of a book," thought Alice "without pictures or
conversations?" So she was considering in her own mind (as well as she could, for the hot day made her
feel very sleepy and stupid), whether the pleasure of making a daisy-chain would be worth the trouble
of getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran close by her.
There was nothing so very remarkable in that; nor did Alice think it so very much out of the way to
hear the Rabbit say to itself, "Oh dear! Oh dear! I shall be late!"
It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in
want of a wife. However little known the feelings or views of such a man may be on his first entering
a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is
considered the rightful property of some one or other of their daughters.
Four score and seven years ago our fathers brought forth on this continent, a new nation, conceived in
Liberty, and dedicated to the proposition that all men are created equal. Now we are engaged in a great
civil war, testing whether that nation, or any nation so conceived and so dedicated, can long endure.
def add(a, b):
    return a + b

for i in range(10):
    print(i, add(i, i))

fn main() {
    let xs: Vec<u32> = (0..10).collect();
    println!("{:?}", xs);
}
Le petit chat dort sur la chaise. Der kleine Hund spielt im Garten. El niño come una manzana.
Ein Käfer läuft über die Straße; très élégant, naïve café, façade.
"""

# 4 texts: short English, unicode (accents, CJK, emoji, Greek), code, and a long one (longer than
# mistral's sliding window, at most ~120 tokens).
CASES = [
    "Hello, world! The quick brown fox.",
    "Café naïve — 日本語 🙂 Ελλάδα.",
    "def f(n):\n\tif n < 2:\n        return n\n    return f(n - 1)\n",
    "Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
    "nothing to do: once or twice she had peeped into the book.",
]

# Variants. `style`: "legacy" = config.json rewritten to the layout Hub checkpoints written by
# transformers 4.x have (rope_theta / rope_scaling / rotary_pct / rotary_emb_base / torch_dtype);
# "v5" = as transformers 5 saves it (rope_parameters, dtype). A runtime must read both.
VARIANTS = {
    "llama": dict(family="llama", bos=True, style="legacy", layers=3,
                  cfg=dict(num_key_value_heads=HEADS, tie_word_embeddings=False, rope_theta=10000.0)),
    "llama_gqa": dict(family="llama", bos=True, style="legacy", layers=2,
                      cfg=dict(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0)),
    "llama3_rope_scaling": dict(
        family="llama", bos=True, style="legacy", layers=2,
        cfg=dict(num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0,
                 rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    "llama_linear_rope": dict(
        family="llama", bos=True, style="v5", layers=2,
        cfg=dict(num_key_value_heads=HEADS, tie_word_embeddings=False, rope_theta=10000.0,
                 rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "mistral": dict(family="mistral", bos=True, style="legacy", layers=2,
                    cfg=dict(num_key_value_heads=2, tie_word_embeddings=False, rope_theta=10000.0,
                             sliding_window=16)),
    "qwen2": dict(family="qwen2", bos=False, style="legacy", layers=2,
                  cfg=dict(num_key_value_heads=2, tie_word_embeddings=True, rope_theta=10000.0,
                           use_sliding_window=False)),
    "olmo2": dict(family="olmo2", bos=False, style="v5", layers=2,
                  cfg=dict(num_key_value_heads=HEADS, tie_word_embeddings=False, rope_theta=10000.0)),
    "gpt_neox_parallel": dict(family="gpt_neox", bos=False, style="v5", layers=2, vocab_pad=448,
                              cfg=dict(use_parallel_residual=True, rotary_pct=0.25,
                                       rotary_emb_base=10000, tie_word_embeddings=False)),
    "gpt_neox_sequential": dict(family="gpt_neox", bos=False, style="legacy", layers=2, vocab_pad=448,
                                cfg=dict(use_parallel_residual=False, rotary_pct=0.25,
                                         rotary_emb_base=10000, tie_word_embeddings=False)),
    "gpt2": dict(family="gpt2", bos=False, style="legacy", layers=2, cfg=dict()),
}

SPECIALS = ["<|endoftext|>", "<s>", "</s>"]  # ids 0, 1, 2


def versions():
    return {"torch": torch.__version__, "transformers": _version("transformers"),
            "tokenizers": _version("tokenizers"), "safetensors": _version("safetensors"),
            "numpy": np.__version__, "python": sys.version.split()[0]}


def train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TOKENIZER_VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, show_progress=False)
    lines = [l for l in TRAIN_TEXT.split("\n")]
    tok.train_from_iterator(lines, trainer=trainer)
    assert tok.get_vocab_size() == TOKENIZER_VOCAB, tok.get_vocab_size()
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i
    return tok


def with_post_processor(base, bos: bool):
    from tokenizers import Tokenizer, processors
    tok = Tokenizer.from_str(base.to_str())
    bl = processors.ByteLevel(trim_offsets=False)
    if bos:
        # Like Llama / Llama-3 tokenizer.json: a template that prepends BOS.
        tmpl = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                             special_tokens=[("<s>", 1)])
        tok.post_processor = processors.Sequence([bl, tmpl])
    else:
        tok.post_processor = bl
    return tok


def save_tokenizer(tok, out: Path, family: str, bos: bool):
    from transformers import PreTrainedTokenizerFast
    if family in ("gpt2", "gpt_neox"):
        special = dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    elif family in ("qwen2", "olmo2"):
        special = dict(eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    else:
        special = dict(bos_token="<s>", eos_token="</s>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(str(out))
    # Make the class explicit so AutoTokenizer does not substitute a family tokenizer class that
    # rebuilds the pipeline from its own defaults.
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def build_config(name, spec):
    import transformers as tf
    fam = spec["family"]
    V = spec.get("vocab_pad", TOKENIZER_VOCAB)
    L = spec["layers"]
    extra = copy.deepcopy(spec["cfg"])
    if fam == "gpt2":
        return tf.GPT2Config(vocab_size=V, n_positions=MAX_POS, n_embd=HIDDEN, n_layer=L, n_head=HEADS,
                             n_inner=INTER, activation_function="gelu_new", resid_pdrop=0.0,
                             embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                             bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
    if fam == "gpt_neox":
        return tf.GPTNeoXConfig(vocab_size=V, hidden_size=HIDDEN, num_hidden_layers=L,
                                num_attention_heads=HEADS, intermediate_size=INTER, hidden_act="gelu",
                                max_position_embeddings=MAX_POS, layer_norm_eps=1e-5,
                                hidden_dropout=0.0, attention_dropout=0.0, bos_token_id=0,
                                eos_token_id=0, **extra)
    common = dict(vocab_size=V, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=L,
                  num_attention_heads=HEADS, max_position_embeddings=MAX_POS, rms_norm_eps=1e-5,
                  attention_dropout=0.0)
    if fam == "llama":
        return tf.LlamaConfig(bos_token_id=1, eos_token_id=2, **common, **extra)
    if fam == "mistral":
        return tf.MistralConfig(bos_token_id=1, eos_token_id=2, **common, **extra)
    if fam == "qwen2":
        return tf.Qwen2Config(bos_token_id=0, eos_token_id=0, **common, **extra)
    if fam == "olmo2":
        return tf.Olmo2Config(bos_token_id=None, eos_token_id=0, pad_token_id=0, **common, **extra)
    raise ValueError(fam)


def randomise(model, seed):
    """Overwrite every parameter with large seeded draws (see module docstring)."""
    from transformers.pytorch_utils import Conv1D
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std + mean

    done = set()
    with torch.no_grad():
        for mname, mod in model.named_modules():
            cls = type(mod).__name__
            is_norm = isinstance(mod, torch.nn.LayerNorm) or "RMSNorm" in cls or "LayerNorm" in cls
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                if id(p) in done:  # tied weights: draw once
                    continue
                done.add(id(p))
                if is_norm and mname.endswith(("q_norm", "k_norm")):
                    # OLMo-2 RMS-normalises q and k before the dot product, so only these weights
                    # set how peaked attention is: draw them large, as trained OLMo-2 models have.
                    new = normal(p.shape, 0.4, 2.0)
                elif is_norm:
                    new = normal(p.shape, 0.25, 1.0) if pname == "weight" else normal(p.shape, 0.2)
                elif isinstance(mod, torch.nn.Embedding):
                    new = normal(p.shape, 0.5 if "wpe" in mname else 1.0)
                elif isinstance(mod, (torch.nn.Linear, Conv1D)):
                    if pname == "bias":
                        new = normal(p.shape, 0.2)
                    else:
                        fan_in = p.shape[0] if isinstance(mod, Conv1D) else p.shape[1]
                        new = normal(p.shape, 1.5 / math.sqrt(fan_in))
                else:
                    raise RuntimeError(f"unhandled parameter {full} in {cls}")
                p.copy_(new)


def legacy_config(cfg: dict, fam: str) -> dict:
    """Rewrite a transformers-5 config dict to the 4.x Hub layout."""
    cfg = dict(cfg)
    rp = cfg.pop("rope_parameters", None)
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    if fam == "gpt2":
        return cfg
    assert rp is not None, "expected rope_parameters"
    rp = dict(rp)
    theta = rp.pop("rope_theta")
    prf = rp.pop("partial_rotary_factor", None)
    rtype = rp.get("rope_type", "default")
    if fam == "gpt_neox":
        cfg["rotary_emb_base"] = theta
        cfg["rotary_pct"] = prf if prf is not None else 1.0
        assert rtype == "default"
        cfg["rope_scaling"] = None
    else:
        cfg["rope_theta"] = theta
        cfg["rope_scaling"] = None if rtype == "default" else rp
    return cfg


def final_norm_module(model, fam):
    if fam == "gpt2":
        return model.transformer.ln_f
    if fam == "gpt_neox":
        return model.gpt_neox.final_layer_norm
    return model.model.norm


def blocks(model, fam):
    if fam == "gpt2":
        return model.transformer.h
    if fam == "gpt_neox":
        return model.gpt_neox.layers
    return model.model.layers


def run_case(model, fam, ids):
    """Forward one sequence; returns infoplane-layout hidden states, final norm, logits, extras."""
    L = len(blocks(model, fam))
    cap = {}
    hooks = []

    def first(x):
        return x[0] if isinstance(x, (tuple, list)) else x

    def pre0(mod, args, kwargs):
        cap["emb"] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

    hooks.append(blocks(model, fam)[0].register_forward_pre_hook(pre0, with_kwargs=True))
    for l, blk in enumerate(blocks(model, fam)):
        def post(mod, args, out, l=l):
            cap[f"b{l + 1}"] = first(out).detach().clone()
        hooks.append(blk.register_forward_hook(post))

    def norm_hook(mod, args, out):
        cap["norm_in"] = args[0].detach().clone()
        cap["norm_out"] = out.detach().clone()

    hooks.append(final_norm_module(model, fam).register_forward_hook(norm_hook))
    try:
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_hidden_states=True, output_attentions=True,
                        use_cache=False)
    finally:
        for h in hooks:
            h.remove()
    hs = torch.stack([cap["emb"][0]] + [cap[f"b{l}"][0] for l in range(1, L + 1)])
    assert torch.equal(cap[f"b{L}"], cap["norm_in"]), "last block output != final norm input"
    return dict(hidden=hs.numpy().astype(np.float32), final_norm=cap["norm_out"][0].numpy(),
                logits=out.logits[0].numpy().astype(np.float32), hf_hidden=out.hidden_states,
                attentions=out.attentions)


def attention_stats(attns, window=None):
    """Mean over heads and query positions (t >= 3) of H(row) / ln(#keys allowed)."""
    res = []
    for a in attns:
        a = a[0].double()  # [H, T, T]
        T = a.shape[-1]
        ratios = []
        for t in range(3, T):
            n_allowed = t + 1 if window is None else min(t + 1, window)
            row = a[:, t, : t + 1].clamp_min(1e-30)
            h = -(row * row.log()).sum(-1)
            ratios.append((h / math.log(n_allowed)).mean().item())
        if window is not None:
            # transformers' sliding window: query t sees keys j with t - window < j <= t.
            for t in range(window, T):
                assert float(a[:, t, : t - window + 1].abs().max()) == 0.0, "key outside window seen"
                assert float(a[:, t, t - window + 1 : t + 1].sum(-1).min()) > 0.999
        maxw = a.max(-1).values[:, 3:].mean().item()
        res.append({"mean_entropy_over_uniform": round(float(np.mean(ratios)), 4),
                    "mean_max_weight": round(maxw, 4)})
    return res


def describe_hf_hidden(hf_hidden, hidden, final_norm):
    L = hidden.shape[0] - 1
    desc = {"count": len(hf_hidden)}
    same = [bool(np.array_equal(hf_hidden[i][0].numpy(), hidden[i])) for i in range(min(L, len(hf_hidden)))]
    desc["entries_0_to_L-1_equal_infoplane_0_to_L-1"] = all(same)
    last = hf_hidden[-1][0].numpy()
    if np.array_equal(last, final_norm):
        desc["last_entry"] = "final norm output (post-norm), NOT block L's raw output"
    elif np.array_equal(last, hidden[L]):
        desc["last_entry"] = "block L's raw output (pre-norm)"
    else:
        desc["last_entry"] = f"neither; max|last-final_norm|={np.abs(last - final_norm).max():.3g}"
    return desc


def sensitivity(model_dir, spec, cases_ids, ref_logits):
    """Max |Δlogit| when a family feature is switched off (same weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    fam = spec["family"]
    cfg0 = AutoConfig.from_pretrained(model_dir)
    tweaks = {}
    rp = getattr(cfg0, "rope_parameters", None)
    if rp and rp.get("rope_type", "default") != "default":
        def no_scaling(c):
            c.rope_parameters = {"rope_type": "default", "rope_theta": c.rope_parameters["rope_theta"]}
        tweaks["rope_scaling_off"] = no_scaling
    if fam == "mistral":
        tweaks["sliding_window_off"] = lambda c: setattr(c, "sliding_window", None)
    if fam == "gpt_neox":
        tweaks["use_parallel_residual_flipped"] = lambda c: setattr(c, "use_parallel_residual",
                                                                   not c.use_parallel_residual)
        tweaks["full_rotary"] = lambda c: c.rope_parameters.update({"partial_rotary_factor": 1.0})
    if fam in ("llama", "mistral", "qwen2", "olmo2", "gpt_neox"):
        tweaks["rope_theta_x2"] = lambda c: c.rope_parameters.update(
            {"rope_theta": c.rope_parameters["rope_theta"] * 2})
    out = {}
    for name, fn in tweaks.items():
        c = copy.deepcopy(cfg0)
        fn(c)
        m = AutoModelForCausalLM.from_pretrained(model_dir, config=c, dtype=torch.float32,
                                                 attn_implementation="eager")
        m.eval()
        diffs = []
        for ids, ref in zip(cases_ids, ref_logits):
            with torch.no_grad():
                lg = m(torch.tensor([ids]), use_cache=False).logits[0].numpy()
            diffs.append(float(np.abs(lg - ref).max()))
        out[name] = {"max_abs_logit_change_per_case": [round(d, 4) for d in diffs]}
    return out


def make_variant(name, spec, base_tok, out_root: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    fam = spec["family"]
    torch.manual_seed(SEED)
    cfg = build_config(name, spec)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    randomise(model, SEED + sum(map(ord, name)))
    model.eval()
    model.save_pretrained(str(out))
    cfg_path = out / "config.json"
    saved = json.loads(cfg_path.read_text())
    if spec["style"] == "legacy":
        saved = legacy_config(saved, fam)
        cfg_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")

    tok = with_post_processor(base_tok, spec["bos"])
    save_tokenizer(tok, out, fam, spec["bos"])

    # Everything below is computed from what was written, reloaded the way a user would.
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    rmodel = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32, attn_implementation="eager")
    rmodel.eval()
    assert rmodel.config._attn_implementation == "eager"
    from tokenizers import Tokenizer
    raw_tok = Tokenizer.from_file(str(out / "tokenizer.json"))

    exp = out / "expected"
    exp.mkdir()
    cases, all_ids, all_logits, attn, hf_desc = [], [], [], [], []
    window = getattr(rmodel.config, "sliding_window", None) if fam == "mistral" else None
    for i, text in enumerate(CASES):
        ids = hf_tok.encode(text)  # with its special tokens (BOS for the Llama-style variants)
        raw_ids = raw_tok.encode(text).ids
        assert ids == raw_ids, f"{name} case {i}: AutoTokenizer {ids} != tokenizer.json {raw_ids}"
        assert (ids[0] == 1) == spec["bos"], f"{name}: BOS expectation broken: {ids[:3]}"
        assert hf_tok.decode(ids, skip_special_tokens=True) == text, "round trip"
        r = run_case(rmodel, fam, ids)
        # The reloaded model must equal the in-memory one (proves the legacy config rewrite is faithful).
        with torch.no_grad():
            lg0 = model(torch.tensor([ids]), use_cache=False).logits[0].numpy()
        assert np.array_equal(lg0, r["logits"]), f"{name}: reloaded model differs from in-memory model"
        np.save(exp / f"case{i}_hidden_states.npy", r["hidden"])
        np.save(exp / f"case{i}_final_norm.npy", r["final_norm"].astype(np.float32))
        np.save(exp / f"case{i}_logits.npy", r["logits"])
        cases.append({"text": text, "token_ids": ids, "n_tokens": len(ids),
                      "hidden_states_shape": list(r["hidden"].shape),
                      "logits_shape": list(r["logits"].shape)})
        all_ids.append(ids)
        all_logits.append(r["logits"])
        attn.append(attention_stats(r["attentions"], window))
        hf_desc.append(describe_hf_hidden(r["hf_hidden"], r["hidden"], r["final_norm"]))
        h = r["hidden"]
        for l in range(1, h.shape[0]):
            rel = np.linalg.norm(h[l] - h[l - 1]) / np.linalg.norm(h[l - 1])
            assert rel > 0.05, f"{name} case {i}: layer {l} barely differs from {l - 1} ({rel})"

    # Attention must be far from uniform (the long case is the informative one).
    for l, st in enumerate(attn[-1]):
        assert st["mean_entropy_over_uniform"] < 0.8, f"{name} layer {l}: attention near uniform {st}"
    assert all(d == hf_desc[0] for d in hf_desc)

    info = {
        "variant": name,
        "family": fam,
        "transformers_version": _version("transformers"),
        "torch_version": torch.__version__,
        "versions": versions(),
        "seed": SEED + sum(map(ord, name)),
        "config_style": spec["style"],
        "config_style_meaning": {
            "legacy": "config.json rewritten to the transformers-4.x Hub layout (rope_theta, rope_scaling, "
                      "rotary_pct, rotary_emb_base, torch_dtype); transformers 5 reads it back identically "
                      "(checked: reloaded logits == in-memory logits, bitwise)",
            "v5": "config.json exactly as transformers 5 saves it (rope_parameters, dtype)"}[spec["style"]],
        "tokenizer": {"vocab_size": raw_tok.get_vocab_size(), "adds_bos": spec["bos"],
                      "bos_id": 1 if spec["bos"] else None,
                      "note": "token_ids = AutoTokenizer.encode(text) (special tokens on) = "
                              "tokenizers.Tokenizer.from_file('tokenizer.json').encode(text).ids, checked"},
        "model": {"num_hidden_layers": rmodel.config.num_hidden_layers, "hidden_size": HIDDEN,
                  "vocab_size": rmodel.config.vocab_size, "sliding_window": window},
        "layout": {
            "hidden_states": "[L+1, T, d] f32; index 0 = input of block 1 (embedding output; for GPT-2 "
                             "wte(ids) + wpe(positions)); index l = output of block l before the final norm",
            "final_norm": "[T, d] f32, final norm applied to index L",
            "logits": "[T, vocab_size] f32, lm head applied to final_norm",
        },
        "hf_output_hidden_states": hf_desc[0],
        "attention_on_longest_case": attn[-1],
        "feature_sensitivity": sensitivity(str(out), spec, all_ids, all_logits),
        "cases": cases,
    }
    (exp / "texts.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{name}: {[c['n_tokens'] for c in cases]} tokens, {size / 1024:.0f} KiB, "
          f"hf last = {hf_desc[0]['last_entry'][:30]}, attn = "
          f"{[a['mean_entropy_over_uniform'] for a in attn[-1]]}, sens = "
          f"{ {k: max(v['max_abs_logit_change_per_case']) for k, v in info['feature_sensitivity'].items()} }")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated variant names")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    torch.set_num_threads(2)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    base_tok = train_tokenizer()
    again = train_tokenizer()
    assert base_tok.to_str() == again.to_str(), "BPE training is not deterministic"
    names = [n for n in args.only.split(",") if n] or list(VARIANTS)
    for n in names:
        make_variant(n, VARIANTS[n], base_tok, out_root)
    readme = out_root / "README.md"
    readme.write_text(README.format(variants="\n".join(
        f"| `{n}` | {v['family']} | {v['layers']} | {v['style']} | {'yes' if v['bos'] else 'no'} | "
        f"{json.dumps(v['cfg'], sort_keys=True)} |" for n, v in VARIANTS.items())))


README = """# Tiny random models for runtime parity (made by `scripts/make_model_fixtures.py`)

Each directory is a `save_pretrained` checkpoint of a tiny, randomly initialised model (hidden 64,
4 heads of 16, intermediate 128, max positions 256, byte-level BPE of 384 tokens shared by all),
with `expected/` holding what transformers computes for 4 texts, in float32, eager attention.
Weights are drawn large (linear std 1.5/sqrt(fan_in), embeddings std 1, norm weights 1 ± 0.25,
norm biases ± 0.2) so that attention is far from uniform and rotary / mask / norm errors show;
`expected/texts.json` records the attention entropy per layer and the logit change caused by
switching each family feature off.

Layout of `expected/` (see texts.json, `layout`): `case{{i}}_hidden_states.npy` f32 [L+1, T, d]
(index 0 = embedding output = input of block 1, index l = block l's output BEFORE the final norm),
`case{{i}}_final_norm.npy` f32 [T, d], `case{{i}}_logits.npy` f32 [T, vocab_size]. Token ids in texts.json
are the tokenizer's encode with its special tokens (BOS only where `adds BOS` says yes).
transformers 5's `output_hidden_states` has L+1 entries whose last is the final-norm output
(texts.json, `hf_output_hidden_states`), which is why hooks were used.

| variant | family | layers | config.json style | adds BOS | family settings |
| --- | --- | --- | --- | --- | --- |
{variants}

`legacy` = config rewritten to the transformers-4.x Hub layout (`rope_theta`, `rope_scaling`,
`rotary_pct`, `rotary_emb_base`, `torch_dtype`); `v5` = as transformers 5 writes it (`rope_parameters`).
gpt_neox variants pad the model vocabulary to 448 (tokenizer: 384), as Pythia does. Mistral's
`sliding_window` = 16: query i sees keys j with i - window < j <= i. GPT-2 uses `gelu_new` (tanh),
GPT-NeoX exact `gelu`, Llama-family SiLU-gated MLPs.
"""

if __name__ == "__main__":
    main()
