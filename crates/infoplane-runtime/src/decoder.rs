//! One generic decoder-only transformer on candle ops, with the per-family switches of
//! [`DecoderConfig`]. It returns the residual stream after the embedding and after every block,
//! the final-norm output and, on request, logits.
//!
//! Weights come from a [`VarBuilder`] in Hugging Face naming (see [`Decoder::new`]), so the same
//! code runs checkpoints from safetensors, GGUF and llama2.c (their loaders rename tensors to HF
//! names) and models whose weights are candle `Var`s being trained.
//!
//! Speed notes (measured, see STACK.md): q/k/v and gate/up are fused into one matmul each at
//! load time; grouped-query attention reshapes the queries to `[B, n_kv, group·T, hd]` instead of
//! copying keys and values per head; on CPU the causal mask is never materialised: a custom op
//! takes each query row's softmax over its contiguous range of visible keys only.

use crate::config::{Activation, DecoderConfig, Family, MlpKind, NormKind, NormPlacement, Positions, QkNorm, Residual, RopeScaling};
use crate::error::RuntimeError;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Shape, Tensor, D};
use candle_nn::VarBuilder;

/// How the decoder is built.
#[derive(Debug, Clone, Copy)]
pub struct DecoderOptions {
    /// Concatenate q/k/v and gate/up weights into one matrix each at load time (faster). The
    /// concatenation is a copy: when the weights are `Var`s being trained, either rebuild the
    /// decoder after each optimiser step or turn this off so the forward reads the live `Var`s.
    pub fuse_projections: bool,
    /// Use only ops that candle can differentiate (composite norms, softmax, rotary and an
    /// additive mask) instead of the faster fused CPU kernels, which have no backward pass.
    pub differentiable: bool,
}

impl Default for DecoderOptions {
    fn default() -> Self {
        DecoderOptions { fuse_projections: true, differentiable: false }
    }
}

/// Where each row of a padded batch holds its document: tokens `offset .. offset + length`
/// of a row of `width` tokens. Left padding has `offset > 0`, right padding `offset + length < width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLayout {
    pub width: usize,
    pub offsets: Vec<usize>,
    pub lengths: Vec<usize>,
}

impl BatchLayout {
    pub fn single(len: usize) -> Self {
        BatchLayout { width: len, offsets: vec![0], lengths: vec![len] }
    }
    pub fn right_padded(lengths: &[usize]) -> Self {
        let width = lengths.iter().copied().max().unwrap_or(0);
        BatchLayout { width, offsets: vec![0; lengths.len()], lengths: lengths.to_vec() }
    }
    pub fn left_padded(lengths: &[usize]) -> Self {
        let width = lengths.iter().copied().max().unwrap_or(0);
        BatchLayout { width, offsets: lengths.iter().map(|l| width - l).collect(), lengths: lengths.to_vec() }
    }
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }
    /// Position id of every slot (0 at each document's first token; pads get 0 on the left and
    /// keep counting on the right, as transformers' `cumsum(attention_mask) - 1` does).
    pub fn positions(&self) -> Vec<Vec<u32>> {
        (0..self.rows())
            .map(|b| (0..self.width).map(|i| i.saturating_sub(self.offsets[b]) as u32).collect())
            .collect()
    }
    /// Inclusive key range `[lo, hi]` each query slot sees, for an optional sliding window.
    /// Pad queries with no visible key see only themselves, so they stay finite.
    fn key_ranges(&self, window: Option<usize>) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(self.rows() * self.width);
        for b in 0..self.rows() {
            let (off, len) = (self.offsets[b], self.lengths[b]);
            for i in 0..self.width {
                let mut lo = off;
                if let Some(w) = window {
                    lo = lo.max((i + 1).saturating_sub(w));
                }
                let hi = i.min((off + len).saturating_sub(1));
                if len == 0 || lo > hi {
                    out.push((i as u32, i as u32));
                } else {
                    out.push((lo as u32, hi as u32));
                }
            }
        }
        out
    }
    pub fn is_plain_single(&self) -> bool {
        self.rows() == 1 && self.offsets[0] == 0 && self.lengths[0] == self.width
    }
}

/// What one forward pass returns, as tensors: `hidden[0]` is the embedding output, `hidden[l]`
/// the output of block `l` (before the final norm), each `[B, T, d]`.
pub struct DecoderOutput {
    pub hidden: Vec<Tensor>,
    pub final_norm: Tensor,
}

#[derive(Debug, Clone)]
enum Norm {
    Rms { w: Tensor, eps: f64 },
    Layer { w: Tensor, b: Tensor, eps: f64 },
}

impl Norm {
    fn load(kind: NormKind, eps: f64, size: usize, vb: &VarBuilder) -> candle_core::Result<Norm> {
        Ok(match kind {
            NormKind::Rms => Norm::Rms { w: vb.get(size, "weight")?, eps },
            NormKind::Layer => Norm::Layer { w: vb.get(size, "weight")?, b: vb.get(size, "bias")?, eps },
        })
    }

