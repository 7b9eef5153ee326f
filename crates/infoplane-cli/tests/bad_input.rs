//! Every subcommand fed bad input through the real binary. Each refusal must: exit with code 2;
//! never panic; say what is wrong on ONE line that names the file, field, line, layer or position;
//! and leave the working directory exactly as it was (nothing created, changed or removed: an
//! earlier result in the output's place survives byte for byte, because every write is atomic).
//!
//! The bad files are made in temporary directories from real ones: the bundled stories260K
//! llama2.c model, the tiny Hugging Face fixtures, the runtime's stories260K GGUF and, when the
//! shared data is present, SmolLM2's 98 MB GGUF. Unwritable directories and a full disk use a
//! read-only or tiny tmpfs where this process may mount one (root with CAP_SYS_ADMIN); elsewhere
//! they fall back as each test says.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn succeeds(cwd: &Path, args: &[&str]) {
    let o = infoplane(args, cwd);
    assert!(o.status.success(), "infoplane {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

fn stories_bin() -> PathBuf {
    repo_root().join("data/stories260K/stories260K.bin")
}

fn tok512() -> PathBuf {
    repo_root().join("data/stories260K/tok512.bin")
}

fn c4() -> PathBuf {
    repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl")
}

fn stories_gguf() -> PathBuf {
    repo_root().join("crates/infoplane-runtime/tests/fixtures/stories260k_sp.gguf")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of the tiny HF fixture `variant` (config, weights, tokenizer) in `to`.
fn hf_copy(variant: &str, to: &Path) -> PathBuf {
    let from = fixtures().join("models").join(variant);
    std::fs::create_dir_all(to).unwrap();
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
        if from.join(name).is_file() {
            std::fs::copy(from.join(name), to.join(name)).unwrap();
        }
    }
    to.to_path_buf()
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut cfg = json(&dir.join("config.json"));
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// The JSON header of a safetensors file and where its data starts.
fn st_header(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + n]).unwrap().as_object().unwrap().clone(), 8 + n)
}

/// Rewrites a safetensors file's header with `edit` (data bytes unchanged).
fn edit_st_header(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let bytes = std::fs::read(path).unwrap();
    let (mut h, data) = st_header(&bytes);
    edit(&mut h);
    let mut text = serde_json::to_vec(&h).unwrap();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[data..]);
    std::fs::write(path, out).unwrap();
}

/// Sets every value of a float32 tensor in a safetensors file.
fn fill_st_tensor(path: &Path, name: &str, value: f32) {
    let mut bytes = std::fs::read(path).unwrap();
    let (h, data) = st_header(&bytes);
    let t = &h[name];
    assert_eq!(t["dtype"], "F32");
    let (a, b) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
    for c in bytes[data + a..data + b].chunks_exact_mut(4) {
        c.copy_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Byte positions inside a GGUF file, found by walking its header (v2/v3).
struct GgufLayout {
    /// (key, offset of the value's bytes)
    kv: Vec<(String, usize)>,
    /// (tensor name, offset of its first dimension, number of dimensions, offset of its type id)
    tensors: Vec<(String, usize, usize, usize)>,
}

fn gguf_layout(b: &[u8]) -> GgufLayout {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&b[..4], b"GGUF");
    let (n_tensors, n_kv) = (u64_at(8), u64_at(16));
    let mut at = 24;
    let string = |at: &mut usize| -> String {
        let n = u64_at(*at);
        let s = String::from_utf8_lossy(&b[*at + 8..*at + 8 + n]).into_owned();
        *at += 8 + n;
        s
    };
    fn skip_value(b: &[u8], t: u32, at: &mut usize) {
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) as usize;
        match t {
            0 | 1 | 7 => *at += 1,
            2 | 3 => *at += 2,
            4..=6 => *at += 4,
            10..=12 => *at += 8,
            8 => *at += 8 + u64_at(*at),
            9 => {
                let inner = u32::from_le_bytes(b[*at..*at + 4].try_into().unwrap());
                let n = u64_at(*at + 4);
                *at += 12;
                for _ in 0..n {
                    skip_value(b, inner, at);
                }
            }
            other => panic!("GGUF value type {other}"),
        }
    }
    let mut kv = Vec::new();
    for _ in 0..n_kv {
        let key = string(&mut at);
        let t = u32_at(at);
        at += 4;
        kv.push((key, at));
        skip_value(b, t, &mut at);
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name = string(&mut at);
        let dims = u32_at(at) as usize;
        let first_dim = at + 4;
        at = first_dim + 8 * dims;
        tensors.push((name, first_dim, dims, at));
        at += 4 + 8;
    }
    GgufLayout { kv, tensors }
}

fn npy_f32(path: &Path, rows: usize, cols: usize, f: impl Fn(usize, usize) -> f32) {
    let v: Vec<f32> = (0..rows * cols).map(|i| f(i / cols, i % cols)).collect();
    write_npy(path, "<f4", &[rows, cols], &f32_bytes(&v));
}

/// Deterministic, varied values (a tiny LCG) for synthetic embeddings.
fn noise(i: usize, j: usize) -> f32 {
    let x = (i as u64 * 7919 + j as u64 * 104_729 + 17).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn estimate_inputs(d: &Path) {
    npy_f32(&d.join("z.npy"), 100, 8, noise);
    let labels: Vec<i64> = (0..100).map(|i| (i % 7) as i64).collect();
    write_npy(&d.join("l.npy"), "<i8", &[100], &i64_bytes(&labels));
}

// ---------------------------------------------------------------------------------------------
// Mounts: a read-only or a tiny tmpfs, where this process may mount (root with CAP_SYS_ADMIN)
// ---------------------------------------------------------------------------------------------

struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(at)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }

    fn read_only(&self) {
        let ok = Command::new("mount").args(["-o", "remount,ro"]).arg(&self.0).status().is_ok_and(|s| s.success());
        assert!(ok, "remounting {} read-only", self.0.display());
    }

    /// Fills the file system: a filler file grows until the disk says no.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

