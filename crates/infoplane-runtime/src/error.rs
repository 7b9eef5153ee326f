//! The one error type of the runtime. Every variant names what a user needs to fix the input: the
//! file, the field, the tensor, the layer or the position.

use std::path::PathBuf;

/// Model families the generic decoder implements, as `model_type` strings of HF `config.json`.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2", "olmo2", "gpt_neox", "gpt2"];

/// GGUF tensor types that are dequantised (everything candle's GGUF reader decodes).
pub const SUPPORTED_GGUF_TYPES: &[&str] =
    &["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"];

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("model {spec:?} not found: {reason}")]
    NotFound { spec: String, reason: String },
    #[error("{}: invalid JSON: {reason}", path.display())]
    Json { path: PathBuf, reason: String },
    #[error("{}: field `{field}`: {reason}", path.display())]
    Config { path: PathBuf, field: String, reason: String },
    #[error("{}: model_type {model_type:?} is not supported (supported: {})", path.display(), SUPPORTED_MODEL_TYPES.join(", "))]
    UnsupportedModelType { path: PathBuf, model_type: String },
    #[error("{}: GGUF architecture {arch:?} is not supported (supported: llama)", path.display())]
    UnsupportedGgufArch { path: PathBuf, arch: String },
    #[error("{}: GGUF tensor type {type_name} is not supported (supported: {})", path.display(), SUPPORTED_GGUF_TYPES.join(", "))]
    UnsupportedQuant { path: PathBuf, type_name: String },
    #[error("{}: not a valid {format} file: {reason}", path.display())]
    Format { path: PathBuf, format: &'static str, reason: String },
    #[error("{}: tensor `{name}` is missing", path.display())]
    MissingTensor { path: PathBuf, name: String },
    #[error("{}: tensor `{name}` has shape {got:?}, expected {expected:?}", path.display())]
    TensorShape { path: PathBuf, name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("{}: tokenizer: {reason}", path.display())]
    Tokenizer { path: PathBuf, reason: String },
    #[error("{}: the tokenizer has token id {max_id} but the model's embedding has only {embedding_rows} rows", path.display())]
    VocabTooLarge { path: PathBuf, max_id: usize, embedding_rows: usize },
    #[error("document {doc}: token id {id} at position {position} is outside the vocabulary ({vocab} rows)")]
    TokenOutOfRange { doc: usize, position: usize, id: u32, vocab: usize },
    #[error("document {doc}: {tokens} tokens exceed the model's {max} learned positions")]
    TooLong { doc: usize, tokens: usize, max: usize },
    #[error("document {doc}: non-finite hidden state at {layer}, position {position} (dimension {dim}: {value})")]
    NonFinite { doc: usize, layer: String, position: usize, dim: usize, value: f32 },
    #[error("device {0}: {1}")]
    Device(String, String),
    #[error("{0}")]
    Invalid(String),
    #[error("tensor computation failed: {0}")]
    Candle(String),
}

impl From<candle_core::Error> for RuntimeError {
    fn from(e: candle_core::Error) -> Self {
        RuntimeError::Candle(candle_message(&e))
    }
}

/// candle's message without the backtrace it may carry (one line for the CLI).
pub(crate) fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        other => other.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

impl RuntimeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io { path: path.into(), source }
    }
    pub(crate) fn config(path: impl Into<PathBuf>, field: impl Into<String>, reason: impl Into<String>) -> Self {
        RuntimeError::Config { path: path.into(), field: field.into(), reason: reason.into() }
    }
    pub(crate) fn format(path: impl Into<PathBuf>, format: &'static str, reason: impl Into<String>) -> Self {
        RuntimeError::Format { path: path.into(), format, reason: reason.into() }
    }
}