    fn forward(&self, x: &Tensor, differentiable: bool) -> candle_core::Result<Tensor> {
        if differentiable {
            // The formulas of transformers' LlamaRMSNorm / nn.LayerNorm, in f32.
            let dtype = x.dtype();
            let xf = x.to_dtype(DType::F32)?;
            return match self {
                Norm::Rms { w, eps } => {
                    let var = xf.sqr()?.mean_keepdim(D::Minus1)?;
                    let normed = xf.broadcast_div(&(var + *eps)?.sqrt()?)?;
                    normed.to_dtype(dtype)?.broadcast_mul(w)
                }
                Norm::Layer { w, b, eps } => {
                    let mean = xf.mean_keepdim(D::Minus1)?;
                    let centred = xf.broadcast_sub(&mean)?;
                    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                    let normed = centred.broadcast_div(&(var + *eps)?.sqrt()?)?;
                    normed.to_dtype(dtype)?.broadcast_mul(w)?.broadcast_add(b)
                }
            };
        }
        let x = x.contiguous()?;
        match self {
            Norm::Rms { w, eps } => candle_nn::ops::rms_norm(&x, w, *eps as f32),
            Norm::Layer { w, b, eps } => candle_nn::ops::layer_norm(&x, w, b, *eps as f32),
        }
    }
}

/// A linear map `y = x Wᵀ + b` with W stored `[out, in]`.
#[derive(Debug, Clone)]
struct Proj {
    w: Tensor,
    b: Option<Tensor>,
    /// `wᵀ` stored contiguous `[in, out]` (inference only).
    wt: Option<Tensor>,
}

impl Proj {
    fn load(vb: &VarBuilder, out: usize, inp: usize, bias: bool) -> candle_core::Result<Proj> {
        Ok(Proj { w: vb.get((out, inp), "weight")?, b: if bias { Some(vb.get(out, "bias")?) } else { None }, wt: None })
    }
    /// GPT-2's Conv1D stores W as `[in, out]`.
    fn load_conv1d(vb: &VarBuilder, inp: usize, out: usize) -> candle_core::Result<Proj> {
        Ok(Proj { w: vb.get((inp, out), "weight")?.t()?.contiguous()?, b: Some(vb.get(out, "bias")?), wt: None })
    }
    fn cat(parts: &[&Proj]) -> candle_core::Result<Proj> {
        let w = Tensor::cat(&parts.iter().map(|p| &p.w).collect::<Vec<_>>(), 0)?;
        let b = if parts.iter().all(|p| p.b.is_some()) {
            Some(Tensor::cat(&parts.iter().map(|p| p.b.as_ref().unwrap()).collect::<Vec<_>>(), 0)?)
        } else if parts.iter().any(|p| p.b.is_some()) {
            let zeros: Vec<Tensor> = parts
                .iter()
                .map(|p| match &p.b {
                    Some(b) => Ok(b.clone()),
                    None => Tensor::zeros(p.w.dim(0)?, p.w.dtype(), p.w.device()),
                })
                .collect::<candle_core::Result<_>>()?;
            Some(Tensor::cat(&zeros, 0)?)
        } else {
            None
        };
        Ok(Proj { w, b, wt: None })
    }
    /// `x`: `[N, in]` → `[N, out]`.
    fn forward2(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.wt {
            Some(wt) => x.matmul(wt)?,
            None => x.matmul(&self.w.t()?)?,
        };
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
    /// `x`: `[B, T, in]` → `[B, T, out]`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, i) = x.dims3()?;
        let y = self.forward2(&x.reshape((b * t, i))?)?;
        let o = y.dim(1)?;
        y.reshape((b, t, o))
    }
}

#[derive(Debug, Clone)]
enum Qkv {
    /// One matrix with rows `[q (n_heads·hd); k (n_kv·hd); v (n_kv·hd)]`.
    Fused(Proj),
    Separate(Proj, Proj, Proj),
}

#[derive(Debug, Clone)]
enum Mlp {
    /// Gated, with gate and up fused into one `[2I, d]` matrix.
    GatedFused { gate_up: Proj, down: Proj, inter: usize },
    Gated { gate: Proj, up: Proj, down: Proj },
    Plain { fc: Proj, proj: Proj },
}

#[derive(Debug, Clone)]
struct Block {
    /// Pre-norm before attention (None for OLMo2's post-sublayer placement).
    norm_attn_in: Option<Norm>,
    /// Pre-norm before the MLP, or OLMo2's norm after attention.
    norm_2: Norm,
    /// OLMo2's norm after the MLP.
    norm_mlp_out: Option<Norm>,
    qkv: Qkv,
    o: Proj,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    mlp: Mlp,
    window: Option<usize>,
    scale: f64,
}

/// The decoder. Cheap to clone (tensors are reference-counted).
#[derive(Debug, Clone)]
pub struct Decoder {
    cfg: DecoderConfig,
    opts: DecoderOptions,
    device: Device,
    dtype: DType,
    embed: Tensor,
    pos_embed: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    lm_head: Tensor,
    /// Inverse frequencies of the rotary embedding (f32, as transformers computes them).
    inv_freq: Option<Vec<f32>>,
}

/// Tensor names of each family, in Hugging Face's checkpoints.
struct Names {
    embed: &'static str,
    pos_embed: Option<&'static str>,
    layers: &'static str,
    final_norm: &'static str,
    lm_head: &'static str,
}

