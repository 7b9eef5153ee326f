//! llama2.c checkpoints (legacy "version 0" float32 export) and their tokenizer `.bin`.
//!
//! Checkpoint: 7 little-endian i32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
//! seq_len; a negative vocab_size means the classifier is stored separately), then float32 arrays
//! token_embedding[V,d], rms_att[L,d], wq[L,d,d], wk[L,kv,d], wv[L,kv,d], wo[L,d,d], rms_ffn[L,d],
//! w1[L,h,d], w2[L,d,h], w3[L,h,d], rms_final[d], freq_cis_real[S,hd/2], freq_cis_imag[S,hd/2],
//! and wcls[V,d] when not shared. Matrices are `[out, in]` like HF's; wq/wk are in the interleaved
//! rotary layout and are un-permuted to HF's rotate-half layout on load.
//!
//! Tokenizer: i32 max_token_length, then per token f32 score, i32 length, bytes. Encoding and
//! decoding follow run.c exactly.

use crate::config::DecoderConfig;
use crate::error::RuntimeError;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "llama2.c checkpoint";

/// The header of a legacy llama2.c checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Llama2cHeader {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    pub shared_classifier: bool,
    pub seq_len: usize,
}

impl Llama2cHeader {
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, RuntimeError> {
        if bytes.len() < 28 {
            return Err(RuntimeError::format(path, FORMAT, format!("{} bytes, shorter than the 28-byte header", bytes.len())));
        }
        let int = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
        if int(0) as u32 == 0x616b_3432 {
            return Err(RuntimeError::format(path, FORMAT, "this is a version-1/2 llama2.c export (magic \"ak42\"); only the legacy version-0 float32 export is supported"));
        }
        let names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (i, name) in names.iter().enumerate() {
            let v = int(i);
            if v == 0 || (v < 0 && i != 5) || v.unsigned_abs() > 1 << 24 {
                return Err(RuntimeError::config(path, *name, format!("implausible header value {v}")));
            }
        }
        let h = Llama2cHeader {
            dim: int(0) as usize,
            hidden_dim: int(1) as usize,
            n_layers: int(2) as usize,
            n_heads: int(3) as usize,
            n_kv_heads: int(4) as usize,
            vocab_size: int(5).unsigned_abs() as usize,
            shared_classifier: int(5) > 0,
            seq_len: int(6) as usize,
        };
        if !h.dim.is_multiple_of(h.n_heads) || !h.n_heads.is_multiple_of(h.n_kv_heads) || !(h.dim / h.n_heads).is_multiple_of(2) {
            return Err(RuntimeError::config(path, "n_heads", format!("dim {} / {} heads / {} kv heads do not fit", h.dim, h.n_heads, h.n_kv_heads)));
        }
        Ok(h)
    }

    /// The floats after the header; None when the header's sizes overflow (a corrupt header:
    /// each field is bounded, their products are not).
    fn float_count(&self) -> Option<usize> {
        let (d, h, l, v, s) = (self.dim as u128, self.hidden_dim as u128, self.n_layers as u128, self.vocab_size as u128, self.seq_len as u128);
        let kv = d * self.n_kv_heads as u128 / self.n_heads as u128;
        let hd = d / self.n_heads as u128;
        let n = v * d + l * d + l * d * d + 2 * l * kv * d + l * d * d + l * d + 3 * l * h * d + d + s * hd + if self.shared_classifier { 0 } else { v * d };
        usize::try_from(n).ok().filter(|&n| n < usize::MAX / 8)
    }
}

