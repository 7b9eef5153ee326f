//! Text ↔ token ids, the way each format's reference does it: `tokenizer.json` through the
//! `tokenizers` crate (with transformers' handling of `add_bos_token`/`add_eos_token`), GGUF
//! vocabularies rebuilt as transformers' GGUF converters build them, and llama2.c's own encoder.

use crate::error::RuntimeError;
use crate::llama2c::Llama2cTokenizer;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// A model's tokenizer.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Inner,
    /// Where it came from (tokenizer.json, the GGUF file, the llama2.c .bin).
    path: PathBuf,
}

#[derive(Clone)]
enum Inner {
    Hf(Box<tokenizers::Tokenizer>),
    Llama2c(Llama2cTokenizer),
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextTokenizer({}, {} ids)", self.path.display(), self.id_bound())
    }
}

impl TextTokenizer {
    /// Token ids of `text`; `add_special_tokens` adds what the model's post-processor (or GGUF
    /// metadata, or llama2.c's BOS) says.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, RuntimeError> {
        match &self.inner {
            Inner::Hf(t) => t.encode(text, add_special_tokens).map(|e| e.get_ids().to_vec()).map_err(|e| RuntimeError::Tokenizer { path: self.path.clone(), reason: e.to_string() }),
            Inner::Llama2c(t) => Ok(t.encode(text, add_special_tokens)),
        }
    }

    /// Text of `ids` (special tokens kept for tokenizer.json models; llama2.c prints none).
    pub fn decode(&self, ids: &[u32]) -> Result<String, RuntimeError> {
        match &self.inner {
            Inner::Hf(t) => t.decode(ids, false).map_err(|e| RuntimeError::Tokenizer { path: self.path.clone(), reason: e.to_string() }),
            Inner::Llama2c(t) => Ok(String::from_utf8_lossy(&t.decode_bytes(ids)).into_owned()),
        }
    }

    /// One more than the largest token id the tokenizer can produce.
    pub fn id_bound(&self) -> usize {
        match &self.inner {
            Inner::Hf(t) => t.get_vocab(true).values().map(|&i| i as usize + 1).max().unwrap_or(0),
            Inner::Llama2c(t) => t.vocab_size(),
        }
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Inner::Hf(t) => t.token_to_id(token),
            Inner::Llama2c(t) => (0..t.vocab_size() as u32).find(|&i| t.piece(i) == Some(token.as_bytes())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying `tokenizers::Tokenizer`, when there is one (not for llama2.c).
    pub fn hf(&self) -> Option<&tokenizers::Tokenizer> {
        match &self.inner {
            Inner::Hf(t) => Some(t),
            Inner::Llama2c(_) => None,
        }
    }

    pub(crate) fn from_llama2c(t: Llama2cTokenizer, path: &Path) -> Self {
        TextTokenizer { inner: Inner::Llama2c(t), path: path.to_path_buf() }
    }

    /// `tokenizer.json`, with `tokenizer_config.json` beside it honoured as transformers does:
    /// an explicit `add_bos_token` / `add_eos_token` there rebuilds the post-processor, and the
    /// named special tokens (bos, eos, unk, pad) become special added tokens.
    pub fn from_hf_dir(tokenizer_json: &Path, tokenizer_config: Option<&Path>) -> Result<Self, RuntimeError> {
        let bad = |reason: String| RuntimeError::Tokenizer { path: tokenizer_json.to_path_buf(), reason };
        let text = std::fs::read_to_string(tokenizer_json).map_err(|e| RuntimeError::io(tokenizer_json, e))?;
        let mut json: Value = serde_json::from_str(&text).map_err(|e| RuntimeError::Json { path: tokenizer_json.to_path_buf(), reason: e.to_string() })?;
        if let Some(cfg_path) = tokenizer_config {
            let cfg_text = std::fs::read_to_string(cfg_path).map_err(|e| RuntimeError::io(cfg_path, e))?;
            let cfg: Value = serde_json::from_str(&cfg_text).map_err(|e| RuntimeError::Json { path: cfg_path.to_path_buf(), reason: e.to_string() })?;
            apply_tokenizer_config(&mut json, &cfg).map_err(|reason| RuntimeError::Tokenizer { path: cfg_path.to_path_buf(), reason })?;
        }
        let tok: tokenizers::Tokenizer = serde_json::from_value::<tokenizers::Tokenizer>(json).map_err(|e| bad(e.to_string()))?;
        Ok(TextTokenizer { inner: Inner::Hf(Box::new(tok)), path: tokenizer_json.to_path_buf() })
    }

    pub(crate) fn from_tokenizer_json(json: Value, path: &Path) -> Result<Self, RuntimeError> {
        let tok = serde_json::from_value::<tokenizers::Tokenizer>(json).map_err(|e| RuntimeError::Tokenizer { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(TextTokenizer { inner: Inner::Hf(Box::new(tok)), path: path.to_path_buf() })
    }
}

fn token_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

fn vocab_id(json: &Value, token: &str) -> Option<u32> {
    if let Some(added) = json.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if t.get("content").and_then(|c| c.as_str()) == Some(token) {
                return t.get("id").and_then(|i| i.as_u64()).map(|i| i as u32);
            }
        }
    }
    match json.pointer("/model/vocab") {
        Some(Value::Object(v)) => v.get(token).and_then(|i| i.as_u64()).map(|i| i as u32),
        // Unigram: a list of [piece, score].
        Some(Value::Array(v)) => v.iter().position(|e| e.get(0).and_then(|p| p.as_str()) == Some(token)).map(|i| i as u32),
        _ => None,
    }
}

/// transformers' `TokenizersBackend`: named special tokens become special added tokens
/// (`_post_init`), and explicit add_bos/add_eos flags rebuild the post-processor
/// (`update_post_processor`).
fn apply_tokenizer_config(json: &mut Value, cfg: &Value) -> Result<(), String> {
    let mut specials: Vec<(String, u32)> = Vec::new();
    for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
        if let Some(tok) = cfg.get(key).and_then(token_string) {
            if let Some(id) = vocab_id(json, &tok) {
                specials.push((tok, id));
            }
        }
    }
    if let Some(extra) = cfg.get("additional_special_tokens").or_else(|| cfg.get("extra_special_tokens")).and_then(|v| v.as_array()) {
        for v in extra {
            if let Some(tok) = token_string(v) {
                if let Some(id) = vocab_id(json, &tok) {
                    specials.push((tok, id));
                }
            }
        }
    }
    add_special_tokens(json, &specials);
    let add_bos = cfg.get("add_bos_token").and_then(|v| v.as_bool());
    let add_eos = cfg.get("add_eos_token").and_then(|v| v.as_bool());
    let no_post = json.get("post_processor").is_none_or(|p| p.is_null());
    if add_bos.is_some() || add_eos.is_some() || no_post {
        let bos = cfg.get("bos_token").and_then(token_string).and_then(|t| vocab_id(json, &t).map(|i| (t, i)));
        let eos = cfg.get("eos_token").and_then(token_string).and_then(|t| vocab_id(json, &t).map(|i| (t, i)));
        // transformers turns a flag off when its token is missing.
        let bos = bos.filter(|_| add_bos.unwrap_or(false));
        let eos = eos.filter(|_| add_eos.unwrap_or(false));
        json["post_processor"] = template_processing(bos.as_ref(), eos.as_ref());
    }
    Ok(())
}

