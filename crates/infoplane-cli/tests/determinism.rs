//! The same command gives the same bytes: every JSON and CSV result (and the Parquet tables and
//! partial statistics beside them) is byte-identical across two runs and between one and two
//! threads (RAYON_NUM_THREADS, which candle's CPU matmul and the estimator's chunk pool both read,
//! and CANDLE_NUM_THREADS). Wall times are left out on purpose: timing.json, the `timing` of
//! unit.json, and the .work/ checkpoints.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the binary with `threads` threads for rayon and candle.
fn run(cwd: &Path, args: &[&str], threads: usize) {
    let o = Command::new(env!("CARGO_BIN_EXE_infoplane"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env("CANDLE_NUM_THREADS", threads.to_string())
        .output()
        .expect("the binary runs");
    assert!(o.status.success(), "infoplane {} ({threads} threads): {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
}

/// Every file under `dir` (relative path), except timing.json and the .work/ checkpoints.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                // .work/ is the checkpoint of a run (progress.json holds wall times, like timing.json).
                if p.file_name().is_some_and(|n| n != ".work") {
                    walk(root, &p, out);
                }
            } else if p.file_name().is_some_and(|n| n != "timing.json") {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The three runs (1 thread, 2 threads, 2 threads again) wrote the same files with the same
/// bytes; `must` lists files that have to be among them.
fn identical(runs: &[PathBuf], must: &[&str]) {
    let names = files(&runs[0]);
    for m in must {
        assert!(names.iter().any(|n| n == Path::new(m)), "{} has no {m} (it has {names:?})", runs[0].display());
    }
    for other in &runs[1..] {
        assert_eq!(files(other), names, "{} and {} hold different files", runs[0].display(), other.display());
        for n in &names {
            let (mut a, mut b) = (std::fs::read(runs[0].join(n)).unwrap(), std::fs::read(other.join(n)).unwrap());
            if n.file_name().is_some_and(|f| f == "unit.json") {
                // A unit's record carries its wall times (summed by merge into timing.json).
                let strip = |v: &[u8]| {
                    let mut j: serde_json::Value = serde_json::from_slice(v).unwrap();
                    j.as_object_mut().unwrap().remove("timing").expect("unit.json has timing");
                    serde_json::to_vec(&j).unwrap()
                };
                (a, b) = (strip(&a), strip(&b));
            }
            if a != b {
                let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
                let context = |v: &[u8]| String::from_utf8_lossy(&v[first.saturating_sub(80)..(first + 80).min(v.len())]).into_owned();
                panic!("{} differs between {} and {} at byte {first}:\n{}\n---\n{}", n.display(), runs[0].display(), other.display(), context(&a), context(&b));
            }
        }
    }
    eprintln!("{} files byte-identical across {} runs", names.len(), runs.len());
}

/// Runs `args` (with OUT standing for the output) three times: 1 thread, 2 threads, 2 again.
fn three_runs(cwd: &Path, name: &str, args: &[&str]) -> Vec<PathBuf> {
    [(1, "t1"), (2, "t2"), (2, "t2_again")]
        .iter()
        .map(|(threads, tag)| {
            let out = cwd.join(format!("{name}_{tag}"));
            let args: Vec<String> = args.iter().map(|a| if *a == "OUT" { out.display().to_string() } else { a.to_string() }).collect();
            run(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>(), *threads);
            out
        })
        .collect()
}

fn c4() -> String {
    repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl").display().to_string()
}

fn stories() -> String {
    repo_root().join("data/stories260K/stories260K.bin").display().to_string()
}

fn tiny_hf() -> String {
    fixtures().join("models/llama_gqa").display().to_string()
}

#[test]
fn estimate_is_byte_identical_for_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Enough rows for many 256-row chunks and several update blocks.
    let (rows, dim) = (6000usize, 48usize);
    let z: Vec<f32> = (0..rows * dim).map(|k| (((k as u64).wrapping_mul(2_654_435_761) % 10_007) as f32 / 5003.5 - 1.0) + (k / dim % 13) as f32 * 0.05).collect();
    write_npy(&d.join("z.npy"), "<f4", &[rows, dim], &f32_bytes(&z));
    let labels: Vec<i64> = (0..rows).flat_map(|i| [(i % 37) as i64, (i * 7 % 11) as i64]).collect();
    write_npy(&d.join("l.npy"), "<i8", &[rows, 2], &i64_bytes(&labels));
    for (name, extra) in [("plain", vec![]), ("tuple_per_label", vec!["--tuple-labels", "--per-label", "--batch-rows", "1000"])] {
        let runs: Vec<PathBuf> = [(1, "t1"), (2, "t2"), (2, "t2_again")]
            .iter()
            .map(|(threads, tag)| {
                let out = d.join(format!("{name}_{tag}"));
                std::fs::create_dir_all(&out).unwrap();
                let (json, partial) = (out.join("OUT.json"), out.join("partial.safetensors"));
                let mut args = vec!["estimate", "--embeddings", "z.npy", "--labels", "l=l.npy", "--output", json.to_str().unwrap(), "--partial-output", partial.to_str().unwrap()];
                args.extend(extra.iter().copied());
                run(d, &args, *threads);
                out
            })
            .collect();
        identical(&runs, &["OUT.json", "partial.safetensors"]);
    }
}

#[test]
fn analyze_on_stories260k_is_byte_identical_for_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, m) = (c4(), stories());
    let runs = three_runs(tmp.path(), "stories", &["analyze", "--model", &m, "--corpus", &c, "--max-docs", "30", "--max-tokens", "96", "--quiet", "--output", "OUT"]);
    identical(&runs, &["summary.json", "layers.csv", "layers.parquet", "unit.json", "partials/corpus/final_norm.safetensors"]);
}

