//! The generic decoder's configuration: one struct with per-family switches, filled from an HF
//! `config.json`, from GGUF metadata or from a llama2.c header.
//!
//! # Adding a model family
//! 1. If its block is a variation of an existing one (norm kind or placement, biases, rotary
//!    details, activation, residual wiring), add a `model_type` arm to [`DecoderConfig::from_hf_json`]
//!    that sets the switches, and if its tensors are named differently, a [`Naming`] arm.
//! 2. If it needs a switch that does not exist yet, add the field here, honour it in
//!    `decoder.rs` (`Block::forward` / `Attention::forward`), and default it so the other
//!    families are unchanged.
//! 3. Add the `model_type` to `SUPPORTED_MODEL_TYPES` (error.rs), a variant to
//!    `scripts/make_model_fixtures.py`, and the variant's name to the parity test list.

use crate::error::RuntimeError;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// How a block is wired and how its tensors are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Llama, Mistral, SmolLM2, Qwen2, OLMo2: RMSNorm, rotary, gated SiLU MLP, separate q/k/v.
    Llama,
    /// GPT-NeoX (Pythia): LayerNorm, partial rotary, fused per-head interleaved qkv, plain MLP.
    GptNeox,
    /// GPT-2: LayerNorm, learned positions, Conv1D ([in, out]) weights, plain MLP.
    Gpt2,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    Rms,
    Layer,
}

/// Where a block's norms sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormPlacement {
    /// `x + f(norm(x))` (Llama, GPT-2, NeoX).
    Pre,
    /// `x + norm(f(x))` (OLMo2: `post_attention_layernorm`, `post_feedforward_layernorm`).
    PostSublayer,
}

/// Normalisation of queries and keys before rotary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QkNorm {
    None,
    /// RMSNorm over the whole q (and k) projection, all heads together (OLMo2).
    WholeProjection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// Exact (erf) GELU, `gelu` in HF configs.
    GeluErf,
    /// tanh approximation, `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast`.
    GeluTanh,
    Relu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpKind {
    /// `down(act(gate(x)) * up(x))`.
    Gated,
    /// `proj(act(fc(x)))`.
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Residual {
    Sequential,
    /// `x + attn(ln1(x)) + mlp(ln2(x))` (NeoX `use_parallel_residual`).
    Parallel,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    None,
    Linear { factor: f64 },
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max_position_embeddings: f64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RopeConfig {
    pub theta: f64,
    /// Leading dimensions of each head that rotate (head_dim × partial_rotary_factor).
    pub rotary_dim: usize,
    pub scaling: RopeScaling,
    /// llama.cpp's `rope_freqs.weight`: each inverse frequency is divided by its factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq_factors: Option<Vec<f32>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Positions {
    Rotary(RopeConfig),
    Learned,
}

/// Everything the generic decoder needs to know about a model.
#[derive(Debug, Clone, Serialize)]
pub struct DecoderConfig {
    /// As in HF `config.json` (`llama`, `mistral`, `qwen2`, `olmo2`, `gpt_neox`, `gpt2`).
    pub model_type: String,
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub max_positions: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub norm_placement: NormPlacement,
    pub qk_norm: QkNorm,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub positions: Positions,
    pub mlp: MlpKind,
    pub activation: Activation,
    pub residual: Residual,
    pub tie_word_embeddings: bool,
    /// Per layer: `Some(w)` when the layer attends only to the last `w` keys (q − k < w).
    pub layer_windows: Vec<Option<usize>>,
    /// GPT-2's `scale_attn_by_inverse_layer_idx`.
    pub scale_attn_by_inverse_layer_idx: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

/// Reads typed fields of a JSON object, with errors naming the file and the field.
pub(crate) struct Fields<'a> {
    pub path: &'a Path,
    pub obj: &'a serde_json::Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn present(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }
    pub fn usize_opt(&self, key: &str) -> Result<Option<usize>, RuntimeError> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| RuntimeError::config(self.path, key, format!("expected a non-negative integer, found {v}"))),
        }
    }
    pub fn usize_req(&self, key: &str) -> Result<usize, RuntimeError> {
        self.usize_opt(key)?.ok_or_else(|| RuntimeError::config(self.path, key, "missing"))
    }
    pub fn positive(&self, key: &str) -> Result<usize, RuntimeError> {
        let v = self.usize_req(key)?;
        if v == 0 {
            return Err(RuntimeError::config(self.path, key, "must be positive"));
        }
        Ok(v)
    }
    pub fn f64_opt(&self, key: &str) -> Result<Option<f64>, RuntimeError> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| RuntimeError::config(self.path, key, format!("expected a number, found {v}"))),
        }
    }
    pub fn bool_opt(&self, key: &str) -> Result<Option<bool>, RuntimeError> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| RuntimeError::config(self.path, key, format!("expected true or false, found {v}"))),
        }
    }
    pub fn str_opt(&self, key: &str) -> Result<Option<&'a str>, RuntimeError> {
        match self.present(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| RuntimeError::config(self.path, key, format!("expected a string, found {v}"))),
        }
    }
    /// A token id, or a list of them (`eos_token_id: [128001, 128009]`).
    pub fn ids(&self, key: &str) -> Result<Vec<u32>, RuntimeError> {
        let bad = |v: &Value| RuntimeError::config(self.path, key, format!("expected a token id or a list of them, found {v}"));
        match self.present(key) {
            None => Ok(vec![]),
            Some(Value::Array(items)) => items.iter().map(|v| v.as_u64().map(|x| x as u32).ok_or_else(|| bad(v))).collect(),
            Some(v) => v.as_u64().map(|x| vec![x as u32]).ok_or_else(|| bad(v)),
        }
    }
}