// ---------------------------------------------------------------------------------------------
// estimate and merge-partials
// ---------------------------------------------------------------------------------------------

#[test]
fn estimate_refuses_bad_rows_w_and_labels_and_keeps_the_earlier_result() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    estimate_inputs(d);
    std::fs::write(d.join("out.json"), "{\"earlier\": true}\n").unwrap();
    let run = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["estimate", "--output", "out.json"];
        args.extend(extra);
        refuses(d, &args, needles);
    };
    npy_f32(&d.join("nan.npy"), 100, 8, |i, j| if (i, j) == (37, 3) { f32::NAN } else { noise(i, j) });
    run(&["--embeddings", "nan.npy", "--labels", "t=l.npy"], &["nan.npy", "row 37", "non-finite"]);
    npy_f32(&d.join("inf.npy"), 100, 8, |i, j| if i == 12 { f32::INFINITY } else { noise(i, j) });
    run(&["--embeddings", "inf.npy", "--labels", "t=l.npy"], &["inf.npy", "row 12", "non-finite"]);
    // float16 overflow: 70000 does not fit in f16 and is stored as +Inf.
    let f16: Vec<u8> = (0..100 * 8).flat_map(|k| half::f16::from_f32(if k / 8 == 64 { 70_000.0 } else { noise(k / 8, k % 8) }).to_le_bytes()).collect();
    write_npy(&d.join("f16.npy"), "<f2", &[100, 8], &f16);
    run(&["--embeddings", "f16.npy", "--labels", "t=l.npy"], &["f16.npy", "row 64", "non-finite"]);
    npy_f32(&d.join("zero.npy"), 100, 8, |i, j| if i == 55 { 0.0 } else { noise(i, j) });
    run(&["--embeddings", "zero.npy", "--labels", "t=l.npy"], &["zero.npy", "row 55", "zero"]);
    npy_f32(&d.join("w9.npy"), 10, 9, noise);
    run(&["--embeddings", "z.npy", "--labels", "t=l.npy", "--reference-points", "w9.npy"], &["w9.npy", "[n, 8]", "[10, 9]"]);
    npy_f32(&d.join("w_zero.npy"), 10, 8, |i, j| if i == 3 { 0.0 } else { noise(i, j) });
    run(&["--embeddings", "z.npy", "--labels", "t=l.npy", "--reference-points", "w_zero.npy"], &["w_zero.npy", "row 3"]);
    let short: Vec<i64> = (0..99).collect();
    write_npy(&d.join("l99.npy"), "<i8", &[99], &i64_bytes(&short));
    run(&["--embeddings", "z.npy", "--labels", "t=l99.npy"], &["l99.npy", "99 labels for 100 embedding rows"]);
    write_npy(&d.join("lf.npy"), "<f8", &[100], &vec![0u8; 800]);
    run(&["--embeddings", "z.npy", "--labels", "t=lf.npy"], &["lf.npy", "integer"]);
    let z = std::fs::read(d.join("z.npy")).unwrap();
    std::fs::write(d.join("cut.npy"), &z[..z.len() - 5]).unwrap();
    run(&["--embeddings", "cut.npy", "--labels", "t=l.npy"], &["cut.npy", "needs 3200 data bytes"]);
    std::fs::write(d.join("text.npy"), "not an array").unwrap();
    run(&["--embeddings", "text.npy", "--labels", "t=l.npy"], &["text.npy", "magic"]);
    run(&["--embeddings", "missing.npy", "--labels", "t=l.npy"], &["missing.npy", "No such file"]);
    run(&["--embeddings", "z.npy", "--labels", "l.npy"], &["NAME=PATH"]);
    // The earlier result is still there, byte for byte (refuses() compares every file).
    assert_eq!(std::fs::read_to_string(d.join("out.json")).unwrap(), "{\"earlier\": true}\n");
}

