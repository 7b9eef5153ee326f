//! One model on one corpus (METHOD.md §3–5): the hidden states of every layer, labelled by the
//! n-gram contexts around each position, turned into complexity, expressivity, their nulls,
//! back-off levels, proportions, optimality, next-token loss and preference information, per
//! layer and for the model.
//!
//! The model is anything that implements [`StateSource`]; the corpus arrives tokenised. A run works in passes ([`pass`]): the forward
//! pass spills soft assignments to disk, then label sums are made one hidden state at a time, so
//! memory is bounded by one state's label vectors whatever the number of layers.

mod memory;
mod metrics;
pub mod pass;
mod run;
mod time_estimate;

pub use memory::MemoryEstimate;
pub use time_estimate::TimeEstimate;
pub use metrics::{aggregate, layer_columns, layer_row, model_columns, Aggregate, LayerRow, ModelLevel};
pub use pass::{Checkpointing, ForwardTotals};
pub use run::{analyze, layers_table, merge_units, read_unit, write_run, AnalysisInput, AnalysisOutput, AnalysisSettings, Counts, LayerSelection, PreferenceInput, ReferenceSpec, Shard, Timing, UnitRecord, UNIT_RECORD};

/// The hidden states of one sequence: every state the source has, each [T·d] row-major f32.
pub struct SequenceStates {
    pub states: Vec<Vec<f32>>,
    /// −ln p(t_{i+1} | t_≤i) at each position i < T − 1, when asked for.
    pub next_token_nll: Option<Vec<f32>>,
}

/// A model, as the analysis sees it: named hidden states of width `dim` for a token sequence.
pub trait StateSource: Sync {
    /// Names of the states, in order: "0" (embedding output), "1".."L" (block outputs before the
    /// final norm), "final_norm".
    fn state_names(&self) -> Vec<String>;
    fn dim(&self) -> usize;
    fn forward(&self, tokens: &[u32], next_token_nll: bool) -> Result<SequenceStates, AnalysisError>;
}

/// Where long work reports itself (the CLI draws progress bars).
pub trait Progress: Sync {
    /// A new phase of `units` sequences (or states) and `tokens` tokens (or rows).
    fn start(&self, phase: &str, units: u64, tokens: u64);
    fn advance(&self, units: u64, tokens: u64);
    fn finish(&self);
    /// A line for the user (estimates, notes) that is not progress.
    fn note(&self, _text: &str) {}
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Estimator(#[from] infoplane_estimator::EstimatorError),
    #[error(transparent)]
    Labels(#[from] infoplane_labels::LabelError),
    #[error(transparent)]
    Store(#[from] infoplane_store::StoreError),
    #[error("model: {0}")]
    Source(String),
    /// A model error while it ran one sequence of a pass (sequences numbered run-wide).
    #[error("{pass} sequence {sequence}: {reason}")]
    SourceAt { pass: &'static str, sequence: usize, reason: String },
    #[error("{pass} sequence {sequence}, layer {layer}, token position {position}: {reason}")]
    BadHiddenState { pass: &'static str, layer: String, sequence: usize, position: usize, reason: &'static str },
    #[error("{0}")]
    Memory(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("interrupted after {done} of {total} sequences; run again with --resume to continue")]
    Interrupted { done: usize, total: usize },
    #[error("{0}")]
    Settings(String),
    #[error("{0}")]
    Io(String),
}