fn names(family: Family) -> Names {
    match family {
        Family::Llama => Names { embed: "model.embed_tokens", pos_embed: None, layers: "model.layers", final_norm: "model.norm", lm_head: "lm_head" },
        Family::GptNeox => Names { embed: "gpt_neox.embed_in", pos_embed: None, layers: "gpt_neox.layers", final_norm: "gpt_neox.final_layer_norm", lm_head: "embed_out" },
        Family::Gpt2 => Names { embed: "transformer.wte", pos_embed: Some("transformer.wpe"), layers: "transformer.h", final_norm: "transformer.ln_f", lm_head: "lm_head" },
    }
}

/// The inverse rotary frequencies transformers computes (`_compute_default_rope_parameters`
/// and the `linear` / `llama3` variants), rounded to f32 like its float32 tensors.
pub fn rope_inv_freq(cfg: &DecoderConfig) -> Option<Vec<f32>> {
    let Positions::Rotary(r) = &cfg.positions else { return None };
    let dim = r.rotary_dim;
    let mut inv: Vec<f32> = (0..dim / 2)
        .map(|i| {
            // torch: base ** (arange(0, dim, 2).float() / dim), all float32.
            let e = (2 * i) as f32 / dim as f32;
            1.0f32 / (r.theta as f32).powf(e)
        })
        .collect();
    match &r.scaling {
        RopeScaling::None => {}
        RopeScaling::Linear { factor } => inv.iter_mut().for_each(|f| *f /= *factor as f32),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max_position_embeddings } => {
            let (factor, low, high, old) = (*factor, *low_freq_factor, *high_freq_factor, *original_max_position_embeddings);
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            for f in inv.iter_mut() {
                let freq = *f as f64;
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let scaled = if wavelen > low_wavelen { freq / factor } else { freq };
                let smooth = (old / wavelen - low) / (high - low);
                let smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled;
                let medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
                *f = if medium { smoothed as f32 } else { scaled as f32 };
            }
        }
    }
    if let Some(factors) = &r.freq_factors {
        for (f, k) in inv.iter_mut().zip(factors) {
            *f /= *k;
        }
    }
    Some(inv)
}

impl Decoder {
    /// Builds the decoder from weights in Hugging Face naming:
    /// - Llama family: `model.embed_tokens.weight`, `model.layers.{i}.{input_layernorm,
    ///   post_attention_layernorm, post_feedforward_layernorm}.weight`,
    ///   `model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight,bias}`, `…self_attn.{q,k}_norm.weight`,
    ///   `model.layers.{i}.mlp.{gate,up,down}_proj.weight`, `model.norm.weight`, `lm_head.weight`;
    /// - GPT-NeoX: `gpt_neox.embed_in`, `gpt_neox.layers.{i}.{input_layernorm,
    ///   post_attention_layernorm, attention.query_key_value, attention.dense,
    ///   mlp.dense_h_to_4h, mlp.dense_4h_to_h}`, `gpt_neox.final_layer_norm`, `embed_out`;
    /// - GPT-2: `transformer.{wte,wpe}`, `transformer.h.{i}.{ln_1, attn.c_attn, attn.c_proj,
    ///   ln_2, mlp.c_fc, mlp.c_proj}`, `transformer.ln_f`, `lm_head`.
    ///
    /// The compute dtype and device are the VarBuilder's. With a `VarMap`-backed builder the
    /// variables are created (zero-initialised) if absent: create them with your own
    /// initialisation first.
    pub fn new(cfg: &DecoderConfig, vb: VarBuilder, opts: DecoderOptions) -> Result<Decoder, RuntimeError> {
        cfg.validate(std::path::Path::new("(config)"))?;
        Self::build(cfg, &vb, opts).map_err(tensor_error)
    }

