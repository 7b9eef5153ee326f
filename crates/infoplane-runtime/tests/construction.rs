//! Building and reading models other ways than from a finished checkpoint: from candle `Var`s
//! (training), config.json + model.safetensors written back and re-read, sharded safetensors,
//! the Hugging Face cache layout; and the non-finite and bf16 guards.

mod common;
use candle_core::{DType, Device, Tensor, Var};
use common::*;
use infoplane_runtime::hf::read_safetensors;
use infoplane_runtime::{resolve, BatchLayout, ComputeDType, Decoder, DecoderConfig, DecoderOptions, LoadOptions, Model, ModelSource, RuntimeError, Want};
use std::collections::HashMap;
use std::path::Path;

fn fixture(test: &str, variant: &str) -> Option<std::path::PathBuf> {
    optional_fixture(test, &fixtures().join("models").join(variant).join("expected")).map(|p| p.parent().unwrap().to_path_buf())
}

fn tensors(dir: &Path) -> HashMap<String, Tensor> {
    read_safetensors(&[dir.join("model.safetensors")]).unwrap().into_iter().map(|(k, (t, _))| (k, t)).collect()
}

fn ids_of_case(dir: &Path, i: usize) -> Vec<u32> {
    ids_of(&json(&dir.join("expected/texts.json"))["cases"][i], "token_ids")
}

#[test]
fn decoder_from_vars_matches_checkpoint_and_is_differentiable() {
    let Some(dir) = fixture("decoder_from_vars_matches_checkpoint_and_is_differentiable", "llama_gqa") else { return };
    let model = load(&resolve(dir.to_str().unwrap()).unwrap());
    let ids = ids_of_case(&dir, 2);
    let reference = model.forward(&[&ids], Want::default()).unwrap().remove(0);

    // The weights as trainable Vars in a VarMap, in HF naming, as a trainer holds them.
    let varmap = candle_nn::VarMap::new();
    {
        let mut data = varmap.data().lock().unwrap();
        for (name, t) in tensors(&dir) {
            data.insert(name, Var::from_tensor(&t).unwrap());
        }
    }
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let opts = DecoderOptions { fuse_projections: false, differentiable: true };
    let decoder = Decoder::new(model.config(), vb, opts).unwrap();
    let x = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let out = decoder.forward(&x, &BatchLayout::single(ids.len())).unwrap();
    for (l, h) in out.hidden.iter().enumerate() {
        let got = h.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_close(&format!("Var decoder hidden[{l}]"), &got, &reference.hidden[l], 1e-5);
    }
    // Gradients reach the Vars through every layer (composite ops, no fused kernels).
    let logits = decoder.logits(&out.final_norm).unwrap();
    let loss = logits.sqr().unwrap().mean_all().unwrap();
    let grads = loss.backward().unwrap();
    for name in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight", "model.layers.1.mlp.gate_proj.weight", "model.norm.weight"] {
        let var = varmap.data().lock().unwrap()[name].clone();
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0 && norm.is_finite(), "{name}: gradient norm {norm}");
    }
    // A finite-difference check of one weight's gradient.
    let name = "model.layers.1.self_attn.k_proj.weight";
    let var = varmap.data().lock().unwrap()[name].clone();
    let g = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let idx = g.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap().0;
    let base = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let eps = 1e-2f32;
    let eval = |delta: f32| -> f64 {
        let mut w = base.clone();
        w[idx] += delta;
        var.set(&Tensor::from_vec(w, var.shape(), &Device::Cpu).unwrap()).unwrap();
        let out = decoder.forward(&x, &BatchLayout::single(ids.len())).unwrap();
        decoder.logits(&out.final_norm).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap() as f64
    };
    let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps as f64);
    let analytic = g[idx] as f64;
    assert!((numeric - analytic).abs() <= 2e-2 * analytic.abs().max(1e-3), "d loss / d {name}[{idx}]: numeric {numeric}, analytic {analytic}");
}

