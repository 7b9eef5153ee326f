//! Every tiny random model of fixtures/models (scripts/make_model_fixtures.py): token ids equal
//! transformers', hidden states, final norm and logits within 1e-4 × max(1, max |value|); and a
//! padded batch (left or right) equals one document at a time within 1e-5.

mod common;
use common::*;
use infoplane_runtime::{resolve, Padding, Want};

const TOL: f64 = 1e-4;
const VARIANTS: &[&str] = &["llama", "llama_gqa", "llama3_rope_scaling", "llama_linear_rope", "mistral", "qwen2", "olmo2", "gpt_neox_parallel", "gpt_neox_sequential", "gpt2"];

fn check_variant(variant: &str) {
    let test = format!("parity_{variant}");
    let Some(dir) = optional_fixture(&test, &fixtures().join("models").join(variant)) else { return };
    let model = load(&resolve(dir.to_str().unwrap()).unwrap());
    let expected = dir.join("expected");
    let texts = json(&expected.join("texts.json"));
    assert_eq!(model.info().model_type, texts["family"].as_str().unwrap());
    assert_eq!(model.info().n_layers as u64, texts["model"]["num_hidden_layers"].as_u64().unwrap());
    let cases = texts["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut docs = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let want_ids = ids_of(case, "token_ids");
        let ids = model.tokenizer().encode(text, true).unwrap();
        assert_eq!(ids, want_ids, "{variant}: token ids of {text:?}");
        let got = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: false }).unwrap();
        let rel = compare_case(&format!("{variant} case {i}"), &expected, i, &got[0], TOL);
        eprintln!("{variant} case {i}: {} tokens, max rel diff {rel:.2e}", ids.len());
        docs.push((ids, got.into_iter().next().unwrap()));
    }
    // Batches of different lengths, padded either side, equal single-document runs.
    let refs: Vec<&[u32]> = docs.iter().map(|(ids, _)| ids.as_slice()).collect();
    for padding in [Padding::Left, Padding::Right] {
        let batched = model.forward_padded(&refs, Want { hidden: true, logits: true, next_token_nll: true }, padding).unwrap();
        for (i, ((_, single), b)) in docs.iter().zip(&batched).enumerate() {
            assert_eq!(b.tokens, single.tokens);
            for l in 0..single.hidden.len() {
                assert_close(&format!("{variant} {padding:?} case {i} hidden[{l}]"), &b.hidden[l], &single.hidden[l], 1e-5);
            }
            assert_close(&format!("{variant} {padding:?} case {i} final_norm"), &b.final_norm, &single.final_norm, 1e-5);
            assert_close(&format!("{variant} {padding:?} case {i} logits"), b.logits.as_ref().unwrap(), single.logits.as_ref().unwrap(), 1e-5);
            assert_eq!(b.next_token_nll.as_ref().unwrap().len(), single.tokens - 1);
        }
    }
}

#[test]
fn parity_llama() {
    check_variant("llama");
}
#[test]
fn parity_llama_gqa() {
    check_variant("llama_gqa");
}
#[test]
fn parity_llama3_rope_scaling() {
    check_variant("llama3_rope_scaling");
}
#[test]
fn parity_llama_linear_rope() {
    check_variant("llama_linear_rope");
}
#[test]
fn parity_mistral_sliding_window() {
    check_variant("mistral");
}
#[test]
fn parity_qwen2() {
    check_variant("qwen2");
}
#[test]
fn parity_olmo2() {
    check_variant("olmo2");
}
#[test]
fn parity_gpt_neox_parallel() {
    check_variant("gpt_neox_parallel");
}
#[test]
fn parity_gpt_neox_sequential() {
    check_variant("gpt_neox_sequential");
}
#[test]
fn parity_gpt2() {
    check_variant("gpt2");
}

/// New variants added by the fixture script are not silently skipped.
#[test]
fn every_fixture_variant_is_tested() {
    let Some(dir) = optional_fixture("every_fixture_variant_is_tested", &fixtures().join("models")) else { return };
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("expected/texts.json").is_file() {
            let name = entry.file_name().into_string().unwrap();
            assert!(VARIANTS.contains(&name.as_str()), "fixture variant {name} has no parity test");
        }
    }
}
