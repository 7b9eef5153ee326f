//! The model being trained: its shape, its parameters as candle `Var`s in Hugging Face Llama
//! naming, their seeded initialisation, and the files transformers would write for it.
//!
//! Initialisation (GPT-2 / Llama practice, drawn from a portable RNG so it is the same on every
//! machine): every matrix is normal(0, 0.02), except the two projections that write into the
//! residual stream (`o_proj`, `down_proj`), which are normal(0, 0.02 / √(2·layers)) so the
//! residual's variance does not grow with depth; RMSNorm gains are 1. Tensor `name` draws its
//! element `i` (row-major) as `Philox::new(seed, fnv1a64(name)).normal(i)`: each tensor has its own
//! stream, so adding a tensor or reordering them changes no other tensor's values.

use crate::error::TrainError;
use crate::fused::{self, RopeTables};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use infoplane_estimator::rng::Philox;
use infoplane_runtime::decoder::rope_inv_freq;
use infoplane_runtime::{BatchLayout, Decoder, DecoderConfig, DecoderOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Standard deviation of the initial weights (transformers' `initializer_range`).
pub const INIT_STD: f64 = 0.02;
/// RMSNorm epsilon of the trained models (Llama 2's value).
pub const NORM_EPS: f64 = 1e-5;
/// Rotary base.
pub const ROPE_THETA: f64 = 10_000.0;

/// The shape of a Llama model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelShape {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate_size: usize,
    /// Context length trained on (`max_position_embeddings`).
    pub max_positions: usize,
    pub tie_embeddings: bool,
    pub bos_token_id: u32,
}

/// Llama's MLP width for a hidden size: ⌈8d/3⌉ rounded up to a multiple of 8.
pub fn default_intermediate(hidden: usize) -> usize {
    (8 * hidden).div_ceil(3).div_ceil(8) * 8
}

impl ModelShape {
    /// Refuses shapes the decoder cannot run, naming the CLI flag at fault.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.layers == 0 {
            return Err(TrainError::setting("layers", "must be at least 1"));
        }
        if self.hidden_size == 0 {
            return Err(TrainError::setting("width", "must be at least 1"));
        }
        if self.heads == 0 {
            return Err(TrainError::setting("heads", "must be at least 1"));
        }
        if !self.hidden_size.is_multiple_of(self.heads) {
            return Err(TrainError::setting("heads", format!("width {} is not divisible by {} heads", self.hidden_size, self.heads)));
        }
        if !(self.hidden_size / self.heads).is_multiple_of(2) {
            return Err(TrainError::setting("heads", format!("head size {} (width / heads) must be even for rotary embeddings", self.hidden_size / self.heads)));
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(TrainError::setting("kv-heads", format!("{} heads are not a multiple of {} key/value heads", self.heads, self.kv_heads)));
        }
        if self.intermediate_size == 0 {
            return Err(TrainError::setting("intermediate", "must be at least 1"));
        }
        if self.max_positions == 0 {
            return Err(TrainError::setting("context", "must be at least 1"));
        }
        if self.vocab_size == 0 || self.bos_token_id as usize >= self.vocab_size {
            return Err(TrainError::setting("vocab-size", format!("BOS id {} is outside a vocabulary of {}", self.bos_token_id, self.vocab_size)));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.heads
    }

    /// The runtime's configuration of this model.
    pub fn decoder_config(&self) -> DecoderConfig {
        let mut cfg = DecoderConfig::llama(
            self.vocab_size,
            self.hidden_size,
            self.layers,
            self.heads,
            self.kv_heads,
            self.intermediate_size,
            self.max_positions,
            NORM_EPS,
            ROPE_THETA,
            self.tie_embeddings,
        );
        cfg.bos_token_id = Some(self.bos_token_id);
        cfg.eos_token_ids = vec![self.bos_token_id];
        cfg
    }

    /// Every parameter in transformers' `state_dict` order: name, shape, initial standard deviation
    /// (`None`: a norm gain, initialised to 1; decayed by nothing).
    pub fn parameters(&self) -> Vec<(String, Vec<usize>, Option<f64>)> {
        let (d, hd, i) = (self.hidden_size, self.head_dim(), self.intermediate_size);
        let resid = INIT_STD / (2.0 * self.layers as f64).sqrt();
        let mut p = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab_size, d], Some(INIT_STD))];
        for l in 0..self.layers {
            let pre = format!("model.layers.{l}");
            p.push((format!("{pre}.self_attn.q_proj.weight"), vec![self.heads * hd, d], Some(INIT_STD)));
            p.push((format!("{pre}.self_attn.k_proj.weight"), vec![self.kv_heads * hd, d], Some(INIT_STD)));
            p.push((format!("{pre}.self_attn.v_proj.weight"), vec![self.kv_heads * hd, d], Some(INIT_STD)));
            p.push((format!("{pre}.self_attn.o_proj.weight"), vec![d, self.heads * hd], Some(resid)));
            p.push((format!("{pre}.mlp.gate_proj.weight"), vec![i, d], Some(INIT_STD)));
            p.push((format!("{pre}.mlp.up_proj.weight"), vec![i, d], Some(INIT_STD)));
            p.push((format!("{pre}.mlp.down_proj.weight"), vec![d, i], Some(resid)));
            p.push((format!("{pre}.input_layernorm.weight"), vec![d], None));
            p.push((format!("{pre}.post_attention_layernorm.weight"), vec![d], None));
        }
        p.push(("model.norm.weight".to_string(), vec![d], None));
        if !self.tie_embeddings {
            p.push(("lm_head.weight".to_string(), vec![self.vocab_size, d], Some(INIT_STD)));
        }
        p
    }

    /// Number of trainable values (a tied embedding counted once).
    pub fn parameter_count(&self) -> u64 {
        self.parameters().iter().map(|(_, s, _)| s.iter().product::<usize>() as u64).sum()
    }

    /// `config.json` as transformers writes it for a `LlamaForCausalLM` (keys sorted).
    pub fn hf_config(&self) -> serde_json::Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": self.bos_token_id,
            // Documents are separated by BOS in training, so BOS is also what ends one.
            "eos_token_id": self.bos_token_id,
            "head_dim": self.head_dim(),
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": INIT_STD,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_positions,
            "mlp_bias": false,
            "model_type": "llama",
            "num_attention_heads": self.heads,
            "num_hidden_layers": self.layers,
            "num_key_value_heads": self.kv_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": NORM_EPS,
            "rope_scaling": null,
            "rope_theta": ROPE_THETA,
            "tie_word_embeddings": self.tie_embeddings,
            "torch_dtype": "float32",
            "use_cache": true,
            "vocab_size": self.vocab_size,
        })
    }
}