fn activation(path: &Path, key: &str, name: &str) -> Result<Activation, RuntimeError> {
    Ok(match name {
        "silu" | "swish" => Activation::Silu,
        "gelu" => Activation::GeluErf,
        "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        other => return Err(RuntimeError::config(path, key, format!("activation {other:?} is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)"))),
    })
}

/// Rotary parameters from either the transformers-5 `rope_parameters` dict or the older
/// `rope_theta` + `rope_scaling` (+ NeoX `rotary_pct`/`rotary_emb_base`) fields.
fn rope_from_hf(f: &Fields, head_dim: usize, default_partial: f64) -> Result<RopeConfig, RuntimeError> {
    let params = f.present("rope_parameters").or_else(|| f.present("rope_scaling"));
    let params_key = if f.present("rope_parameters").is_some() { "rope_parameters" } else { "rope_scaling" };
    let p = match params {
        Some(Value::Object(o)) => Some(Fields { path: f.path, obj: o }),
        Some(v) => return Err(RuntimeError::config(f.path, params_key, format!("expected an object, found {v}"))),
        None => None,
    };
    let theta = match p.as_ref().map(|p| p.f64_opt("rope_theta")).transpose()?.flatten() {
        Some(t) => t,
        None => f.f64_opt("rope_theta")?.or(f.f64_opt("rotary_emb_base")?).unwrap_or(10000.0),
    };
    let partial = match p.as_ref().map(|p| p.f64_opt("partial_rotary_factor")).transpose()?.flatten() {
        Some(x) => x,
        None => f.f64_opt("partial_rotary_factor")?.or(f.f64_opt("rotary_pct")?).unwrap_or(default_partial),
    };
    if !(partial > 0.0 && partial <= 1.0) {
        return Err(RuntimeError::config(f.path, "partial_rotary_factor", format!("must be in (0, 1], found {partial}")));
    }
    // transformers: int(head_dim * partial_rotary_factor).
    let rotary_dim = (head_dim as f64 * partial) as usize;
    if rotary_dim == 0 || !rotary_dim.is_multiple_of(2) {
        return Err(RuntimeError::config(f.path, "partial_rotary_factor", format!("gives an odd or empty rotary dimension {rotary_dim} for head_dim {head_dim}")));
    }
    let scaling = match &p {
        None => RopeScaling::None,
        Some(p) => {
            let kind = p.str_opt("rope_type")?.or(p.str_opt("type")?).unwrap_or("default");
            let key = |k: &str| format!("{params_key}.{k}");
            let need = |k: &str| -> Result<f64, RuntimeError> { p.f64_opt(k)?.ok_or_else(|| RuntimeError::config(f.path, key(k), "missing")) };
            match kind {
                "default" => RopeScaling::None,
                "linear" => RopeScaling::Linear { factor: need("factor")? },
                "llama3" => RopeScaling::Llama3 {
                    factor: need("factor")?,
                    low_freq_factor: need("low_freq_factor")?,
                    high_freq_factor: need("high_freq_factor")?,
                    original_max_position_embeddings: need("original_max_position_embeddings")?,
                },
                other => return Err(RuntimeError::config(f.path, key("rope_type"), format!("rope type {other:?} is not supported (supported: default, linear, llama3)"))),
            }
        }
    };
    Ok(RopeConfig { theta, rotary_dim, scaling, freq_factors: None })
}

