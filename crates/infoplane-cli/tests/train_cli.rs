//! `infoplane train` end to end on the bundled C4 sample (data/c4_sample): outputs, identical
//! weights for any thread count, refusals with exit code 2 and one line.

mod common;

use common::{infoplane, repo_root};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl")
}

/// The flags of a tiny run; a flag in `extra` replaces the default value of the same flag.
fn train_args<'a>(corpus: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train", "--corpus", corpus, "--max-docs", "120", "--holdout-docs", "20", "--layers", "1", "--width", "32", "--heads", "2", "--vocab-size", "300", "--steps",
        "12", "--batch", "4", "--context", "32", "--checkpoints", "3", "--quiet", "--output", out,
    ];
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        let value = extra.get(i + 1).filter(|v| !v.starts_with("--")).copied();
        match (a.iter().position(|&x| x == flag), value) {
            (Some(j), Some(v)) => a[j + 1] = v,
            (None, Some(v)) => a.extend([flag, v]),
            (_, None) => a.push(flag),
        }
        i += if value.is_some() { 2 } else { 1 };
    }
    a
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn weights(dir: &Path, step: u64) -> Vec<u8> {
    std::fs::read(dir.join(format!("checkpoint-{step}/model.safetensors"))).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn train_writes_checkpoints_manifest_log_and_heldout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let c = corpus();
    let o = infoplane(&train_args(c.to_str().unwrap(), out.to_str().unwrap(), &["--name", "tiny"]), tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("trained tiny") && stdout.contains("steps/s"), "{stdout}");
    let manifest = infoplane_compare::Manifest::read(&out.join("manifest.toml")).unwrap();
    let steps: Vec<Option<u64>> = manifest.models.iter().map(|m| m.step).collect();
    assert_eq!(steps, vec![Some(1), Some(3), Some(12)]);
    for m in &manifest.models {
        assert_eq!(m.family, "tiny");
        assert_eq!(m.tokens, Some(m.step.unwrap() * 4 * 32));
        assert!(out.join(&m.model).join("model.safetensors").is_file());
    }
    let heldout = std::fs::read_to_string(out.join("heldout.jsonl")).unwrap();
    assert_eq!(heldout.lines().count(), 20);
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["train_documents"], 100);
    assert_eq!(run["heldout_documents"], 20);
    assert_eq!(run["params"], manifest.models[0].params.unwrap());
    // Held-out documents are the last 20 of the 120 kept, never trained on.
    let first: serde_json::Value = serde_json::from_str(heldout.lines().next().unwrap()).unwrap();
    assert_eq!(first["index"], run["heldout_indices"][0]);
    let log = std::fs::read_to_string(out.join("train_log.csv")).unwrap();
    assert_eq!(log.lines().count(), 13);
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint-12/trainer_state.json")).unwrap()).unwrap();
    assert!(state["eval_loss"].as_f64().unwrap() > 0.0, "held-out windows were scored");
}

#[test]
fn weights_are_identical_for_any_thread_count_and_differ_by_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let dir = |name: &str| tmp.path().join(name);
    let run = |name: &str, extra: &[&str]| {
        let out = dir(name);
        let o = infoplane(&train_args(c.to_str().unwrap(), out.to_str().unwrap(), extra), tmp.path());
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    };
    run("t1", &["--threads", "1"]);
    run("t2", &["--threads", "2"]);
    run("s1", &["--threads", "1", "--seed", "1"]);
    for step in [1, 3, 12] {
        assert_eq!(weights(&dir("t1"), step), weights(&dir("t2"), step), "step {step}: 1 and 2 threads differ");
        assert_ne!(weights(&dir("t1"), step), weights(&dir("s1"), step), "step {step}: seeds 0 and 1 agree");
    }
    assert_eq!(std::fs::read(dir("t1").join("tokenizer.json")).unwrap(), std::fs::read(dir("t2").join("tokenizer.json")).unwrap());
}

#[test]
fn a_tokenizer_can_be_shared_between_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let a = tmp.path().join("a");
    assert!(infoplane(&train_args(c.to_str().unwrap(), a.to_str().unwrap(), &[]), tmp.path()).status.success());
    let tok = a.join("tokenizer.json");
    let b = tmp.path().join("b");
    let o = infoplane(&train_args(c.to_str().unwrap(), b.to_str().unwrap(), &["--tokenizer", tok.to_str().unwrap(), "--width", "64"]), tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&tok).unwrap(), std::fs::read(b.join("checkpoint-12/tokenizer.json")).unwrap());
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let c = corpus();
    let c = c.to_str().unwrap();
    let out = tmp.path().join("o");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (train_args("missing.jsonl", out, &[]), "missing.jsonl"),
        (train_args(c, out, &["--heads", "3"]), "heads"),
        (train_args(c, out, &["--kv-heads", "3"]), "kv-heads"),
        (train_args(c, out, &["--vocab-size", "100"]), "vocab-size"),
        (train_args(c, out, &["--holdout-docs", "120"]), "holdout-docs"),
        (train_args(c, out, &["--warmup", "50"]), "warmup"),
        (train_args(c, out, &["--lr=-1"]), "lr"),
        (train_args(c, out, &["--threads", "0"]), "threads"),
        (train_args(c, out, &["--tokenizer", "nope.json"]), "nope.json"),
    ];
    for (args, needle) in cases {
        let o = infoplane(&args, tmp.path());
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{args:?}: not one line: {e}");
        assert!(e.starts_with("error: ") && e.contains(needle), "{args:?}: {e}");
    }
    // A second run into the same directory is refused and leaves the first intact.
    assert!(infoplane(&train_args(c, out, &[]), tmp.path()).status.success());
    let before = weights(Path::new(out), 12);
    let o = infoplane(&train_args(c, out, &["--seed", "5"]), tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert_eq!(weights(Path::new(out), 12), before);
}