/// Marks tokens as special added tokens (adding entries to `added_tokens` where missing).
fn add_special_tokens(json: &mut Value, tokens: &[(String, u32)]) {
    if json.get("added_tokens").is_none_or(|a| !a.is_array()) {
        json["added_tokens"] = Value::Array(vec![]);
    }
    let added = json["added_tokens"].as_array_mut().unwrap();
    for (content, id) in tokens {
        if let Some(existing) = added.iter_mut().find(|t| t.get("content").and_then(|c| c.as_str()) == Some(content)) {
            existing["special"] = Value::Bool(true);
        } else {
            added.push(added_token(content, *id, true));
        }
    }
}

fn added_token(content: &str, id: u32, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": special})
}

/// transformers' `update_post_processor`: `[bos] $A [eos]`, and the pair form.
fn template_processing(bos: Option<&(String, u32)>, eos: Option<&(String, u32)>) -> Value {
    let special = |t: &str, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    let mut single = vec![];
    let mut pair = vec![];
    if let Some((b, _)) = bos {
        single.push(special(b, 0));
        pair.push(special(b, 0));
    }
    single.push(seq("A", 0));
    pair.push(seq("A", 0));
    if let Some((e, _)) = eos {
        single.push(special(e, 0));
        pair.push(special(e, 0));
    }
    if let Some((b, _)) = bos {
        pair.push(special(b, 1));
    }
    pair.push(seq("B", 1));
    if let Some((e, _)) = eos {
        pair.push(special(e, 1));
    }
    let mut specials = Map::new();
    for (t, id) in bos.into_iter().chain(eos) {
        specials.insert(t.clone(), json!({"id": t, "ids": [id], "tokens": [t]}));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}

/// The tokenizer-related GGUF metadata (`tokenizer.ggml.*`).
#[derive(Debug, Clone, Default)]
pub struct GgufVocab {
    pub model: String,
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    pub token_types: Option<Vec<i64>>,
    pub merges: Option<Vec<String>>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
}

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
fn bytes_to_unicode() -> Vec<char> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec!['\0'; 256];
    for (b, c) in bs.iter().zip(cs) {
        table[*b as usize] = char::from_u32(c).unwrap();
    }
    table
}

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// transformers' `GGUF_PRE_TOKENIZER_SPLITS`: the split regex for a `tokenizer.ggml.pre` value.
fn pre_split(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

/// transformers' `generate_merges(vocab, vocab_scores)`: every split of every token into two
/// tokens of the vocabulary, sorted by (score, len(left), len(right)) descending, stably.
fn generate_merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    use std::collections::HashMap;
    // vocab = {token: index}: a repeated token keeps its last index.
    let mut vocab: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        vocab.insert(t.as_str(), i);
    }
    // vocab_scores = dict(zip(tokens, scores)): first position, last score.
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut score_of: HashMap<&str, f32> = HashMap::with_capacity(tokens.len());
    for (t, s) in tokens.iter().zip(scores) {
        if score_of.insert(t.as_str(), *s).is_none() {
            order.push(t.as_str());
        }
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for merge in order {
        let score = score_of[merge];
        let mut local: Vec<(&str, &str, f32)> = Vec::new();
        for (idx, _) in merge.char_indices().skip(1) {
            let (l, r) = merge.split_at(idx);
            if vocab.contains_key(l) && vocab.contains_key(r) {
                local.push((l, r, score));
            }
        }
        local.sort_by_key(|(l, r, _)| (vocab[l], vocab[r]));
        merges.extend(local);
    }
    // Python's sorted(..., reverse=True) keeps equal keys in their original order.
    merges.sort_by(|a, b| {
        let ka = (a.2, a.0.chars().count(), a.1.chars().count());
        let kb = (b.2, b.0.chars().count(), b.1.chars().count());
        kb.0.partial_cmp(&ka.0).unwrap_or(std::cmp::Ordering::Equal).then(kb.1.cmp(&ka.1)).then(kb.2.cmp(&ka.2))
    });
    merges.into_iter().map(|(l, r, _)| (l.to_string(), r.to_string())).collect()
}