    fn build(cfg: &DecoderConfig, vb: &VarBuilder, opts: DecoderOptions) -> candle_core::Result<Decoder> {
        let n = names(cfg.family);
        let (d, hd, nh, nkv, inter) = (cfg.hidden_size, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.intermediate_size);
        let embed = vb.pp(n.embed).get((cfg.vocab_size, d), "weight")?;
        let pos_embed = match n.pos_embed {
            Some(p) => Some(vb.pp(p).get((cfg.max_positions, d), "weight")?),
            None => None,
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let lb = vb.pp(n.layers).pp(i);
            let mut scale = 1.0 / (hd as f64).sqrt();
            if cfg.scale_attn_by_inverse_layer_idx {
                scale /= (i + 1) as f64;
            }
            // Families with a norm before attention and one before the MLP, no QK-norm.
            let pre_norm_block = |attn_norm: &str, mlp_norm: &str, qkv: Qkv, o: Proj, mlp: Mlp| -> candle_core::Result<Block> {
                Ok(Block {
                    norm_attn_in: Some(Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp(attn_norm))?),
                    norm_2: Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp(mlp_norm))?,
                    norm_mlp_out: None,
                    qkv,
                    o,
                    q_norm: None,
                    k_norm: None,
                    mlp,
                    window: cfg.layer_windows[i],
                    scale,
                })
            };
            let block = match cfg.family {
                Family::Llama => {
                    let a = lb.pp("self_attn");
                    let q = Proj::load(&a.pp("q_proj"), nh * hd, d, cfg.qkv_bias)?;
                    let k = Proj::load(&a.pp("k_proj"), nkv * hd, d, cfg.qkv_bias)?;
                    let v = Proj::load(&a.pp("v_proj"), nkv * hd, d, cfg.qkv_bias)?;
                    let qkv = if opts.fuse_projections { Qkv::Fused(Proj::cat(&[&q, &k, &v])?) } else { Qkv::Separate(q, k, v) };
                    let o = Proj::load(&a.pp("o_proj"), d, nh * hd, cfg.o_bias)?;
                    let (q_norm, k_norm) = match cfg.qk_norm {
                        QkNorm::None => (None, None),
                        QkNorm::WholeProjection => (Some(Norm::load(cfg.norm, cfg.norm_eps, nh * hd, &a.pp("q_norm"))?), Some(Norm::load(cfg.norm, cfg.norm_eps, nkv * hd, &a.pp("k_norm"))?)),
                    };
                    let m = lb.pp("mlp");
                    let gate = Proj::load(&m.pp("gate_proj"), inter, d, cfg.mlp_bias)?;
                    let up = Proj::load(&m.pp("up_proj"), inter, d, cfg.mlp_bias)?;
                    let down = Proj::load(&m.pp("down_proj"), d, inter, cfg.mlp_bias)?;
                    let mlp = match cfg.mlp {
                        MlpKind::Gated if opts.fuse_projections => Mlp::GatedFused { gate_up: Proj::cat(&[&gate, &up])?, down, inter },
                        MlpKind::Gated => Mlp::Gated { gate, up, down },
                        MlpKind::Plain => candle_core::bail!("the Llama family has a gated MLP"),
                    };
                    let (norm_attn_in, norm_2, norm_mlp_out) = match cfg.norm_placement {
                        NormPlacement::Pre => (Some(Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp("input_layernorm"))?), Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp("post_attention_layernorm"))?, None),
                        NormPlacement::PostSublayer => (None, Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp("post_attention_layernorm"))?, Some(Norm::load(cfg.norm, cfg.norm_eps, d, &lb.pp("post_feedforward_layernorm"))?)),
                    };
                    Block { norm_attn_in, norm_2, norm_mlp_out, qkv, o, q_norm, k_norm, mlp, window: cfg.layer_windows[i], scale }
                }
                Family::GptNeox => {
                    let a = lb.pp("attention");
                    let fused = Proj::load(&a.pp("query_key_value"), 3 * d, d, cfg.qkv_bias)?;
                    // NeoX interleaves per head: rows [h0: q k v][h1: q k v]…; regroup to [q; k; v].
                    let regroup = |t: &Tensor| -> candle_core::Result<Tensor> {
                        let rest: Vec<usize> = t.dims()[1..].to_vec();
                        let mut shape = vec![nh, 3, hd];
                        shape.extend(&rest);
                        let mut out = vec![3 * d];
                        out.extend(&rest);
                        t.reshape(shape)?.transpose(0, 1)?.contiguous()?.reshape(out)
                    };
                    let fused = Proj { w: regroup(&fused.w)?, b: fused.b.as_ref().map(regroup).transpose()?, wt: None };
                    let qkv = if opts.fuse_projections {
                        Qkv::Fused(fused)
                    } else {
                        let part = |j: usize| -> candle_core::Result<Proj> { Ok(Proj { w: fused.w.narrow(0, j * d, d)?, b: fused.b.as_ref().map(|b| b.narrow(0, j * d, d)).transpose()?, wt: None }) };
                        Qkv::Separate(part(0)?, part(1)?, part(2)?)
                    };
                    let o = Proj::load(&a.pp("dense"), d, d, cfg.o_bias)?;
                    let m = lb.pp("mlp");
                    let mlp = Mlp::Plain { fc: Proj::load(&m.pp("dense_h_to_4h"), inter, d, cfg.mlp_bias)?, proj: Proj::load(&m.pp("dense_4h_to_h"), d, inter, cfg.mlp_bias)? };
                    pre_norm_block("input_layernorm", "post_attention_layernorm", qkv, o, mlp)?
                }
                Family::Gpt2 => {
                    let a = lb.pp("attn");
                    let fused = Proj::load_conv1d(&a.pp("c_attn"), d, 3 * d)?;
                    let qkv = if opts.fuse_projections {
                        Qkv::Fused(fused)
                    } else {
                        let part = |j: usize| -> candle_core::Result<Proj> { Ok(Proj { w: fused.w.narrow(0, j * d, d)?, b: fused.b.as_ref().map(|b| b.narrow(0, j * d, d)).transpose()?, wt: None }) };
                        Qkv::Separate(part(0)?, part(1)?, part(2)?)
                    };
                    let o = Proj::load_conv1d(&a.pp("c_proj"), d, d)?;
                    let m = lb.pp("mlp");
                    let mlp = Mlp::Plain { fc: Proj::load_conv1d(&m.pp("c_fc"), d, inter)?, proj: Proj::load_conv1d(&m.pp("c_proj"), inter, d)? };
                    pre_norm_block("ln_1", "ln_2", qkv, o, mlp)?
                }
            };
            blocks.push(block);
        }
        let final_norm = Norm::load(cfg.norm, cfg.norm_eps, d, &vb.pp(n.final_norm))?;
        let lm_head = if cfg.tie_word_embeddings { embed.clone() } else { vb.pp(n.lm_head).get((cfg.vocab_size, d), "weight")? };
        Ok(Decoder { cfg: cfg.clone(), opts, device: vb.device().clone(), dtype: vb.dtype(), embed, pos_embed, blocks, final_norm, lm_head, inv_freq: rope_inv_freq(cfg) })
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Rows of the token embedding.
    pub fn embedding_rows(&self) -> usize {
        self.cfg.vocab_size
    }

    /// cos and sin of every slot's angle, `[T, rd/2]` (or `[B, T, rd/2]` when rows differ),
    /// computed as transformers does: f32 angle = f32 inv_freq × f32 position.
    fn rope_tables(&self, layout: &BatchLayout) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        let Some(inv) = &self.inv_freq else { return Ok(None) };
        let positions = layout.positions();
        let same = positions.windows(2).all(|w| w[0] == w[1]);
        let rows: &[Vec<u32>] = if same { &positions[..1] } else { &positions };
        let half = inv.len();
        let mut cos = Vec::with_capacity(rows.len() * layout.width * half);
        let mut sin = Vec::with_capacity(cos.capacity());
        for row in rows {
            for &p in row {
                for &f in inv {
                    let angle = f * p as f32;
                    cos.push((angle as f64).cos() as f32);
                    sin.push((angle as f64).sin() as f32);
                }
            }
        }
        let shape: Vec<usize> = if same { vec![layout.width, half] } else { vec![rows.len(), layout.width, half] };
        let cos = Tensor::from_vec(cos, shape.clone(), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, shape, &self.device)?.to_dtype(self.dtype)?;
        Ok(Some((cos, sin)))
    }

    /// The forward pass over a padded batch `ids` (`[B, T]`, u32) laid out as `layout` says.
    /// Pad slots may hold any valid token id; their outputs are meaningless but finite.
    pub fn forward(&self, ids: &Tensor, layout: &BatchLayout) -> Result<DecoderOutput, RuntimeError> {
        self.forward_inner(ids, layout).map_err(RuntimeError::from)
    }

    fn forward_inner(&self, ids: &Tensor, layout: &BatchLayout) -> candle_core::Result<DecoderOutput> {
        let (b, t) = ids.dims2()?;
        if b != layout.rows() || t != layout.width {
            candle_core::bail!("ids are [{b}, {t}] but the layout has {} rows of {}", layout.rows(), layout.width);
        }
        let d = self.cfg.hidden_size;
        let mut h = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, d))?;
        if let Some(wpe) = &self.pos_embed {
            let pos: Vec<u32> = layout.positions().concat();
            let pos = Tensor::from_vec(pos, b * t, &self.device)?;
            h = (h + wpe.index_select(&pos, 0)?.reshape((b, t, d))?)?;
        }
        let rope = self.rope_tables(layout)?;
        let mut masks: Vec<(Option<usize>, AttnMask)> = Vec::new();
        let mut hidden = Vec::with_capacity(self.blocks.len() + 1);
        hidden.push(h.clone());
        for block in &self.blocks {
            let mask = match masks.iter().find(|(w, _)| *w == block.window) {
                Some((_, m)) => m.clone(),
                None => {
                    let m = self.make_mask(layout, block.window)?;
                    masks.push((block.window, m.clone()));
                    m
                }
            };
            h = self.block_forward(block, &h, rope.as_ref(), &mask)?;
            hidden.push(h.clone());
        }
        let final_norm = self.final_norm.forward(&h, self.opts.differentiable)?;
        Ok(DecoderOutput { hidden, final_norm })
    }

    /// Logits `[B, T, V]` from a final-norm output `[B, T, d]`.
    pub fn logits(&self, final_norm: &Tensor) -> Result<Tensor, RuntimeError> {
        let run = || -> candle_core::Result<Tensor> {
            let (b, t, d) = final_norm.dims3()?;
            let y = final_norm.reshape((b * t, d))?.matmul(&self.lm_head.t()?)?;
            y.reshape((b, t, self.cfg.vocab_size))
        };
        run().map_err(RuntimeError::from)
    }

    fn make_mask(&self, layout: &BatchLayout, window: Option<usize>) -> candle_core::Result<AttnMask> {
        let ranges = layout.key_ranges(window);
        if self.device.is_cpu() && !self.opts.differentiable {
            return Ok(AttnMask::Ranges(std::sync::Arc::new(ranges)));
        }
        let (b, t) = (layout.rows(), layout.width);
        let mut m = vec![f32::NEG_INFINITY; b * t * t];
        for (row, &(lo, hi)) in ranges.iter().enumerate() {
            for j in lo..=hi {
                m[row * t + j as usize] = 0.0;
            }
        }
        Ok(AttnMask::Additive(Tensor::from_vec(m, (b, 1, 1, t, t), &self.device)?))
    }

    fn block_forward(&self, blk: &Block, x: &Tensor, rope: Option<&(Tensor, Tensor)>, mask: &AttnMask) -> candle_core::Result<Tensor> {
        let diff = self.opts.differentiable;
        match (self.cfg.norm_placement, self.cfg.residual) {
            (NormPlacement::PostSublayer, _) => {
                let a = self.attention(blk, x, rope, mask)?;
                let h = (x + blk.norm_2.forward(&a, diff)?)?;
                let m = self.mlp(blk, &h)?;
                let out_norm = blk.norm_mlp_out.as_ref().expect("post-sublayer blocks have an MLP output norm");
                &h + out_norm.forward(&m, diff)?
            }
            (NormPlacement::Pre, Residual::Sequential) => {
                let n1 = blk.norm_attn_in.as_ref().expect("pre-norm blocks have an input norm");
                let a = self.attention(blk, &n1.forward(x, diff)?, rope, mask)?;
                let h = (x + a)?;
                let m = self.mlp(blk, &blk.norm_2.forward(&h, diff)?)?;
                h + m
            }
            (NormPlacement::Pre, Residual::Parallel) => {
                let n1 = blk.norm_attn_in.as_ref().expect("pre-norm blocks have an input norm");
                let a = self.attention(blk, &n1.forward(x, diff)?, rope, mask)?;
                let m = self.mlp(blk, &blk.norm_2.forward(x, diff)?)?;
                // transformers: mlp_output + attn_output + hidden_states.
                (m + a)? + x
            }
        }
    }

    fn mlp(&self, blk: &Block, x: &Tensor) -> candle_core::Result<Tensor> {
        let act = self.cfg.activation;
        match &blk.mlp {
            Mlp::GatedFused { gate_up, down, inter } => {
                let gu = gate_up.forward(x)?;
                if act == Activation::Silu && self.device.is_cpu() && !self.opts.differentiable {
                    return down.forward(&gu.apply_op1_no_bwd(&SiluMul { inter: *inter })?);
                }
                let g = gu.narrow(D::Minus1, 0, *inter)?;
                let u = gu.narrow(D::Minus1, *inter, *inter)?;
                down.forward(&(activate(&g, act)? * u)?)
            }
            Mlp::Gated { gate, up, down } => down.forward(&(activate(&gate.forward(x)?, act)? * up.forward(x)?)?),
            Mlp::Plain { fc, proj } => proj.forward(&activate(&fc.forward(x)?, act)?),
        }
    }

    fn attention(&self, blk: &Block, x: &Tensor, rope: Option<&(Tensor, Tensor)>, mask: &AttnMask) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim);
        let diff = self.opts.differentiable;
        // q: [B, nh, T, hd], k and v: [B, nkv, T, hd], all contiguous.
        let (q, k, v) = match &blk.qkv {
            Qkv::Fused(p) if blk.q_norm.is_none() => {
                let qkv = p.forward(x)?.reshape((b, t, nh + 2 * nkv, hd))?.transpose(1, 2)?;
                (qkv.narrow(1, 0, nh)?.contiguous()?, qkv.narrow(1, nh, nkv)?.contiguous()?, qkv.narrow(1, nh + nkv, nkv)?.contiguous()?)
            }
            _ => {
                let (mut q, mut k, v) = match &blk.qkv {
                    Qkv::Fused(p) => {
                        let qkv = p.forward(x)?;
                        (qkv.narrow(2, 0, nh * hd)?, qkv.narrow(2, nh * hd, nkv * hd)?, qkv.narrow(2, (nh + nkv) * hd, nkv * hd)?)
                    }
                    Qkv::Separate(qp, kp, vp) => (qp.forward(x)?, kp.forward(x)?, vp.forward(x)?),
                };
                if let Some(n) = &blk.q_norm {
                    q = n.forward(&q, diff)?;
                }
                if let Some(n) = &blk.k_norm {
                    k = n.forward(&k, diff)?;
                }
                let heads = |z: Tensor, n: usize| -> candle_core::Result<Tensor> { z.contiguous()?.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous() };
                (heads(q, nh)?, heads(k, nkv)?, heads(v, nkv)?)
            }
        };
        let (q, k) = match rope {
            Some((cos, sin)) => (self.apply_rope(&q, cos, sin)?, self.apply_rope(&k, cos, sin)?),
            None => (q, k),
        };
        let g = nh / nkv;
        let q = (q * blk.scale)?.reshape((b, nkv, g * t, hd))?;
        let scores = q.matmul(&k.t()?)?; // [B, nkv, g·T, T]
        let probs = match mask {
            AttnMask::Ranges(ranges) => scores.apply_op1_no_bwd(&RangeSoftmax { ranges: ranges.clone(), t })?,
            AttnMask::Additive(m) => {
                let s = scores.to_dtype(DType::F32)?.reshape((b, nkv, g, t, t))?.broadcast_add(m)?;
                let s = if diff { softmax_composite(&s)? } else { candle_nn::ops::softmax_last_dim(&s)? };
                s.reshape((b, nkv, g * t, t))?.to_dtype(self.dtype)?
            }
        };
        let out = probs.matmul(&v)?; // [B, nkv, g·T, hd]
        let out = out.reshape((b, nh, t, hd))?.transpose(1, 2)?.contiguous()?.reshape((b, t, nh * hd))?;
        blk.o.forward(&out)
    }

    /// transformers' `apply_rotary_pos_emb` (rotate-half layout) on the first `rotary_dim`
    /// dimensions of every head.
    fn apply_rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        let hd = self.cfg.head_dim;
        let rd = cos.dim(D::Minus1)? * 2;
        let rotate = |z: &Tensor| -> candle_core::Result<Tensor> {
            if self.opts.differentiable || !self.device.is_cpu() && cos.rank() == 3 {
                rope_composite(z, cos, sin)
            } else {
                candle_nn::rotary_emb::rope(&z.contiguous()?, cos, sin)
            }
        };
        if rd == hd {
            rotate(x)
        } else {
            let rot = rotate(&x.narrow(D::Minus1, 0, rd)?)?;
            let pass = x.narrow(D::Minus1, rd, hd - rd)?;
            Tensor::cat(&[rot, pass], D::Minus1)?.contiguous()
        }
    }
}