/// Reads a checkpoint into a Llama config and f32 tensors in HF naming.
pub fn read_checkpoint(path: &Path) -> Result<(Llama2cHeader, DecoderConfig, HashMap<String, Tensor>), RuntimeError> {
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::io(path, e))?;
    let h = Llama2cHeader::parse(path, &bytes)?;
    let floats = h.float_count().ok_or_else(|| {
        RuntimeError::format(path, FORMAT, format!("the header's sizes (dim {}, hidden {}, {} layers, vocab {}, seq_len {}) overflow", h.dim, h.hidden_dim, h.n_layers, h.vocab_size, h.seq_len))
    })?;
    let want = 28 + 4 * floats;
    if bytes.len() != want {
        return Err(RuntimeError::format(path, FORMAT, format!("{} bytes, but the header (dim {}, hidden {}, {} layers, {} heads, {} kv heads, vocab {}, seq_len {}, {} classifier) needs exactly {want}", bytes.len(), h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len, if h.shared_classifier { "shared" } else { "separate" })));
    }
    let floats: Vec<f32> = bytes[28..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    let (d, hid, l, v) = (h.dim, h.hidden_dim, h.n_layers, h.vocab_size);
    let kv = d * h.n_kv_heads / h.n_heads;
    let hd = d / h.n_heads;
    let mut at = 0usize;
    let mut take = |n: usize| {
        let s = &floats[at..at + n];
        at += n;
        s
    };
    let dev = Device::Cpu;
    let t = |data: &[f32], shape: &[usize]| Tensor::from_slice(data, shape, &dev);
    let mut map = HashMap::new();
    let emb = t(take(v * d), &[v, d])?;
    map.insert("model.embed_tokens.weight".to_string(), emb.clone());
    let layer = |i: usize, s: &str| format!("model.layers.{i}.{s}");
    let rms_att = take(l * d).to_vec();
    let wq = take(l * d * d).to_vec();
    let wk = take(l * kv * d).to_vec();
    let wv = take(l * kv * d).to_vec();
    let wo = take(l * d * d).to_vec();
    let rms_ffn = take(l * d).to_vec();
    let w1 = take(l * hid * d).to_vec();
    let w2 = take(l * d * hid).to_vec();
    let w3 = take(l * hid * d).to_vec();
    let rms_final = take(d).to_vec();
    let _freq_cis = take(h.seq_len * hd); // run.c recomputes the rotary angles; so do we
    for i in 0..l {
        map.insert(layer(i, "input_layernorm.weight"), t(&rms_att[i * d..(i + 1) * d], &[d])?);
        map.insert(layer(i, "self_attn.q_proj.weight"), unpermute_rows(&t(&wq[i * d * d..(i + 1) * d * d], &[d, d])?, h.n_heads)?);
        map.insert(layer(i, "self_attn.k_proj.weight"), unpermute_rows(&t(&wk[i * kv * d..(i + 1) * kv * d], &[kv, d])?, h.n_kv_heads)?);
        map.insert(layer(i, "self_attn.v_proj.weight"), t(&wv[i * kv * d..(i + 1) * kv * d], &[kv, d])?);
        map.insert(layer(i, "self_attn.o_proj.weight"), t(&wo[i * d * d..(i + 1) * d * d], &[d, d])?);
        map.insert(layer(i, "post_attention_layernorm.weight"), t(&rms_ffn[i * d..(i + 1) * d], &[d])?);
        map.insert(layer(i, "mlp.gate_proj.weight"), t(&w1[i * hid * d..(i + 1) * hid * d], &[hid, d])?);
        map.insert(layer(i, "mlp.down_proj.weight"), t(&w2[i * d * hid..(i + 1) * d * hid], &[d, hid])?);
        map.insert(layer(i, "mlp.up_proj.weight"), t(&w3[i * hid * d..(i + 1) * hid * d], &[hid, d])?);
    }
    map.insert("model.norm.weight".to_string(), t(&rms_final, &[d])?);
    if !h.shared_classifier {
        map.insert("lm_head.weight".to_string(), t(take(v * d), &[v, d])?);
    }
    let mut cfg = DecoderConfig::llama(v, d, l, h.n_heads, h.n_kv_heads, hid, h.seq_len, 1e-5, 10000.0, h.shared_classifier);
    cfg.bos_token_id = Some(1);
    cfg.eos_token_ids = vec![2];
    Ok((h, cfg, map))
}

/// Interleaved rotary layout (Meta, llama2.c, GGUF) → HF's rotate-half layout, on the rows of a
/// `[n_head·hd, in]` matrix: transformers' `reverse_permute_weights`
/// (`w.reshape(n_head, hd/2, 2, in).swapaxes(1, 2)`).
pub fn unpermute_rows(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let hd = out / n_head;
    w.reshape((n_head, hd / 2, 2, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))
}

/// llama2.c's tokenizer, encoding and decoding exactly as run.c does.
#[derive(Debug, Clone)]
pub struct Llama2cTokenizer {
    pieces: Vec<Vec<u8>>,
    scores: Vec<f32>,
    lookup: HashMap<Vec<u8>, u32>,
    /// The longest piece, in bytes (what the file's header field of that name should say).
    pub max_token_length: usize,
}

