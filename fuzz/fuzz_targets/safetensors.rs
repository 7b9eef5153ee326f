//! The Hugging Face loader's safetensors reading: any bytes as `model.safetensors` beside a tiny
//! Llama config.json and the llama fixture's tokenizer.json. `read_safetensors` (header, offsets,
//! dtypes) must refuse what is inconsistent; what it accepts goes through `Model::load` (names,
//! shapes, dtype conversion) and a short forward pass. Nothing may panic.
#![no_main]

use infoplane_runtime::hf::read_safetensors;
use infoplane_runtime::{LoadOptions, Model, ModelSource, Want};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "scratch.rs"]
mod scratch;

/// Matches the seeds scripts/make_fuzz_seeds.py writes (tied embeddings, 1 layer, d = 16).
const CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
 "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 384, "max_position_embeddings": 64,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}"#;
const TOKENIZER: &[u8] = include_bytes!("../../fixtures/models/llama/tokenizer.json");

fn model_dir() -> &'static std::path::PathBuf {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch::dir().join("hf");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), CONFIG).unwrap();
        std::fs::write(d.join("tokenizer.json"), TOKENIZER).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = model_dir();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, data).unwrap();
    let Ok(tensors) = read_safetensors(&[path]) else { return };
    drop(tensors);
    let src = ModelSource::HfDir { dir: dir.clone(), repo_id: None, revision: None, commit: None };
    if let Ok(model) = Model::load(&src, &LoadOptions::default()) {
        let _ = model.forward(&[&[1, 5, 17, 300]], Want { hidden: true, logits: true, next_token_nll: true });
    }
});