fn rope_composite(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    // cos/sin: [T, rd/2] or [B, T, rd/2] → [.., T, rd] broadcast over heads.
    let cos = Tensor::cat(&[cos, cos], D::Minus1)?;
    let sin = Tensor::cat(&[sin, sin], D::Minus1)?;
    let (cos, sin) = if cos.rank() == 3 { (cos.unsqueeze(1)?, sin.unsqueeze(1)?) } else { (cos, sin) };
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?
}

fn softmax_composite(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

fn activate(x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
    match act {
        Activation::Silu => x.silu(),
        Activation::GeluErf => x.gelu_erf(),
        Activation::GeluTanh => x.gelu(),
        Activation::Relu => x.relu(),
    }
}

#[derive(Debug, Clone)]
enum AttnMask {
    /// Per query slot (row-major over batch rows and slots), the inclusive visible key range.
    Ranges(std::sync::Arc<Vec<(u32, u32)>>),
    /// `[B, 1, 1, T, T]` of 0 / −∞ in f32.
    Additive(Tensor),
}

/// Softmax of each score row over its visible keys only; zeros elsewhere. Scores are
/// `[B, n_kv, g·T, T]`; row `r` of batch `b` is query slot `r mod T`. Computed in f32 whatever
/// the input dtype (transformers upcasts the softmax too).
struct RangeSoftmax {
    ranges: std::sync::Arc<Vec<(u32, u32)>>,
    t: usize,
}

impl CustomOp1 for RangeSoftmax {
    fn name(&self) -> &'static str {
        "range-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let dims = layout.shape().dims().to_vec();
        let t = self.t;
        let (b, rows_per_batch) = (dims[0], dims[1] * dims[2]);
        if dims[3] != t || self.ranges.len() != b * t {
            candle_core::bail!("range-softmax: scores {dims:?} do not match {} ranges of width {t}", self.ranges.len());
        }
        let Some((o1, o2)) = layout.contiguous_offsets() else { candle_core::bail!("range-softmax: scores must be contiguous") };
        fn run<T: Copy + Send + Sync>(src: &[T], t: usize, rows_per_batch: usize, ranges: &[(u32, u32)], to: impl Fn(T) -> f32 + Sync, from: impl Fn(f32) -> T + Sync, zero: T) -> Vec<T> {
            let mut dst = vec![zero; src.len()];
            dst.par_chunks_mut(t).zip(src.par_chunks(t)).enumerate().for_each(|(row, (out, inp))| {
                let batch = row / rows_per_batch;
                let query = row % t;
                let (lo, hi) = ranges[batch * t + query];
                let (lo, hi) = (lo as usize, hi as usize);
                let vis: Vec<f32> = inp[lo..=hi].iter().map(|&v| to(v)).collect();
                let max = vis.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = vis.iter().map(|&v| (v - max).exp()).collect();
                let inv = 1.0 / exps.iter().sum::<f32>();
                for (o, e) in out[lo..=hi].iter_mut().zip(exps) {
                    *o = from(e * inv);
                }
            });
            dst
        }
        let out = match storage {
            CpuStorage::F32(s) => CpuStorage::F32(run_f32(&s[o1..o2], t, rows_per_batch, &self.ranges)),
            CpuStorage::BF16(s) => CpuStorage::BF16(run(&s[o1..o2], t, rows_per_batch, &self.ranges, |v: half::bf16| v.to_f32(), half::bf16::from_f32, half::bf16::ZERO)),
            CpuStorage::F16(s) => CpuStorage::F16(run(&s[o1..o2], t, rows_per_batch, &self.ranges, |v: half::f16| v.to_f32(), half::f16::from_f32, half::f16::ZERO)),
            _ => candle_core::bail!("range-softmax: unsupported dtype"),
        };
        Ok((out, Shape::from_dims(&dims)))
    }
}

