//! `infoplane hidden`, the real binary in temporary directories: outputs equal transformers'
//! numbers, truncation, provenance, and every bad input exits 2 with one line and writes nothing.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn model_fixture(variant: &str) -> Option<PathBuf> {
    let dir = fixtures().join("models").join(variant);
    if dir.join("expected/texts.json").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: fixture {} has not been generated", dir.display());
        None
    }
}

fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let a = infoplane_store::read_npy(path).unwrap();
    match a.data {
        infoplane_store::NpyData::F32(v) => (a.shape, v),
        _ => panic!("{}: not float32", path.display()),
    }
}

fn max_rel(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1f64, |m, &v| m.max((v as f64).abs()));
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs()).fold(0.0, f64::max) / scale
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Runs `hidden` and expects failure: exit 2, exactly one stderr line containing `needle`, and
/// no output directory.
fn expect_refusal(tmp: &Path, model: &str, text_file: &Path, needle: &str) {
    let out = tmp.join("out");
    let o = infoplane(&["hidden", "--model", model, "--text-file", text_file.to_str().unwrap(), "--output", out.to_str().unwrap()], tmp);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "expected exit 2 for {model}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    assert!(!out.exists(), "output directory was created for a refused input");
}

#[test]
fn hidden_writes_transformers_states_for_a_fixture_model() {
    let Some(dir) = model_fixture("llama_gqa") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let texts = json(&dir.join("expected/texts.json"));
    let case = &texts["cases"][1];
    let text_file = tmp.path().join("doc.txt");
    std::fs::write(&text_file, case["text"].as_str().unwrap()).unwrap();
    let out = tmp.path().join("states");
    let o = infoplane(&["hidden", "--model", dir.to_str().unwrap(), "--text-file", "doc.txt", "--logits", "--output", "states"], tmp.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let timing = stderr.lines().find(|l| l.starts_with("forward: ")).expect("timing line");
    let want_ids: Vec<i64> = case["token_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(timing.contains(&format!("forward: {} tokens in ", want_ids.len())) && timing.ends_with("tok/s)"), "{timing}");
    let ids = infoplane_store::read_npy(&out.join("token_ids.npy")).unwrap();
    assert_eq!(ids.data, infoplane_store::NpyData::I64(want_ids.clone()));
    for (name, expected) in [("hidden_states", "case1_hidden_states"), ("final_norm", "case1_final_norm"), ("logits", "case1_logits")] {
        let (shape, got) = npy_f32(&out.join(format!("{name}.npy")));
        let (wshape, want) = npy_f32(&dir.join(format!("expected/{expected}.npy")));
        assert_eq!(shape, wshape, "{name} shape");
        let rel = max_rel(&got, &want);
        assert!(rel <= 1e-4, "{name}: relative difference {rel:e}");
    }
    let prov = json(&out.join("provenance.json"));
    assert_eq!(prov["model"]["format"], "hf_safetensors");
    assert_eq!(prov["model"]["weight_files"][0]["sha256"].as_str().unwrap(), infoplane_store::file_sha256(&dir.join("model.safetensors")).unwrap());
    assert_eq!(prov["model"]["tokenizer_file"]["sha256"].as_str().unwrap(), infoplane_store::file_sha256(&dir.join("tokenizer.json")).unwrap());
    assert_eq!(prov["tokens"]["used"], want_ids.len());
    assert_eq!(prov["model_info"]["n_layers"], 2);
}

#[test]
fn hidden_truncates_to_max_tokens_and_omits_logits_by_default() {
    let Some(dir) = model_fixture("gpt2") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let texts = json(&dir.join("expected/texts.json"));
    let case = &texts["cases"][3];
    std::fs::write(tmp.path().join("doc.txt"), case["text"].as_str().unwrap()).unwrap();
    let o = infoplane(&["hidden", "--model", dir.to_str().unwrap(), "--text-file", "doc.txt", "--max-tokens", "7", "--output", "o"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, got) = npy_f32(&tmp.path().join("o/hidden_states.npy"));
    assert_eq!(shape, vec![3, 7, 64]);
    // Causal: the first 7 positions of the full document are the 7-token run's states.
    let (wshape, want) = npy_f32(&dir.join("expected/case3_hidden_states.npy"));
    let (t_full, d) = (wshape[1], wshape[2]);
    for l in 0..3 {
        let rel = max_rel(&got[l * 7 * d..(l + 1) * 7 * d], &want[l * t_full * d..l * t_full * d + 7 * d]);
        assert!(rel <= 1e-4, "layer {l}: {rel:e}");
    }
    assert!(!tmp.path().join("o/logits.npy").exists());
    let prov = json(&tmp.path().join("o/provenance.json"));
    assert_eq!(prov["tokens"]["truncated"], true);
    assert_eq!(prov["tokens"]["in_text"], case["token_ids"].as_array().unwrap().len());
}

#[test]
fn hidden_runs_gguf_and_llama2c_from_shared_data() {
    let Some(shared) = shared_data("hidden_runs_gguf_and_llama2c_from_shared_data") else { return };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("doc.txt"), "Once upon a time, a tiny model read a story.").unwrap();
    let ckpt = shared.join("llama2c_stories260K/stories260K.bin");
    let o = infoplane(&["hidden", "--model", ckpt.to_str().unwrap(), "--text-file", "doc.txt", "--output", "s", "--dtype", "bf16"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = infoplane_store::read_npy(&tmp.path().join("s/token_ids.npy")).unwrap();
    match ids.data {
        infoplane_store::NpyData::I64(v) => assert_eq!(v[0], 1, "llama2.c BOS first"),
        _ => panic!("token ids not int64"),
    }
    let (shape, _) = npy_f32(&tmp.path().join("s/hidden_states.npy"));
    assert_eq!((shape[0], shape[2]), (6, 64));
    let prov = json(&tmp.path().join("s/provenance.json"));
    assert_eq!(prov["model"]["format"], "llama2c");
    assert_eq!(prov["model"]["dtype"], "bf16");
    assert!(prov["model"]["tokenizer_file"]["path"].as_str().unwrap().ends_with("tok512.bin"));

    let gguf = shared.join("smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf");
    let o = infoplane(&["hidden", "--model", gguf.to_str().unwrap(), "--text-file", "doc.txt", "--output", "g"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, _) = npy_f32(&tmp.path().join("g/hidden_states.npy"));
    assert_eq!((shape[0], shape[2]), (31, 576));
    let prov = json(&tmp.path().join("g/provenance.json"));
    assert_eq!(prov["model"]["weight_files"][0]["sha256"], "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53");
}

/// A minimal GGUF v3: `general.architecture = llama` and one 32-element tensor of `ggml_type`.
fn tiny_gguf(path: &Path, ggml_type: u32, data_bytes: usize) {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata
    let s = |b: &mut Vec<u8>, t: &str| {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    };
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes()); // string
    s(&mut b, "llama");
    s(&mut b, "token_embd.weight");
    b.extend(1u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(ggml_type.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    while b.len() % 32 != 0 {
        b.push(0);
    }
    b.extend(vec![0u8; data_bytes]);
    std::fs::write(path, b).unwrap();
}

#[test]
fn hidden_refuses_bad_inputs_with_one_line_and_no_output() {
    let Some(dir) = model_fixture("llama") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let text = t.join("doc.txt");
    std::fs::write(&text, "Hello, world!").unwrap();

    let m = t.join("no_config");
    copy_dir(&dir, &m);
    std::fs::remove_file(m.join("config.json")).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "config.json");

    let m = t.join("corrupt_config");
    copy_dir(&dir, &m);
    std::fs::write(m.join("config.json"), "{\"model_type\": \"llama\", ").unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "config.json: invalid JSON");

    let m = t.join("missing_field");
    copy_dir(&dir, &m);
    let mut cfg = json(&m.join("config.json"));
    cfg.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(m.join("config.json"), cfg.to_string()).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "field `hidden_size`: missing");

    let m = t.join("unsupported");
    copy_dir(&dir, &m);
    let mut cfg = json(&m.join("config.json"));
    cfg["model_type"] = "bert".into();
    std::fs::write(m.join("config.json"), cfg.to_string()).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "model_type \"bert\" is not supported (supported: llama, mistral, qwen2, olmo2, gpt_neox, gpt2)");

    let m = t.join("truncated_weights");
    copy_dir(&dir, &m);
    let bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    std::fs::write(m.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "model.safetensors: not a valid safetensors file");

    let m = t.join("big_tokenizer");
    copy_dir(&dir, &m);
    let mut cfg = json(&m.join("config.json"));
    cfg["vocab_size"] = 300.into();
    std::fs::write(m.join("config.json"), cfg.to_string()).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "tokenizer.json: the tokenizer has token id 383 but the model's embedding has only 300 rows");

    let m = t.join("no_tokenizer");
    copy_dir(&dir, &m);
    std::fs::remove_file(m.join("tokenizer.json")).unwrap();
    expect_refusal(t, m.to_str().unwrap(), &text, "tokenizer.json is missing");

    let g = t.join("iq.gguf");
    tiny_gguf(&g, 16, 64);
    expect_refusal(t, g.to_str().unwrap(), &text, "GGUF tensor type IQ2_XXS (type 16) is not supported (supported: F32, F16, BF16, Q4_0");

    // A real llama GGUF (the runtime's stories260K fixture) cut short inside its tensor data.
    let bytes = std::fs::read(repo_root().join("crates/infoplane-runtime/tests/fixtures/stories260k_sp.gguf")).unwrap();
    let g = t.join("truncated.gguf");
    std::fs::write(&g, &bytes[..bytes.len() - 1000]).unwrap();
    expect_refusal(t, g.to_str().unwrap(), &text, "truncated.gguf: not a valid GGUF file: tensor ");

    let g = t.join("cut_header.gguf");
    std::fs::write(&g, &bytes[..40]).unwrap();
    expect_refusal(t, g.to_str().unwrap(), &text, "cut_header.gguf: not a valid GGUF file");

    expect_refusal(t, "no-such-org/no-such-model", &text, "no-such-org/no-such-model");
    expect_refusal(t, dir.to_str().unwrap(), &t.join("missing.txt"), "missing.txt");

    let bad_text = t.join("latin1.txt");
    std::fs::write(&bad_text, b"caf\xe9").unwrap();
    expect_refusal(t, dir.to_str().unwrap(), &bad_text, "latin1.txt: not UTF-8");
}

#[test]
fn hidden_refuses_a_truncated_llama2c_checkpoint() {
    let Some(shared) = shared_data("hidden_refuses_a_truncated_llama2c_checkpoint") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("doc.txt"), "Once upon a time").unwrap();
    let bytes = std::fs::read(shared.join("llama2c_stories260K/stories260K.bin")).unwrap();
    std::fs::write(t.join("stories.bin"), &bytes[..bytes.len() - 4]).unwrap();
    std::fs::copy(shared.join("llama2c_stories260K/tok512.bin"), t.join("tok512.bin")).unwrap();
    expect_refusal(t, t.join("stories.bin").to_str().unwrap(), &t.join("doc.txt"), "stories.bin: not a valid llama2.c checkpoint file: 1056536 bytes");
}