impl Llama2cTokenizer {
    /// Reads `vocab_size` entries; the file must hold exactly that many.
    pub fn read(path: &Path, vocab_size: usize) -> Result<Self, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|e| RuntimeError::io(path, e))?;
        let bad = |reason: String| RuntimeError::Tokenizer { path: path.to_path_buf(), reason };
        if bytes.len() < 4 {
            return Err(bad("shorter than its 4-byte header".into()));
        }
        // bytes[..4] is run.c's max_token_length: not trusted (see below).
        let mut at = 4;
        let (mut pieces, mut scores) = (Vec::with_capacity(vocab_size), Vec::with_capacity(vocab_size));
        while at < bytes.len() {
            if at + 8 > bytes.len() {
                return Err(bad(format!("token {} is cut off at byte {at}", pieces.len())));
            }
            let score = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = i32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
            at += 8;
            if len < 0 || at + len as usize > bytes.len() {
                return Err(bad(format!("token {} has length {len}, beyond the end of the file", pieces.len())));
            }
            pieces.push(bytes[at..at + len as usize].to_vec());
            scores.push(score);
            at += len as usize;
        }
        if pieces.len() > vocab_size {
            return Err(RuntimeError::VocabTooLarge { path: path.to_path_buf(), max_id: pieces.len() - 1, embedding_rows: vocab_size });
        }
        if pieces.len() < vocab_size {
            return Err(bad(format!("{} tokens, but the model has a {vocab_size}-token vocabulary", pieces.len())));
        }
        // run.c encodes a character it has no token for as its bytes, ids byte + 3 (up to 258).
        if pieces.len() < 259 {
            return Err(bad(format!("{} tokens: run.c's byte fallback needs at least 259 (ids 3..=258 are <0x00>..<0xFF>)", pieces.len())));
        }
        let mut lookup = HashMap::with_capacity(pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            lookup.entry(p.clone()).or_insert(i as u32);
        }
        if !lookup.contains_key(b" ".as_slice()) {
            return Err(bad("no \" \" token, which run.c's encoder needs for the dummy prefix".into()));
        }
        // The header's max_token_length sizes run.c's merge buffer; a corrupt one (up to 2^31)
        // asked for gigabytes here. The longest piece is what it is meant to be.
        let max_token_length = pieces.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Llama2cTokenizer { pieces, scores, lookup, max_token_length })
    }

    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        self.pieces.get(id as usize).map(|p| p.as_slice())
    }

    /// run.c's `encode(t, text, bos, eos=0)`: dummy-prefix space, per-character lookup with byte
    /// fallback (id = byte + 3), then repeatedly merge the adjacent pair whose concatenation is the
    /// highest-scoring token (leftmost on ties).
    pub fn encode(&self, text: &str, bos: bool) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::with_capacity(text.len() + 2);
        if bos {
            ids.push(1);
        }
        ids.extend(self.encode_chars(text));
        self.merge_pairs(&mut ids);
        ids
    }

    /// run.c's encode before merging: the dummy-prefix space, then each UTF-8 character's id
    /// (or its bytes + 3 when it has none).
    fn encode_chars(&self, text: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::with_capacity(text.len() + 1);
        if !text.is_empty() {
            // A vocabulary without " " falls back to its byte, as any other missing character.
            ids.push(self.lookup.get(b" ".as_slice()).copied().unwrap_or(b' ' as u32 + 3));
        }
        let raw = text.as_bytes();
        let mut buf: Vec<u8> = Vec::with_capacity(4);
        for (i, &c) in raw.iter().enumerate() {
            if c & 0xC0 != 0x80 {
                buf.clear();
            }
            buf.push(c);
            if i + 1 < raw.len() && raw[i + 1] & 0xC0 == 0x80 && buf.len() < 4 {
                continue;
            }
            match self.lookup.get(&buf) {
                Some(&id) => ids.push(id),
                None => ids.extend(buf.iter().map(|&b| b as u32 + 3)),
            }
            buf.clear();
        }
        ids
    }

    /// run.c's merge loop — repeatedly merge the adjacent pair whose merged piece has the highest
    /// score, the leftmost among equals, while one scores above −1e10 — in O(n log n) instead of
    /// run.c's O(n²): candidate pairs wait in a heap ordered by (score, leftmost); a popped pair
    /// whose tokens have changed since it was pushed is stale and skipped. Nodes keep their first
    /// character's index, so "leftmost" never changes meaning as merges happen.
    fn merge_pairs(&self, ids: &mut Vec<u32>) {
        use std::cmp::Ordering;
        use std::collections::BinaryHeap;
        #[derive(PartialEq)]
        struct Candidate {
            score: f32,
            left: usize,
            left_id: u32,
            right_id: u32,
            merged: u32,
        }
        impl Eq for Candidate {}
        impl PartialOrd for Candidate {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Candidate {
            fn cmp(&self, other: &Self) -> Ordering {
                self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
            }
        }
        let n = ids.len();
        if n < 2 {
            return;
        }
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut merged_piece: Vec<u8> = Vec::with_capacity(2 * self.max_token_length + 2);
        let mut heap = BinaryHeap::new();
        let mut push = |heap: &mut BinaryHeap<Candidate>, ids: &[u32], left: usize, right: usize| {
            merged_piece.clear();
            merged_piece.extend_from_slice(&self.pieces[ids[left] as usize]);
            merged_piece.extend_from_slice(&self.pieces[ids[right] as usize]);
            if let Some(&id) = self.lookup.get(&merged_piece) {
                let score = self.scores[id as usize];
                // run.c starts from -1e10 and takes strictly greater scores.
                if score > -1e10 {
                    heap.push(Candidate { score, left, left_id: ids[left], right_id: ids[right], merged: id });
                }
            }
        };
        for i in 0..n - 1 {
            push(&mut heap, ids, i, i + 1);
        }
        while let Some(c) = heap.pop() {
            let right = next[c.left];
            if !alive[c.left] || right >= n || ids[c.left] != c.left_id || ids[right] != c.right_id {
                continue;
            }
            ids[c.left] = c.merged;
            alive[right] = false;
            next[c.left] = next[right];
            if next[right] < n {
                prev[next[right]] = c.left;
            }
            if prev[c.left] < n {
                push(&mut heap, ids, prev[c.left], c.left);
            }
            if next[c.left] < n {
                push(&mut heap, ids, c.left, next[c.left]);
            }
        }
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i < n {
            out.push(ids[i]);
            i = next[i];
        }
        *ids = out;
    }

    /// run.c's `decode` applied token after token: a piece following BOS loses its leading
    /// space, `<0xXX>` pieces become their byte; BOS and EOS print nothing (run.c never prints them).
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev: Option<u32> = None;
        for &id in ids {
            let Some(piece) = self.pieces.get(id as usize) else {
                prev = Some(id);
                continue;
            };
            if id == 1 || id == 2 {
                prev = Some(id);
                continue;
            }
            let mut piece: &[u8] = piece;
            if prev == Some(1) && piece.first() == Some(&b' ') {
                piece = &piece[1..];
            }
            match parse_byte_piece(piece) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(piece),
            }
            prev = Some(id);
        }
        out
    }
}