/// The f32 case without the second exp pass.
fn run_f32(src: &[f32], t: usize, rows_per_batch: usize, ranges: &[(u32, u32)]) -> Vec<f32> {
    use rayon::prelude::*;
    let mut dst = vec![0f32; src.len()];
    dst.par_chunks_mut(t).zip(src.par_chunks(t)).enumerate().for_each(|(row, (out, inp))| {
        let batch = row / rows_per_batch;
        let query = row % t;
        let (lo, hi) = ranges[batch * t + query];
        let (lo, hi) = (lo as usize, hi as usize);
        let vis = &inp[lo..=hi];
        let max = vis.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let out = &mut out[lo..=hi];
        let mut sum = 0f32;
        for (o, &v) in out.iter_mut().zip(vis) {
            let e = (v - max).exp();
            sum += e;
            *o = e;
        }
        let inv = 1.0 / sum;
        for o in out.iter_mut() {
            *o *= inv;
        }
    });
    dst
}

/// `silu(gate) · up` from the fused `[.., 2I]` gate/up output in one pass (the strided
/// element-wise ops it replaces cost ~7% of a SmolLM2 forward).
struct SiluMul {
    inter: usize,
}

impl CustomOp1 for SiluMul {
    fn name(&self) -> &'static str {
        "silu-mul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let i = self.inter;
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&(2 * i)) {
            candle_core::bail!("silu-mul: last dimension {:?} is not 2 × {i}", dims.last());
        }
        *dims.last_mut().unwrap() = i;
        let Some((o1, o2)) = layout.contiguous_offsets() else { candle_core::bail!("silu-mul: input must be contiguous") };
        fn run<T: Copy + Send + Sync + Default>(src: &[T], i: usize, to: impl Fn(T) -> f32 + Sync, from: impl Fn(f32) -> T + Sync) -> Vec<T> {
            let mut dst = vec![T::default(); src.len() / 2];
            dst.par_chunks_mut(i).zip(src.par_chunks(2 * i)).for_each(|(out, row)| {
                let (g, u) = row.split_at(i);
                for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
                    let g = to(g);
                    *o = from(g / (1.0 + (-g).exp()) * to(u));
                }
            });
            dst
        }
        let out = match storage {
            CpuStorage::F32(s) => CpuStorage::F32(run(&s[o1..o2], i, |v| v, |v| v)),
            CpuStorage::BF16(s) => CpuStorage::BF16(run(&s[o1..o2], i, |v: half::bf16| v.to_f32(), half::bf16::from_f32)),
            CpuStorage::F16(s) => CpuStorage::F16(run(&s[o1..o2], i, |v: half::f16| v.to_f32(), half::f16::from_f32)),
            _ => candle_core::bail!("silu-mul: unsupported dtype"),
        };
        Ok((out, Shape::from_dims(&dims)))
    }
}

