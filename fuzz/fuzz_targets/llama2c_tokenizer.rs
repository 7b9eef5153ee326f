//! llama2.c tokenizer files: the first two input bytes are the model's vocabulary size (u16 LE),
//! the rest is the tokenizer .bin. `Llama2cTokenizer::read` must refuse what run.c could not use;
//! what it accepts encodes text (ASCII, multi-byte UTF-8, characters outside the vocabulary) and
//! decodes ids (in and out of range). Nothing may panic.
#![no_main]

use infoplane_runtime::llama2c::Llama2cTokenizer;
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

const TEXTS: &[&str] = &["", " ", "Once upon a time", "ünïcödé ✓ 𝄞 \u{0} \t\n", "aaaaaaaaaaaaaaaaaaaaaaaa"];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let vocab = u16::from_le_bytes([data[0], data[1]]) as usize;
    let path = scratch::file("tok.bin", &data[2..]);
    let Ok(tok) = Llama2cTokenizer::read(&path, vocab) else { return };
    assert_eq!(tok.vocab_size(), vocab);
    for text in TEXTS {
        for bos in [false, true] {
            let ids = tok.encode(text, bos);
            assert!(ids.iter().all(|&id| (id as usize) < vocab), "encode gave an id outside the vocabulary");
            let _ = tok.decode_bytes(&ids);
        }
    }
    let _ = tok.decode_bytes(&[0, 1, 2, 3, u32::MAX, vocab as u32]);
});