#[test]
fn merge_partials_refuses_partials_of_other_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    estimate_inputs(d);
    let labels: Vec<i64> = (0..100).map(|i| (i % 5) as i64).collect();
    write_npy(&d.join("l5.npy"), "<i8", &[100], &i64_bytes(&labels));
    let partial = |name: &str, extra: &[&str]| {
        let out = format!("{name}.json");
        let p = format!("{name}.safetensors");
        let mut args = vec!["estimate", "--embeddings", "z.npy", "--partial-output", &p, "--output", &out];
        args.extend(extra);
        succeeds(d, &args);
    };
    partial("base", &["--labels", "t=l.npy"]);
    partial("seed", &["--labels", "t=l.npy", "--seed", "3"]);
    partial("bins", &["--labels", "t=l.npy", "--n-bins", "50"]);
    partial("name", &["--labels", "u=l.npy"]);
    partial("uniform", &["--labels", "t=l.npy", "--weighting", "uniform"]);
    partial("nonull", &["--labels", "t=l.npy", "--no-null"]);
    partial("calib", &["--labels", "t=l.npy", "--calibration", "exact"]);
    std::fs::write(d.join("merged.json"), "earlier\n").unwrap();
    let merge = |other: &str, needles: &[&str]| {
        refuses(d, &["merge-partials", "base.safetensors", other, "--output", "merged.json", "--partial-output", "merged.safetensors"], needles);
    };
    merge("seed.safetensors", &["seed.safetensors", "reference points"]);
    merge("bins.safetensors", &["bins.safetensors", "reference points"]);
    merge("name.safetensors", &["name.safetensors", "label sets", "t vs u"]);
    merge("uniform.safetensors", &["uniform.safetensors", "label set \"t\" settings"]);
    merge("nonull.safetensors", &["nonull.safetensors", "label set \"t\" settings"]);
    merge("calib.safetensors", &["calib.safetensors", "epsilon"]);
    let bytes = std::fs::read(d.join("base.safetensors")).unwrap();
    std::fs::write(d.join("cut.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    merge("cut.safetensors", &["cut.safetensors", "not a valid infoplane partial"]);
    merge("z.npy", &["z.npy", "not a valid infoplane partial"]);
    merge("missing.safetensors", &["missing.safetensors", "No such file"]);
}

// ---------------------------------------------------------------------------------------------
// Model files: config.json, safetensors, GGUF, llama2.c (through `hidden` and `analyze`)
// ---------------------------------------------------------------------------------------------

/// Refusals of a bad model through both commands that load one.
fn model_refused(d: &Path, model: &Path, needles: &[&str]) {
    std::fs::write(d.join("doc.txt"), "Once upon a time there was a little cat who liked to play in the sun.").unwrap();
    refuses(d, &["hidden", "--model", s(model), "--text-file", "doc.txt", "--output", "hidden_out"], needles);
    refuses(d, &["analyze", "--model", s(model), "--corpus", s(&c4()), "--max-docs", "4", "--max-tokens", "32", "--quiet", "--output", "run"], needles);
}

#[test]
fn hf_config_and_safetensors_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let m = hf_copy("llama", &d.join("no_config"));
    std::fs::remove_file(m.join("config.json")).unwrap();
    model_refused(d, &m, &["no_config/config.json", "No such file"]);

    let m = hf_copy("llama", &d.join("invalid_json"));
    std::fs::write(m.join("config.json"), "{\"model_type\": \"llama\",\n \"hidden_size\": 64,").unwrap();
    model_refused(d, &m, &["invalid_json/config.json", "invalid JSON", "line 2"]);

    let m = hf_copy("llama", &d.join("missing_field"));
    edit_config(&m, |c| drop(c.remove("num_hidden_layers")));
    model_refused(d, &m, &["missing_field/config.json", "field `num_hidden_layers`", "missing"]);

    let m = hf_copy("llama", &d.join("wrong_type"));
    edit_config(&m, |c| drop(c.insert("hidden_size".into(), "64".into())));
    model_refused(d, &m, &["wrong_type/config.json", "field `hidden_size`", "\"64\""]);

    let m = hf_copy("llama", &d.join("heads"));
    edit_config(&m, |c| drop(c.insert("num_attention_heads".into(), 5.into())));
    model_refused(d, &m, &["heads/config.json", "field `num_key_value_heads`"]);

    let m = hf_copy("llama", &d.join("arch"));
    edit_config(&m, |c| drop(c.insert("model_type".into(), "mamba".into())));
    model_refused(d, &m, &["arch/config.json", "model_type \"mamba\" is not supported", "supported: llama"]);

    let m = hf_copy("llama", &d.join("truncated"));
    let bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    std::fs::write(m.join("model.safetensors"), &bytes[..bytes.len() - 1000]).unwrap();
    model_refused(d, &m, &["truncated/model.safetensors", "not a valid safetensors file"]);

    // The header says a tensor has more elements than its byte range holds.
    let m = hf_copy("llama", &d.join("lying_shape"));
    edit_st_header(&m.join("model.safetensors"), |h| h["model.norm.weight"]["shape"] = serde_json::json!([128]));
    model_refused(d, &m, &["lying_shape/model.safetensors", "not a valid safetensors file", "model.norm.weight"]);

    // The header's offsets reach past the end of the data.
    let m = hf_copy("llama", &d.join("lying_offsets"));
    edit_st_header(&m.join("model.safetensors"), |h| {
        let end = h["model.norm.weight"]["data_offsets"][1].as_u64().unwrap();
        h["model.norm.weight"]["data_offsets"][1] = (end + 4096).into();
        h["model.norm.weight"]["shape"] = serde_json::json!([64 + 1024]);
    });
    model_refused(d, &m, &["lying_offsets/model.safetensors", "not a valid safetensors file", "model.norm.weight"]);

    // The 8-byte header length points beyond the end of the file.
    let m = hf_copy("llama", &d.join("header_length"));
    let mut bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    let len = bytes.len() as u64 + 100;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    std::fs::write(m.join("model.safetensors"), bytes).unwrap();
    model_refused(d, &m, &["header_length/model.safetensors", "not a valid safetensors file", "header"]);

    // A consistent file whose tensor has the wrong shape for the config.
    let m = hf_copy("llama", &d.join("transposed"));
    edit_st_header(&m.join("model.safetensors"), |h| h["model.layers.0.mlp.down_proj.weight"]["shape"] = serde_json::json!([128, 64]));
    model_refused(d, &m, &["transposed/model.safetensors", "model.layers.0.mlp.down_proj.weight", "[128, 64]", "[64, 128]"]);

    let m = hf_copy("llama", &d.join("missing_tensor"));
    edit_st_header(&m.join("model.safetensors"), |h| {
        let t = h.remove("model.layers.2.self_attn.v_proj.weight").unwrap();
        h.insert("model.layers.2.self_attn.v_proj.weights".into(), t);
    });
    model_refused(d, &m, &["missing_tensor/model.safetensors", "model.layers.2.self_attn.v_proj.weight"]);

    // The tokenizer (ids up to 383) does not fit an embedding of 300 rows.
    let m = hf_copy("llama", &d.join("vocab"));
    edit_config(&m, |c| drop(c.insert("vocab_size".into(), 300.into())));
    model_refused(d, &m, &["vocab/tokenizer.json", "token id 383", "only 300 rows"]);

    let m = hf_copy("llama", &d.join("no_tokenizer"));
    std::fs::remove_file(m.join("tokenizer.json")).unwrap();
    model_refused(d, &m, &["no_tokenizer/tokenizer.json is missing"]);

    let m = hf_copy("llama", &d.join("bad_tokenizer"));
    std::fs::write(m.join("tokenizer.json"), "{\"model\": 3}").unwrap();
    model_refused(d, &m, &["bad_tokenizer/tokenizer.json"]);
}

