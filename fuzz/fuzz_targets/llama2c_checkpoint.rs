//! llama2.c checkpoints: the 28-byte header, the size it implies, and the float arrays cut into
//! tensors (`read_checkpoint`); what it accepts is loaded as a model with tok512.bin when the
//! vocabulary is 512, and run for a few tokens. Nothing may panic.
#![no_main]

use infoplane_runtime::llama2c::read_checkpoint;
use infoplane_runtime::{LoadOptions, Model, ModelSource, Want};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "scratch.rs"]
mod scratch;

const TOK512: &[u8] = include_bytes!("../../data/stories260K/tok512.bin");

fn tokenizer() -> &'static std::path::PathBuf {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| scratch::file("tok512.bin", TOK512))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch::file("model.bin", data);
    let Ok((header, cfg, tensors)) = read_checkpoint(&path) else { return };
    let floats: usize = tensors.values().map(|t| t.elem_count()).sum();
    assert!(4 * floats + 28 <= data.len(), "tensors hold more floats than the file");
    if header.vocab_size != 512 || cfg.vocab_size != 512 {
        return;
    }
    let opts = LoadOptions { tokenizer: Some(tokenizer().clone()), ..LoadOptions::default() };
    if let Ok(model) = Model::load(&ModelSource::Llama2c { path }, &opts) {
        if let Ok(ids) = model.tokenizer().encode("Once upon a time", true) {
            let _ = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: true });
        }
    }
});
