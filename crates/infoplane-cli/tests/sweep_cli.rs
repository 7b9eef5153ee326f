//! `infoplane sweep` through the real binary: every manifest entry analysed with one W, one row
//! per model in models.csv/.parquet, finished units skipped on a rerun, changed settings refused.

mod common;

use common::{fixtures, infoplane, json};

#[test]
fn a_sweep_analyses_every_entry_once_and_tables_them() {
    let dir = tempfile::tempdir().unwrap();
    let models = fixtures().join("models");
    let manifest = dir.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[model]]\nmodel = \"{}\"\nname = \"llama\"\nfamily = \"tiny\"\nstep = 10\nparams = 1000\n\n[[model]]\nmodel = \"{}\"\nname = \"llama\"\nfamily = \"tiny\"\nstep = 20\n\n[[model]]\nmodel = \"{}\"\nname = \"qwen2\"\n",
            models.join("llama").display(),
            models.join("llama_gqa").display(),
            models.join("qwen2").display()
        ),
    )
    .unwrap();
    let corpus = common::repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl");
    let args = |out: &str, orders: &str| -> Vec<String> {
        ["sweep", "--manifest", manifest.to_str().unwrap(), "--corpus", corpus.to_str().unwrap(), "--max-docs", "30", "--max-tokens", "48", "--orders", orders, "--quiet", "--output", out]
            .map(String::from)
            .to_vec()
    };
    let run = |a: Vec<String>| infoplane(&a.iter().map(String::as_str).collect::<Vec<_>>(), dir.path());
    let o = run(args("sw", "3"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(dir.path().join("sw/models.csv")).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].starts_with("id,model,name,family,step,tokens,params,entropy,complexity_1"));
    assert!(rows[1].starts_with("llama-step10,") && rows[2].starts_with("llama-step20,") && rows[3].starts_with("qwen2,"), "{table}");
    assert!(dir.path().join("sw/models.parquet").exists());
    // One W for all: the same seed and width give the same reference points in every unit.
    let sha = |id: &str| json(&dir.path().join("sw/runs").join(id).join("summary.json"))["estimator"]["reference_points_sha256"].clone();
    assert_eq!(sha("llama-step10"), sha("qwen2"));
    let before = std::fs::read(dir.path().join("sw/runs/qwen2/layers.csv")).unwrap();
    // A rerun finds every unit done and redoes nothing; other settings are refused, not mixed in.
    let o = run(args("sw", "3"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("done earlier, skipped").count(), 3, "{err}");
    assert_eq!(std::fs::read(dir.path().join("sw/runs/qwen2/layers.csv")).unwrap(), before);
    let o = run(args("sw", "2"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other settings"));
}