#[test]
fn gguf_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let real = std::fs::read(stories_gguf()).unwrap();
    let layout = gguf_layout(&real);

    std::fs::write(d.join("header_cut.gguf"), &real[..3000]).unwrap();
    model_refused(d, &d.join("header_cut.gguf"), &["header_cut.gguf", "not a valid GGUF file"]);
    std::fs::write(d.join("data_cut.gguf"), &real[..real.len() - 1000]).unwrap();
    model_refused(d, &d.join("data_cut.gguf"), &["data_cut.gguf", "not a valid GGUF file", "tensor blk.4.ffn_down.weight", "only 21272 remaining"]);

    // A tensor's info claims 1000 times its rows: more data than the file has.
    let mut lying = real.clone();
    let (name, first_dim, dims, _) = layout.tensors.iter().find(|t| t.0 == "blk.1.ffn_up.weight").unwrap().clone();
    assert_eq!(dims, 2);
    let rows = u64::from_le_bytes(lying[first_dim + 8..first_dim + 16].try_into().unwrap());
    lying[first_dim + 8..first_dim + 16].copy_from_slice(&(rows * 1000).to_le_bytes());
    std::fs::write(d.join("lying.gguf"), lying).unwrap();
    model_refused(d, &d.join("lying.gguf"), &["lying.gguf", &format!("tensor {name}"), "bytes"]);

    // An unsupported quantisation: the type id of one tensor set to IQ2_XXS (16).
    let mut quant = real.clone();
    let (_, _, _, type_at) = layout.tensors.iter().find(|t| t.0 == "blk.0.attn_v.weight").unwrap().clone();
    quant[type_at..type_at + 4].copy_from_slice(&16u32.to_le_bytes());
    std::fs::write(d.join("iq2.gguf"), quant).unwrap();
    model_refused(d, &d.join("iq2.gguf"), &["iq2.gguf", "GGUF tensor type IQ2_XXS (type 16) is not supported", "supported: F32"]);

    // An unsupported architecture: "llama" → "mamba" in place.
    let mut arch = real.clone();
    let at = layout.kv.iter().find(|(k, _)| k == "general.architecture").unwrap().1;
    assert_eq!(&arch[at + 8..at + 13], b"llama");
    arch[at + 8..at + 13].copy_from_slice(b"mamba");
    std::fs::write(d.join("mamba.gguf"), arch).unwrap();
    model_refused(d, &d.join("mamba.gguf"), &["mamba.gguf", "GGUF architecture \"mamba\" is not supported"]);
}