impl DecoderConfig {
    /// Parses an HF `config.json` (already read as JSON) for a supported `model_type`.
    pub fn from_hf_json(path: &Path, json: &Value) -> Result<Self, RuntimeError> {
        let obj = json.as_object().ok_or_else(|| RuntimeError::config(path, "(root)", "expected a JSON object"))?;
        let f = Fields { path, obj };
        let model_type = f.str_opt("model_type")?.ok_or_else(|| RuntimeError::config(path, "model_type", "missing"))?.to_string();
        let bos_token_id = f.ids("bos_token_id")?.first().copied();
        let eos_token_ids = f.ids("eos_token_id")?;
        match model_type.as_str() {
            "llama" | "mistral" | "qwen2" | "olmo2" => {
                let hidden_size = f.positive("hidden_size")?;
                let n_layers = f.positive("num_hidden_layers")?;
                let n_heads = f.positive("num_attention_heads")?;
                let n_kv_heads = f.usize_opt("num_key_value_heads")?.unwrap_or(n_heads);
                let head_dim = f.usize_opt("head_dim")?.unwrap_or(hidden_size / n_heads);
                let default_max = match model_type.as_str() {
                    "mistral" => 4096 * 32,
                    "qwen2" => 32768,
                    _ => 2048,
                };
                let default_eps = if model_type == "olmo2" { 1e-5 } else { 1e-6 };
                let attention_bias = f.bool_opt("attention_bias")?.unwrap_or(false);
                let layer_windows = match model_type.as_str() {
                    "mistral" => {
                        // MistralConfig defaults sliding_window to 4096; an explicit null turns it off.
                        let w = if obj.contains_key("sliding_window") { f.usize_opt("sliding_window")? } else { Some(4096) };
                        vec![w; n_layers]
                    }
                    "qwen2" => qwen2_windows(&f, n_layers)?,
                    _ => vec![None; n_layers],
                };
                let cfg = DecoderConfig {
                    family: Family::Llama,
                    vocab_size: f.positive("vocab_size")?,
                    hidden_size,
                    n_layers,
                    n_heads,
                    n_kv_heads,
                    head_dim,
                    intermediate_size: f.positive("intermediate_size")?,
                    max_positions: f.usize_opt("max_position_embeddings")?.unwrap_or(default_max),
                    norm: NormKind::Rms,
                    norm_eps: f.f64_opt("rms_norm_eps")?.unwrap_or(default_eps),
                    norm_placement: if model_type == "olmo2" { NormPlacement::PostSublayer } else { NormPlacement::Pre },
                    qk_norm: if model_type == "olmo2" { QkNorm::WholeProjection } else { QkNorm::None },
                    qkv_bias: model_type == "qwen2" || attention_bias,
                    o_bias: model_type != "qwen2" && attention_bias,
                    mlp_bias: f.bool_opt("mlp_bias")?.unwrap_or(false),
                    positions: Positions::Rotary(rope_from_hf(&f, head_dim, 1.0)?),
                    mlp: MlpKind::Gated,
                    activation: activation(path, "hidden_act", f.str_opt("hidden_act")?.unwrap_or("silu"))?,
                    residual: Residual::Sequential,
                    tie_word_embeddings: f.bool_opt("tie_word_embeddings")?.unwrap_or(false),
                    layer_windows,
                    scale_attn_by_inverse_layer_idx: false,
                    bos_token_id,
                    eos_token_ids,
                    model_type,
                };
                cfg.validate(path)?;
                Ok(cfg)
            }
            "gpt_neox" => {
                let hidden_size = f.positive("hidden_size")?;
                let n_heads = f.positive("num_attention_heads")?;
                let head_dim = hidden_size / n_heads;
                let n_layers = f.positive("num_hidden_layers")?;
                let cfg = DecoderConfig {
                    family: Family::GptNeox,
                    vocab_size: f.positive("vocab_size")?,
                    hidden_size,
                    n_layers,
                    n_heads,
                    n_kv_heads: n_heads,
                    head_dim,
                    intermediate_size: f.positive("intermediate_size")?,
                    max_positions: f.usize_opt("max_position_embeddings")?.unwrap_or(2048),
                    norm: NormKind::Layer,
                    norm_eps: f.f64_opt("layer_norm_eps")?.unwrap_or(1e-5),
                    norm_placement: NormPlacement::Pre,
                    qk_norm: QkNorm::None,
                    qkv_bias: f.bool_opt("attention_bias")?.unwrap_or(true),
                    o_bias: f.bool_opt("attention_bias")?.unwrap_or(true),
                    mlp_bias: true,
                    positions: Positions::Rotary(rope_from_hf(&f, head_dim, 0.25)?),
                    mlp: MlpKind::Plain,
                    activation: activation(path, "hidden_act", f.str_opt("hidden_act")?.unwrap_or("gelu"))?,
                    residual: if f.bool_opt("use_parallel_residual")?.unwrap_or(true) { Residual::Parallel } else { Residual::Sequential },
                    tie_word_embeddings: f.bool_opt("tie_word_embeddings")?.unwrap_or(false),
                    layer_windows: vec![None; n_layers],
                    scale_attn_by_inverse_layer_idx: false,
                    bos_token_id,
                    eos_token_ids,
                    model_type,
                };
                cfg.validate(path)?;
                Ok(cfg)
            }
            "gpt2" => {
                let hidden_size = f.usize_opt("n_embd")?.map(Ok).unwrap_or_else(|| f.positive("hidden_size"))?;
                let n_heads = f.usize_opt("n_head")?.map(Ok).unwrap_or_else(|| f.positive("num_attention_heads"))?;
                let n_layers = f.usize_opt("n_layer")?.map(Ok).unwrap_or_else(|| f.positive("num_hidden_layers"))?;
                if !f.bool_opt("scale_attn_weights")?.unwrap_or(true) {
                    return Err(RuntimeError::config(path, "scale_attn_weights", "false is not supported"));
                }
                let cfg = DecoderConfig {
                    family: Family::Gpt2,
                    vocab_size: f.positive("vocab_size")?,
                    hidden_size,
                    n_layers,
                    n_heads,
                    n_kv_heads: n_heads,
                    head_dim: hidden_size / n_heads.max(1),
                    intermediate_size: f.usize_opt("n_inner")?.unwrap_or(4 * hidden_size),
                    max_positions: f.usize_opt("n_positions")?.unwrap_or(1024),
                    norm: NormKind::Layer,
                    norm_eps: f.f64_opt("layer_norm_epsilon")?.unwrap_or(1e-5),
                    norm_placement: NormPlacement::Pre,
                    qk_norm: QkNorm::None,
                    qkv_bias: true,
                    o_bias: true,
                    mlp_bias: true,
                    positions: Positions::Learned,
                    mlp: MlpKind::Plain,
                    activation: activation(path, "activation_function", f.str_opt("activation_function")?.unwrap_or("gelu_new"))?,
                    residual: Residual::Sequential,
                    tie_word_embeddings: f.bool_opt("tie_word_embeddings")?.unwrap_or(true),
                    layer_windows: vec![None; n_layers],
                    scale_attn_by_inverse_layer_idx: f.bool_opt("scale_attn_by_inverse_layer_idx")?.unwrap_or(false),
                    bos_token_id,
                    eos_token_ids,
                    model_type,
                };
                cfg.validate(path)?;
                Ok(cfg)
            }
            _ => Err(RuntimeError::UnsupportedModelType { path: path.to_path_buf(), model_type }),
        }
    }

