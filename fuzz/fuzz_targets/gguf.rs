//! GGUF files: header, metadata, tensor infos (candle's reader behind `GgufFile::open`), the
//! config and tokenizer rebuilt from metadata, every tensor dequantised, and the whole loader
//! (`Model::load`) with a short forward pass when the config is valid. Nothing may panic.
//!
//! The loader already builds the tokenizer and dequantises every tensor, so those are called on
//! their own only when the config is refused (to reach them in files the loader stops early on);
//! building a SentencePiece tokenizer twice per input halved the rate.
#![no_main]

use infoplane_runtime::gguf::GgufFile;
use infoplane_runtime::{LoadOptions, Model, ModelSource, Want};
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::file("m.gguf", data);
    let Ok(g) = GgufFile::open(&path) else { return };
    let types = g.tensor_types();
    let _ = g.architecture();
    match g.config() {
        Ok(cfg) => {
            match Model::load(&ModelSource::Gguf { path: path.clone() }, &LoadOptions::default()) {
                Ok(model) => {
                    if let Ok(ids) = model.tokenizer().encode("Once upon a time, 42 ünïcode ✓", true) {
                        let _ = model.tokenizer().decode(&ids);
                        let _ = model.forward(&[&ids[..ids.len().min(8)]], Want { hidden: true, logits: true, next_token_nll: true });
                    }
                }
                // The loader may have stopped at the tokenizer, before the tensors.
                Err(_) => drop(g.hf_tensors(&cfg)),
            }
        }
        Err(_) => {
            if let Ok(tok) = g.tokenizer() {
                if let Ok(ids) = tok.encode("Once upon a time, 42 ünïcode ✓", true) {
                    let _ = tok.decode(&ids);
                }
            }
            for name in types.keys() {
                let _ = g.dequantize(name);
            }
        }
    }
});
