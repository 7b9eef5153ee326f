//! The one error type of the trainer; every variant names the setting, file or step at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting that cannot work (`--heads 3` with `--width 64`, a vocabulary too small, …).
    #[error("{setting}: {reason}")]
    Setting { setting: &'static str, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Not enough text for the requested windows.
    #[error("{0}")]
    Data(String),
    #[error("step {step}: the training loss is not finite ({loss}); lower --lr or raise --warmup")]
    Diverged { step: u64, loss: f64 },
    #[error("interrupted after step {step}; its checkpoint is {}, and the manifest lists it", path.display())]
    Interrupted { step: u64, path: PathBuf },
    #[error("model: {0}")]
    Runtime(#[from] infoplane_runtime::RuntimeError),
    #[error("tensor computation failed: {0}")]
    Candle(String),
    #[error(transparent)]
    Store(#[from] infoplane_store::StoreError),
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        TrainError::Candle(e.to_string())
    }
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io { path: path.into(), source }
    }
    pub(crate) fn setting(setting: &'static str, reason: impl Into<String>) -> Self {
        TrainError::Setting { setting, reason: reason.into() }
    }
}
