//! Trains small Llama-architecture models from scratch on CPU with candle autograd, with a
//! byte-level BPE tokenizer trained on the same text, and saves log-spaced checkpoints in Hugging
//! Face layout that the runtime (and transformers) load like any Llama model.
//!
//! - [`tokenizer`]: [`train_tokenizer`] (byte-level BPE with a BOS post-processor).
//! - [`model`]: [`ModelShape`] (→ `config.json`), seeded initialisation, [`TrainModel`] (live `Var`s
//!   in the runtime's decoder, loss, `model.safetensors`).
//! - [`optim`]: AdamW with decay exclusions and gradient clipping.
//! - [`schedule`]: warm-up + cosine learning rate, log-spaced checkpoint steps.
//! - [`data`]: the token stream and its seeded windows.
//! - [`trainer`]: [`train`], the loop and the files it writes.
//! - [`fused`]: the training forward's custom ops (norm, rotary, causal softmax, SiLU·up,
//!   cross-entropy) with hand-written backward passes, tested against the runtime's decoder.
//!
//! # Speed (release build, 2-core machine shared with other builds, one thread)
//!
//! | model | params | steps/s (batch 16 × context 64) | held-out loss after ~55 s |
//! |---|---:|---:|---|
//! | 2 layers, width 64, 4 heads, vocab 512 | 166k | 31–41 | 3.09 (2,000 steps) |
//! | 4 layers, width 128, 4 heads, vocab 512 | 923k | 6.6–7.9 | 3.55 (400 steps) |
//!
//! One thread per model is fastest for models this small (candle's pools spin-wait between
//! ops; two threads measured 2.7–33 steps/s against 40 on one). Set `RAYON_NUM_THREADS=1` and
//! `CANDLE_NUM_THREADS=1` before candle first runs, then train several models on separate
//! threads to use every core. Results do not depend on the thread count (tested: 1 and 2
//! threads give byte-identical weights).

pub mod data;
pub mod error;
pub mod fused;
pub mod model;
pub mod optim;
pub mod schedule;
pub mod tokenizer;
pub mod trainer;

pub use error::TrainError;
pub use model::{default_intermediate, ModelShape, TrainModel};
pub use optim::AdamWConfig;
pub use schedule::{checkpoint_steps, LrSchedule};
pub use tokenizer::{train_tokenizer, BOS_TOKEN};
pub use trainer::{train, CheckpointInfo, Silent, StepReport, TrainJob, TrainObserver, TrainSettings, TrainSummary, TrainerState};
/// Re-exported so callers need not depend on `tokenizers` themselves.
pub use tokenizers::Tokenizer;

/// Tells glibc's malloc to keep freed memory for reuse instead of returning it to the system.
///
/// A training step allocates and frees dozens of 1–2 MB tensors; by default glibc serves those
/// with fresh `mmap`s or trims the heap after each free, so every step pays page faults and
/// page clearing again (measured: a third of the time of a 166k-parameter model; 1.9–2.6× more
/// steps/s with this set). The cost is that the process keeps its peak heap. Process-wide and
/// idempotent; a no-op off Linux/glibc. [`train`] calls it.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's thresholds; any value is valid to pass.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// The shape of a model for a tokenizer: the vocabulary and BOS id come from the tokenizer.
/// `kv_heads` defaults to `heads`, `intermediate` to Llama's ⌈8d/3⌉ rounded up to 8.
#[allow(clippy::too_many_arguments)]
pub fn shape_for(tokenizer: &Tokenizer, layers: usize, width: usize, heads: usize, kv_heads: Option<usize>, intermediate: Option<usize>, context: usize, tie_embeddings: bool) -> Result<ModelShape, TrainError> {
    let bos = tokenizer::bos_id(tokenizer).ok_or_else(|| TrainError::Tokenizer(format!("the tokenizer has no {BOS_TOKEN} token")))?;
    let shape = ModelShape {
        vocab_size: tokenizer.get_vocab_size(true),
        hidden_size: width,
        layers,
        heads,
        kv_heads: kv_heads.unwrap_or(heads),
        intermediate_size: intermediate.unwrap_or_else(|| default_intermediate(width)),
        max_positions: context,
        tie_embeddings,
        bos_token_id: bos,
    };
    shape.validate()?;
    Ok(shape)
}