    /// A plain Llama configuration (used by the GGUF and llama2.c loaders, and by trainers that
    /// build small Llama models from scratch).
    #[allow(clippy::too_many_arguments)]
    pub fn llama(vocab_size: usize, hidden_size: usize, n_layers: usize, n_heads: usize, n_kv_heads: usize, intermediate_size: usize, max_positions: usize, norm_eps: f64, rope_theta: f64, tie_word_embeddings: bool) -> Self {
        let head_dim = hidden_size / n_heads.max(1);
        DecoderConfig {
            model_type: "llama".into(),
            family: Family::Llama,
            vocab_size,
            hidden_size,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            intermediate_size,
            max_positions,
            norm: NormKind::Rms,
            norm_eps,
            norm_placement: NormPlacement::Pre,
            qk_norm: QkNorm::None,
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            positions: Positions::Rotary(RopeConfig { theta: rope_theta, rotary_dim: head_dim, scaling: RopeScaling::None, freq_factors: None }),
            mlp: MlpKind::Gated,
            activation: Activation::Silu,
            residual: Residual::Sequential,
            tie_word_embeddings,
            layer_windows: vec![None; n_layers],
            scale_attn_by_inverse_layer_idx: false,
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }

    /// Shape consistency, with the field at fault named.
    pub fn validate(&self, path: &Path) -> Result<(), RuntimeError> {
        let bad = |field: &str, reason: String| Err(RuntimeError::config(path, field, reason));
        if self.n_heads == 0 || self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad("num_key_value_heads", format!("{} query heads are not a multiple of {} key/value heads", self.n_heads, self.n_kv_heads));
        }
        if self.head_dim == 0 {
            return bad("head_dim", "must be positive".into());
        }
        if self.family != Family::Llama && self.hidden_size != self.n_heads * self.head_dim {
            return bad("num_attention_heads", format!("hidden size {} is not divisible by {} heads", self.hidden_size, self.n_heads));
        }
        if let Positions::Rotary(r) = &self.positions {
            if r.rotary_dim > self.head_dim || r.rotary_dim % 2 != 0 {
                return bad("rope", format!("rotary dimension {} does not fit head_dim {}", r.rotary_dim, self.head_dim));
            }
            if !(r.theta > 0.0) {
                return bad("rope_theta", format!("must be positive, found {}", r.theta));
            }
        }
        if !(self.norm_eps >= 0.0) {
            return bad("rms_norm_eps", "must be non-negative".into());
        }
        if self.layer_windows.len() != self.n_layers {
            return bad("layer_types", format!("{} entries for {} layers", self.layer_windows.len(), self.n_layers));
        }
        Ok(())
    }

