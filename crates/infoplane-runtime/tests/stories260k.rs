//! stories260K through both of its forms: the llama2.c checkpoint (with llama2.c's tokenizer)
//! and the same weights as a llama GGUF with a SentencePiece vocabulary, each against
//! transformers' numbers (fixtures made by tests/make_fixtures.py).

mod common;
use common::*;
use infoplane_runtime::{resolve, LoadOptions, Model, Want};

const TOL: f64 = 1e-4;

#[test]
fn llama2c_tokenizer_and_states_match_transformers() {
    let Some(shared) = shared_data("llama2c_tokenizer_and_states_match_transformers") else { return };
    let model = load(&resolve(shared.join("llama2c_stories260K/stories260K.bin").to_str().unwrap()).unwrap());
    assert_eq!(model.info().n_layers, 5);
    assert_eq!(model.info().hidden_size, 64);
    assert_eq!(model.info().bos_token_id, Some(1));
    let dir = own_fixtures().join("stories260k_hf");
    let texts = json(&dir.join("texts.json"));
    for (i, case) in texts["cases"].as_array().unwrap().iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let ids = model.tokenizer().encode(text, true).unwrap();
        assert_eq!(ids, ids_of(case, "token_ids"), "llama2.c encode of {text:?}");
        let states = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: false }).unwrap();
        let rel = compare_case(&format!("stories260K.bin case {i}"), &dir, i, &states[0], TOL);
        eprintln!("stories260K.bin case {i}: {} tokens, max rel diff {rel:.2e}", ids.len());
    }
}

#[test]
fn gguf_sentencepiece_tokens_and_dequantised_states_match_transformers() {
    let path = own_fixtures().join("stories260k_sp.gguf");
    let model = load(&resolve(path.to_str().unwrap()).unwrap());
    let prov = model.provenance();
    assert_eq!(prov.format, "gguf");
    let types = prov.gguf_tensor_types.as_ref().unwrap();
    for t in ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"] {
        assert!(types.contains_key(t), "fixture lacks {t}: {types:?}");
    }
    let dir = own_fixtures().join("stories260k_sp");
    let texts = json(&dir.join("texts.json"));
    for (i, case) in texts["cases"].as_array().unwrap().iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let ids = model.tokenizer().encode(text, true).unwrap();
        assert_eq!(ids, ids_of(case, "token_ids"), "GGUF SentencePiece encode of {text:?}");
        assert_eq!(model.tokenizer().decode(&ids).unwrap(), case["decoded"].as_str().unwrap(), "decode of case {i}");
        if dir.join(format!("case{i}_hidden_states.npy")).is_file() {
            let states = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: false }).unwrap();
            let rel = compare_case(&format!("stories260k_sp.gguf case {i}"), &dir, i, &states[0], TOL);
            eprintln!("stories260k_sp.gguf case {i}: {} tokens, max rel diff {rel:.2e}", ids.len());
        }
    }
}

#[test]
fn every_gguf_tensor_type_dequantises_like_gguf_py() {
    let g = infoplane_runtime::gguf::GgufFile::open(&own_fixtures().join("quant_types.gguf")).unwrap();
    let want = json(&own_fixtures().join("quant_types.json"));
    let values = want["values"].as_object().unwrap();
    assert_eq!(values.len(), 13);
    for (name, v) in values {
        let expected: Vec<f32> = v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let got = g.dequantize(name).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Same formulas in f32; K-quants may differ by an FMA's rounding.
        assert_close(name, &got, &expected, 1e-6);
    }
}

#[test]
fn llama2c_explicit_tokenizer_option_and_missing_tokenizer() {
    let Some(shared) = shared_data("llama2c_explicit_tokenizer_option_and_missing_tokenizer") else { return };
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("model.bin");
    std::fs::copy(shared.join("llama2c_stories260K/stories260K.bin"), &ckpt).unwrap();
    let src = resolve(ckpt.to_str().unwrap()).unwrap();
    let err = Model::load(&src, &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("tok*.bin"), "{err}");
    let opts = LoadOptions { tokenizer: Some(shared.join("llama2c_stories260K/tok512.bin")), ..Default::default() };
    let model = Model::load(&src, &opts).unwrap();
    assert_eq!(model.tokenizer().encode("Once", true).unwrap()[0], 1);
}

/// A negative vocab_size in the header means the classifier follows the RoPE tables instead of
/// sharing the embedding: the same file with a classifier of 2 × the embedding appended gives
/// logits of exactly twice the shared model's.
#[test]
fn llama2c_separate_classifier_is_read_after_the_rope_tables() {
    let Some(shared) = shared_data("llama2c_separate_classifier_is_read_after_the_rope_tables") else { return };
    let dir = shared.join("llama2c_stories260K");
    let mut bytes = std::fs::read(dir.join("stories260K.bin")).unwrap();
    let (vocab, dim) = (512usize, 64usize);
    let embedding: Vec<f32> = bytes[28..28 + 4 * vocab * dim].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    bytes[20..24].copy_from_slice(&(-(vocab as i32)).to_le_bytes());
    for v in &embedding {
        bytes.extend((2.0 * v).to_le_bytes());
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("separate.bin");
    std::fs::write(&path, &bytes).unwrap();
    let opts = LoadOptions { tokenizer: Some(dir.join("tok512.bin")), ..Default::default() };
    let separate = Model::load(&resolve(path.to_str().unwrap()).unwrap(), &opts).unwrap();
    assert!(!separate.info().tied_embeddings);
    let shared_model = load(&resolve(dir.join("stories260K.bin").to_str().unwrap()).unwrap());
    let ids = [1u32, 403, 407, 261];
    let want = Want { hidden: false, logits: true, next_token_nll: false };
    let a = shared_model.forward(&[&ids], want).unwrap().remove(0).logits.unwrap();
    let b = separate.forward(&[&ids], want).unwrap().remove(0).logits.unwrap();
    let doubled: Vec<f32> = a.iter().map(|x| 2.0 * x).collect();
    assert_close("separate classifier logits", &b, &doubled, 1e-6);
}