#[test]
fn the_real_smollm2_gguf_cut_short_or_patched_is_named() {
    let Some(shared) = shared_data("the_real_smollm2_gguf_cut_short_or_patched_is_named") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let real = std::fs::read(shared.join("smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    // Cut inside the vocabulary array of the metadata.
    std::fs::write(d.join("first_100k.gguf"), &real[..100_000]).unwrap();
    model_refused(d, &d.join("first_100k.gguf"), &["first_100k.gguf", "not a valid GGUF file", "array of 49152 elements"]);
    // Cut inside the tensor data: the message names the first tensor that does not fit.
    std::fs::write(d.join("half.gguf"), &real[..real.len() / 2]).unwrap();
    model_refused(d, &d.join("half.gguf"), &["half.gguf", "not a valid GGUF file", "tensor blk.", "only"]);
    let layout = gguf_layout(&real);
    let mut quant = real.clone();
    let type_at = layout.tensors.iter().find(|t| t.0 == "blk.3.ffn_up.weight").unwrap().3;
    quant[type_at..type_at + 4].copy_from_slice(&20u32.to_le_bytes());
    std::fs::write(d.join("iq4.gguf"), quant).unwrap();
    model_refused(d, &d.join("iq4.gguf"), &["iq4.gguf", "GGUF tensor type IQ4_NL (type 20) is not supported"]);
}

#[test]
fn llama2c_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let real = std::fs::read(stories_bin()).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    std::fs::write(d.join("cut.bin"), &real[..real.len() - 4]).unwrap();
    model_refused(d, &d.join("cut.bin"), &["cut.bin", "not a valid llama2.c checkpoint file", "needs exactly"]);
    // The header claims another width: the size no longer matches.
    let mut wide = real.clone();
    wide[..4].copy_from_slice(&128i32.to_le_bytes());
    std::fs::write(d.join("wide.bin"), wide).unwrap();
    model_refused(d, &d.join("wide.bin"), &["wide.bin", "dim 128"]);
    let mut zero = real.clone();
    zero[8..12].copy_from_slice(&0i32.to_le_bytes());
    std::fs::write(d.join("zero.bin"), zero).unwrap();
    model_refused(d, &d.join("zero.bin"), &["zero.bin", "field `n_layers`", "implausible header value 0"]);
    std::fs::write(d.join("tiny.bin"), &real[..20]).unwrap();
    model_refused(d, &d.join("tiny.bin"), &["tiny.bin", "28-byte header"]);

    // A tokenizer with more tokens than the model's 512 embedding rows.
    let sub = d.join("big_vocab");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::copy(stories_bin(), sub.join("stories260K.bin")).unwrap();
    let mut tok = std::fs::read(tok512()).unwrap();
    tok.extend(0f32.to_le_bytes());
    tok.extend(3i32.to_le_bytes());
    tok.extend(b"xyz");
    std::fs::write(sub.join("tok512.bin"), tok).unwrap();
    model_refused(d, &sub.join("stories260K.bin"), &["big_vocab/tok512.bin", "token id 512", "only 512 rows"]);
    // No tokenizer beside the checkpoint.
    let lone = d.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(stories_bin(), lone.join("stories260K.bin")).unwrap();
    model_refused(d, &lone.join("stories260K.bin"), &["lone/stories260K.bin", "no tokenizer.bin or tok*.bin"]);
}

// ---------------------------------------------------------------------------------------------
// Corpora: empty, invalid JSON lines, not UTF-8, documents shorter than the n-gram window
// ---------------------------------------------------------------------------------------------

fn corpus_cases(d: &Path) -> Vec<(&'static str, Vec<&'static str>)> {
    std::fs::write(d.join("empty.jsonl"), "").unwrap();
    std::fs::write(d.join("blank.jsonl"), "{\"text\": \"\"}\n{\"text\": \"   \"}\n").unwrap();
    std::fs::write(d.join("bad_line.jsonl"), "{\"text\": \"Once upon a time there was a dog who liked to run in the park.\"}\n{\"text\": oops}\n").unwrap();
    std::fs::write(d.join("latin1.jsonl"), b"{\"text\": \"ok then, what a day it was for everyone\"}\n{\"text\": \"caf\xe9\"}\n").unwrap();
    std::fs::write(d.join("latin1.txt"), b"a first line of plain text, long enough for the window\ncaf\xe9 au lait\n").unwrap();
    std::fs::write(d.join("no_field.jsonl"), "{\"body\": \"Hello there\"}\n").unwrap();
    std::fs::write(d.join("short.jsonl"), "{\"text\": \"Hi\"}\n{\"text\": \"Yo\"}\n").unwrap();
    vec![
        ("empty.jsonl", vec!["empty.jsonl", "no documents"]),
        ("blank.jsonl", vec!["blank.jsonl", "no documents", "2 empty"]),
        ("bad_line.jsonl", vec!["bad_line.jsonl", "line 2", "invalid JSON"]),
        ("latin1.jsonl", vec!["latin1.jsonl", "line 2", "UTF-8"]),
        ("latin1.txt", vec!["latin1.txt", "line 2", "UTF-8"]),
        ("no_field.jsonl", vec!["no_field.jsonl", "line 1", "no field \"text\""]),
        ("missing.jsonl", vec!["missing.jsonl", "No such file"]),
    ]
}

#[test]
fn analyze_sweep_and_plan_refuse_bad_corpora() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(stories_bin(), d.join("s.bin")).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    std::fs::write(d.join("sweep.toml"), "[[model]]\nmodel = \"s.bin\"\nname = \"s\"\nstep = 1\n").unwrap();
    let mut cases = corpus_cases(d);
    // Documents all shorter than the n-gram window (2 × --orders tokens).
    cases.push(("short.jsonl", vec!["shorter than 8 tokens", "2 × --orders"]));
    for (corpus, needles) in &cases {
        refuses(d, &["analyze", "--model", "s.bin", "--corpus", corpus, "--quiet", "--output", "run"], needles);
        refuses(d, &["plan", "--model", "s.bin", "--shards", "2", "--corpus", corpus, "--quiet", "--output", "plan"], needles);
        let sweep = ["sweep", "--manifest", "sweep.toml", "--corpus", corpus, "--quiet", "--output", "sweep"];
        if *corpus == "short.jsonl" {
            // Known only once the unit's model has tokenised the corpus: "[1/1] s-step1" comes first.
            refuses_after_work(d, &sweep, needles);
        } else {
            refuses(d, &sweep, needles);
        }
    }
    // Preference pairs go through the same readers.
    std::fs::write(d.join("prefs.jsonl"), "{\"chosen\": \"\\n\\nHuman: hi\\n\\nAssistant: hello\", \"rejected\": \"\\n\\nHuman: hi\\n\\nAssistant: go\"}\n{\"chosen\": 3}\n").unwrap();
    refuses(d, &["analyze", "--model", "s.bin", "--corpus", s(&c4()), "--max-docs", "4", "--preferences", "prefs.jsonl", "--quiet", "--output", "run"], &["prefs.jsonl", "line 2"]);
}

#[test]
fn train_refuses_bad_corpora() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (corpus, needles) in corpus_cases(d) {
        refuses(d, &["train", "--corpus", corpus, "--layers", "1", "--width", "16", "--heads", "2", "--steps", "2", "--quiet", "--output", "trained"], &needles);
    }
    refuses(d, &["train", "--corpus", s(&c4()), "--layers", "1", "--width", "16", "--heads", "3", "--steps", "2", "--quiet", "--output", "trained"], &["heads", "width 16 is not divisible by 3 heads"]);
}

// ---------------------------------------------------------------------------------------------
// Hidden states: NaN/Inf (fp16 overflow) named by layer and position; W of the wrong width
// ---------------------------------------------------------------------------------------------

