//! Model runtime: checkpoints in, every layer's hidden states out.
//!
//! ```text
//! resolve("org/name" | path) ─► ModelSource ─► Model::load ─► Model::forward(docs) ─► DocStates
//!                                   │ hf.rs (config.json, safetensors, tokenizer.json)
//!                                   │ gguf.rs (metadata, dequantised tensors, vocabulary)
//!                                   │ llama2c.rs (legacy checkpoint, tokenizer .bin)
//!                                   ▼
//!                  tensors in HF naming ─► decoder.rs (one generic decoder, per-family switches)
//! ```
//! Every loader renames its tensors to Hugging Face names, so the decoder reads one naming
//! scheme, and models trained with candle `Var`s (a `VarMap` in HF naming) run the same code.
//! `config.rs` explains how a new family is added.

pub mod config;
pub mod decoder;
pub mod error;
pub mod gguf;
pub mod hf;
pub mod llama2c;
pub mod model;
pub mod source;
pub mod tokenizer;

pub use config::{DecoderConfig, Family};
pub use decoder::{BatchLayout, Decoder, DecoderOptions, DecoderOutput};
pub use error::{RuntimeError, SUPPORTED_GGUF_TYPES, SUPPORTED_MODEL_TYPES};
pub use model::{ComputeDType, DeviceSpec, DocStates, FileHash, LoadOptions, Model, ModelInfo, ModelProvenance, Padding, Want};
pub use source::{hf_hub_cache, resolve, ModelSource};
pub use tokenizer::TextTokenizer;
