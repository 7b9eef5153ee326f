//! AdamW with per-parameter weight-decay exclusion and global gradient-norm clipping.
//!
//! Own code rather than `candle_nn::AdamW`, which decays every parameter: here RMSNorm gains are
//! not decayed (decaying a gain pulls it towards 0, not towards its initial 1), matrices and
//! embeddings are (nanoGPT's rule: decay every tensor of rank ≥ 2). The update is PyTorch's
//! `torch.optim.AdamW` step, in f32, element by element:
//!
//! ```text
//! θ ← θ·(1 − lr·wd);  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
//! θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! Clipping is `torch.nn.utils.clip_grad_norm_`: with the global L2 norm ‖g‖ over all gradients
//! (summed in f64, in parameter order), every gradient is scaled by `clip / (‖g‖ + 1e-6)` when that
//! is below 1. Parameters are updated one after another on the calling thread, so the result does
//! not depend on any thread count.

use crate::error::TrainError;
use crate::model::Param;
use candle_core::backprop::GradStore;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (None: no clipping).
    pub grad_clip: Option<f64>,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: Some(1.0) }
    }
}

struct Slot {
    m: Vec<f32>,
    v: Vec<f32>,
}

pub struct AdamW {
    cfg: AdamWConfig,
    slots: Vec<Slot>,
    t: u64,
}

impl AdamW {
    pub fn new(params: &[Param], cfg: AdamWConfig) -> Self {
        let slots = params.iter().map(|p| Slot { m: vec![0.0; p.var.elem_count()], v: vec![0.0; p.var.elem_count()] }).collect();
        AdamW { cfg, slots, t: 0 }
    }

    /// One update of every parameter at learning rate `lr`; returns the gradient norm before
    /// clipping. A parameter with no gradient (unused in the loss) is treated as having zero grad.
    pub fn step(&mut self, params: &[Param], grads: &GradStore, lr: f64) -> Result<f64, TrainError> {
        let grads: Vec<Option<Vec<f32>>> = params
            .iter()
            .map(|p| grads.get(p.var.as_tensor()).map(|g| g.flatten_all().and_then(|g| g.to_vec1::<f32>())).transpose())
            .collect::<Result<_, _>>()?;
        let norm = grads.iter().flatten().map(|g| g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>()).sum::<f64>().sqrt();
        let scale = match self.cfg.grad_clip {
            Some(clip) if norm > clip => (clip / (norm + 1e-6)) as f32,
            _ => 1.0,
        };
        self.t += 1;
        let c = self.cfg;
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let eps = c.eps as f32;
        let new_values: Vec<Vec<f32>> = params
            .iter()
            .zip(self.slots.iter_mut())
            .zip(grads.iter())
            .map(|((p, slot), g)| -> Result<Vec<f32>, TrainError> {
                let mut theta = p.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                let zeros;
                let g: &[f32] = match g {
                    Some(g) => g,
                    None => {
                        zeros = vec![0f32; theta.len()];
                        &zeros
                    }
                };
                let decay = if p.decay { (1.0 - lr * c.weight_decay) as f32 } else { 1.0 };
                // One tight loop over equal-length slices (vectorises; no per-element branch).
                for (((th, &gk), m), v) in theta.iter_mut().zip(g).zip(slot.m.iter_mut()).zip(slot.v.iter_mut()) {
                    let gk = gk * scale;
                    *th *= decay;
                    // torch's lerp_ and mul_().addcmul_().
                    *m += (gk - *m) * (1.0 - b1);
                    *v = *v * b2 + (1.0 - b2) * gk * gk;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *th -= step_size * (*m / denom);
                }
                Ok(theta)
            })
            .collect::<Result<_, _>>()?;
        for (p, values) in params.iter().zip(new_values) {
            p.var.set(&Tensor::from_vec(values, p.var.shape(), p.var.device())?)?;
        }
        Ok(norm)
    }
}