#[test]
fn non_finite_hidden_states_name_the_layer_and_position() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A norm weight of 1e38 overflows block 1's output to ±Inf (and then NaN), as fp16 weights
    // overflow in real checkpoints; NaN weights poison block 2.
    let inf = hf_copy("llama", &d.join("overflow"));
    fill_st_tensor(&inf.join("model.safetensors"), "model.layers.1.post_attention_layernorm.weight", 1e38);
    let nan = hf_copy("llama", &d.join("nan"));
    fill_st_tensor(&nan.join("model.safetensors"), "model.layers.2.input_layernorm.weight", f32::NAN);
    std::fs::write(d.join("doc.txt"), "Once upon a time there was a little cat.").unwrap();
    std::fs::write(d.join("corpus.jsonl"), "{\"text\": \"Once upon a time there was a little cat who liked the sun.\"}\n{\"text\": \"The dog ran to the park and played with a red ball all day.\"}\n").unwrap();
    for (model, layer) in [(&inf, "block 1 output"), (&nan, "block 2 output")] {
        refuses(d, &["hidden", "--model", s(model), "--text-file", "doc.txt", "--output", "h"], &["doc.txt", layer, "position 0", "non-finite hidden state"]);
        let line = refuses_after_work(d, &["analyze", "--model", s(model), "--corpus", "corpus.jsonl", "--quiet", "--output", "run"], &[layer, "position 0", "non-finite hidden state", "corpus.jsonl"]);
        assert!(line.contains("line 1") || line.contains("record 1"), "the document is named: {line}");
    }
    // All-zero embeddings: layer 0's hidden states are zero rows, which cannot be normalised.
    let zero = hf_copy("llama", &d.join("zero_embedding"));
    fill_st_tensor(&zero.join("model.safetensors"), "model.embed_tokens.weight", 0.0);
    refuses_after_work(d, &["analyze", "--model", s(&zero), "--corpus", "corpus.jsonl", "--quiet", "--output", "run"], &["corpus.jsonl, line 1", "layer 0", "token position 3", "zero vector"]);
}

#[test]
fn reference_points_of_the_wrong_width_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(stories_bin(), d.join("s.bin")).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    npy_f32(&d.join("w63.npy"), 20, 63, noise);
    let corpus = c4();
    for cmd in ["analyze", "plan"] {
        let mut args = vec![cmd, "--model", "s.bin", "--corpus", s(&corpus), "--max-docs", "4", "--reference-points", "w63.npy", "--quiet", "--output", "out"];
        if cmd == "plan" {
            args.extend(["--shards", "2"]);
        }
        refuses(d, &args, &["w63.npy", "[n, 64]", "[20, 63]"]);
    }
    npy_f32(&d.join("w_nan.npy"), 20, 64, |i, j| if i == 7 { f32::NAN } else { noise(i, j) });
    refuses(d, &["analyze", "--model", "s.bin", "--corpus", s(&corpus), "--max-docs", "4", "--reference-points", "w_nan.npy", "--quiet", "--output", "out"], &["w_nan.npy", "row 7"]);
}

// ---------------------------------------------------------------------------------------------
// Sweeps, plans, units
// ---------------------------------------------------------------------------------------------

#[test]
fn sweep_manifest_problems_are_named_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(stories_bin(), d.join("s.bin")).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    let corpus = c4();
    let sweep = |manifest: &str, needles: &[&str]| {
        refuses(d, &["sweep", "--manifest", manifest, "--corpus", s(&corpus), "--max-docs", "4", "--max-tokens", "32", "--quiet", "--output", "sweep"], needles);
    };
    std::fs::write(d.join("syntax.toml"), "[[model]]\nmodel = \"s.bin\"\nname = \n").unwrap();
    sweep("syntax.toml", &["syntax.toml", "line 3"]);
    std::fs::write(d.join("type.toml"), "[[model]]\nmodel = \"s.bin\"\nstep = \"x\"\n").unwrap();
    sweep("type.toml", &["type.toml", "field `step`"]);
    // The second model does not exist: refused before the first is analysed.
    std::fs::write(d.join("missing.toml"), "[[model]]\nmodel = \"s.bin\"\nstep = 1\n\n[[model]]\nmodel = \"nowhere/s.bin\"\nstep = 2\n").unwrap();
    sweep("missing.toml", &["nowhere/s.bin", "not found"]);
    sweep("absent.toml", &["absent.toml"]);
}

fn plan_flags(corpus: &Path, seed: &str) -> Vec<String> {
    ["--corpus", s(corpus), "--max-docs", "6", "--max-tokens", "32", "--seed", seed, "--quiet"].map(String::from).to_vec()
}

