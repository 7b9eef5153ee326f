//! Fused CPU ops with hand-written backward passes for training.
//!
//! Why: a Llama block written with candle's composite ops (what the runtime's differentiable
//! decoder does) spends most of a training step in small element-wise tensors of the backward
//! graph — each composite op allocates its output and each gradient contribution is accumulated
//! into a fresh zero tensor. These ops do the norm, rotary, masked softmax, gated activation and
//! cross-entropy in one pass each way. Their numerics follow the runtime's formulas (f32,
//! transformers' layouts); `tests/fused.rs` checks values and gradients against the runtime's
//! composite ops.
//!
//! Every op takes contiguous f32 CPU tensors (callers make them contiguous) and runs its rows in
//! order on the calling thread, so results do not depend on any thread count.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Device, Layout, Result, Shape, Storage, Tensor};
use std::sync::Arc;

fn f32_data<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        (CpuStorage::F32(_), None) => candle_core::bail!("{op}: input must be contiguous"),
        _ => candle_core::bail!("{op}: input must be f32"),
    }
}

/// Runs `f` on the f32 values of `t` (made contiguous first).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (s, l) = t.storage_and_layout();
    match &*s {
        Storage::Cpu(c) => Ok(f(f32_data(c, l, "fused op")?)),
        _ => candle_core::bail!("fused ops run on CPU only"),
    }
}