/// FNV-1a (64-bit) of a tensor name: the Philox key word of its initial values.
pub fn fnv1a64(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The initial values of one tensor (see the module notes).
pub fn initial_values(seed: u64, name: &str, len: usize, std: Option<f64>) -> Vec<f32> {
    use rayon::prelude::*;
    match std {
        None => vec![1.0; len],
        Some(std) => {
            let rng = Philox::new(seed, fnv1a64(name));
            (0..len as u64).into_par_iter().map(|i| (rng.normal(i) * std) as f32).collect()
        }
    }
}

/// A tensor as plain data: name, shape, row-major values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// A model with live, trainable weights.
///
/// Two forward passes read the same `Var`s: [`TrainModel::logits`] (fused ops with hand-written
/// backward passes, used for training: 2–3× faster per step) and [`TrainModel::reference_logits`]
/// (the runtime's generic decoder in its differentiable mode, the definition the fused pass is
/// tested against, values and gradients).
pub struct TrainModel {
    pub shape: ModelShape,
    pub varmap: VarMap,
    /// In [`ModelShape::parameters`] order, with whether weight decay applies.
    pub params: Vec<Param>,
    pub decoder: Decoder,
    weights: Weights,
    rope: Arc<RopeTables>,
}

struct LayerWeights {
    input_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    post_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// The parameters' tensors (sharing the `Var`s' storage and ids, so gradients reach the `Var`s).
struct Weights {
    embed: Tensor,
    layers: Vec<LayerWeights>,
    norm: Tensor,
    lm_head: Tensor,
}

pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

impl TrainModel {
    /// Fresh weights drawn from `seed`.
    pub fn init(shape: &ModelShape, seed: u64) -> Result<TrainModel, TrainError> {
        let values = shape.parameters().into_iter().map(|(name, dims, std)| {
            let len = dims.iter().product();
            let data = initial_values(seed, &name, len, std);
            (name, dims, data)
        });
        Self::from_values(shape, values.collect())
    }

    /// Weights given as (name, shape, row-major f32 values), e.g. read back from a checkpoint.
    pub fn from_values(shape: &ModelShape, values: Vec<NamedTensor>) -> Result<TrainModel, TrainError> {
        shape.validate()?;
        let expected = shape.parameters();
        let varmap = VarMap::new();
        let mut params = Vec::with_capacity(expected.len());
        {
            let mut by_name: HashMap<String, (Vec<usize>, Vec<f32>)> = values.into_iter().map(|(n, s, v)| (n, (s, v))).collect();
            let mut data = varmap.data().lock().expect("not poisoned");
            for (name, dims, std) in expected {
                let (got_dims, v) = by_name.remove(&name).ok_or_else(|| TrainError::Data(format!("tensor {name} is missing")))?;
                if got_dims != dims {
                    return Err(TrainError::Data(format!("tensor {name} has shape {got_dims:?}, expected {dims:?}")));
                }
                let var = Var::from_vec(v, dims.as_slice(), &Device::Cpu)?;
                data.insert(name.clone(), var.clone());
                params.push(Param { name, var, decay: std.is_some() });
            }
            if let Some(extra) = by_name.keys().min() {
                return Err(TrainError::Data(format!("unexpected tensor {extra}")));
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let cfg = shape.decoder_config();
        // Unfused projections read the live Vars, so optimiser updates are seen without a rebuild.
        let decoder = Decoder::new(&cfg, vb, DecoderOptions { fuse_projections: false, differentiable: true })?;
        let t = |name: &str| -> Tensor { params.iter().find(|p| p.name == name).expect("every parameter exists").var.as_tensor().clone() };
        let layers = (0..shape.layers)
            .map(|l| {
                let p = |suffix: &str| t(&format!("model.layers.{l}.{suffix}.weight"));
                LayerWeights {
                    input_norm: p("input_layernorm"),
                    q: p("self_attn.q_proj"),
                    k: p("self_attn.k_proj"),
                    v: p("self_attn.v_proj"),
                    o: p("self_attn.o_proj"),
                    post_norm: p("post_attention_layernorm"),
                    gate: p("mlp.gate_proj"),
                    up: p("mlp.up_proj"),
                    down: p("mlp.down_proj"),
                }
            })
            .collect();
        let embed = t("model.embed_tokens.weight");
        let lm_head = if shape.tie_embeddings { embed.clone() } else { t("lm_head.weight") };
        let weights = Weights { embed, layers, norm: t("model.norm.weight"), lm_head };
        let inv_freq = rope_inv_freq(&cfg).expect("Llama models are rotary");
        let rope = Arc::new(RopeTables::new(&inv_freq, shape.max_positions));
        Ok(TrainModel { shape: shape.clone(), varmap, params, decoder, weights, rope })
    }

    /// Logits `[rows·context, vocab]` of a batch of full windows (`inputs` row-major), through the
    /// fused training ops.
    pub fn logits(&self, inputs: &[u32], rows: usize, context: usize) -> Result<Tensor, TrainError> {
        Ok(self.fused_logits(inputs, rows, context)?)
    }

    fn fused_logits(&self, inputs: &[u32], b: usize, t: usize) -> candle_core::Result<Tensor> {
        let s = &self.shape;
        let (nh, nkv, hd) = (s.heads, s.kv_heads, s.head_dim());
        let g = nh / nkv;
        let n = b * t;
        let scale = 1.0 / (hd as f64).sqrt();
        let ids = Tensor::from_slice(inputs, n, &Device::Cpu)?;
        let w = &self.weights;
        let mut h = w.embed.index_select(&ids, 0)?; // [N, d]
        for l in &w.layers {
            let x = fused::rms_norm(&h, &l.input_norm, NORM_EPS)?;
            let q = fused::rope(&x.matmul(&l.q.t()?)?, &self.rope, t, nh)?;
            let k = fused::rope(&x.matmul(&l.k.t()?)?, &self.rope, t, nkv)?;
            let v = x.matmul(&l.v.t()?)?;
            // [N, heads·hd] → [B, heads, T, hd]; query heads grouped per key/value head.
            let q = q.reshape((b, t, nh, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, nkv, g * t, hd))?;
            let k = k.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let probs = fused::causal_softmax(&q.matmul(&k.t()?)?, t, scale)?;
            let o = probs.matmul(&v)?.reshape((b, nh, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((n, nh * hd))?;
            h = (h + o.matmul(&l.o.t()?)?)?;
            let x = fused::rms_norm(&h, &l.post_norm, NORM_EPS)?;
            let a = fused::silu_mul(&x.matmul(&l.gate.t()?)?, &x.matmul(&l.up.t()?)?)?;
            h = (h + a.matmul(&l.down.t()?)?)?;
        }
        let x = fused::rms_norm(&h, &w.norm, NORM_EPS)?;
        x.matmul(&w.lm_head.t()?)
    }

    /// The same logits through the runtime's differentiable decoder (composite candle ops).
    pub fn reference_logits(&self, inputs: &[u32], rows: usize, context: usize) -> Result<Tensor, TrainError> {
        let ids = Tensor::from_slice(inputs, (rows, context), &Device::Cpu)?;
        let out = self.decoder.forward(&ids, &BatchLayout::right_padded(&vec![context; rows]))?;
        let logits = self.decoder.logits(&out.final_norm)?;
        Ok(logits.reshape((rows * context, self.shape.vocab_size))?)
    }

    /// Mean next-token cross-entropy (nats) of a batch, as a scalar tensor on the autograd graph.
    pub fn loss(&self, inputs: &[u32], targets: &[u32], rows: usize, context: usize) -> Result<Tensor, TrainError> {
        let logits = self.logits(inputs, rows, context)?;
        Ok(fused::cross_entropy(&logits, targets)?)
    }

    /// [`TrainModel::loss`] through the runtime's decoder and candle's composite cross-entropy.
    pub fn reference_loss(&self, inputs: &[u32], targets: &[u32], rows: usize, context: usize) -> Result<Tensor, TrainError> {
        let logits = self.reference_logits(inputs, rows, context)?;
        let targets = Tensor::from_slice(targets, rows * context, &Device::Cpu)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }

    /// Current values of every parameter, in order.
    pub fn values(&self) -> Result<Vec<NamedTensor>, TrainError> {
        self.params
            .iter()
            .map(|p| Ok((p.name.clone(), p.var.dims().to_vec(), p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    }

    /// `model.safetensors` bytes: f32 tensors under their transformers names, metadata
    /// `{"format": "pt"}` as transformers writes it. Deterministic: the safetensors header orders
    /// tensors by name.
    pub fn safetensors_bytes(&self) -> Result<Vec<u8>, TrainError> {
        let values = self.values()?;
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = values.into_iter().map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
        let views = bytes
            .iter()
            .map(|(n, s, b)| safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).map(|v| (n.as_str(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TrainError::Candle(e.to_string()))?;
        let meta: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
        safetensors::serialize(views, Some(meta)).map_err(|e| TrainError::Candle(e.to_string()))
    }
}

/// Reads weights written by [`TrainModel::safetensors_bytes`] (or by transformers for the same
/// shape) back as (name, shape, values).
pub fn read_safetensors(path: &std::path::Path) -> Result<Vec<NamedTensor>, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| TrainError::File { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(TrainError::File { path: path.to_path_buf(), reason: format!("tensor {name} is {:?}, expected F32", view.dtype()) });
        }
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        out.push((name, view.shape().to_vec(), values));
    }
    Ok(out)
}