#[test]
fn plans_refuse_foreign_units_and_bad_plan_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(stories_bin(), d.join("s.bin")).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    let corpus = c4();
    for (plan, seed) in [("a", "0"), ("b", "1")] {
        let mut args: Vec<String> = ["plan", "--model", "s.bin", "--shards", "2", "--output", plan].map(String::from).to_vec();
        args.extend(plan_flags(&corpus, seed));
        succeeds(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
        for i in ["0", "1"] {
            succeeds(d, &["run", plan, "--index", i]);
        }
    }
    // Plan b's unit directories in plan a's place (and a's in b's): each set agrees with itself,
    // but not with the plan that would merge it.
    std::fs::rename(d.join("a/units"), d.join("units_a")).unwrap();
    std::fs::rename(d.join("b/units"), d.join("a/units")).unwrap();
    std::fs::rename(d.join("units_a"), d.join("b/units")).unwrap();
    refuses(d, &["merge", "a", "--output", "merged"], &["a/units/s.bin.shard0000-of-0002", "another plan"]);
    refuses(d, &["run", "a", "--index", "0"], &["a/units/s.bin.shard0000-of-0002", "another plan"]);
    // One unit swapped back: the units now disagree with each other too.
    std::fs::rename(d.join("a/units/s.bin.shard0001-of-0002"), d.join("x")).unwrap();
    std::fs::rename(d.join("b/units/s.bin.shard0001-of-0002"), d.join("a/units/s.bin.shard0001-of-0002")).unwrap();
    std::fs::rename(d.join("x"), d.join("b/units/s.bin.shard0001-of-0002")).unwrap();
    refuses(d, &["merge", "a", "--output", "merged"], &["another plan"]);

    // A plan file that is not one, a unit index outside the plan, an unfinished plan.
    std::fs::create_dir_all(d.join("fake")).unwrap();
    std::fs::write(d.join("fake/plan.json"), "{\"format\": 3}").unwrap();
    for cmd in ["run", "status", "merge"] {
        let mut args = vec![cmd, "fake"];
        if cmd == "merge" {
            args.extend(["--output", "merged"]);
        }
        refuses(d, &args, &["fake/plan.json", "not a valid plan"]);
    }
    refuses(d, &["status", "nowhere"], &["nowhere", "not a plan directory"]);
    refuses(d, &["run", "b", "--index", "7"], &["unit index 7 is out of range", "2 units"]);
    let mut args: Vec<String> = ["plan", "--model", "s.bin", "--shards", "3", "--output", "c"].map(String::from).to_vec();
    args.extend(plan_flags(&corpus, "0"));
    succeeds(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    refuses(d, &["merge", "c", "--output", "merged"], &["3 of 3 units are not done"]);
}

// ---------------------------------------------------------------------------------------------
// report and correlate
// ---------------------------------------------------------------------------------------------

/// A finished small analyze run (no partials) in `dir`.
fn small_run(cwd: &Path, dir: &str) {
    succeeds(cwd, &["analyze", "--model", s(&stories_bin()), "--tokenizer", s(&tok512()), "--corpus", s(&c4()), "--max-docs", "6", "--max-tokens", "32", "--no-partials", "--quiet", "--output", dir]);
}

#[test]
fn report_and_correlate_refuse_bad_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    small_run(d, "good");
    let copy = |name: &str| {
        let to = d.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(d.join("good")).unwrap().flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    };
    copy("nan_cell");
    let csv = std::fs::read_to_string(d.join("good/layers.csv")).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[3].split(',').map(String::from).collect();
    cells[2] = "abc".into();
    lines[3] = cells.join(",");
    std::fs::write(d.join("nan_cell/layers.csv"), lines.join("\n") + "\n").unwrap();
    let column = csv.lines().next().unwrap().split(',').nth(2).unwrap().to_string();
    refuses(d, &["report", "nan_cell"], &["nan_cell/layers.csv", "line 4", &column, "\"abc\""]);
    copy("bad_summary");
    std::fs::write(d.join("bad_summary/summary.json"), "{\"model\": ").unwrap();
    refuses(d, &["report", "bad_summary"], &["bad_summary/summary.json", "JSON"]);
    copy("no_summary");
    std::fs::remove_file(d.join("no_summary/summary.json")).unwrap();
    refuses(d, &["report", "no_summary"], &["no_summary", "summary.json"]);
    refuses(d, &["report", "nowhere"], &["nowhere"]);

    let fx = fixtures().join("correlate");
    std::fs::write(d.join("models.csv"), "model,complexity_1\nEleutherAI/pythia-160m,0.5\nEleutherAI/pythia-410m,x\n").unwrap();
    refuses(d, &["correlate", "--results", "models.csv", "--scores", s(&fx.join("scores.csv")), "--output", "corr"], &["models.csv", "line 3", "column `complexity_1`", "\"x\" is not a number"]);
    std::fs::write(d.join("models.csv"), [0xff, 0xfe, b'\n'].as_slice()).unwrap();
    refuses(d, &["correlate", "--results", "models.csv", "--scores", s(&fx.join("scores.csv")), "--output", "corr"], &["models.csv"]);
}

// ---------------------------------------------------------------------------------------------
// Unwritable output directories and a full disk
// ---------------------------------------------------------------------------------------------

/// Commands whose outputs go under `out` (which cannot be written), each with what names it.
fn writing_commands(d: &Path, out: &Path) -> Vec<(Vec<String>, Vec<String>)> {
    let o = |rel: &str| out.join(rel).display().to_string();
    let m = d.join("s.bin").display().to_string();
    let c = c4().display().to_string();
    let small = ["--corpus", &c, "--max-docs", "4", "--max-tokens", "32", "--quiet"].map(String::from);
    let cmd = |parts: &[&str], extra: &[String], named: String| -> (Vec<String>, Vec<String>) {
        let mut v: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        v.extend(extra.iter().cloned());
        (v, vec![named])
    };
    vec![
        cmd(&["estimate", "--embeddings", "z.npy", "--labels", "t=l.npy", "--output", &o("e.json")], &[], o("e.json")),
        cmd(&["estimate", "--embeddings", "z.npy", "--labels", "t=l.npy", "--output", "ok.json", "--partial-output", &o("p.safetensors")], &[], o("p.safetensors")),
        cmd(&["merge-partials", "base.safetensors", "base.safetensors", "--output", &o("m.json")], &[], o("m.json")),
        cmd(&["hidden", "--model", &m, "--text-file", "doc.txt", "--output", &o("hidden")], &[], o("hidden")),
        cmd(&["analyze", "--model", &m, "--output", &o("run")], &small, o("run")),
        cmd(&["sweep", "--manifest", "sweep.toml", "--output", &o("sweep")], &small, o("sweep")),
        cmd(&["plan", "--model", &m, "--shards", "2", "--output", &o("plan")], &small, o("plan")),
        cmd(&["merge", "done_plan", "--output", &o("merged")], &[], o("merged")),
        cmd(&["correlate", "--results", &fixtures().join("correlate/models.csv").display().to_string(), "--scores", &fixtures().join("correlate/scores.csv").display().to_string(), "--output", &o("corr")], &[], o("corr")),
        cmd(&["train", "--corpus", &c, "--layers", "1", "--width", "16", "--heads", "2", "--steps", "2", "--quiet", "--output", &o("trained")], &[], o("trained")),
        cmd(&["demo", "--synthetic", "--positions", "2000", "--output", &o("demo")], &[], o("demo")),
    ]
}