    /// An HF `config.json` for this configuration, in the legacy layout (`rope_theta`,
    /// `rope_scaling`) that both transformers 4 and 5 read, and that
    /// [`DecoderConfig::from_hf_json`] reads back to an equal configuration. For trainers that
    /// save checkpoints (with `model.safetensors` in HF tensor names).
    pub fn to_hf_json(&self) -> serde_json::Value {
        use serde_json::json;
        let act = match self.activation {
            Activation::Silu => "silu",
            Activation::GeluErf => "gelu",
            Activation::GeluTanh => if self.family == Family::Gpt2 { "gelu_new" } else { "gelu_pytorch_tanh" },
            Activation::Relu => "relu",
        };
        let eos: serde_json::Value = match self.eos_token_ids.as_slice() {
            [] => serde_json::Value::Null,
            [one] => json!(one),
            many => json!(many),
        };
        let (theta, rotary_pct, scaling) = match &self.positions {
            Positions::Rotary(r) => {
                let scaling = match &r.scaling {
                    RopeScaling::None => serde_json::Value::Null,
                    RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
                    RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => json!({"rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor, "high_freq_factor": high_freq_factor, "original_max_position_embeddings": original_max_position_embeddings}),
                };
                (r.theta, r.rotary_dim as f64 / self.head_dim as f64, scaling)
            }
            Positions::Learned => (0.0, 1.0, serde_json::Value::Null),
        };
        let mut v = match self.family {
            Family::Llama => {
                let mut v = json!({
                    "architectures": [match self.model_type.as_str() { "mistral" => "MistralForCausalLM", "qwen2" => "Qwen2ForCausalLM", "olmo2" => "Olmo2ForCausalLM", _ => "LlamaForCausalLM" }],
                    "model_type": self.model_type, "vocab_size": self.vocab_size, "hidden_size": self.hidden_size,
                    "intermediate_size": self.intermediate_size, "num_hidden_layers": self.n_layers,
                    "num_attention_heads": self.n_heads, "num_key_value_heads": self.n_kv_heads, "head_dim": self.head_dim,
                    "max_position_embeddings": self.max_positions, "rms_norm_eps": self.norm_eps, "hidden_act": act,
                    "rope_theta": theta, "rope_scaling": scaling, "tie_word_embeddings": self.tie_word_embeddings,
                    "attention_bias": self.o_bias, "mlp_bias": self.mlp_bias,
                });
                if self.model_type == "mistral" {
                    v["sliding_window"] = json!(self.layer_windows.first().copied().flatten());
                }
                if self.model_type == "qwen2" {
                    let sliding: Vec<&str> = self.layer_windows.iter().map(|w| if w.is_some() { "sliding_attention" } else { "full_attention" }).collect();
                    v["use_sliding_window"] = json!(self.layer_windows.iter().any(|w| w.is_some()));
                    v["sliding_window"] = json!(self.layer_windows.iter().flatten().next());
                    v["layer_types"] = json!(sliding);
                }
                v
            }
            Family::GptNeox => json!({
                "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size, "intermediate_size": self.intermediate_size, "num_hidden_layers": self.n_layers,
                "num_attention_heads": self.n_heads, "max_position_embeddings": self.max_positions, "layer_norm_eps": self.norm_eps,
                "hidden_act": act, "rotary_pct": rotary_pct, "rotary_emb_base": theta, "rope_scaling": scaling,
                "use_parallel_residual": self.residual == Residual::Parallel, "attention_bias": self.qkv_bias,
                "tie_word_embeddings": self.tie_word_embeddings,
            }),
            Family::Gpt2 => json!({
                "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": self.vocab_size, "n_embd": self.hidden_size,
                "n_inner": self.intermediate_size, "n_layer": self.n_layers, "n_head": self.n_heads, "n_positions": self.max_positions,
                "layer_norm_epsilon": self.norm_eps, "activation_function": act, "scale_attn_weights": true,
                "scale_attn_by_inverse_layer_idx": self.scale_attn_by_inverse_layer_idx, "tie_word_embeddings": self.tie_word_embeddings,
            }),
        };
        v["bos_token_id"] = json!(self.bos_token_id);
        v["eos_token_id"] = eos;
        v["torch_dtype"] = json!("float32");
        v
    }

    /// Width of the fused q/k/v projection's output.
    pub fn qkv_out(&self) -> usize {
        (self.n_heads + 2 * self.n_kv_heads) * self.head_dim
    }
}

fn qwen2_windows(f: &Fields, n_layers: usize) -> Result<Vec<Option<usize>>, RuntimeError> {
    let use_sw = f.bool_opt("use_sliding_window")?.unwrap_or(false);
    let window = if use_sw { Some(f.usize_opt("sliding_window")?.unwrap_or(4096)) } else { None };
    if let Some(Value::Array(types)) = f.present("layer_types") {
        return types
            .iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                Some("full_attention") => Ok(None),
                Some("sliding_attention") => Ok(window.or(f.usize_opt("sliding_window")?)),
                _ => Err(RuntimeError::config(f.path, format!("layer_types[{i}]"), format!("expected \"full_attention\" or \"sliding_attention\", found {t}"))),
            })
            .collect();
    }
    let max_window_layers = f.usize_opt("max_window_layers")?.unwrap_or(28);
    Ok((0..n_layers).map(|i| if window.is_some() && i >= max_window_layers { window } else { None }).collect())
}