#[test]
fn saved_config_and_safetensors_read_back_identically() {
    for variant in ["llama3_rope_scaling", "mistral", "qwen2", "olmo2", "gpt_neox_parallel", "gpt2"] {
        let Some(dir) = fixture("saved_config_and_safetensors_read_back_identically", variant) else { return };
        let model = load(&resolve(dir.to_str().unwrap()).unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&model.config().to_hf_json()).unwrap()).unwrap();
        candle_core::safetensors::save(&tensors(&dir), out.join("model.safetensors")).unwrap();
        std::fs::copy(dir.join("tokenizer.json"), out.join("tokenizer.json")).unwrap();
        std::fs::copy(dir.join("tokenizer_config.json"), out.join("tokenizer_config.json")).unwrap();
        let cfg = DecoderConfig::from_hf_json(&out.join("config.json"), &json(&out.join("config.json"))).unwrap();
        assert_eq!(serde_json::to_value(&cfg).unwrap(), serde_json::to_value(model.config()).unwrap(), "{variant}: config round trip");
        let back = load(&resolve(out.to_str().unwrap()).unwrap());
        let ids = ids_of_case(&dir, 3);
        let a = model.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: false }).unwrap();
        let b = back.forward(&[&ids], Want { hidden: true, logits: true, next_token_nll: false }).unwrap();
        assert_eq!(a, b, "{variant}: a checkpoint written back gives the same numbers");
    }
}

