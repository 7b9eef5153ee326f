//! The soft-entropy estimator of Conklin et al. (METHOD.md §1–2).
//!
//! Pipeline: [`Calibration`] picks ε, [`ReferencePoints`] holds W, [`SoftAssigner`] turns rows of
//! hidden states into soft assignments p = softmax(z̄Wᵀ/ε), and an [`Accumulator`] sums them for
//! H(Z) and for any number of label sets (with their shuffled nulls). Accumulators serialise to a
//! [`PartialState`] and merge exactly. This crate never does IO and knows nothing of models,
//! tokens or files: labels are opaque integer tuples.

mod accumulator;
pub mod calibration;
mod kernel;
mod labels;
mod reference;
pub mod rng;

pub use accumulator::{
    Accumulator, Estimate, LabelBatch, LabelEstimate, LabelSetSpec, PartialLabelSet, PartialSide,
    PartialState, PerLabel, Settings, Weighting, PARTIAL_FORMAT_VERSION,
};
pub use calibration::Calibration;
pub use kernel::{entropy_efficiency, Assigned, Rows, SoftAssigner};
pub use labels::LabelIndex;
pub use reference::{ReferenceOrigin, ReferencePoints};

/// Everything the estimator can refuse, with the context a user needs to fix the input.
#[derive(Debug, thiserror::Error)]
pub enum EstimatorError {
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("reference points: {0}")]
    ReferencePoints(String),
    #[error("row {position}: {reason}")]
    BadRow { position: u64, reason: &'static str },
    #[error("embeddings have {got} values, not a multiple of dim {dim}")]
    Shape { got: usize, dim: usize },
    #[error("label set {set:?}: {reason}")]
    Labels { set: String, reason: String },
    #[error("cannot merge partial statistics: {0}")]
    Mismatch(String),
    #[error("partial statistics are inconsistent: {0}")]
    Corrupt(String),
}