#[test]
fn analyze_on_a_tiny_hf_model_is_byte_identical_for_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (c, m) = (c4(), tiny_hf());
    let runs = three_runs(tmp.path(), "hf", &["analyze", "--model", &m, "--corpus", &c, "--max-docs", "24", "--max-tokens", "128", "--layer-groups", "2", "--quiet", "--output", "OUT"]);
    identical(&runs, &["summary.json", "layers.csv", "layers.parquet", "partials/corpus/final_norm.safetensors", "partials/corpus/1.safetensors"]);
}

#[test]
fn analyze_on_the_smollm2_gguf_is_byte_identical_for_any_thread_count() {
    let Some(shared) = shared_data("analyze_on_the_smollm2_gguf_is_byte_identical_for_any_thread_count") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let m = shared.join("smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf").display().to_string();
    let c = c4();
    let runs = three_runs(tmp.path(), "smollm2", &["analyze", "--model", &m, "--corpus", &c, "--max-docs", "6", "--max-tokens", "48", "--layers", "0,5,29,final_norm", "--quiet", "--output", "OUT"]);
    identical(&runs, &["summary.json", "layers.csv"]);
}

#[test]
fn a_sweep_over_two_models_and_its_correlations_are_byte_identical_for_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let manifest = format!(
        "[[model]]\nmodel = \"{}\"\nname = \"stories\"\nfamily = \"llama2c\"\nstep = 1\nparams = 260000\n\n[[model]]\nmodel = \"{}\"\nname = \"tiny\"\nfamily = \"hf\"\nstep = 2\nparams = 120000\n",
        stories(),
        tiny_hf()
    );
    std::fs::write(d.join("sweep.toml"), manifest).unwrap();
    let c = c4();
    let runs = three_runs(d, "sweep", &["sweep", "--manifest", "sweep.toml", "--corpus", &c, "--max-docs", "16", "--max-tokens", "64", "--quiet", "--output", "OUT"]);
    identical(&runs, &["models.csv", "models.parquet", "runs/stories-step1/summary.json", "runs/tiny-step2/layers.csv"]);

    // correlate: the committed fixture table against its scores.
    let fx = fixtures().join("correlate");
    let (r, s) = (fx.join("models.csv").display().to_string(), fx.join("scores.csv").display().to_string());
    let runs = three_runs(d, "correlate", &["correlate", "--results", &r, "--scores", &s, "--output", "OUT"]);
    identical(&runs, &["correlations.csv", "joined.csv"]);
}