#[test]
fn sharded_safetensors_load_like_one_file() {
    let Some(dir) = fixture("sharded_safetensors_load_like_one_file", "llama") else { return };
    let model = load(&resolve(dir.to_str().unwrap()).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(dir.join(f), out.join(f)).unwrap();
    }
    let all = tensors(&dir);
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        let (shard, file) = if i % 2 == 0 { (&mut a, "model-00001-of-00002.safetensors") } else { (&mut b, "model-00002-of-00002.safetensors") };
        shard.insert((*n).clone(), all[*n].clone());
        weight_map.insert((*n).clone(), file.into());
    }
    candle_core::safetensors::save(&a, out.join("model-00001-of-00002.safetensors")).unwrap();
    candle_core::safetensors::save(&b, out.join("model-00002-of-00002.safetensors")).unwrap();
    std::fs::write(out.join("model.safetensors.index.json"), serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string()).unwrap();
    let sharded = load(&resolve(out.to_str().unwrap()).unwrap());
    assert_eq!(sharded.provenance().weight_files.len(), 2);
    let ids = ids_of_case(&dir, 0);
    assert_eq!(model.forward(&[&ids], Want::default()).unwrap(), sharded.forward(&[&ids], Want::default()).unwrap());

    // A shard named in the index but missing is an error naming it.
    std::fs::remove_file(out.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Model::load(&resolve(out.to_str().unwrap()).unwrap(), &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
}

/// The only test that touches environment variables (tests in this file run in parallel, but
/// no other reads these).
#[test]
fn hub_ids_resolve_offline_in_the_hf_cache_layout() {
    let Some(dir) = fixture("hub_ids_resolve_offline_in_the_hf_cache_layout", "gpt2") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let hub = tmp.path().join("hub");
    let repo = hub.join("models--tiny-org--tiny-gpt2");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let old = "fedcba9876543210fedcba9876543210fedcba98";
    for c in [commit, old] {
        let snap = repo.join("snapshots").join(c);
        std::fs::create_dir_all(&snap).unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            // The cache stores blobs and links snapshots to them; a link must be followed.
            let blob = repo.join("blobs").join(format!("{c}-{f}"));
            std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
            std::fs::copy(dir.join(f), &blob).unwrap();
            std::os::unix::fs::symlink(&blob, snap.join(f)).unwrap();
        }
    }
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
    std::fs::write(repo.join("refs/v1"), old).unwrap();

    let at = |spec: &str| infoplane_runtime::source::resolve_in_cache(&hub, spec.split('@').next().unwrap(), spec.split('@').nth(1).unwrap_or("main"));
    match at("tiny-org/tiny-gpt2").unwrap() {
        ModelSource::HfDir { dir, commit: Some(c), .. } => {
            assert_eq!(c, commit);
            assert!(dir.ends_with(format!("snapshots/{commit}")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(at("tiny-org/tiny-gpt2@v1").unwrap(), ModelSource::HfDir { commit: Some(c), .. } if c == old));
    assert!(matches!(at(&format!("tiny-org/tiny-gpt2@{old}")).unwrap(), ModelSource::HfDir { commit: Some(c), .. } if c == old));
    assert!(at("tiny-org/tiny-gpt2@v2").unwrap_err().contains("revision \"v2\""));
    assert!(at("tiny-org/other").unwrap_err().contains("models--tiny-org--other"));

    // The environment variables, in their order of precedence.
    let saved: Vec<(&str, Option<std::ffi::OsString>)> = ["HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"].iter().map(|k| (*k, std::env::var_os(k))).collect();
    std::env::remove_var("HF_HUB_CACHE");
    std::env::remove_var("HF_HOME");
    std::env::set_var("XDG_CACHE_HOME", tmp.path().join("xdg"));
    assert_eq!(infoplane_runtime::hf_hub_cache().unwrap(), tmp.path().join("xdg/huggingface/hub"));
    std::env::set_var("HF_HOME", tmp.path());
    assert_eq!(infoplane_runtime::hf_hub_cache().unwrap(), hub);
    let model = load(&resolve("tiny-org/tiny-gpt2").unwrap());
    assert_eq!(model.provenance().repo_id.as_deref(), Some("tiny-org/tiny-gpt2"));
    assert_eq!(model.provenance().commit.as_deref(), Some(commit));
    assert_eq!(model.info().model_type, "gpt2");
    std::env::set_var("HF_HUB_CACHE", tmp.path().join("elsewhere"));
    assert!(resolve("tiny-org/tiny-gpt2").unwrap_err().to_string().contains("elsewhere"));
    for (k, v) in saved {
        match v {
            Some(v) => std::env::set_var(k, v),
            None => std::env::remove_var(k),
        }
    }
}

#[test]
fn non_finite_hidden_states_are_errors_naming_layer_and_position() {
    let Some(dir) = fixture("non_finite_hidden_states_are_errors_naming_layer_and_position", "llama") else { return };
    let model = load(&resolve(dir.to_str().unwrap()).unwrap());
    let mut w = tensors(&dir);
    // Block 1's MLP output overflows: its down projection is scaled past f32's range.
    let name = "model.layers.1.mlp.down_proj.weight";
    w.insert(name.into(), (w[name].clone() * 1e38).unwrap());
    let vb = candle_nn::VarBuilder::from_tensors(w, DType::F32, &Device::Cpu);
    let decoder = Decoder::new(model.config(), vb, DecoderOptions::default()).unwrap();
    let broken = Model::from_parts(decoder, model.tokenizer().clone(), model.provenance().clone(), Default::default());
    let ids = ids_of_case(&dir, 0);
    let err = broken.forward(&[&ids, &ids], Want::default()).unwrap_err();
    match &err {
        RuntimeError::NonFinite { doc: 0, layer, position, .. } => {
            assert_eq!(layer, "block 1 output");
            assert!(*position < ids.len());
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
    assert!(err.to_string().contains("block 1 output, position"), "{err}");
}

#[test]
fn bf16_compute_stays_close_to_f32_and_bad_tokens_are_refused() {
    let Some(dir) = fixture("bf16_compute_stays_close_to_f32_and_bad_tokens_are_refused", "llama") else { return };
    let src = resolve(dir.to_str().unwrap()).unwrap();
    let f32m = load(&src);
    let bf16 = Model::load(&src, &LoadOptions { dtype: ComputeDType::Bf16, ..Default::default() }).unwrap();
    assert_eq!(bf16.provenance().dtype, "bf16");
    let ids = ids_of_case(&dir, 1);
    let a = f32m.forward(&[&ids], Want::default()).unwrap().remove(0);
    let b = bf16.forward(&[&ids], Want::default()).unwrap().remove(0);
    let rel = assert_close("bf16 final norm vs f32", &b.final_norm, &a.final_norm, 5e-2);
    assert!(rel > 0.0, "bf16 gave bit-identical results: it did not compute in bf16");
    let err = f32m.forward(&[&ids, &[5, 384]], Want::default()).unwrap_err().to_string();
    assert_eq!(err, "document 1: token id 384 at position 1 is outside the vocabulary (384 rows)");
    let empty = f32m.forward(&[&[]], Want { hidden: true, logits: true, next_token_nll: true }).unwrap();
    assert_eq!(empty[0].tokens, 0);
}
