//! `infoplane analyze` on real models through the real binary: parity with the reference library
//! on transformers' hidden states (SmolLM2 GGUF), the run directory's files, resumption after a
//! kill, and bad input.

mod common;

use common::{fixtures, infoplane, json, shared_data};
use std::path::{Path, PathBuf};

fn smollm2(test: &str) -> Option<PathBuf> {
    shared_data(test).map(|d| d.join("smollm2_135m_instruct_gguf/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

fn stories(test: &str) -> Option<PathBuf> {
    shared_data(test).map(|d| d.join("llama2c_stories260K/stories260K.bin"))
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(String::from)).collect()).collect()
}

#[test]
fn smollm2_layers_match_the_reference_library_on_transformers_states() {
    let Some(model) = smollm2("smollm2_layers_match_the_reference_library_on_transformers_states") else { return };
    let fx = fixtures().join("analyze_smollm2");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = infoplane(
        &[
            "analyze", "--model", model.to_str().unwrap(), "--corpus", fx.join("corpus.jsonl").to_str().unwrap(),
            "--max-docs", "20", "--max-tokens", "128", "--orders", "4", "--backoff", "none", "--weighting", "frequency",
            "--aggregate", "mean-of-ratios", "--reference-points", fx.join("W.npy").to_str().unwrap(), "--dtype", "f32",
            "--quiet", "--output", out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = json(&fx.join("expected.json"));
    let rows = csv_rows(&out.join("layers.csv"));
    let summary = json(&out.join("summary.json"));
    assert_eq!(summary["counts"]["positions"], expected["settings"]["positions"]);
    let want_eps = expected["settings"]["epsilon"].as_f64().unwrap();
    assert!((summary["estimator"]["epsilon"].as_f64().unwrap() - want_eps).abs() <= 1e-9 * want_eps);
    let mut worst = (0.0f64, String::new());
    for layer in expected["layers"].as_array().unwrap() {
        let name = layer["layer"].as_str().unwrap();
        let row = rows.iter().find(|r| r["layer"] == name).unwrap_or_else(|| panic!("no row for layer {name}"));
        let mut columns = vec!["entropy".to_string()];
        columns.extend((1..=4).flat_map(|k| [format!("complexity_{k}"), format!("expressivity_{k}")]));
        for c in columns {
            let want = layer[&c].as_f64().unwrap();
            let got: f64 = row[&c].parse().unwrap();
            let gap = (got - want).abs();
            if gap > worst.0 {
                worst = (gap, format!("layer {name} {c}: {got} vs {want}"));
            }
        }
    }
    eprintln!("largest gap to the reference: {:.2e} ({})", worst.0, worst.1);
    assert!(worst.0 <= 1e-4, "{}", worst.1);
}

#[test]
fn a_killed_run_resumes_to_the_same_numbers() {
    // A model slow enough (~0.1 s a document) that the kill lands part-way.
    let Some(model) = smollm2("a_killed_run_resumes_to_the_same_numbers") else { return };
    let corpus = common::repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        ["analyze", "--model", model.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--max-docs", "30", "--max-tokens", "64", "--layers", "0-3,final_norm", "--quiet", "--output", out.to_str().unwrap()]
            .map(String::from)
            .to_vec()
    };
    let whole = dir.path().join("whole");
    let o = infoplane(&args(&whole).iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Kill a second run part-way (SIGKILL: no chance to clean up), then resume it.
    let killed = dir.path().join("killed");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_infoplane"))
        .args(args(&killed))
        .env("INFOPLANE_CHECKPOINT_EVERY_SEQUENCES", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = killed.join(".work/corpus/progress.json");
    let started = std::time::Instant::now();
    while !progress.exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("summary.json").exists(), "the run was killed before it finished");
    let o = infoplane(&args(&killed).iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(!o.status.success(), "a non-empty output directory needs --resume");
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let mut resume = args(&killed);
    resume.push("--resume".into());
    let o = infoplane(&resume.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(whole.join("layers.csv")).unwrap(), std::fs::read(killed.join("layers.csv")).unwrap());
    assert_eq!(json(&whole.join("summary.json"))["model_level"], json(&killed.join("summary.json"))["model_level"]);
}

#[test]
fn a_run_directory_holds_every_output_with_provenance() {
    let Some(model) = stories("a_run_directory_holds_every_output_with_provenance") else { return };
    let Some(shared) = shared_data("a_run_directory_holds_every_output_with_provenance") else { return };
    let corpus = common::repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = infoplane(
        &[
            "analyze", "--model", model.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--max-docs", "40", "--max-tokens", "96",
            "--preferences", shared.join("hh_rlhf_test/helpful-base_test.jsonl.gz").to_str().unwrap(), "--max-pref-pairs", "20",
            "--quiet", "--output", out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = csv_rows(&out.join("layers.csv"));
    let layers: Vec<&str> = rows.iter().map(|r| r["layer"].as_str()).collect();
    assert_eq!(layers, ["0", "1", "2", "3", "4", "5", "final_norm"]);
    for column in ["entropy", "complexity_4", "expressivity_backoff_3", "complexity_null_2", "optimality_1", "proportion_residual", "preference", "preference_null"] {
        for r in &rows {
            let v: f64 = r[column].parse().unwrap_or_else(|_| panic!("layer {} {column} = {:?}", r["layer"], r[column]));
            assert!(v.is_finite());
        }
    }
    for r in &rows {
        let sum: f64 = ["proportion_1", "proportion_2", "proportion_3", "proportion_4", "proportion_residual"].iter().map(|c| r[*c].parse::<f64>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "proportions of layer {} sum to {sum}", r["layer"]);
    }
    assert!(out.join("layers.parquet").exists());
    let s = json(&out.join("summary.json"));
    let loss = s["model_level"]["next_token_loss"].as_f64().unwrap();
    assert!(loss > 0.0 && loss.is_finite());
    assert_eq!(s["provenance"]["corpus"]["selected"], 40);
    assert_eq!(s["settings"]["backoff"], "katz");
    assert!(s["provenance"]["model"]["load"]["weight_files"].to_string().contains("sha256"), "{}", s["provenance"]["model"]);
    assert!(s["estimator"]["reference_points_sha256"].as_str().unwrap().len() == 64);
    assert!(s["counts"]["preference_positions"].as_u64().unwrap() > 0);
    assert!(out.join("partials/corpus/final_norm.safetensors").exists());
}

#[test]
fn bad_input_exits_2_with_one_line_and_no_results() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(&corpus, "{\"text\": \"hello\"}\nnot json\n").unwrap();
    let Some(model) = stories("bad_input_exits_2_with_one_line_and_no_results") else { return };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--corpus".into(), corpus.display().to_string()], "line 2"),
        (vec!["--corpus".into(), dir.path().join("missing.jsonl").display().to_string()], "missing.jsonl"),
        (vec!["--corpus".into(), corpus.display().to_string(), "--skip-bad-lines".into(), "--layers".into(), "0,99".into()], "layer 99"),
    ];
    for (i, (extra, needle)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("out{i}"));
        let mut args: Vec<String> = vec!["analyze".into(), "--model".into(), model.display().to_string(), "--quiet".into(), "--output".into(), out.display().to_string()];
        args.extend(extra);
        let o = infoplane(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "case {i}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!out.join("summary.json").exists());
    }
}

#[test]
fn a_run_that_cannot_fit_stops_at_once_with_its_estimate() {
    let Some(model) = stories("a_run_that_cannot_fit_stops_at_once_with_its_estimate") else { return };
    let corpus = common::repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let run = |max: &str, out: &str| {
        infoplane(&["analyze", "--model", model.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--max-docs", "200", "--max-tokens", "128", "--max-memory", max, "--output", out], dir.path())
    };
    let started = std::time::Instant::now();
    let o = run("20M", "small");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(last.contains("estimated peak memory") && last.contains("--max-memory 0.02 GiB"), "{err}");
    assert!(!dir.path().join("small/summary.json").exists());
    assert!(!dir.path().join("small/.work/corpus/progress.json").exists(), "no forward pass ran");
    eprintln!("refused in {:.2} s", started.elapsed().as_secs_f64());
    // The estimate is printed before the run, and a budget that fits lets it through.
    let o = run("4G", "fits");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // Memory, then time (calibrated on one document), both before the forward pass's report.
    let line = |needle: &str| err.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {err}"));
    let (memory, time, forward) = (line("estimated peak memory"), line("estimated time "), line("analysis adds"));
    assert!(memory < time && time < forward, "{err}");
    let time_line = err.lines().nth(time).unwrap();
    assert!(time_line.contains("tok/s with the loss") && time_line.contains("-token document"), "{time_line}");
}