/// Maps candle's weight-lookup errors to typed ones (the caller fills in the file).
pub(crate) fn tensor_error(e: candle_core::Error) -> RuntimeError {
    match e {
        candle_core::Error::CannotFindTensor { path } => RuntimeError::MissingTensor { path: Default::default(), name: path },
        candle_core::Error::UnexpectedShape { msg, expected, got } => {
            let name = msg.strip_prefix("shape mismatch for ").unwrap_or(&msg).to_string();
            RuntimeError::TensorShape { path: Default::default(), name, expected: expected.dims().to_vec(), got: got.dims().to_vec() }
        }
        candle_core::Error::WithBacktrace { inner, .. } => tensor_error(*inner),
        candle_core::Error::Context { inner, .. } => tensor_error(*inner),
        other => RuntimeError::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_cover_causal_window_and_padding() {
        // Right padding: row 1 holds 2 tokens of 4; its pad queries see the real keys.
        let r = BatchLayout::right_padded(&[4, 2]).key_ranges(None);
        assert_eq!(r, vec![(0, 0), (0, 1), (0, 2), (0, 3), (0, 0), (0, 1), (0, 1), (0, 1)]);
        // Left padding: row 1's document starts at slot 2; its pad queries see only themselves.
        let l = BatchLayout::left_padded(&[4, 2]);
        assert_eq!(l.key_ranges(None), vec![(0, 0), (0, 1), (0, 2), (0, 3), (0, 0), (1, 1), (2, 2), (2, 3)]);
        assert_eq!(l.positions(), vec![vec![0, 1, 2, 3], vec![0, 0, 0, 1]]);
        // A window of 2: query i sees i-1 and i (i - j < 2).
        let w = BatchLayout::single(4).key_ranges(Some(2));
        assert_eq!(w, vec![(0, 0), (0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn llama3_rope_scaling_leaves_high_frequencies_and_divides_low_ones() {
        let mut cfg = DecoderConfig::llama(10, 64, 1, 1, 1, 8, 16, 1e-5, 500000.0, false);
        let plain = rope_inv_freq(&cfg).unwrap();
        if let Positions::Rotary(r) = &mut cfg.positions {
            r.scaling = RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192.0 };
        }
        let scaled = rope_inv_freq(&cfg).unwrap();
        let wavelen = |f: f32| 2.0 * std::f64::consts::PI / f as f64;
        for (p, s) in plain.iter().zip(&scaled) {
            if wavelen(*p) < 8192.0 / 4.0 {
                assert_eq!(p, s);
            } else if wavelen(*p) > 8192.0 {
                assert!((s / p - 0.125).abs() < 1e-6);
            } else {
                assert!(s < p && *s > p / 8.0);
            }
        }
        assert!(plain.iter().any(|&p| wavelen(p) > 8192.0) && plain.iter().any(|&p| wavelen(p) < 2048.0));
    }
}