fn tensor(v: Vec<f32>, shape: &Shape) -> Result<Tensor> {
    Tensor::from_vec(v, shape.clone(), &Device::Cpu)
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x / sqrt(mean(x²) + eps) · w   (transformers' LlamaRMSNorm, in f32)

pub struct RmsNorm {
    pub eps: f32,
}

impl RmsNorm {
    fn inv_rms(row: &[f32], eps: f32) -> f32 {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        1.0 / (ms + eps).sqrt()
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "train-rms-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(s1, l1, "rms-norm")?;
        let w = f32_data(s2, l2, "rms-norm")?;
        let d = w.len();
        if l1.dims().last() != Some(&d) {
            candle_core::bail!("rms-norm: x {:?} does not end in the weight's {d}", l1.dims());
        }
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let r = Self::inv_rms(xr, self.eps);
            for ((o, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
                *o = v * r * g;
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let wv = with_f32(w, |v| v.to_vec())?;
        let d = wv.len();
        let xv = with_f32(x, |v| v.to_vec())?;
        let (dx, dw) = with_f32(grad, |g| {
            let mut dx = vec![0f32; xv.len()];
            let mut dw = vec![0f32; d];
            for ((xr, gr), dxr) in xv.chunks_exact(d).zip(g.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
                let r = Self::inv_rms(xr, self.eps);
                // n = x·r; dn = g·w; dx = r·(dn − n·mean(dn·n))
                let mut dot = 0f32;
                for k in 0..d {
                    let n = xr[k] * r;
                    let dn = gr[k] * wv[k];
                    dot += dn * n;
                    dw[k] += gr[k] * n;
                }
                let mean = dot / d as f32;
                for k in 0..d {
                    dxr[k] = r * (gr[k] * wv[k] - xr[k] * r * mean);
                }
            }
            (dx, dw)
        })?;
        Ok((Some(tensor(dx, x.shape())?), Some(tensor(dw, w.shape())?)))
    }
}

/// `x` `[N, d]` (or any shape ending in d), `w` `[d]`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding (rotate-half layout) on a projection laid out [B, T, heads, head_dim].

/// cos and sin of every position's angle, `[T, head_dim/2]` each, as the runtime computes them
/// (f32 angle = f32 inv_freq × f32 position, cos/sin in f64 then rounded).
pub struct RopeTables {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    pub half: usize,
    pub positions: usize,
}

impl RopeTables {
    pub fn new(inv_freq: &[f32], positions: usize) -> Self {
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for &f in inv_freq {
                let angle = f * p as f32;
                cos.push((angle as f64).cos() as f32);
                sin.push((angle as f64).sin() as f32);
            }
        }
        RopeTables { cos, sin, half, positions }
    }
}

pub struct Rope {
    pub tables: Arc<RopeTables>,
    /// Tokens per sequence (rows are `b·T + t`).
    pub t: usize,
    pub heads: usize,
}

impl Rope {
    /// y = rotate(x, sign·angle) over every row, head and pair (i, i + half).
    fn apply(&self, x: &[f32], sign: f32) -> Vec<f32> {
        let half = self.tables.half;
        let hd = 2 * half;
        let row = self.heads * hd;
        let mut y = vec![0f32; x.len()];
        for (r, (xr, yr)) in x.chunks_exact(row).zip(y.chunks_exact_mut(row)).enumerate() {
            let p = r % self.t;
            let cos = &self.tables.cos[p * half..(p + 1) * half];
            let sin = &self.tables.sin[p * half..(p + 1) * half];
            for (xh, yh) in xr.chunks_exact(hd).zip(yr.chunks_exact_mut(hd)) {
                for i in 0..half {
                    let (x1, x2) = (xh[i], xh[i + half]);
                    let (c, s) = (cos[i], sign * sin[i]);
                    yh[i] = x1 * c - x2 * s;
                    yh[i + half] = x2 * c + x1 * s;
                }
            }
        }
        y
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "train-rope"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "rope")?;
        let row = self.heads * 2 * self.tables.half;
        if x.len() % (row * self.t) != 0 || self.t > self.tables.positions {
            candle_core::bail!("rope: input {:?} does not match {} heads × {} dims over {} positions", l.dims(), self.heads, 2 * self.tables.half, self.t);
        }
        Ok((CpuStorage::F32(self.apply(x, 1.0)), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The rotation is orthogonal: its transpose rotates by the opposite angle.
        let g = with_f32(grad, |g| self.apply(g, -1.0))?;
        Ok(Some(tensor(g, x.shape())?))
    }
}

pub fn rope(x: &Tensor, tables: &Arc<RopeTables>, t: usize, heads: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Rope { tables: tables.clone(), t, heads })
}

// ---------------------------------------------------------------------------------------------
// Causal softmax of scaled scores [B, n_kv, g·T, T]: row r is query r mod T and sees keys 0..=q.

pub struct CausalSoftmax {
    pub t: usize,
    pub scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "train-causal-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "causal-softmax")?;
        let t = self.t;
        if l.dims().last() != Some(&t) || !l.dims()[l.dims().len() - 2].is_multiple_of(t) {
            candle_core::bail!("causal-softmax: scores {:?} are not [.., g·{t}, {t}]", l.dims());
        }
        let mut y = vec![0f32; x.len()];
        for (r, (xr, yr)) in x.chunks_exact(t).zip(y.chunks_exact_mut(t)).enumerate() {
            let n = r % t + 1;
            let max = xr[..n].iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * self.scale;
            let mut sum = 0f32;
            for (o, &v) in yr[..n].iter_mut().zip(&xr[..n]) {
                let e = (v * self.scale - max).exp();
                sum += e;
                *o = e;
            }
            let inv = 1.0 / sum;
            yr[..n].iter_mut().for_each(|o| *o *= inv);
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let t = self.t;
        let p = with_f32(res, |v| v.to_vec())?;
        let dx = with_f32(grad, |g| {
            let mut dx = vec![0f32; p.len()];
            for (r, ((pr, gr), dr)) in p.chunks_exact(t).zip(g.chunks_exact(t)).zip(dx.chunks_exact_mut(t)).enumerate() {
                let n = r % t + 1;
                let dot: f32 = pr[..n].iter().zip(&gr[..n]).map(|(a, b)| a * b).sum();
                for k in 0..n {
                    dr[k] = self.scale * pr[k] * (gr[k] - dot);
                }
            }
            dx
        })?;
        Ok(Some(tensor(dx, x.shape())?))
    }
}

pub fn causal_softmax(scores: &Tensor, t: usize, scale: f64) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax { t, scale: scale as f32 })
}

// ---------------------------------------------------------------------------------------------
// Gated activation: silu(gate) · up.

pub struct SiluMul;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl CustomOp2 for SiluMul {
    fn name(&self) -> &'static str {
        "train-silu-mul"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32_data(s1, l1, "silu-mul")?;
        let u = f32_data(s2, l2, "silu-mul")?;
        if l1.dims() != l2.dims() {
            candle_core::bail!("silu-mul: gate {:?} and up {:?} differ", l1.dims(), l2.dims());
        }
        // candle's silu: x / (1 + exp(−x)).
        let y = g.iter().zip(u).map(|(&a, &b)| a / (1.0 + (-a).exp()) * b).collect();
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, gate: &Tensor, up: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let gv = with_f32(gate, |v| v.to_vec())?;
        let uv = with_f32(up, |v| v.to_vec())?;
        let (dg, du) = with_f32(grad, |d| {
            let mut dg = vec![0f32; gv.len()];
            let mut du = vec![0f32; gv.len()];
            for k in 0..gv.len() {
                let s = sigmoid(gv[k]);
                let silu = gv[k] * s;
                du[k] = d[k] * silu;
                dg[k] = d[k] * uv[k] * s * (1.0 + gv[k] * (1.0 - s));
            }
            (dg, du)
        })?;
        Ok((Some(tensor(dg, gate.shape())?), Some(tensor(du, up.shape())?)))
    }
}

pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.contiguous()?.apply_op2(&up.contiguous()?, SiluMul)
}

// ---------------------------------------------------------------------------------------------
// Mean next-token cross-entropy of logits [N, V] against N targets (nats), as a scalar.

pub struct CrossEntropy {
    pub targets: Arc<Vec<u32>>,
    /// The forward pass's softmax, kept for the backward pass (saves a second exp per logit).
    probs: std::sync::Mutex<Option<Vec<f32>>>,
}

impl CrossEntropy {
    pub fn new(targets: &[u32]) -> Self {
        CrossEntropy { targets: Arc::new(targets.to_vec()), probs: std::sync::Mutex::new(None) }
    }

    fn check(&self, dims: &[usize]) -> Result<(usize, usize)> {
        match dims {
            [n, v] if *n == self.targets.len() => {
                if let Some(&bad) = self.targets.iter().find(|&&t| t as usize >= *v) {
                    candle_core::bail!("cross-entropy: target {bad} is outside {v} classes");
                }
                Ok((*n, *v))
            }
            _ => candle_core::bail!("cross-entropy: logits {dims:?} do not match {} targets", self.targets.len()),
        }
    }

    /// Softmax of every row (into `p`) and the row's loss −log p[target].
    fn softmax_rows(&self, x: &[f32], v: usize, p: &mut [f32]) -> f64 {
        let mut total = 0f64;
        for ((row, pr), &t) in x.chunks_exact(v).zip(p.chunks_exact_mut(v)).zip(self.targets.iter()) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
            let mut sum = 0f32;
            for (o, &z) in pr.iter_mut().zip(row) {
                let e = (z - max).exp();
                sum += e;
                *o = e;
            }
            let inv = 1.0 / sum;
            pr.iter_mut().for_each(|o| *o *= inv);
            // Rows summed in f64 in order: the mean does not drift with the batch size.
            total += (max + sum.ln() - row[t as usize]) as f64;
        }
        total
    }
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "train-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_data(s, l, "cross-entropy")?;
        let (n, v) = self.check(l.dims())?;
        let mut p = vec![0f32; x.len()];
        let total = self.softmax_rows(x, v, &mut p);
        *self.probs.lock().expect("not poisoned") = Some(p);
        Ok((CpuStorage::F32(vec![(total / n as f64) as f32]), Shape::from_dims(&[])))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, v) = self.check(x.dims())?;
        let g = grad.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?[0] / n as f32;
        let mut p = match self.probs.lock().expect("not poisoned").take() {
            Some(p) => p,
            None => {
                let mut p = vec![0f32; x.elem_count()];
                with_f32(x, |xv| self.softmax_rows(xv, v, &mut p))?;
                p
            }
        };
        for (pr, &t) in p.chunks_exact_mut(v).zip(self.targets.iter()) {
            pr[t as usize] -= 1.0;
            pr.iter_mut().for_each(|o| *o *= g);
        }
        Ok(Some(tensor(p, x.shape())?))
    }
}

pub fn cross_entropy(logits: &Tensor, targets: &[u32]) -> Result<Tensor> {
    logits.contiguous()?.apply_op1(CrossEntropy::new(targets))
}
