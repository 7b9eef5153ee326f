//! Real checkpoints from ../shared/data against their references: SmolLM2-135M-Instruct Q4_1
//! GGUF against transformers' GGUF tokenizer and dequantised model (fixtures/smollm2_gguf), and
//! stories260K's greedy continuation against llama2.c's run.c (fixtures/stories260K/greedy.json).

mod common;
use common::*;
use infoplane_runtime::{resolve, Model, Want};

fn smollm2(test: &str) -> Option<Model> {
    let shared = shared_data(test)?;
    let path = shared.join("smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    Some(load(&resolve(path.to_str().unwrap()).unwrap()))
}

#[test]
fn smollm2_gguf_token_ids_equal_transformers() {
    let Some(fx) = optional_fixture("smollm2_gguf_token_ids_equal_transformers", &fixtures().join("smollm2_gguf")) else { return };
    let Some(model) = smollm2("smollm2_gguf_token_ids_equal_transformers") else { return };
    let tokens = json(&fx.join("tokens.json"));
    let entries = tokens.as_array().unwrap();
    assert!(entries.len() >= 20);
    for e in entries {
        let text = e["text"].as_str().unwrap();
        let ids = model.tokenizer().encode(text, true).unwrap();
        assert_eq!(ids, ids_of(e, "ids"), "ids of {text:?}");
        if e["decodes_to_text"].as_bool() == Some(true) {
            assert_eq!(model.tokenizer().decode(&ids).unwrap(), text, "decode of {text:?}");
        }
    }
}

#[test]
fn smollm2_gguf_states_equal_transformers_dequantised() {
    let Some(fx) = optional_fixture("smollm2_gguf_states_equal_transformers_dequantised", &fixtures().join("smollm2_gguf")) else { return };
    let Some(model) = smollm2("smollm2_gguf_states_equal_transformers_dequantised") else { return };
    let info = model.info();
    assert_eq!((info.n_layers, info.hidden_size, info.vocab_size, info.n_heads, info.n_kv_heads), (30, 576, 49152, 9, 3));
    assert!(info.tied_embeddings);
    let texts = json(&fx.join("texts.json"));
    for (i, case) in texts["cases"].as_array().unwrap().iter().enumerate() {
        let ids = ids_of(case, "token_ids");
        assert_eq!(model.tokenizer().encode(case["text"].as_str().unwrap(), true).unwrap(), ids);
        let got = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: true }).unwrap().remove(0);
        let rel = compare_case(&format!("SmolLM2 case {i}"), &fx, i, &got, 1e-4);
        // Logits at transformers' top-32 ids of every position.
        let top_ids = infoplane_store::read_npy(&fx.join(format!("case{i}_logits_top_ids.npy"))).unwrap();
        let top_ids = top_ids.data.to_i64().unwrap().unwrap();
        let (_, top_values) = npy_f32(&fx.join(format!("case{i}_logits_top_values.npy")));
        let v = info.vocab_size;
        let k = top_ids.len() / ids.len();
        let logits = got.logits.as_ref().unwrap();
        let gathered: Vec<f32> = top_ids.iter().enumerate().map(|(j, &id)| logits[(j / k) * v + id as usize]).collect();
        assert_close(&format!("SmolLM2 case {i} top-32 logits"), &gathered, &top_values, 1e-4);
        // next-token NLL agrees with the logits it comes from.
        let nll = got.next_token_nll.as_ref().unwrap();
        assert_eq!(nll.len(), ids.len() - 1);
        for (p, &x) in nll.iter().enumerate() {
            let row = &logits[p * v..(p + 1) * v];
            let lse = row.iter().map(|&z| (z as f64).exp()).sum::<f64>().ln();
            assert!((x as f64 - (lse - row[ids[p + 1] as usize] as f64)).abs() < 1e-3, "nll at {p}");
        }
        eprintln!("SmolLM2 case {i}: {} tokens, max rel diff {rel:.2e}", ids.len());
    }
}

/// run.c's loop: feed BOS and the prompt, then the argmax (first maximum) until `steps`
/// forward passes or a BOS.
fn greedy(model: &Model, prompt: Option<&str>, steps: usize) -> Vec<u32> {
    let mut seq = match prompt {
        Some(p) => model.tokenizer().encode(p, true).unwrap(),
        None => vec![1],
    };
    while seq.len() < steps + 1 {
        let out = model.forward(&[&seq], Want { hidden: false, logits: true, next_token_nll: false }).unwrap();
        let logits = out[0].logits.as_ref().unwrap();
        let v = model.info().vocab_size;
        let last = &logits[(seq.len() - 1) * v..];
        let mut best = 0;
        for (i, &x) in last.iter().enumerate() {
            if x > last[best] {
                best = i;
            }
        }
        seq.push(best as u32);
        if best == 1 {
            break;
        }
    }
    seq
}

#[test]
fn stories260k_greedy_equals_llama2c_run_c() {
    let Some(fx) = optional_fixture("stories260k_greedy_equals_llama2c_run_c", &fixtures().join("stories260K")) else { return };
    let Some(shared) = shared_data("stories260k_greedy_equals_llama2c_run_c") else { return };
    let model = load(&resolve(shared.join("llama2c_stories260K/stories260K.bin").to_str().unwrap()).unwrap());
    let g = json(&fx.join("greedy.json"));
    let steps = g["steps"].as_u64().unwrap() as usize;
    let prompt = g["prompt"].as_str().unwrap();
    let want = ids_of(&g, "token_ids");
    let mut prompt_ids = vec![1];
    prompt_ids.extend(ids_of(&g, "prompt_token_ids"));
    assert_eq!(model.tokenizer().encode(prompt, true).unwrap(), prompt_ids, "run.c's encoding of the prompt");
    let got = greedy(&model, Some(prompt), steps);
    assert_eq!(got, want, "greedy continuation of {prompt:?}");
    assert_eq!(model.tokenizer().decode(&got).unwrap(), g["text"].as_str().unwrap());
    for run in g["extra_runs"].as_array().into_iter().flatten() {
        let want = ids_of(run, "token_ids");
        let got = greedy(&model, run["prompt"].as_str(), steps);
        assert_eq!(got, want, "greedy run {}", run["command"]);
        assert_eq!(model.tokenizer().decode(&got).unwrap(), run["text"].as_str().unwrap());
    }
}