/// `sscanf(piece, "<0x%02hhX>", &byte)`: "<0x" then one or two hex digits.
fn parse_byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let digits: Vec<u8> = rest.iter().take(2).copied().take_while(|c| c.is_ascii_hexdigit()).collect();
    if digits.is_empty() {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// run.c's merge loop as it is written (O(n²)), to check the heap against.
    fn merge_like_run_c(tok: &Llama2cTokenizer, ids: &mut Vec<u32>) {
        loop {
            let mut best: Option<(f32, u32, usize)> = None;
            for i in 0..ids.len().saturating_sub(1) {
                let mut merged = tok.pieces[ids[i] as usize].clone();
                merged.extend_from_slice(&tok.pieces[ids[i + 1] as usize]);
                if let Some(&id) = tok.lookup.get(&merged) {
                    let score = tok.scores[id as usize];
                    if score > best.map_or(-1e10, |b| b.0) {
                        best = Some((score, id, i));
                    }
                }
            }
            match best {
                Some((_, id, i)) => {
                    ids[i] = id;
                    ids.remove(i + 1);
                }
                None => break,
            }
        }
    }

    #[test]
    fn heap_merges_equal_run_c_merges_on_real_text() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/stories260K/tok512.bin");
        let tok = Llama2cTokenizer::read(&path, 512).unwrap();
        let corpus = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/c4_sample/c4_en_train00000_first1000.jsonl")).unwrap();
        let mut texts: Vec<String> = corpus.lines().take(40).map(|l| l.chars().take(700).collect()).collect();
        texts.extend(["Once upon a time", "aaaaaaaa  bbbb\n\t ünïcödé 日本 🙂", "", " ", "the the the the"].map(String::from));
        for text in &texts {
            let fast = tok.encode(text, true);
            let mut slow: Vec<u32> = fast.clone();
            // Re-tokenise into characters, then merge the slow way.
            slow.clear();
            slow.push(1);
            slow.extend(tok.encode_chars(text));
            merge_like_run_c(&tok, &mut slow);
            assert_eq!(fast, slow, "{text:?}");
        }
    }

    #[test]
    fn byte_pieces_parse_like_sscanf() {
        assert_eq!(parse_byte_piece(b"<0x0A>"), Some(10));
        assert_eq!(parse_byte_piece(b"<0xfF>"), Some(255));
        assert_eq!(parse_byte_piece(b"<0x7"), Some(7));
        assert_eq!(parse_byte_piece(b"<0x>"), None);
        assert_eq!(parse_byte_piece(b"hello"), None);
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2); ours must undo it.
        let (n_head, hd, inp) = (2usize, 4usize, 3usize);
        let w: Vec<f32> = (0..n_head * hd * inp).map(|i| i as f32).collect();
        let hf = Tensor::from_vec(w.clone(), (n_head * hd, inp), &Device::Cpu).unwrap();
        let permuted = hf.reshape((n_head, 2, hd / 2, inp)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap().reshape((n_head * hd, inp)).unwrap();
        assert_ne!(permuted.flatten_all().unwrap().to_vec1::<f32>().unwrap(), w);
        let back = unpermute_rows(&permuted, n_head).unwrap();
        assert_eq!(back.flatten_all().unwrap().to_vec1::<f32>().unwrap(), w);
    }
}