fn writing_inputs(d: &Path) {
    estimate_inputs(d);
    std::fs::copy(stories_bin(), d.join("s.bin")).unwrap();
    std::fs::copy(tok512(), d.join("tok512.bin")).unwrap();
    std::fs::write(d.join("doc.txt"), "Once upon a time there was a cat.").unwrap();
    std::fs::write(d.join("sweep.toml"), "[[model]]\nmodel = \"s.bin\"\nname = \"s\"\nstep = 1\n").unwrap();
    succeeds(d, &["estimate", "--embeddings", "z.npy", "--labels", "t=l.npy", "--partial-output", "base.safetensors", "--output", "base.json"]);
    let mut args: Vec<String> = ["plan", "--model", "s.bin", "--shards", "1", "--output", "done_plan"].map(String::from).to_vec();
    args.extend(plan_flags(&c4(), "0"));
    succeeds(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    succeeds(d, &["run", "done_plan", "--index", "0"]);
}

#[test]
fn an_unwritable_output_directory_is_refused_by_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    writing_inputs(d);
    // chmod 555 stops everyone but root. As root, a read-only tmpfs stops writes; where this
    // process may not mount (a container without CAP_SYS_ADMIN), a path under a regular file
    // (ENOTDIR) stands in for the unwritable directory.
    let ro = d.join("readonly");
    std::fs::create_dir_all(&ro).unwrap();
    let _mount;
    let (out, why) = if !is_root() {
        let mut p = std::fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o555);
        std::fs::set_permissions(&ro, p).unwrap();
        (ro.clone(), "chmod 555")
    } else if let Some(m) = Mount::tmpfs(&ro, "1m") {
        std::fs::write(ro.join("earlier.json"), "kept\n").unwrap();
        m.read_only();
        _mount = m;
        (ro.clone(), "a read-only tmpfs")
    } else {
        std::fs::write(d.join("regular_file"), "").unwrap();
        (d.join("regular_file"), "a path under a regular file (root, and mounting is not permitted here)")
    };
    eprintln!("unwritable output directory: {why}");
    for (args, named) in writing_commands(d, &out) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let needles: Vec<&str> = named.iter().map(String::as_str).collect();
        // Work that cannot be saved is refused before it starts, except where the command is
        // cheap (hidden: one forward pass; estimate writes its result at the end).
        let line = refuses_in(d, &args, &needles, Stderr::ErrorLast, d);
        eprintln!("refused: {line}");
    }
    if why.starts_with("chmod") {
        let mut p = std::fs::metadata(&ro).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
        std::fs::set_permissions(&ro, p).unwrap();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_earlier_results_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    writing_inputs(d);
    let disk = d.join("disk");
    let Some(mount) = (if is_root() { Mount::tmpfs(&disk, "2m") } else { None }) else {
        // Without a mount, RLIMIT_FSIZE makes writes past 1 KB fail (EFBIG) the way a full disk
        // fails them (SIGXFSZ ignored so the write returns the error).
        eprintln!("full disk: simulated with RLIMIT_FSIZE (this process may not mount a tmpfs)");
        std::fs::write(d.join("e.json"), "earlier\n").unwrap();
        let script = format!("ulimit -f 1; trap '' XFSZ; exec '{}' estimate --embeddings z.npy --labels t=l.npy --per-label --output e.json", env!("CARGO_BIN_EXE_infoplane"));
        let before = snapshot(d);
        let o = Command::new("sh").args(["-c", &script]).current_dir(d).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.lines().last().unwrap().contains("e.json"), "{err}");
        assert!(differences(&before, &snapshot(d)).is_empty(), "{err}");
        return;
    };
    // Earlier results on the disk: an estimate and a finished analyze run with its report.
    succeeds(d, &["estimate", "--embeddings", "z.npy", "--labels", "t=l.npy", "--output", "disk/e.json"]);
    small_run(d, "disk/run");
    succeeds(d, &["report", "disk/run"]);
    mount.fill();
    let full = |args: &[&str], needles: &[&str]| {
        let line = refuses_in(d, args, needles, Stderr::ErrorLast, &disk);
        eprintln!("refused: {line}");
        assert!(line.contains("No space left on device"), "{line}");
    };
    full(&["estimate", "--embeddings", "z.npy", "--labels", "t=l.npy", "--per-label", "--output", "disk/e.json"], &["disk/e.json"]);
    full(&["merge-partials", "base.safetensors", "base.safetensors", "--output", "disk/e.json"], &["disk/e.json"]);
    full(&["hidden", "--model", "s.bin", "--text-file", "doc.txt", "--output", "disk/run"], &["disk/run"]);
    full(&["report", "disk/run"], &["disk/run"]);
    full(&["analyze", "--model", "s.bin", "--corpus", s(&c4()), "--max-docs", "4", "--max-tokens", "32", "--quiet", "--output", "disk/run2"], &["disk/run2"]);
}
