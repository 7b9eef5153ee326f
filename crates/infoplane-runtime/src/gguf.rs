//! GGUF files of the llama architecture: metadata → [`DecoderConfig`], tensors dequantised to f32
//! (candle's GGUF reader) and renamed to HF names with q/k un-permuted exactly as transformers'
//! GGUF loader does, and the tokenizer rebuilt from `tokenizer.ggml.*`.

use crate::config::{DecoderConfig, Positions, RopeScaling};
use crate::error::RuntimeError;
use crate::llama2c::unpermute_rows;
use crate::tokenizer::{GgufVocab, TextTokenizer};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "GGUF";

/// ggml's type ids and names, to name a type candle cannot decode.
fn ggml_type_name(id: u32) -> String {
    let name = match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        30 => "BF16",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return format!("type {id}"),
    };
    format!("{name} (type {id})")
}

fn dtype_name(t: GgmlDType) -> &'static str {
    match t {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

/// An opened GGUF file: header and metadata parsed, tensors not yet read.
pub struct GgufFile {
    path: std::path::PathBuf,
    content: Content,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self, RuntimeError> {
        let file = std::fs::File::open(path).map_err(|e| RuntimeError::io(path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| {
            let msg = crate::error::candle_message(&e);
            if let Some(rest) = msg.split("unknown dtype for tensor ").nth(1) {
                if let Ok(id) = rest.trim().parse::<u32>() {
                    return RuntimeError::UnsupportedQuant { path: path.to_path_buf(), type_name: ggml_type_name(id) };
                }
            }
            RuntimeError::format(path, FORMAT, msg)
        })?;
        // candle multiplies a tensor's dimensions unchecked when it reads it: a product past
        // 2^64 panicked (overflow checks) or wrapped to a small size that passed its bounds check.
        // Both this and the empty tensor below were found by the gguf fuzz target.
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        for name in names {
            let dims = content.tensor_infos[name].shape.dims();
            let elements = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= isize::MAX as usize / 8);
            match elements {
                None => return Err(RuntimeError::format(path, FORMAT, format!("tensor {name}: dimensions {dims:?} overflow"))),
                // An empty tensor reaches candle as a dangling, unaligned pointer that it casts
                // to its block type (undefined behaviour; a panic under debug assertions).
                Some(0) => return Err(RuntimeError::format(path, FORMAT, format!("tensor {name}: dimensions {dims:?} hold no elements"))),
                Some(_) => {}
            }
        }
        Ok(GgufFile { path: path.to_path_buf(), content })
    }

    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    /// Tensor names and their GGML types, sorted by name.
    pub fn tensor_types(&self) -> BTreeMap<String, &'static str> {
        self.content.tensor_infos.iter().map(|(k, v)| (k.clone(), dtype_name(v.ggml_dtype))).collect()
    }

    fn meta(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    fn meta_u64(&self, key: &str) -> Result<Option<u64>, RuntimeError> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            other => return Err(RuntimeError::config(&self.path, key, format!("expected a non-negative integer, found {other:?}"))),
        };
        Ok(Some(n))
    }

    fn meta_f64(&self, key: &str) -> Result<Option<f64>, RuntimeError> {
        let Some(v) = self.meta(key) else { return Ok(None) };
        Ok(Some(match v {
            Value::F32(x) => *x as f64,
            Value::F64(x) => *x,
            other => match self.meta_u64(key) {
                Ok(Some(n)) => n as f64,
                _ => return Err(RuntimeError::config(&self.path, key, format!("expected a number, found {other:?}"))),
            },
        }))
    }

    fn meta_str(&self, key: &str) -> Result<Option<&str>, RuntimeError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(RuntimeError::config(&self.path, key, format!("expected a string, found {other:?}"))),
        }
    }

    fn meta_bool(&self, key: &str) -> Result<Option<bool>, RuntimeError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(RuntimeError::config(&self.path, key, format!("expected a boolean, found {other:?}"))),
        }
    }

    fn req(&self, key: &str) -> Result<usize, RuntimeError> {
        self.meta_u64(key)?.map(|v| v as usize).ok_or_else(|| RuntimeError::config(&self.path, key, "missing"))
    }

    pub fn architecture(&self) -> Result<String, RuntimeError> {
        Ok(self.meta_str("general.architecture")?.ok_or_else(|| RuntimeError::config(&self.path, "general.architecture", "missing"))?.to_string())
    }

    /// The decoder configuration, as transformers' GGUF config mapping reads it for `llama`.
    pub fn config(&self) -> Result<DecoderConfig, RuntimeError> {
        let arch = self.architecture()?;
        if arch != "llama" {
            return Err(RuntimeError::UnsupportedGgufArch { path: self.path.clone(), arch });
        }
        let k = |s: &str| format!("llama.{s}");
        let hidden = self.req(&k("embedding_length"))?;
        let n_heads = self.req(&k("attention.head_count"))?;
        let n_kv = self.meta_u64(&k("attention.head_count_kv"))?.map(|v| v as usize).unwrap_or(n_heads);
        let n_layers = self.req(&k("block_count"))?;
        let inter = self.req(&k("feed_forward_length"))?;
        let max_pos = self.meta_u64(&k("context_length"))?.map(|v| v as usize).unwrap_or(2048);
        let eps = self.meta_f64(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6);
        let theta = self.meta_f64(&k("rope.freq_base"))?.unwrap_or(10000.0);
        let vocab = match self.meta_u64(&k("vocab_size"))? {
            Some(v) => v as usize,
            None => match self.meta("tokenizer.ggml.tokens") {
                Some(Value::Array(a)) => a.len(),
                _ => return Err(RuntimeError::config(&self.path, k("vocab_size"), "missing, and no tokenizer.ggml.tokens to count")),
            },
        };
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let mut cfg = DecoderConfig::llama(vocab, hidden, n_layers, n_heads, n_kv, inter, max_pos, eps, theta, tied);
        if let Some(hd) = self.meta_u64(&k("rope.dimension_count"))? {
            // transformers maps rope.dimension_count to head_dim for llama.
            cfg.head_dim = hd as usize;
            if let Positions::Rotary(r) = &mut cfg.positions {
                r.rotary_dim = hd as usize;
            }
        }
        // llama.cpp's rope scaling metadata (transformers ignores it; llama.cpp applies it).
        if let Positions::Rotary(r) = &mut cfg.positions {
            if self.meta_str(&k("rope.scaling.type"))? == Some("linear") {
                if let Some(f) = self.meta_f64(&k("rope.scaling.factor"))? {
                    r.scaling = RopeScaling::Linear { factor: f };
                }
            }
        }
        cfg.bos_token_id = self.meta_u64("tokenizer.ggml.bos_token_id")?.map(|v| v as u32);
        cfg.eos_token_ids = self.meta_u64("tokenizer.ggml.eos_token_id")?.map(|v| v as u32).into_iter().collect();
        cfg.validate(&self.path)?;
        Ok(cfg)
    }

    /// An array-valued key, each element converted; an element of the wrong type is named in the error.
    fn meta_array<T>(&self, key: &str, what: &str, convert: impl Fn(&Value) -> Option<T>) -> Result<Option<Vec<T>>, RuntimeError> {
        match self.meta(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| convert(v).ok_or_else(|| RuntimeError::config(&self.path, format!("{key}[{i}]"), format!("expected {what}, found {v:?}"))))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(RuntimeError::config(&self.path, key, format!("expected an array, found {:?}", other.value_type()))),
        }
    }

    /// The vocabulary metadata.
    pub fn vocab(&self) -> Result<GgufVocab, RuntimeError> {
        let strings = |key: &str| self.meta_array(key, "a string", |v| if let Value::String(s) = v { Some(s.clone()) } else { None });
        let numbers = |key: &str| {
            self.meta_array(key, "a number", |v| match v {
                Value::F32(x) => Some(*x as f64),
                Value::F64(x) => Some(*x),
                Value::I32(x) => Some(*x as f64),
                Value::U32(x) => Some(*x as f64),
                Value::I64(x) => Some(*x as f64),
                Value::U8(x) => Some(*x as f64),
                Value::I8(x) => Some(*x as f64),
                _ => None,
            })
        };
        let model = self.meta_str("tokenizer.ggml.model")?.ok_or_else(|| RuntimeError::config(&self.path, "tokenizer.ggml.model", "missing: the file has no tokenizer"))?.to_string();
        let tokens = strings("tokenizer.ggml.tokens")?.ok_or_else(|| RuntimeError::config(&self.path, "tokenizer.ggml.tokens", "missing"))?;
        Ok(GgufVocab {
            model,
            pre: self.meta_str("tokenizer.ggml.pre")?.map(str::to_string),
            scores: numbers("tokenizer.ggml.scores")?.map(|v| v.into_iter().map(|x| x as f32).collect()),
            token_types: numbers("tokenizer.ggml.token_type")?.map(|v| v.into_iter().map(|x| x as i64).collect()),
            merges: strings("tokenizer.ggml.merges")?,
            bos: self.meta_u64("tokenizer.ggml.bos_token_id")?.map(|v| v as u32),
            eos: self.meta_u64("tokenizer.ggml.eos_token_id")?.map(|v| v as u32),
            unk: self.meta_u64("tokenizer.ggml.unknown_token_id")?.map(|v| v as u32),
            pad: self.meta_u64("tokenizer.ggml.padding_token_id")?.map(|v| v as u32),
            add_bos: self.meta_bool("tokenizer.ggml.add_bos_token")?,
            add_eos: self.meta_bool("tokenizer.ggml.add_eos_token")?,
            tokens,
        })
    }

    pub fn tokenizer(&self) -> Result<TextTokenizer, RuntimeError> {
        self.vocab()?.to_tokenizer(&self.path)
    }

    /// One tensor, dequantised to f32 on the CPU, in GGUF's (row-major `[out, in]`) shape.
    pub fn dequantize(&self, name: &str) -> Result<Tensor, RuntimeError> {
        let file = std::fs::File::open(&self.path).map_err(|e| RuntimeError::io(&self.path, e))?;
        let mut reader = std::io::BufReader::new(file);
        self.dequantize_from(&mut reader, name)
    }

    fn dequantize_from<R: std::io::Read + std::io::Seek>(&self, reader: &mut R, name: &str) -> Result<Tensor, RuntimeError> {
        let q = self.content.tensor(reader, name, &Device::Cpu).map_err(|e| RuntimeError::format(&self.path, FORMAT, format!("tensor {name}: {}", crate::error::candle_message(&e))))?;
        q.dequantize(&Device::Cpu).map_err(|e| RuntimeError::format(&self.path, FORMAT, format!("tensor {name}: {}", crate::error::candle_message(&e))))
    }

    /// Every tensor of a llama GGUF, dequantised to f32 and renamed to HF names, with q and k
    /// un-permuted (transformers' `LlamaTensorProcessor._reverse_permute_weights`). Also returns
    /// `rope_freqs.weight` when present.
    pub fn hf_tensors(&self, cfg: &DecoderConfig) -> Result<(HashMap<String, Tensor>, Option<Vec<f32>>), RuntimeError> {
        let file = std::fs::File::open(&self.path).map_err(|e| RuntimeError::io(&self.path, e))?;
        let mut reader = std::io::BufReader::new(file);
        let mut names: Vec<&String> = self.content.tensor_infos.keys().collect();
        names.sort();
        let mut out = HashMap::new();
        let mut rope_freqs = None;
        for name in names {
            if name == "rope_freqs.weight" {
                let t = self.dequantize_from(&mut reader, name)?;
                rope_freqs = Some(t.flatten_all()?.to_vec1::<f32>()?);
                continue;
            }
            let Some(hf) = hf_name(name) else { continue };
            let mut t = self.dequantize_from(&mut reader, name)?;
            // transformers un-permutes every tensor whose name contains ".attn_q." / ".attn_k."
            // (weights and biases alike).
            let heads = if name.contains(".attn_q.") {
                Some(cfg.n_heads)
            } else if name.contains(".attn_k.") {
                Some(cfg.n_kv_heads)
            } else {
                None
            };
            if let Some(n) = heads {
                t = if t.rank() == 1 { unpermute_rows(&t.unsqueeze(1)?, n)?.squeeze(1)? } else { unpermute_rows(&t, n)? };
            }
            out.insert(hf, t);
        }
        Ok((out, rope_freqs))
    }
}

/// llama.cpp tensor names → HF Llama names (transformers' GGUF name map for `llama`).
pub fn hf_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "attn_q.bias" => "self_attn.q_proj.bias",
        "attn_k.bias" => "self_attn.k_proj.bias",
        "attn_v.bias" => "self_attn.v_proj.bias",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}