impl GgufVocab {
    /// A `tokenizer.json` equal to what transformers' GGUF converter builds
    /// (`integrations/gguf/gguf_tokenizer_mapping.py`), then loaded by the `tokenizers` crate.
    pub fn to_tokenizer(&self, path: &Path) -> Result<TextTokenizer, RuntimeError> {
        let bad = |reason: String| RuntimeError::Tokenizer { path: path.to_path_buf(), reason };
        let byte_level = match self.model.as_str() {
            "gpt2" => true,
            "llama" => false,
            other => return Err(bad(format!("tokenizer.ggml.model = {other:?} is not supported (supported: gpt2, llama)"))),
        };
        let mut vocab = Map::new();
        let spelling = bytes_to_unicode();
        let alphabet: std::collections::HashSet<char> = spelling.iter().copied().collect();
        for (i, t) in self.tokens.iter().enumerate() {
            let s = if byte_level && !t.chars().all(|c| alphabet.contains(&c)) { t.bytes().map(|b| spelling[b as usize]).collect() } else { t.clone() };
            vocab.insert(s, json!(i));
        }
        let merges: Vec<(String, String)> = match &self.merges {
            Some(m) => m
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let mut parts = line.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(a), Some(b), None) => Ok((a.to_string(), b.to_string())),
                        _ => Err(bad(format!("tokenizer.ggml.merges[{i}] = {line:?} is not two tokens separated by one space"))),
                    }
                })
                .collect::<Result<_, _>>()?,
            None if byte_level => return Err(bad("a gpt2-style vocabulary without tokenizer.ggml.merges".into())),
            None => {
                let scores = self.scores.as_ref().ok_or_else(|| bad("a llama vocabulary needs tokenizer.ggml.scores or tokenizer.ggml.merges".into()))?;
                if scores.len() != self.tokens.len() {
                    return Err(bad(format!("{} scores for {} tokens", scores.len(), self.tokens.len())));
                }
                generate_merges(&self.tokens, scores)
            }
        };
        let merges: Vec<Value> = merges.into_iter().map(|(a, b)| json!([a, b])).collect();
        let (model, pre_tokenizer, decoder) = if byte_level {
            let model = json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges});
            let pre = match self.pre.as_deref().and_then(pre_split) {
                Some(regex) => json!({"type": "Sequence", "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
                    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}),
                None => json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
            };
            (model, pre, json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}))
        } else {
            let model = json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": vocab, "merges": merges});
            let pre = json!({"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false});
            let dec = json!({"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]});
            (model, pre, dec)
        };
        // add_gguf_special_tokens: CONTROL (3) tokens special (byte-level: only if spelled in
        // the byte alphabet), USER_DEFINED (4) tokens as plain added tokens; then the named
        // special tokens (bos, eos, unk, pad) as special added tokens.
        let mut added: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |added: &mut Vec<Value>, content: &str, id: u32, special: bool| {
            if seen.insert(content.to_string()) {
                added.push(added_token(content, id, special));
            } else if special {
                if let Some(t) = added.iter_mut().find(|t| t["content"] == content) {
                    t["special"] = Value::Bool(true);
                }
            }
        };
        if let Some(types) = &self.token_types {
            for (i, (t, &ty)) in self.tokens.iter().zip(types).enumerate() {
                if ty == 3 && (!byte_level || t.chars().all(|c| alphabet.contains(&c))) {
                    let id = vocab.get(t).and_then(|v| v.as_u64()).unwrap_or(i as u64) as u32;
                    push(&mut added, t, id, true);
                }
            }
            for (t, &ty) in self.tokens.iter().zip(types) {
                if ty == 4 && vocab.contains_key(t) {
                    let id = vocab[t].as_u64().unwrap() as u32;
                    push(&mut added, t, id, false);
                }
            }
        }
        let named = |id: Option<u32>| id.and_then(|i| self.tokens.get(i as usize).map(|t| (t.clone(), i)));
        let (bos, eos, unk, pad) = (named(self.bos), named(self.eos), named(self.unk), named(self.pad));
        for (t, id) in [&bos, &eos, &unk, &pad].into_iter().flatten() {
            push(&mut added, t, *id, true);
        }
        // llama vocabularies add BOS unless the file says otherwise; gpt2 ones only if it says so.
        let add_bos = self.add_bos.unwrap_or(!byte_level);
        let add_eos = self.add_eos.unwrap_or(false);
        let post = template_processing(bos.as_ref().filter(|_| add_bos), eos.as_ref().filter(|_| add_eos));
        let tokenizer = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added, "normalizer": null, "pre_tokenizer": pre_tokenizer,
            "post_processor": post, "decoder": decoder, "model": model,
        });
        TextTokenizer::from_tokenizer_json(tokenizer, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_merges_follow_transformers_order() {
        // Scores rank merges; equal scores keep vocabulary order, longer left pieces first.
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc", "ca"].iter().map(|s| s.to_string()).collect();
        let scores = [0.0, 0.0, 0.0, -1.0, -1.0, -2.0, -3.0];
        let m = generate_merges(&tokens, &scores);
        let m: Vec<(&str, &str)> = m.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(m, vec![("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc"), ("c", "a")]);
    }

    #[test]
    fn byte_alphabet_is_gpt2s() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        let distinct: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }
}
