//! Scale-out through the real binary: a plan's units run as separate OS processes (in parallel,
//! with the index variables Slurm, Kubernetes and HyperQueue set), merged, equal one `analyze`;
//! a unit killed with SIGKILL and run again completes the plan with the same result.

mod common;

use common::{infoplane, json, shared_data};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn model(test: &str) -> Option<PathBuf> {
    shared_data(test).map(|d| d.join("llama2c_stories260K/stories260K.bin"))
}

fn corpus() -> PathBuf {
    common::repo_root().join("data/c4_sample/c4_en_train00000_first1000.jsonl")
}

fn analysis_flags() -> Vec<String> {
    ["--corpus", corpus().to_str().unwrap(), "--max-docs", "120", "--max-tokens", "96", "--quiet"].map(String::from).to_vec()
}

fn run_ok(args: &[String], cwd: &Path) -> String {
    let o = infoplane(&args.iter().map(String::as_str).collect::<Vec<_>>(), cwd);
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.split(',').map(String::from).collect()).collect()
}

/// Within 1e-12 relative. Proportions are differences of two informations divided by H
/// ((I_k − I_{k−1})/H): near zero they carry their operands' rounding, so their scale is that of
/// the operands (efficiency values, of order 1), not their own.
fn close(name: &str, p: f64, q: f64) -> bool {
    let scale = if name.starts_with("proportion") { p.abs().max(q.abs()).max(1.0) } else { p.abs().max(q.abs()) };
    (p - q).abs() <= 1e-12 * scale
}

/// Every number of two `layers.csv` files within 1e-12 relative; text cells equal.
fn assert_tables_close(a: &Path, b: &Path) {
    let (x, y) = (csv(a), csv(b));
    assert_eq!(x.len(), y.len());
    assert_eq!(x[0], y[0]);
    for (rx, ry) in x.iter().zip(&y).skip(1) {
        for ((cx, cy), name) in rx.iter().zip(ry).zip(&x[0]) {
            match (cx.parse::<f64>(), cy.parse::<f64>()) {
                (Ok(p), Ok(q)) => assert!(close(name, p, q), "{name}: {p} vs {q}"),
                _ => assert_eq!(cx, cy, "{name}"),
            }
        }
    }
}

#[test]
fn four_shards_in_separate_processes_merge_to_one_analyze_run() {
    let Some(model) = model("four_shards_in_separate_processes_merge_to_one_analyze_run") else { return };
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let mut args = vec!["analyze".to_string(), "--model".into(), model.display().to_string(), "--output".into(), whole.display().to_string()];
    args.extend(analysis_flags());
    run_ok(&args, dir.path());

    let plan = dir.path().join("plan");
    let mut args = vec!["plan".to_string(), "--model".into(), model.display().to_string(), "--shards".into(), "4".into(), "--output".into(), plan.display().to_string()];
    args.extend(analysis_flags());
    assert_eq!(run_ok(&args, dir.path()).trim(), "4");
    // Each unit a process of its own, all at once, each told its index the way a scheduler does.
    let vars = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID", "SLURM_ARRAY_TASK_ID"];
    let children: Vec<_> = vars
        .iter()
        .enumerate()
        .map(|(i, var)| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_infoplane"));
            for v in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "HQ_TASK_ID"] {
                c.env_remove(v);
            }
            c.args(["run", plan.to_str().unwrap()]).env(var, i.to_string()).current_dir(dir.path()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let status = run_ok(&["status".into(), plan.display().to_string()], dir.path());
    assert!(status.contains("4 done, 0 failed, 0 started, 0 missing"), "{status}");
    let merged = dir.path().join("merged");
    run_ok(&["merge".into(), plan.display().to_string(), "--output".into(), merged.display().to_string()], dir.path());
    assert_tables_close(&whole.join("layers.csv"), &merged.join("layers.csv"));
    let (a, b) = (json(&whole.join("summary.json")), json(&merged.join("summary.json")));
    for (k, v) in a["model_level"].as_object().unwrap() {
        match (v.as_f64(), b["model_level"][k].as_f64()) {
            (Some(p), Some(q)) => assert!(close(k, p, q), "{k}: {p} vs {q}"),
            (p, q) => assert_eq!(p, q, "{k}"),
        }
    }
    assert_eq!(a["counts"], b["counts"]);
    // A finished unit is a no-op; a unit index outside the plan is refused with exit 2.
    let again = infoplane(&["run", plan.to_str().unwrap(), "--index", "2"], dir.path());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to do"));
    let out_of_range = infoplane(&["run", plan.to_str().unwrap(), "--index", "9"], dir.path());
    assert_eq!(out_of_range.status.code(), Some(2));
}

#[test]
fn a_unit_killed_mid_run_is_not_merged_and_completes_when_run_again() {
    let Some(model) = model("a_unit_killed_mid_run_is_not_merged_and_completes_when_run_again") else { return };
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan");
    let mut args = vec!["plan".to_string(), "--model".into(), model.display().to_string(), "--shards".into(), "2".into(), "--output".into(), plan.display().to_string()];
    args.extend(analysis_flags());
    run_ok(&args, dir.path());
    run_ok(&["run".into(), plan.display().to_string(), "--index".into(), "0".into()], dir.path());
    let reference = dir.path().join("reference");
    run_ok(&["run".into(), plan.display().to_string(), "--index".into(), "1".into()], dir.path());
    run_ok(&["merge".into(), plan.display().to_string(), "--output".into(), reference.display().to_string()], dir.path());

    // Throw unit 1 away and run it again, killing it with SIGKILL as soon as it has written
    // anything (every sequence checkpoints), then once more to the end.
    let unit1 = std::fs::read_dir(plan.join("units")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("shard0001")).unwrap();
    std::fs::remove_dir_all(&unit1).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_infoplane"))
        .args(["run", plan.to_str().unwrap(), "--index", "1"])
        .env("INFOPLANE_CHECKPOINT_EVERY_SEQUENCES", "1")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let progress = unit1.join(".work/corpus/progress.json");
    let started = std::time::Instant::now();
    while !progress.exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    if !unit1.join("unit.json").exists() {
        let status = run_ok(&["status".into(), plan.display().to_string()], dir.path());
        assert!(status.contains("1 done, 0 failed, 1 started"), "{status}");
        let o = infoplane(&["merge", plan.to_str().unwrap(), "--output", dir.path().join("early").to_str().unwrap()], dir.path());
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("not done"));
    }
    run_ok(&["run".into(), plan.display().to_string(), "--index".into(), "1".into()], dir.path());
    let merged = dir.path().join("merged");
    run_ok(&["merge".into(), plan.display().to_string(), "--output".into(), merged.display().to_string()], dir.path());
    assert_eq!(std::fs::read(reference.join("layers.csv")).unwrap(), std::fs::read(merged.join("layers.csv")).unwrap());
}
